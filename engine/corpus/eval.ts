/**
 * Corpus evaluation: every document through every model, each document's NLL summed into position bins
 * (corpus/bins.ts), the corpus's curve the sum of those in document order. The work is a list of (model, document)
 * tasks run by an executor: on this machine, one single-stage pipeline per core taking documents in turn
 * (`localExecutor`), or a BullMQ queue served by workers on other machines (corpus/cluster.ts).
 *
 * A corpus run folder:
 *   manifest.json                          corpus, models (with content hashes), settings, status, totals, skipped
 *   results/<model>/<document>.json        one document's binned sums, written as it finishes (resume skips it)
 *   models/<model>/bins.arrow              per position bin: sums, mean NLL, standard error, 95% interval
 *   models/<model>/documents.arrow         per document: tokens, bytes, NLL sum, bits per byte, who computed it
 * Each file is written whole and renamed into place, so none is ever half-written. A cancelled or interrupted
 * run is resumed by the same command: finished documents are read back, never recomputed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import type { BackendInfo } from '../core/backend.js';
import { WorkbenchError, workbenchError } from '../core/errors.js';
import type { ModelOptions } from '../models/registry.js';
import { type PipelineModel, StagePipeline } from '../runtime/pipeline.js';
import { aggregateBins, type CorpusBin } from './bins.js';
import {
  DocumentCancelled, type DocumentResult, type DocumentSettings, evaluateDocument, type ModelPlan, planModel,
} from './document.js';
import type { Corpus, CorpusDocument } from './read.js';

export interface EvalModel {
  readonly key: string;
  readonly plan: ModelPlan;
  readonly settings: DocumentSettings;
}

export interface EvalTask {
  /** `<run>-<model>-<document>`: unique, and the same when a run is resumed. */
  readonly id: string;
  readonly model: EvalModel;
  readonly document: CorpusDocument;
  /** Per-token file for this document (with `--store`). */
  readonly tokensFile?: string;
}

export interface ExecutorContext {
  readonly signal?: AbortSignal;
  readonly onResult: (task: EvalTask, result: DocumentResult) => Promise<void>;
  readonly onFailure: (task: EvalTask, error: string) => void;
  /** Live progress of a task on a worker (executors that can see it: the local one). */
  readonly onTokens?: (task: EvalTask, worker: string, done: number, total: number) => void;
}

/** Live progress of a corpus evaluation, one event per document started, advanced, finished or failed. */
export type CorpusEvalEvent =
  | { readonly type: 'tokens'; readonly model: string; readonly document: number; readonly name: string; readonly worker: string; readonly done: number; readonly total: number }
  | { readonly type: 'result'; readonly model: string; readonly result: DocumentResult }
  | { readonly type: 'failure'; readonly model: string; readonly document: number; readonly name: string; readonly error: string };

/** Runs tasks until all have a result or a failure, or the signal aborts. */
export type Executor = (tasks: readonly EvalTask[], context: ExecutorContext) => Promise<void>;

export interface EvalOptions {
  readonly corpus: Corpus;
  readonly models: readonly string[];
  readonly outDir: string;
  readonly backend: BackendInfo;
  /** Transformers: a window, `full`, or (absent) each model's trained context. */
  readonly window?: number | 'full';
  readonly maxTokens?: number;
  readonly chunkTokens?: number;
  /** Per-token Arrow files, one per (model, document), under this folder. */
  readonly storeDir?: string;
  /** Default: `localExecutor` with one pipeline per core. */
  readonly executor?: Executor;
  readonly executorName?: string;
  readonly versions?: Record<string, string>;
  readonly signal?: AbortSignal;
  /** One line per finished, failed or skipped document. */
  readonly log?: (line: string) => void;
  /** Live progress per document and worker (the app's corpus view). */
  readonly onProgress?: (event: CorpusEvalEvent) => void;
  /** Called once the run's first manifest is written (before any document is computed). */
  readonly onStart?: (manifest: CorpusManifest) => void;
}

export interface CorpusModelSummary {
  readonly key: string;
  readonly dir: string;
  readonly name: string;
  readonly family: string;
  readonly architecture: string;
  readonly hash: string;
  readonly window: number | null;
  readonly documentsDone: number;
  readonly documentsFailed: number;
  readonly tokens: number;
  readonly bytes: number;
  readonly nllSum: number;
  readonly bitsPerByte: number | null;
  readonly files: { readonly bins: string; readonly documents: string };
}

