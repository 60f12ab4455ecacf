/**
 * Corpus runs as the app sees them (protocol.ts `CorpusRun`, `corpusProgress`): a run folder read back (its
 * manifest, each model's bins and documents), and the live progress of one being computed. A finished run is read
 * from the Arrow files it wrote; a running or stopped one from the per-document results it has so far, summed as
 * `evaluateCorpus` sums them (corpus/bins.ts), so a curve seen while the run goes on is the same numbers it ends with.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { workbenchError } from '../core/errors.js';
import type { CorpusCurve, CorpusDocumentRow, CorpusManifest, CorpusRun, CorpusRunSummary, CorpusWorkerProgress, NotificationParams } from '../protocol.js';
import { aggregateBins, type CorpusBin } from './bins.js';
import type { DocumentResult } from './document.js';
import { bitsPerByte, type CorpusEvalEvent, manifestName } from './eval.js';

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

export async function readCorpusManifest(dir: string, live: boolean): Promise<CorpusManifest> {
  let manifest: CorpusManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, manifestName), 'utf8')) as CorpusManifest;
  } catch {
    throw workbenchError('E_RUN', basename(dir), 'no such corpus run');
  }
  // a run the engine stopped in the middle of says `running` on disk
  return !live && manifest.status === 'running' ? { ...manifest, status: 'interrupted' } : manifest;
}

export async function listCorpusRuns(root: string, isLive: (id: string) => boolean): Promise<CorpusRunSummary[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  const runs: CorpusRunSummary[] = [];
  for (const id of names) {
    try {
      const m = await readCorpusManifest(join(root, id), isLive(id));
      runs.push({
        id, status: m.status, createdAt: m.createdAt, corpus: basename(m.corpus.path), format: m.corpus.format, documents: m.corpus.documents,
        models: m.models.map((x) => ({ name: x.name, documentsDone: x.documentsDone, bitsPerByte: x.bitsPerByte })),
      });
    } catch {
      // a folder that is not a corpus run (or half-made) is not listed
    }
  }
  return runs.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** The geometric centre of positions [start, end): a bin's place on a log axis. */
const centres = (start: readonly number[], end: readonly number[]) => start.map((s, i) => Math.sqrt(s * Math.max(s, end[i] - 1)));

const curveOf = (bins: readonly CorpusBin[]): CorpusCurve => ({
  position: centres(bins.map((b) => b.start), bins.map((b) => b.end)),
  start: bins.map((b) => b.start), end: bins.map((b) => b.end), tokens: bins.map((b) => b.tokens), documents: bins.map((b) => b.documents),
  meanNll: bins.map((b) => finite(b.meanNll)), standardError: bins.map((b) => finite(b.standardError)),
  ciLow: bins.map((b) => finite(b.ciLow)), ciHigh: bins.map((b) => finite(b.ciHigh)),
});

export const documentRow = (r: DocumentResult): CorpusDocumentRow => ({
  document: r.document, name: r.name, tokens: r.tokens, bytes: r.bytes, nllSum: r.nllSum, bitsPerByte: bitsPerByte(r.nllSum, r.bytes), seconds: r.seconds, worker: r.worker,
});

async function readArrow(path: string) {
  return tableFromIPC(await readFile(path));
}

const column = (table: Awaited<ReturnType<typeof readArrow>>, name: string): unknown[] => table.getChild(name)?.toArray() as unknown[] ?? [];
const numbers = (table: Awaited<ReturnType<typeof readArrow>>, name: string) => Array.from(column(table, name), Number);

/** A finished model as its Arrow files hold it. */
async function fromArrow(dir: string, model: CorpusManifest['models'][number]): Promise<CorpusRun['models'][number]> {
  const bins = await readArrow(join(dir, model.files.bins));
  const docs = await readArrow(join(dir, model.files.documents));
  const nullable = (name: string) => numbers(bins, name).map(finite);
  const start = numbers(bins, 'bin_start'), end = numbers(bins, 'bin_end');
  const bpb = numbers(docs, 'bits_per_byte');
  const tokens = numbers(docs, 'tokens'), bytes = numbers(docs, 'bytes'), nll = numbers(docs, 'nll_sum'), seconds = numbers(docs, 'seconds');
  const names = column(docs, 'name').map(String), workers = column(docs, 'worker').map(String);
  return {
    key: model.key,
    curve: {
      position: centres(start, end), start, end, tokens: numbers(bins, 'tokens'), documents: numbers(bins, 'documents'),
      meanNll: nullable('mean_nll'), standardError: nullable('standard_error'), ciLow: nullable('ci_low'), ciHigh: nullable('ci_high'),
    },
    documents: numbers(docs, 'document').map((document, i) => ({
      document, name: names[i], tokens: tokens[i], bytes: bytes[i], nllSum: nll[i], bitsPerByte: finite(bpb[i]), seconds: seconds[i], worker: workers[i],
    })),
  };
}

