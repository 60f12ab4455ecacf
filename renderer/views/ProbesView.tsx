/** Probes: start a needle, copy-distance or intervention probe of the selected models over the open book; the probe runs below, and the charts of the one opened. */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { startProbe } from '../commands/probes.js';
import { EmptyState } from '../components/EmptyState.js';
import { PageHeader } from '../components/PageHeader.js';
import { ProbeItem } from '../components/ProbeItem.js';
import { ProbeSettings } from '../components/ProbeSettings.js';
import { type DocumentsState, useDocumentsStore } from '../stores/documents.js';
import { type ProbesState, useProbesStore } from '../stores/probes.js';
import { showScreen, useViewStore } from '../stores/view.js';
import { ProbeCharts } from './ProbeCharts.js';

const selectNext = (s: DocumentsState) => ({ book: s.books.find((b) => b.path === s.openBook)?.name ?? null, count: s.selectedModels.length });
const selectProbes = (s: ProbesState) => ({ probes: s.probes, loaded: s.loaded, progress: s.progress, shown: s.shown });

export const ProbesView = memo(function ProbesView() {
  const next = useDocumentsStore(useShallow(selectNext));
  const { probes, loaded, progress, shown } = useProbesStore(useShallow(selectProbes));
  const starting = useViewStore((s) => s.pending.startProbe === true);
  return (
    <section className="view" data-testid="probes-view" aria-label="Probes">
      <PageHeader
        title="Probes"
        subtitle={<>
          What the models remember of{' '}
          {next.book ? <span className="strong">{next.book}</span> : <button type="button" className="link" onClick={() => showScreen('library')}>open a book</button>}
          : retrieval of a needle, copying across a distance, and their loss with the state frozen, reset or transplanted.
        </>}
        actions={<button type="button" className="button button-primary" onClick={() => void startProbe()} disabled={!next.book || next.count === 0 || starting}>Run probe</button>}
      />
      <ProbeSettings />
      {!loaded ? (
        <EmptyState title="Loading probes…" loading />
      ) : probes.length === 0 ? (
        <EmptyState title="No probes yet">A probe runs in the engine's queue like an analysis; its charts show here when it ends.</EmptyState>
      ) : (
        <ul className="runs" aria-label="Probe runs">
          {probes.map((p) => <ProbeItem key={p.id} probe={p} progress={progress[p.id]} shown={shown?.id === p.id} />)}
        </ul>
      )}
      {shown && <ProbeCharts shown={shown} />}
    </section>
  );
});