export interface CorpusManifest {
  readonly format: 'ttt-workbench-corpus/1';
  readonly id: string;
  readonly status: 'running' | 'finished' | 'cancelled' | 'failed';
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly corpus: {
    readonly path: string; readonly format: string; readonly documents: number; readonly bytes: number;
    readonly skipped: readonly { readonly name: string; readonly reason: string }[];
  };
  readonly settings: { readonly chunkTokens: number; readonly maxTokens: number | null; readonly window: number | 'full' | null; readonly executor: string; readonly store: string | null };
  readonly backend: BackendInfo;
  readonly versions: Record<string, string>;
  readonly bins: { readonly ladder: 'quarter-octave'; readonly note: string };
  readonly models: readonly CorpusModelSummary[];
  readonly failures: readonly { readonly model: string; readonly document: number; readonly name: string; readonly error: string }[];
}

export interface EvalResult {
  readonly outDir: string;
  readonly manifest: CorpusManifest;
  /** Per model key: its bins, for callers that want the numbers without reading the files. */
  readonly bins: ReadonlyMap<string, readonly CorpusBin[]>;
  /** Per model key: its documents' results, in document order. */
  readonly documents: ReadonlyMap<string, readonly DocumentResult[]>;
  /** Tasks computed in this call (the rest were read back from an earlier call). */
  readonly computed: number;
}

export const manifestName = 'manifest.json';
const defaultChunkTokens = 512;

