/** Runs: start an analysis of the open book with the selected models, on the backend chosen; the queue and past runs below. */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { runAnalysis } from '../commands/runs.js';
import { EmptyState } from '../components/EmptyState.js';
import { PageHeader } from '../components/PageHeader.js';
import { RunItem } from '../components/RunItem.js';
import { RunSettings } from '../components/RunSettings.js';
import { type DocumentsState, useDocumentsStore } from '../stores/documents.js';
import { type RunsState, useRunsStore } from '../stores/runs.js';
import { showScreen, useViewStore } from '../stores/view.js';

const selectNext = (s: DocumentsState) => ({
  book: s.books.find((b) => b.path === s.openBook)?.name ?? null,
  models: s.models.filter((m) => s.selectedModels.includes(m.dir)).map((m) => m.name).join(', '),
  count: s.selectedModels.length,
});
const selectRuns = (s: RunsState) => ({ runs: s.runs, loaded: s.loaded, progress: s.progress });

export const RunsView = memo(function RunsView() {
  const next = useDocumentsStore(useShallow(selectNext));
  const { runs, loaded, progress } = useRunsStore(useShallow(selectRuns));
  const starting = useViewStore((s) => s.pending.runAnalysis === true);
  const ready = next.book !== null && next.count > 0;
  return (
    <section className="view" data-testid="runs-view" aria-label="Runs">
      <PageHeader
        title="Runs"
        subtitle={
          <>
            Next:{' '}
            {next.book ? <span className="strong">{next.book}</span> : <button type="button" className="link" onClick={() => showScreen('library')}>open a book</button>}
            {' with '}
            {next.count > 0 ? <span className="strong">{next.models}</span> : <button type="button" className="link" onClick={() => showScreen('models')}>select models</button>}
          </>
        }
        actions={<button type="button" className="button button-primary" onClick={() => void runAnalysis()} disabled={!ready || starting}>Run analysis</button>}
      />
      <RunSettings />
      {!loaded ? (
        <EmptyState title="Loading runs…" loading />
      ) : runs.length === 0 ? (
        <EmptyState title="No runs yet">
          A run streams the book through the selected models side by side and keeps per-token results on disk; its charts fill in as it goes.
        </EmptyState>
      ) : (
        <ul className="runs" aria-label="Runs">
          {runs.map((run) => <RunItem key={run.id} run={run} progress={progress[run.id]} />)}
        </ul>
      )}
    </section>
  );
});
