/**
 * Corpus evaluation from the app: start one with the selected models, follow its pushed progress, look at a run
 * (curves with 95% bands, the per-document scatter and table), and export it. A run's numbers are asked for again
 * only when the engine says documents finished (at most one request in flight); nothing here polls.
 */
import type { CorpusRun, NotificationName, NotificationParams } from '../../engine/protocol.js';
import { bandId } from '../lib/corpus-figures.js';
import { type SeriesBuffer, seriesKey, setSeries } from '../series/buffers.js';
import {
  addQueuedCorpusRun, applyCorpusProgress, chooseScatterModel, scatterModels, setCorpusRun, setCorpusRunStatus, setCorpusRuns, showCorpusRunData, useCorpusStore,
} from '../stores/corpus.js';
import { useDocumentsStore } from '../stores/documents.js';
import { useSettingsStore } from '../stores/settings.js';
import { showBanner, showCorpusRunScreen } from '../stores/view.js';
import { attempt, request } from './engine.js';

export const corpusCurveKey = (runId: string): string => seriesKey(`corpus-${runId}`, 'curve');
export const corpusScatterKey = (runId: string): string => seriesKey(`corpus-${runId}`, 'scatter');

export async function loadCorpusRuns(): Promise<void> {
  const listed = await attempt('listCorpusRuns', () => request('listCorpusRuns', {}));
  if (listed) setCorpusRuns(listed.runs);
}

/** Evaluates the corpus at the path given with every selected model (the same selection as Run analysis). */
export async function evaluateCorpus(): Promise<void> {
  const { path, documents, maxTokens, jobs } = useCorpusStore.getState();
  const { selectedModels, models } = useDocumentsStore.getState();
  if (path.trim() === '') return showBanner('Give the corpus: a folder of .txt files, or a .jsonl, .parquet or .arrow file.');
  if (selectedModels.length === 0) return showBanner('Select at least one model.');
  const { backend, window } = useSettingsStore.getState();
  const params = {
    corpus: path.trim(), models: [...selectedModels], ...(documents ? { documents } : {}), ...(maxTokens ? { maxTokens } : {}), ...(jobs ? { jobs } : {}),
    ...(backend ? { backend } : {}), ...(window !== null ? { window } : {}),
  };
  const started = await attempt('evaluateCorpus', () => request('startCorpusEval', params));
  if (!started) return;
  addQueuedCorpusRun({
    id: started.runId, status: 'queued', createdAt: new Date().toISOString(), corpus: path.trim().split(/[\\/]/).filter(Boolean).pop() ?? path, format: '',
    documents: documents ?? 0, models: selectedModels.map((dir) => ({ name: models.find((m) => m.dir === dir)?.name ?? dir, documentsDone: 0, bitsPerByte: null })),
  });
  await openCorpusRun(started.runId);
}

export async function cancelCorpusRun(runId: string): Promise<void> {
  const result = await attempt(`cancel:${runId}`, () => request('cancel', { runId }));
  if (result && !result.cancelled) await loadCorpusRuns();
}

/** Continues a stopped run where it was: the documents it finished are not computed again. */
export async function resumeCorpusRun(runId: string): Promise<void> {
  const { jobs } = useCorpusStore.getState();
  const resumed = await attempt(`resume:${runId}`, () => request('resumeCorpusEval', { runId, ...(jobs ? { jobs } : {}) }));
  if (resumed) setCorpusRunStatus(runId, 'queued');
}

/** A stopped run that can go on: cancelled, failed or interrupted by the engine stopping. */
export const resumable = (status: string): boolean => status === 'cancelled' || status === 'failed' || status === 'interrupted';

export async function openCorpusRun(runId: string): Promise<void> {
  showCorpusRunData(runId);
  showCorpusRunScreen();
  const listed = useCorpusStore.getState().runs.find((r) => r.id === runId);
  if (listed?.status !== 'queued') await refreshCorpusRun(runId);
}

let inFlight: Promise<void> | null = null;
let again = false;

/** The open run's numbers from the engine; a call while one is in flight makes one more when it ends. */
export async function refreshCorpusRun(runId: string): Promise<void> {
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = (async () => {
    do {
      again = false;
      const got = await attempt('getCorpusRun', () => request('getCorpusRun', { runId }));
      if (got && useCorpusStore.getState().runId === runId) {
        setCorpusRun(got, runId);
        drawCorpusCharts();
      }
    } while (again && useCorpusStore.getState().runId === runId);
  })().finally(() => {
    inFlight = null;
  });
  return inFlight;
}

const floats = (a: readonly (number | null)[]) => Float64Array.from(a, (v) => v ?? NaN);