export async function evaluateCorpus(options: EvalOptions): Promise<EvalResult> {
  const log = options.log ?? (() => undefined);
  const { corpus, outDir } = options;
  // Every model is read (config, tokenizer, content hash) before any work: a bad model fails the run at once.
  const models: EvalModel[] = [];
  for (const [i, dir] of options.models.entries()) {
    const plan = await planModel(dir, options.window);
    const settings: DocumentSettings = { chunkTokens: options.chunkTokens ?? defaultChunkTokens, maxTokens: options.maxTokens ?? null, window: plan.window };
    models.push({ key: `${i}-${slug(basename(dir))}`, plan, settings });
  }
  await mkdir(outDir, { recursive: true });
  const previous = await readJson<CorpusManifest>(join(outDir, manifestName));
  const id = previous?.format === 'ttt-workbench-corpus/1' ? previous.id : randomBytes(6).toString('hex');
  for (const s of corpus.skipped) log(`skipped ${s.reason}`);

  // what earlier calls finished is read back; the rest is the work
  const results = new Map<string, Map<number, DocumentResult>>(models.map((m) => [m.key, new Map()]));
  const tasks: EvalTask[] = [];
  for (const model of models) {
    await mkdir(join(outDir, 'results', model.key), { recursive: true });
    for (const document of corpus.documents) {
      const saved = await readJson<DocumentResult>(resultPath(outDir, model.key, document.index));
      if (saved && isResultFor(saved, model, document)) results.get(model.key)!.set(document.index, saved);
      else {
        tasks.push({
          id: `${id}-${model.key}-${document.index}`, model, document,
          tokensFile: options.storeDir ? join(options.storeDir, model.key, `${document.index}.arrow`) : undefined,
        });
      }
    }
  }
  // the longest documents first, so the last ones to finish are short (cores stay busy to the end)
  tasks.sort((a, b) => models.indexOf(a.model) - models.indexOf(b.model) || b.document.bytes - a.document.bytes || a.document.index - b.document.index);
  const doneBefore = corpus.documents.length * models.length - tasks.length;
  if (doneBefore > 0) log(`resuming: ${doneBefore} of ${corpus.documents.length * models.length} documents already done`);

  const failures: CorpusManifest['failures'][number][] = [];
  const createdAt = previous?.createdAt ?? new Date().toISOString();
  const manifestOf = (status: CorpusManifest['status']): CorpusManifest => ({
    format: 'ttt-workbench-corpus/1', id, status, createdAt, finishedAt: status === 'running' ? null : new Date().toISOString(),
    corpus: { path: corpus.path, format: corpus.format, documents: corpus.documents.length, bytes: corpus.documents.reduce((n, d) => n + d.bytes, 0), skipped: corpus.skipped },
    settings: {
      chunkTokens: options.chunkTokens ?? defaultChunkTokens, maxTokens: options.maxTokens ?? null, window: options.window ?? null,
      executor: options.executorName ?? 'local', store: options.storeDir ?? null,
    },
    backend: options.backend,
    versions: options.versions ?? {},
    bins: { ladder: 'quarter-octave', note: 'bin b holds predicted positions [floor(2^(k/4))…), see engine/corpus/bins.ts; exact float64 sums in document order' },
    models: models.map((m) => summarize(m, [...results.get(m.key)!.values()], failures.filter((f) => f.model === m.key).length)),
    failures,
  });
  await writeJsonAtomic(join(outDir, manifestName), manifestOf('running'));
  options.onStart?.(manifestOf('running'));

  let finished = 0;
  const started = performance.now();
  let tokensDone = 0;
  let lastManifest = performance.now();
  await (options.executor ?? localExecutor({ backend: options.backend.name }))(tasks, {
    signal: options.signal,
    onResult: async (task, result) => {
      await writeJsonAtomic(resultPath(outDir, task.model.key, task.document.index), result);
      results.get(task.model.key)!.set(task.document.index, result);
      options.onProgress?.({ type: 'result', model: task.model.key, result });
      finished++;
      tokensDone += result.tokens;
      const seconds = (performance.now() - started) / 1000;
      log(`[${finished + doneBefore}/${corpus.documents.length * models.length}] ${task.model.key} ${task.document.name}: ${result.tokens} tokens, ` +
        `${bitsPerByte(result.nllSum, result.bytes)?.toFixed(4) ?? '-'} bits/byte, ${result.seconds.toFixed(2)} s on ${result.worker}; ` +
        `${Math.round(tokensDone / Math.max(seconds, 1e-9))} tokens/s overall`);
      if (performance.now() - lastManifest > 1000) {
        lastManifest = performance.now();
        await writeJsonAtomic(join(outDir, manifestName), manifestOf('running'));
      }
    },
    onFailure: (task, error) => {
      failures.push({ model: task.model.key, document: task.document.index, name: task.document.name, error });
      options.onProgress?.({ type: 'failure', model: task.model.key, document: task.document.index, name: task.document.name, error });
      log(`failed ${task.model.key} ${task.document.name}: ${error}`);
    },
    onTokens: options.onProgress && ((task, worker, done, total) => options.onProgress!({
      type: 'tokens', model: task.model.key, document: task.document.index, name: task.document.name, worker, done, total,
    })),
  });

  // the corpus's numbers: every model's documents in document order
  const bins = new Map<string, CorpusBin[]>();
  const documents = new Map<string, DocumentResult[]>();
  for (const model of models) {
    const ordered = [...results.get(model.key)!.values()].sort((a, b) => a.document - b.document);
    const lastPosition = ordered.reduce((n, r) => Math.max(n, r.tokens - 1), 0);
    const modelBins = aggregateBins(ordered.map((r) => r.bins), lastPosition);
    bins.set(model.key, modelBins);
    documents.set(model.key, ordered);
    await mkdir(join(outDir, 'models', model.key), { recursive: true });
    await writeArrowAtomic(join(outDir, 'models', model.key, 'bins.arrow'), binColumns(modelBins));
    await writeArrowAtomic(join(outDir, 'models', model.key, 'documents.arrow'), documentColumns(ordered));
  }
  const complete = [...results.values()].every((r) => r.size === corpus.documents.length);
  const status = options.signal?.aborted && !complete ? 'cancelled' : failures.length > 0 || !complete ? 'failed' : 'finished';
  const manifest = manifestOf(status);
  await writeJsonAtomic(join(outDir, manifestName), manifest);
  return { outDir, manifest, bins, documents, computed: finished };
}

const resultPath = (outDir: string, modelKey: string, document: number) => join(outDir, 'results', modelKey, `${document}.json`);

function isResultFor(saved: DocumentResult, model: EvalModel, document: CorpusDocument): boolean {
  const s = saved.settings;
  return saved.sha256 === document.sha256 && saved.modelHash === model.plan.hash && s?.chunkTokens === model.settings.chunkTokens &&
    s.maxTokens === model.settings.maxTokens && s.window === model.settings.window;
}

export const bitsPerByte = (nllSum: number, bytes: number): number | null => (bytes > 0 ? nllSum / Math.LN2 / bytes : null);

function summarize(model: EvalModel, results: readonly DocumentResult[], failed: number): CorpusModelSummary {
  const ordered = [...results].sort((a, b) => a.document - b.document);
  let tokens = 0, bytes = 0, nllSum = 0;
  for (const r of ordered) {
    tokens += r.tokens;
    bytes += r.bytes;
    nllSum += r.nllSum;
  }
  const { plan } = model;
  return {
    key: model.key, dir: plan.dir, name: basename(plan.dir), family: plan.description.family, architecture: plan.description.architecture,
    hash: plan.hash, window: plan.window, documentsDone: ordered.length, documentsFailed: failed, tokens, bytes, nllSum,
    bitsPerByte: bitsPerByte(nllSum, bytes),
    files: { bins: join('models', model.key, 'bins.arrow'), documents: join('models', model.key, 'documents.arrow') },
  };
}

