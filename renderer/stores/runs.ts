/**
 * Runs domain: the queue and history (summaries from the engine), live progress per run, the manifest of runs
 * being looked at, and a version counter per run whose per-token series changed. The series themselves live
 * in typed arrays outside the store (renderer/series/buffers.ts).
 */
import { create } from 'zustand';
import type { NotificationParams, RunManifest, RunStatus, RunSummary } from '../../engine/protocol.js';

export type RunProgress = NotificationParams<'runProgress'>;

export interface RunsState {
  /** Newest first, as the engine lists them. */
  readonly runs: readonly RunSummary[];
  readonly loaded: boolean;
  readonly progress: Readonly<Record<string, RunProgress>>;
  readonly manifests: Readonly<Record<string, RunManifest>>;
  readonly seriesVersion: Readonly<Record<string, number>>;
}

const initialState: RunsState = { runs: [], loaded: false, progress: {}, manifests: {}, seriesVersion: {} };

export const useRunsStore = create<RunsState>()(() => initialState);

export const isActive = (status: RunStatus): boolean => status === 'queued' || status === 'running';

export function setRuns(runs: readonly RunSummary[]): void {
  useRunsStore.setState((s) => ({
    runs,
    loaded: true,
    // progress only means something while a run is live
    progress: Object.fromEntries(Object.entries(s.progress).filter(([id]) => runs.some((r) => r.id === id && isActive(r.status)))),
  }));
}

/** A run the engine just accepted: listed at once as queued, before the next listRuns. */
export function addQueuedRun(run: RunSummary): void {
  useRunsStore.setState((s) => ({ runs: [run, ...s.runs.filter((r) => r.id !== run.id)] }));
}

export function applyProgress(progress: RunProgress): void {
  useRunsStore.setState((s) => ({
    progress: { ...s.progress, [progress.runId]: progress },
    runs: s.runs.map((r) => (r.id === progress.runId && r.status === 'queued' ? { ...r, status: 'running' } : r)),
  }));
}

export function setRunStatus(runId: string, status: RunStatus): void {
  useRunsStore.setState((s) => ({
    runs: s.runs.map((r) => (r.id === runId ? { ...r, status } : r)),
    progress: isActive(status) ? s.progress : Object.fromEntries(Object.entries(s.progress).filter(([id]) => id !== runId)),
  }));
}

export function setManifest(manifest: RunManifest): void {
  useRunsStore.setState((s) => ({ manifests: { ...s.manifests, [manifest.id]: manifest } }));
}

/** A live run's manifest, kept current from its progress (tokens done, status, bits per byte) without asking again. */
export function patchManifest(progress: RunProgress): void {
  useRunsStore.setState((s) => {
    const manifest = s.manifests[progress.runId];
    if (!manifest) return {};
    const models = manifest.models.map((m) => {
      const p = progress.models.find((x) => x.model === m.key);
      // a model's final figures come from the engine's manifest, not from its last progress
      if (!p || m.status === 'finished' || m.status === 'failed' || m.status === 'cancelled') return m;
      return { ...m, status: p.status, tokensDone: p.tokensDone, bitsPerByte: p.bitsPerByte, tokensPerSecond: p.tokensPerSecond };
    });
    return { manifests: { ...s.manifests, [progress.runId]: { ...manifest, models } } };
  });
}

export function bumpSeriesVersion(runId: string): void {
  useRunsStore.setState((s) => ({ seriesVersion: { ...s.seriesVersion, [runId]: (s.seriesVersion[runId] ?? 0) + 1 } }));
}

/** Overall fraction done of a run (its models advance side by side), 0..1. */
export function runFraction(run: RunSummary, progress: RunProgress | undefined): number {
  if (run.status === 'finished') return 1;
  if (progress) return Math.min(1, progress.fraction);
  if (run.tokens <= 0 || run.models.length === 0) return 0;
  return Math.min(1, run.models.reduce((sum, m) => sum + m.tokensDone / run.tokens, 0) / run.models.length);
}
