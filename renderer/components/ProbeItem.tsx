/** One probe run in the list: what ran on which book, its status and progress, a way to open or cancel it. */
import { memo } from 'react';
import type { ProbeSummary } from '../../engine/protocol.js';
import { cancelProbe, openProbe } from '../commands/probes.js';
import { formatTime } from '../lib/format.js';
import type { ProbeProgress } from '../stores/probes.js';
import { useViewStore } from '../stores/view.js';
import { ProgressBar } from './ProgressBar.js';

export interface ProbeItemProps {
  readonly probe: ProbeSummary;
  readonly progress?: ProbeProgress;
  readonly shown: boolean;
}

const probeNames: Record<ProbeSummary['kind'], string> = { needle: 'Needle retrieval', copy: 'Copy distance', intervene: 'Intervention' };

export const ProbeItem = memo(function ProbeItem({ probe, progress, shown }: ProbeItemProps) {
  const cancelling = useViewStore((s) => s.pending[`cancel:${probe.id}`] === true);
  const live = probe.status === 'queued' || probe.status === 'running';
  const name = `${probeNames[probe.kind]} · ${probe.book} · ${probe.models.map((m) => m.name).join(', ')}`;
  // the models run one after another: the bar is the share of models done plus the current one's part
  const modelIndex = progress ? Math.max(0, probe.models.findIndex((m) => m.name === progress.model)) : 0;
  const fraction = probe.status === 'finished' ? 1 : progress ? (modelIndex + progress.tokensDone / Math.max(1, progress.tokensTotal)) / Math.max(1, probe.models.length) : 0;
  return (
    <li className="run" aria-label={name} data-testid="probe-item" data-status={probe.status} aria-current={shown ? 'true' : undefined}>
      <div className="run-main">
        <button type="button" className="run-title" onClick={() => void openProbe(probe.id)} disabled={probe.status !== 'finished'} title="Show this probe's charts">
          <span className="strong">{probeNames[probe.kind]}</span>
          <span className="muted"> · {probe.book} · {probe.models.map((m) => m.name).join(', ')}</span>
        </button>
        <p className="run-meta">
          <span className={`status status-${probe.status}`}>{probe.status}</span>
          <span className="muted">{formatTime(probe.createdAt)}</span>
          {probe.detail && <span className="muted">{probe.detail}</span>}
          {live && progress && (
            <span className="muted" data-testid="probe-step">
              {progress.model}: {Math.floor(100 * progress.tokensDone / Math.max(1, progress.tokensTotal))}%{progress.stage ? ` · ${progress.stage}` : ''}
            </span>
          )}
          {probe.error && <span className="muted" title={probe.error}>{probe.error}</span>}
        </p>
      </div>
      <div className="run-progress">
        <ProgressBar fraction={fraction} label={`Progress of ${name}`} tone={live ? 'active' : probe.status === 'finished' ? 'done' : 'stopped'} />
      </div>
      <div className="run-actions">
        {live
          ? <button type="button" className="button button-small button-danger" disabled={cancelling} onClick={() => void cancelProbe(probe.id)} aria-label={`Cancel ${name}`}>Cancel</button>
          : <button type="button" className="button button-small" disabled={probe.status !== 'finished'} onClick={() => void openProbe(probe.id)} aria-label={`Open ${name}`}>Open</button>}
      </div>
    </li>
  );
});
