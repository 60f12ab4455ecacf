/** Starting, cancelling and looking at runs; keeping the run list in step with the engine's notifications. */
import type { NotificationName, NotificationParams } from '../../engine/protocol.js';
import { seriesKey, putSeries } from '../series/buffers.js';
import { useDocumentsStore } from '../stores/documents.js';
import { addQueuedRun, applyProgress, bumpSeriesVersion, setManifest, setRunStatus, setRuns } from '../stores/runs.js';
import { type PerplexityMode, setPerplexityMode, showBanner, showRun, showScreen, useViewStore } from '../stores/view.js';
import { attempt, request } from './engine.js';

/** Log-spaced bins per perplexity curve: few for the smooth Figure-2 view, many for the raw one. */
export const perplexityPoints: Record<PerplexityMode, number> = { smoothed: 40, raw: 800 };
/** While a run streams, its open chart reloads at most this often. */
const liveRefreshMs = 1500;

export async function refreshRuns(): Promise<void> {
  const listed = await attempt('listRuns', () => request('listRuns', {}));
  if (listed) setRuns(listed.runs);
}

/** Runs every selected model over the open book, as one run queued behind any other. */
export async function runAnalysis(): Promise<void> {
  const { openBook, selectedModels, books, models } = useDocumentsStore.getState();
  if (!openBook) return showBanner('Open a book first (Library → Open book).');
  if (selectedModels.length === 0) return showBanner('Select at least one model (Models).');
  const started = await attempt('runAnalysis', () => request('startAnalysis', { book: openBook, models: [...selectedModels] }));
  if (!started) return;
  const book = books.find((b) => b.path === openBook);
  addQueuedRun({
    id: started.runId, dir: '', status: 'queued', createdAt: new Date().toISOString(), book: book?.name ?? openBook, tokens: book?.tokens ?? 0,
    models: selectedModels.map((dir) => {
      const model = models.find((m) => m.dir === dir);
      return { name: model?.name ?? dir, family: model?.family ?? 'ttt', status: 'queued', tokensDone: 0, bitsPerByte: null };
    }),
  });
  showScreen('runs');
}

export async function cancelRun(runId: string): Promise<void> {
  const result = await attempt(`cancel:${runId}`, () => request('cancel', { runId }));
  if (result && !result.cancelled) await refreshRuns(); // it had already ended
}

/** The manifest and perplexity curves of one run, for the run view. */
export async function loadRun(runId: string): Promise<void> {
  const got = await attempt('loadRun', () => request('getRun', { runId }));
  if (!got) return;
  setManifest(got.manifest);
  const mode = useViewStore.getState().perplexityMode;
  const key = seriesKey(runId, `perplexity-${mode}`);
  for (const model of got.manifest.models) {
    if (model.predictedTokens < 1 || !model.files.nll) continue;
    const series = await attempt('loadSeries', () =>
      request('getSeries', { runId, model: model.key, series: 'nll', reduce: 'logmean', points: perplexityPoints[mode] }));
    if (!series) return;
    const nll = series.columns.nll ?? Object.values(series.columns)[0] ?? [];
    putSeries(key, { modelKey: model.key, modelName: model.name, x: Float64Array.from(series.x), y: Float64Array.from(nll, Math.exp), rows: series.rows });
  }
  bumpSeriesVersion(runId);
}

export async function openRun(runId: string): Promise<void> {
  showRun(runId);
  await loadRun(runId);
}

export async function changePerplexityMode(mode: PerplexityMode): Promise<void> {
  setPerplexityMode(mode);
  const { runId } = useViewStore.getState();
  if (runId) await loadRun(runId);
}

let lastLiveRefresh = 0;

export function handleNotification<N extends NotificationName>(method: N, params: NotificationParams<N>): void {
  const viewed = useViewStore.getState().runId;
  if (method === 'progress') {
    const progress = params as NotificationParams<'progress'>;
    applyProgress(progress);
    if (progress.runId === viewed && Date.now() - lastLiveRefresh > liveRefreshMs) {
      lastLiveRefresh = Date.now();
      void loadRun(progress.runId);
    }
  } else if (method === 'runFinished') {
    const { runId, status } = params as NotificationParams<'runFinished'>;
    setRunStatus(runId, status);
    void refreshRuns();
    if (runId === viewed) void loadRun(runId);
  } else if (method === 'runFailed') {
    const { runId, message } = params as NotificationParams<'runFailed'>;
    setRunStatus(runId, 'failed');
    showBanner(`Run failed: ${message}`);
    void refreshRuns();
  }
}