const binColumns = (bins: readonly CorpusBin[]) => ({
  bin_start: Int32Array.from(bins, (b) => b.start),
  bin_end: Int32Array.from(bins, (b) => b.end),
  tokens: Float64Array.from(bins, (b) => b.tokens),
  documents: Int32Array.from(bins, (b) => b.documents),
  nll_sum: Float64Array.from(bins, (b) => b.nllSum),
  nll_squared_sum: Float64Array.from(bins, (b) => b.nllSquaredSum),
  mean_nll: Float64Array.from(bins, (b) => b.meanNll),
  standard_error: Float64Array.from(bins, (b) => b.standardError),
  ci_low: Float64Array.from(bins, (b) => b.ciLow),
  ci_high: Float64Array.from(bins, (b) => b.ciHigh),
});

const documentColumns = (results: readonly DocumentResult[]) => ({
  document: Int32Array.from(results, (r) => r.document),
  name: results.map((r) => r.name),
  tokens: Float64Array.from(results, (r) => r.tokens),
  bytes: Float64Array.from(results, (r) => r.bytes),
  nll_sum: Float64Array.from(results, (r) => r.nllSum),
  bits_per_byte: Float64Array.from(results, (r) => bitsPerByte(r.nllSum, r.bytes) ?? NaN),
  seconds: Float64Array.from(results, (r) => r.seconds),
  worker: results.map((r) => r.worker),
});

async function writeArrowAtomic(path: string, columns: Parameters<typeof tableFromArrays>[0]): Promise<void> {
  await writeAtomic(path, tableToIPC(tableFromArrays(columns), 'file'));
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeAtomic(path, `${JSON.stringify(value, null, 1)}\n`);
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw workbenchError('E_FILE_WRITE', path, code === 'ENOSPC' ? 'the disk is full' : code ?? String(error));
  }
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return null; // absent or unreadable: computed again
  }
}

export interface LocalExecutorOptions {
  readonly backend: string;
  /** Documents run at once, each on its own single-stage pipeline (worker thread); default: one per core. */
  readonly jobs?: number;
}

/**
 * Documents in parallel on this machine: `jobs` slots, each one pipeline of one stage (a worker thread with its own
 * TensorFlow.js backend), taking the next task when it finishes one and loading a model when the task needs another.
 * A slot whose pipeline fails reports that task and starts a fresh pipeline for the next.
 */
export function localExecutor(options: LocalExecutorOptions): Executor {
  return async (tasks, context) => {
    let next = 0;
    const slot = async (_: unknown, slotIndex: number) => {
      const worker = `local ${slotIndex + 1}`;
      let pipeline: StagePipeline | null = null;
      let loadedKey: string | null = null;
      let model: PipelineModel | null = null;
      try {
        while (next < tasks.length && !context.signal?.aborted) {
          const task = tasks[next++];
          try {
            pipeline ??= await StagePipeline.start({ backend: options.backend, stages: 1 });
            if (loadedKey !== task.model.key || !model) {
              loadedKey = null;
              model = await pipeline.load(task.model.plan.dir, loadOptions(task.model.settings));
              loadedKey = task.model.key;
            }
            const result = await evaluateDocument({
              pipeline, model, plan: task.model.plan, document: task.document, settings: task.model.settings,
              worker: 'local', tokensFile: task.tokensFile, signal: context.signal,
              onTokens: context.onTokens && ((done, total) => context.onTokens!(task, worker, done, total)),
            });
            await context.onResult(task, result);
          } catch (error) {
            if (error instanceof DocumentCancelled) break;
            context.onFailure(task, error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message}`);
            await pipeline?.close();
            pipeline = null;
            loadedKey = null;
          }
        }
      } finally {
        await pipeline?.close();
      }
    };
    const jobs = Math.max(1, Math.min(options.jobs ?? availableParallelism(), tasks.length));
    await Promise.all(Array.from({ length: jobs }, slot));
  };
}

/** The load options of a model: the window is a Transformer setting (recurrent models have `window: null`). */
export const loadOptions = (settings: DocumentSettings): ModelOptions => (settings.window === null ? {} : { window: settings.window });

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'model';
