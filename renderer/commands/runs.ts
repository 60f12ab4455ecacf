/** Starting, cancelling and looking at runs; keeping the run list in step with the engine's notifications. */
import type { NotificationName, NotificationParams } from '../../engine/protocol.js';
import { clearBlocks } from '../series/tokens.js';
import { resetAnalysis } from '../stores/analysis.js';
import { useDocumentsStore } from '../stores/documents.js';
import { addQueuedRun, applyProgress, patchManifest, setManifest, setRunStatus, setRuns, useRunsStore } from '../stores/runs.js';
import { useSettingsStore } from '../stores/settings.js';
import { showBanner, showRun, showScreen, useViewStore } from '../stores/view.js';
import { loadTab } from './analysis.js';
import { followLiveComparison } from './comparison.js';
import { attempt, request } from './engine.js';
import { handleProbeFinished, handleProbeProgress } from './probes.js';
import { receiveRunData, watchRun } from './live.js';

/** listRuns requests sent, and the newest whose answer was applied. */
let listings = 0;
let appliedListing = 0;

/**
 * Replaces the run list with the engine's. The engine reads run folders asynchronously, so answers to overlapping
 * requests can arrive out of order: an older answer that comes after a newer one is dropped, lest a listing made
 * before a run started hide it for good.
 */
export async function refreshRuns(): Promise<void> {
  const ticket = ++listings;
  const listed = await attempt('listRuns', () => request('listRuns', {}));
  if (!listed || ticket < appliedListing) return;
  appliedListing = ticket;
  setRuns(listed.runs);
}

/** Runs every selected model over the open book, as one run queued behind any other, where the settings say. */
export async function runAnalysis(): Promise<void> {
  const { openBook, selectedModels, books, models } = useDocumentsStore.getState();
  if (!openBook) return showBanner('Open a book first (Library → Open book).');
  if (selectedModels.length === 0) return showBanner('Select at least one model (Models).');
  const { backend, stages, window, maxTokens, innerLoop } = useSettingsStore.getState(); // null: the engine decides
  const params = {
    book: openBook, models: [...selectedModels], ...(innerLoop ? {} : { innerLoop: false }),
    ...(backend ? { backend } : {}), ...(stages ? { stages } : {}), ...(window !== null ? { window } : {}), ...(maxTokens ? { maxTokens } : {}),
  };
  const first = useRunsStore.getState().runs.length === 0;
  const started = await attempt('runAnalysis', () => request('startAnalysis', params));
  if (!started) return;
  const book = books.find((b) => b.path === openBook);
  addQueuedRun({
    id: started.runId, dir: '', status: 'queued', createdAt: new Date().toISOString(), book: book?.name ?? openBook, tokens: book?.tokens ?? 0,
    models: selectedModels.map((dir) => {
      const model = models.find((m) => m.dir === dir);
      return { name: model?.name ?? dir, family: model?.family ?? 'ttt', status: 'queued', tokensDone: 0, bitsPerByte: null };
    }),
  });
  // a listing still on its way was made before this run existed; this one has it
  void refreshRuns();
  // a first run opens itself: its charts fill in as it streams; later ones join the list
  if (first) {
    resetAnalysis();
    showRun(started.runId);
  } else {
    showScreen('runs');
  }
}

export async function cancelRun(runId: string): Promise<void> {
  const result = await attempt(`cancel:${runId}`, () => request('cancel', { runId }));
  if (result && !result.cancelled) await refreshRuns(); // it had already ended
}

/** Continues an interrupted or cancelled run where it stopped (same run, same folder); it queues like a new one. */
export async function resumeRun(runId: string): Promise<void> {
  const resumed = await attempt(`resume:${runId}`, () => request('resumeRun', { runId }));
  if (!resumed) return;
  setRunStatus(resumed.runId, 'queued');
  await refreshRuns();
  if (useViewStore.getState().runId === resumed.runId) await loadRun(resumed.runId);
}

/** The manifest of one run, its chart aggregates and what its current tab draws, for the run view. */
export async function loadRun(runId: string): Promise<void> {
  const got = await attempt('loadRun', () => request('getRun', { runId }));
  if (!got) return;
  setManifest(got.manifest);
  if (useViewStore.getState().runId !== runId) return;
  await watchRun(runId);
  await loadTab();
}

export async function openRun(runId: string): Promise<void> {
  if (useViewStore.getState().runId !== runId) resetAnalysis();
  showRun(runId);
  await loadRun(runId);
}

/** Model statuses a run's last progress had, to notice a model starting or ending. */
const statusesOf = (runId: string) => useRunsStore.getState().progress[runId]?.models.map((m) => m.status).join() ?? '';

export function handleNotification<N extends NotificationName>(method: N, params: NotificationParams<N>): void {
  const viewed = useViewStore.getState().runId;
  if (method === 'runProgress') {
    const progress = params as NotificationParams<'runProgress'>;
    const before = statusesOf(progress.runId);
    applyProgress(progress);
    patchManifest(progress);
    // a model started or ended: the list shows where it runs, the run view its files
    if (before !== statusesOf(progress.runId)) {
      void refreshRuns();
      if (progress.runId === viewed) void loadRun(progress.runId);
    } else if (progress.runId === viewed && !useRunsStore.getState().manifests[viewed]) {
      void loadRun(progress.runId);
    }
  } else if (method === 'runData') {
    const update = params as NotificationParams<'runData'>;
    receiveRunData(update);
    followLiveComparison(update.runId);
  } else if (method === 'runFinished') {
    const { runId, status } = params as NotificationParams<'runFinished'>;
    setRunStatus(runId, status);
    void refreshRuns();
    if (runId === viewed) clearBlocks(); // token blocks read while the run streamed may stop short
    if (runId === viewed) void loadRun(runId);
  } else if (method === 'probe.progress') {
    handleProbeProgress(params as NotificationParams<'probe.progress'>);
  } else if (method === 'probe.finished') {
    handleProbeFinished(params as NotificationParams<'probe.finished'>);
  } else if (method === 'runFailed') {
    const { runId, message } = params as NotificationParams<'runFailed'>;
    setRunStatus(runId, 'failed');
    showBanner(`Run failed: ${message}`);
    void refreshRuns();
  }
}
