/** One run: what ran on which book, each model's summary figures, and the perplexity chart. */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { cancelRun } from '../commands/runs.js';
import { EmptyState } from '../components/EmptyState.js';
import { PageHeader } from '../components/PageHeader.js';
import { PerplexityChart } from '../components/PerplexityChart.js';
import { formatBitsPerByte, formatCount, formatDuration, formatRate, formatTime, formatTokens } from '../lib/format.js';
import { isActive, type RunsState, useRunsStore } from '../stores/runs.js';
import { showScreen, useViewStore, type ViewState } from '../stores/view.js';

const selectViewed = (s: ViewState) => ({ runId: s.runId, mode: s.perplexityMode });

export const RunView = memo(function RunView() {
  const { runId, mode } = useViewStore(useShallow(selectViewed));
  const manifest = useRunsStore((s: RunsState) => (runId ? s.manifests[runId] : undefined));
  const summaryStatus = useRunsStore((s: RunsState) => s.runs.find((r) => r.id === runId)?.status);
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
            backend {manifest.backend.name}
          </>
        }
        actions={<>
          {live && <button type="button" className="button button-danger" onClick={() => void cancelRun(manifest.id)}>Cancel run</button>}
          {back}
        </>}
      />
      <table className="table table-compact" aria-label="Models in this run">
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Architecture</th>
            <th scope="col">Status</th>
            <th scope="col" className="num">Tokens</th>
            <th scope="col" className="num">Bits per byte</th>
            <th scope="col" className="num">Speed</th>
            <th scope="col" className="num">Time</th>
            <th scope="col" className="num">Parameters</th>
          </tr>
        </thead>
        <tbody>
          {manifest.models.map((m) => (
            <tr key={m.key}>
              <td className="strong" title={m.dir}>{m.name}</td>
              <td>{m.architecture}</td>
              <td><span className={`status status-${m.status}`}>{m.status}</span></td>
              <td className="num">{formatCount(m.tokensDone)} / {formatCount(m.tokensTotal)}</td>
              <td className="num">{formatBitsPerByte(m.bitsPerByte)}</td>
              <td className="num">{formatRate(m.tokensPerSecond)}</td>
              <td className="num">{formatDuration(m.wallSeconds)}</td>
              <td className="num">{formatCount(m.parameters)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <PerplexityChart runId={manifest.id} mode={mode} />
    </section>
  );
});
