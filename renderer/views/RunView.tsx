/**
 * One run: what ran on which book, and its views in tabs: the overview (models and perplexity), the inner
 * loop, the hidden state, the token heatmap and the comparison with other runs; the whole run exports as an
 * HTML report.
 */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { RunManifest } from '../../engine/protocol.js';
import { exportReport } from '../commands/report.js';
import { cancelRun, resumeRun } from '../commands/runs.js';
import { EmptyState } from '../components/EmptyState.js';
import { BackendTag } from '../components/BackendTag.js';
import { ModelsTable } from '../components/ModelsTable.js';
import { PageHeader } from '../components/PageHeader.js';
import { PerplexityChart } from '../components/PerplexityChart.js';
import { RunTabs } from '../components/RunTabs.js';
import { formatTime, formatTokens } from '../lib/format.js';
import { formatThreads } from '../lib/placement.js';
import { type RunTab, useAnalysisStore } from '../stores/analysis.js';
import { isActive, type RunsState, useRunsStore } from '../stores/runs.js';
import { type PerplexityMode, type PerplexityUnit, showScreen, useViewStore, type ViewState } from '../stores/view.js';
import { ComparisonView } from './ComparisonView.js';
import { HiddenStateView } from './HiddenStateView.js';
import { InnerLoopView } from './InnerLoopView.js';
import { TokenHeatmapView } from './TokenHeatmapView.js';

const selectViewed = (s: ViewState) => ({
  runId: s.runId, mode: s.perplexityMode, unit: s.perplexityUnit, logY: s.perplexityLogY, exporting: s.pending.exportReport === true,
});

type ChartChoice = { mode: PerplexityMode; unit: PerplexityUnit; logY: boolean };

const panels: Record<RunTab, (manifest: RunManifest, chart: ChartChoice) => React.JSX.Element> = {
  perplexity: (manifest, chart) => <><ModelsTable models={manifest.models} backend={manifest.backend} /><PerplexityChart runId={manifest.id} {...chart} /></>,
  innerLoop: (manifest) => <InnerLoopView manifest={manifest} />,
  hiddenState: (manifest) => <HiddenStateView manifest={manifest} />,
  tokens: (manifest) => <TokenHeatmapView manifest={manifest} />,
  comparison: (manifest) => <ComparisonView manifest={manifest} />,
};

export const RunView = memo(function RunView() {
  const { runId, mode, unit, logY, exporting } = useViewStore(useShallow(selectViewed));
  const chart = { mode, unit, logY };
  const tab = useAnalysisStore((s) => s.tab);
  const manifest = useRunsStore((s: RunsState) => (runId ? s.manifests[runId] : undefined));
  const summaryStatus = useRunsStore((s: RunsState) => s.runs.find((r) => r.id === runId)?.status);
  const resuming = useViewStore((s) => runId !== null && s.pending[`resume:${runId}`] === true);
  if (!runId) return <EmptyState title="No run selected" testId="run-view" />;
  const status = summaryStatus ?? manifest?.status;
  const back = <button type="button" className="button" onClick={() => showScreen('runs')}>All runs</button>;
  if (!manifest) {
    return (
      <section className="view" data-testid="run-view" aria-label="Run">
        <PageHeader title="Run" actions={back} />
        <EmptyState title="Loading the run…" loading />
      </section>
    );
  }
  const live = status !== undefined && isActive(status);
  return (
    <section className="view" data-testid="run-view" aria-label={`Run of ${manifest.book.name}`}>
      <PageHeader
        title={manifest.book.name}
        subtitle={
          <>
            <span className={`status status-${status}`}>{status}</span> · {formatTokens(manifest.book.tokens)} · started {formatTime(manifest.createdAt)} ·
            backend <BackendTag backend={manifest.backend} />{formatThreads(manifest.backend) && `, ${formatThreads(manifest.backend)}`}
          </>
        }
        actions={<>
          {live && <button type="button" className="button button-danger" onClick={() => void cancelRun(manifest.id)}>Cancel run</button>}
          {(status === 'interrupted' || status === 'cancelled') && (
            <button type="button" className="button" disabled={resuming} onClick={() => void resumeRun(manifest.id)} title="Continue this run from where it stopped">Resume</button>
          )}
          <button type="button" className="button" disabled={exporting} onClick={() => void exportReport(manifest.id)}>{exporting ? 'Exporting…' : 'Export report'}</button>
          {back}
        </>}
      />
      <RunTabs tab={tab} />
      <div role="tabpanel" id="run-tabpanel" aria-labelledby={`tab-${tab}`}>
        {panels[tab](manifest, chart)}
      </div>
    </section>
  );
});
