/** A corpus run's live progress: documents done of all (× models), speed, and each worker's current document. */
import { memo } from 'react';
import type { CorpusRun } from '../../engine/protocol.js';
import { formatCount, formatDuration, formatRate } from '../lib/format.js';
import type { CorpusProgress } from '../stores/corpus.js';
import { ProgressBar } from './ProgressBar.js';

export interface CorpusProgressPanelProps {
  readonly progress: CorpusProgress;
  readonly run: CorpusRun | null;
}

export const CorpusProgressPanel = memo(function CorpusProgressPanel({ progress, run }: CorpusProgressPanelProps) {
  const modelName = (key: string | null) => run?.manifest.models.find((m) => m.key === key)?.name ?? key ?? '';
  const live = progress.status === 'running' || progress.status === 'queued';
  return (
    <section className="corpus-progress" aria-label="Progress" data-testid="corpus-progress">
      <ProgressBar fraction={progress.done / Math.max(1, progress.total)} label="Documents done" tone={live ? 'active' : progress.status === 'finished' ? 'done' : 'stopped'} />
      <p className="run-stats" data-testid="corpus-progress-text">
        <span>{progress.done} of {progress.total} documents done{progress.failed ? `, ${progress.failed} failed` : ''}</span>
        <span>{formatCount(progress.tokensDone)} tokens · {formatRate(progress.tokensPerSecond)} · {formatDuration(progress.elapsedSeconds)}</span>
      </p>
      {progress.workers.length > 0 && (
        <ul className="corpus-workers" aria-label="Workers">
          {progress.workers.map((w) => (
            <li key={w.worker} data-testid="corpus-worker">
              <span className="strong">{w.worker}</span>{' '}
              <span className="muted">
                {w.name === null ? 'waiting' : `${modelName(w.model)} · ${w.name} · ${formatCount(w.tokensDone)} / ${formatCount(w.tokensTotal)} tokens`}
                {` · ${w.documentsDone} done`}
              </span>
              {w.name !== null && <ProgressBar fraction={w.tokensDone / Math.max(1, w.tokensTotal)} label={`${w.worker} on ${w.name}`} />}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
});
