/** One run in the queue/history: book and models, status, where it runs, progress, speed, ETA, cancel. */
import { memo } from 'react';
import type { RunSummary } from '../../engine/protocol.js';
import { cancelRun, openRun, resumeRun } from '../commands/runs.js';
import { formatDuration, formatRate, formatTime, formatTokens } from '../lib/format.js';
import { formatStages, summarizeStages } from '../lib/placement.js';
import { isActive, type RunProgress, runFraction } from '../stores/runs.js';
import { useViewStore } from '../stores/view.js';
import { BackendTag } from './BackendTag.js';
import { ProgressBar } from './ProgressBar.js';

export interface RunItemProps {
  readonly run: RunSummary;
  readonly progress?: RunProgress;
}

const statusText: Record<RunSummary['status'], string> = {
  queued: 'Queued', running: 'Running', finished: 'Finished', cancelled: 'Cancelled', failed: 'Failed', interrupted: 'Interrupted',
};

export const RunItem = memo(function RunItem({ run, progress }: RunItemProps) {
  const cancelling = useViewStore((s) => s.pending[`cancel:${run.id}`] === true);
  const resuming = useViewStore((s) => s.pending[`resume:${run.id}`] === true);
  const resumable = run.status === 'interrupted' || run.status === 'cancelled';
  const models = run.models.map((m) => m.name).join(', ');
  const name = `${run.book} · ${models}`;
  const live = isActive(run.status);
  const fraction = runFraction(run, progress);
  const stages = summarizeStages(run.models);
  return (
    <li className="run" aria-label={name} data-testid="run-item" data-status={run.status}>
      <div className="run-main">
        <button type="button" className="run-title" onClick={() => void openRun(run.id)} disabled={run.status === 'queued'} title="Show this run's charts">
          <span className="strong">{run.book}</span>
          <span className="muted"> · {models}</span>
        </button>
        <p className="run-meta">
          <span className={`status status-${run.status}`}>{statusText[run.status]}</span>
          <span className="muted">{formatTime(run.createdAt)}</span>
          {run.tokens > 0 && <span className="muted">{formatTokens(run.tokens)}</span>}
          {run.backend && (
            <span className="muted" data-testid="run-placement" title={run.models.filter((m) => m.stages?.length).map((m) => `${m.name}: ${formatStages(m.stages!)}`).join('\n') || undefined}>
              <BackendTag backend={run.backend} />{stages && ` · ${stages}`}
            </span>
          )}
        </p>
        {live && progress && (
          <ul className="run-lanes" aria-label="Models' progress">
            {progress.models.map((m, i) => (
              <li key={m.model} data-testid="model-progress">
                <span className="strong">{run.models[i]?.name ?? m.model}</span>{' '}
                <span className="muted">
                  {Math.floor((100 * m.tokensDone) / Math.max(1, m.tokensTotal))}% · {formatRate(m.tokensPerSecond)}
                  {m.status === 'running' ? ` · ${formatDuration(m.etaSeconds)} left` : ` · ${m.status}`}
                </span>
              </li>
            ))}
          </ul>
        )}
      </div>
      <div className="run-progress">
        <ProgressBar fraction={fraction} label={`Progress of ${name}`} tone={live ? 'active' : run.status === 'finished' ? 'done' : 'stopped'} />
        <p className="run-stats">
          <span>{Math.round(fraction * 100)}%</span>
          {live && <span>ETA {formatDuration(progress?.etaSeconds ?? null)}</span>}
        </p>
      </div>
      <div className="run-actions">
        {live ? (<>
          <button type="button" className="button button-small" onClick={() => void openRun(run.id)} disabled={run.status === 'queued'} aria-label={`Open ${name}`}>Open</button>
          <button type="button" className="button button-small button-danger" onClick={() => void cancelRun(run.id)} disabled={cancelling}>Cancel run</button>
        </>) : (<>
          <button type="button" className="button button-small" onClick={() => void openRun(run.id)} aria-label={`Open ${name}`}>Open</button>
          {resumable && (
            <button type="button" className="button button-small" onClick={() => void resumeRun(run.id)} disabled={resuming} title="Continue this run from where it stopped">Resume</button>
          )}
        </>)}
      </div>
    </li>
  );
});