/** A model of a run still going (or stopped): its saved per-document results, summed in document order. */
async function fromResults(dir: string, key: string): Promise<CorpusRun['models'][number]> {
  const folder = join(dir, 'results', key);
  const files = (await readdir(folder).catch(() => [] as string[])).filter((f) => /^\d+\.json$/.test(f));
  const results: DocumentResult[] = [];
  for (const file of files) {
    try {
      results.push(JSON.parse(await readFile(join(folder, file), 'utf8')) as DocumentResult);
    } catch {
      // being renamed into place right now: it comes with the next update
    }
  }
  results.sort((a, b) => a.document - b.document);
  const lastPosition = results.reduce((n, r) => Math.max(n, r.tokens - 1), 0);
  return { key, curve: curveOf(aggregateBins(results.map((r) => r.bins), lastPosition)), documents: results.map(documentRow) };
}

export async function readCorpusRun(dir: string, live: boolean): Promise<CorpusRun> {
  const manifest = await readCorpusManifest(dir, live);
  const ended = manifest.status === 'finished' || manifest.status === 'failed' || manifest.status === 'cancelled';
  const models = [];
  for (const model of manifest.models) {
    models.push(ended ? await fromArrow(dir, model).catch(() => fromResults(dir, model.key)) : await fromResults(dir, model.key));
  }
  return { manifest, models };
}

type Progress = NotificationParams<'corpusProgress'>;

/**
 * A running evaluation's progress, fed its events and taken as `corpusProgress` notifications: the documents
 * finished since the last one are handed over once, workers are kept by name.
 */
export class CorpusProgressTracker {
  private readonly workers = new Map<string, CorpusWorkerProgress>();
  /** `model/document` → the worker reading it (results name `local`, progress the slot). */
  private readonly readers = new Map<string, string>();
  private finished: Progress['finished'] = [];
  private failures: Progress['failures'] = [];
  private done = 0;
  private failed = 0;
  private tokensDone = 0;
  private readonly started = performance.now();
  dirty = true;

  constructor(private readonly runId: string, private readonly total: number, doneBefore: number) {
    this.done = doneBefore;
  }

  apply(event: CorpusEvalEvent): void {
    this.dirty = true;
    if (event.type === 'tokens') {
      const w = this.workerNamed(event.worker);
      this.readers.set(`${event.model}/${event.document}`, event.worker);
      this.workers.set(event.worker, { ...w, model: event.model, document: event.document, name: event.name, tokensDone: event.done, tokensTotal: event.total });
    } else if (event.type === 'result') {
      const key = `${event.model}/${event.result.document}`;
      const name = this.readers.get(key) ?? event.result.worker;
      this.readers.delete(key);
      const w = this.workerNamed(name);
      this.workers.set(name, { ...w, model: null, document: null, name: null, tokensDone: 0, tokensTotal: 0, documentsDone: w.documentsDone + 1 });
      this.done++;
      this.tokensDone += event.result.tokens;
      this.finished.push({ ...documentRow(event.result), model: event.model });
    } else {
      this.failed++;
      this.failures.push({ model: event.model, document: event.document, name: event.name, error: event.error });
    }
  }

  private workerNamed(worker: string): CorpusWorkerProgress {
    return this.workers.get(worker) ?? { worker, model: null, document: null, name: null, tokensDone: 0, tokensTotal: 0, documentsDone: 0 };
  }

  take(status: Progress['status']): Progress {
    const elapsedSeconds = (performance.now() - this.started) / 1000;
    const progress: Progress = {
      runId: this.runId, status, done: this.done, failed: this.failed, total: this.total, tokensDone: this.tokensDone,
      tokensPerSecond: elapsedSeconds > 0 && this.tokensDone > 0 ? this.tokensDone / elapsedSeconds : null, elapsedSeconds,
      workers: [...this.workers.values()].sort((a, b) => a.worker.localeCompare(b.worker, 'en', { numeric: true })),
      finished: this.finished, failures: this.failures,
    };
    this.finished = [];
    this.failures = [];
    this.dirty = false;
    return progress;
  }
}
