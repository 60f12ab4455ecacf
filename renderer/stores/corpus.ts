/**
 * Corpus domain: what the next corpus evaluation reads (path, how many documents and tokens, jobs), the corpus
 * runs the engine lists, the one being looked at (its manifest, curves and documents as the engine gave them),
 * each live run's last pushed progress, and the two models the per-document scatter compares.
 */
import { create } from 'zustand';
import type { CorpusRun, CorpusRunSummary, NotificationParams, RunStatus } from '../../engine/protocol.js';

export type CorpusProgress = NotificationParams<'corpusProgress'>;

export interface CorpusState {
  readonly path: string;
  /** Only the first N documents / L tokens of each (null: all); documents at once (null: one per core). */
  readonly documents: number | null;
  readonly maxTokens: number | null;
  readonly jobs: number | null;
  readonly runs: readonly CorpusRunSummary[];
  readonly loaded: boolean;
  readonly runId: string | null;
  readonly run: CorpusRun | null;
  readonly progress: Readonly<Record<string, CorpusProgress>>;
  /** Model keys of the scatter's x (A) and y (B) axes; null: the run's first and second models. */
  readonly modelA: string | null;
  readonly modelB: string | null;
}

const initialState: CorpusState = {
  path: '', documents: null, maxTokens: null, jobs: null, runs: [], loaded: false, runId: null, run: null, progress: {}, modelA: null, modelB: null,
};

export const useCorpusStore = create<CorpusState>()(() => initialState);

export function setCorpusPath(path: string): void {
  useCorpusStore.setState({ path });
}

const wholeOrNull = (n: number | null) => (n !== null && Number.isInteger(n) && n >= 1 ? n : null);

export function setCorpusLimit(name: 'documents' | 'maxTokens' | 'jobs', value: number | null): void {
  useCorpusStore.setState({ [name]: wholeOrNull(value) });
}

export function setCorpusRuns(runs: readonly CorpusRunSummary[]): void {
  useCorpusStore.setState({ runs, loaded: true });
}

export function addQueuedCorpusRun(run: CorpusRunSummary): void {
  useCorpusStore.setState((s) => ({ runs: [run, ...s.runs.filter((r) => r.id !== run.id)] }));
}

export function setCorpusRunStatus(runId: string, status: RunStatus): void {
  useCorpusStore.setState((s) => ({ runs: s.runs.map((r) => (r.id === runId ? { ...r, status } : r)) }));
}

/** Opens a corpus run: its data comes with `setCorpusRun`; the scatter's models go back to the first two. */
export function showCorpusRunData(runId: string): void {
  useCorpusStore.setState((s) => (s.runId === runId ? {} : { runId, run: null, modelA: null, modelB: null }));
}

export function setCorpusRun(run: CorpusRun, runId: string): void {
  useCorpusStore.setState((s) => (s.runId === runId ? { run } : {}));
}

export function applyCorpusProgress(progress: CorpusProgress): void {
  useCorpusStore.setState((s) => ({
    progress: { ...s.progress, [progress.runId]: progress },
    runs: s.runs.map((r) => (r.id === progress.runId ? { ...r, status: progress.status } : r)),
  }));
}

export function chooseScatterModel(axis: 'A' | 'B', key: string): void {
  useCorpusStore.setState(axis === 'A' ? { modelA: key } : { modelB: key });
}

/** The scatter's two model keys: the chosen ones, else the run's first and second (or first twice). */
export function scatterModels(s: Pick<CorpusState, 'run' | 'modelA' | 'modelB'>): readonly [string, string] | null {
  const keys = s.run?.manifest.models.map((m) => m.key) ?? [];
  if (keys.length === 0) return null;
  const a = s.modelA && keys.includes(s.modelA) ? s.modelA : keys[0];
  const b = s.modelB && keys.includes(s.modelB) ? s.modelB : keys[1] ?? keys[0];
  return [a, b];
}