/** Each model's mean and 95% band (bins the engine made), as chart buffers. */
export function curveBuffers(run: CorpusRun): SeriesBuffer[] {
  return run.manifest.models.flatMap((m, i): SeriesBuffer[] => {
    const curve = run.models[i]?.curve;
    if (!curve || curve.position.length === 0) return [];
    const x = Float64Array.from(curve.position);
    const rows = curve.tokens.reduce((n, t) => n + t, 0);
    return [
      { modelKey: m.key, modelName: m.name, x, y: floats(curve.meanNll), rows },
      { modelKey: bandId(m.key, 'high'), modelName: `${m.name} 95% high`, x, y: floats(curve.ciHigh), rows },
      { modelKey: bandId(m.key, 'low'), modelName: `${m.name} 95% low`, x, y: floats(curve.ciLow), rows },
    ];
  });
}

/** Documents both models finished: their bits per byte side by side, in document order. */
export function scatterPoints(run: CorpusRun, a: string, b: string): { names: string[]; x: number[]; y: number[] } {
  const index = (key: string) => run.models[run.manifest.models.findIndex((m) => m.key === key)]?.documents ?? [];
  const byDocument = new Map(index(b).map((d) => [d.document, d]));
  const names: string[] = [], x: number[] = [], y: number[] = [];
  for (const d of index(a)) {
    const other = byDocument.get(d.document);
    if (!other || d.bitsPerByte === null || other.bitsPerByte === null) continue;
    names.push(d.name);
    x.push(d.bitsPerByte);
    y.push(other.bitsPerByte);
  }
  return { names, x, y };
}

/** Puts the open run's curves and scatter into the chart buffers (the charts redraw themselves). */
export function drawCorpusCharts(): void {
  const state = useCorpusStore.getState();
  const { run, runId } = state;
  const pair = scatterModels(state);
  if (!run || !runId || !pair) return;
  setSeries(corpusCurveKey(runId), curveBuffers(run));
  const points = scatterPoints(run, pair[0], pair[1]);
  const name = (key: string) => run.manifest.models.find((m) => m.key === key)?.name ?? key;
  setSeries(corpusScatterKey(runId), points.x.length ? [{
    modelKey: 'documents', modelName: `${name(pair[0])} vs ${name(pair[1])}`, x: Float64Array.from(points.x), y: Float64Array.from(points.y), rows: points.x.length,
  }] : []);
}

export function chooseScatter(axis: 'A' | 'B', key: string): void {
  chooseScatterModel(axis, key);
  drawCorpusCharts();
}

export function handleCorpusNotification<N extends NotificationName>(method: N, params: NotificationParams<N>): void {
  const open = useCorpusStore.getState().runId;
  if (method === 'corpusProgress') {
    const progress = params as NotificationParams<'corpusProgress'>;
    const known = useCorpusStore.getState().runs.some((r) => r.id === progress.runId);
    applyCorpusProgress(progress);
    if (!known) void loadCorpusRuns();
    // the numbers change when a document finishes, and the manifest exists from the first progress on
    if (progress.runId === open && (progress.finished.length > 0 || !useCorpusStore.getState().run)) void refreshCorpusRun(progress.runId);
  } else if (method === 'runFinished' || method === 'runFailed') {
    const { runId } = params as NotificationParams<'runFinished'>;
    if (!useCorpusStore.getState().runs.some((r) => r.id === runId)) return;
    if (method === 'runFinished') setCorpusRunStatus(runId, (params as NotificationParams<'runFinished'>).status);
    void loadCorpusRuns();
    if (runId === open) void refreshCorpusRun(runId);
  }
}

export interface CorpusTableRow {
  readonly document: number;
  readonly name: string;
  readonly bytes: number;
  /** Per model of the run, in its order: bits per byte, or null where it has not finished the document. */
  readonly bitsPerByte: readonly (number | null)[];
  readonly workers: string;
}

/** The per-document table: one row per document any model finished, in document order. */
export function corpusTable(run: CorpusRun): CorpusTableRow[] {
  const rows = new Map<number, { name: string; bytes: number; bitsPerByte: (number | null)[]; workers: Set<string> }>();
  for (const [i] of run.manifest.models.entries()) {
    for (const d of run.models[i]?.documents ?? []) {
      const row = rows.get(d.document) ?? { name: d.name, bytes: d.bytes, bitsPerByte: run.manifest.models.map(() => null), workers: new Set<string>() };
      row.bitsPerByte[i] = d.bitsPerByte;
      row.workers.add(d.worker);
      rows.set(d.document, row);
    }
  }
  return [...rows.entries()].sort(([a], [b]) => a - b).map(([document, r]) => ({ document, name: r.name, bytes: r.bytes, bitsPerByte: r.bitsPerByte, workers: [...r.workers].join(', ') }));
}
