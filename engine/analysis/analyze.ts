/**
 * Streaming a whole book through models: chunks with carried state, so memory stays flat however long the book;
 * per-token NLL, the TTT inner loop and hidden-state evolution, appended to Arrow files as each chunk finishes.
 * A cancelled run stops between chunks and leaves a valid partial run marked `cancelled`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BackendInfo } from '../core/backend.js';
import { WorkbenchError } from '../core/errors.js';
import { writeSafetensors, type FloatTensor } from '../core/safetensors.js';
import { assertTokenizerFitsModel, createTokenizer, encodeDocument, type Tokenizer } from '../core/tokenizers/index.js';
import { readBook } from '../io/book.js';
import { describeModelDir, tokenizerSpecFor } from '../io/model-dir.js';
import { type PipelineModel, type PipelineOptions, StagePipeline } from '../runtime/pipeline.js';
import type { ChunkResult, StageSeries } from '../runtime/stage-messages.js';
import type { NotificationParams, RunManifest, RunModel } from '../protocol.js';
import { ArrowAppender } from './arrow-writer.js';
import { newRunId, writeManifest } from './run-store.js';
import { logSpacedIndices } from './metrics.js';

export interface AnalyzeOptions {
  readonly book: string;
  readonly models: readonly string[];
  /** Runs folder; the run gets `<runsDir>/<runId>` unless `runDir` is given. */
  readonly runsDir?: string;
  readonly runDir?: string;
  readonly runId?: string;
  readonly maxTokens?: number;
  readonly window?: number;
  /** Tokens per chunk: a multiple of the TTT mini-batch size keeps every chunk on the fast dual-form path. */
  readonly chunkTokens?: number;
  /** TTT inner-loop losses and hidden-state evolution (on by default). */
  readonly innerLoop?: boolean;
  /** Full W snapshots at about this many log-spaced positions. */
  readonly snapshots?: number;
  readonly backend: BackendInfo;
  /**
   * Worker threads each model is split across as a pipeline of stages (runtime/pipeline.ts); default: one per core
   * on CPU backends, one on GPU backends. The numbers do not depend on it.
   */
  readonly stages?: number;
  /** Starts the run's workers (tests wrap it to make a worker die); default `StagePipeline.start`. */
  readonly startPipeline?: (options: PipelineOptions) => Promise<StagePipeline>;
  readonly versions?: Record<string, string>;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: NotificationParams<'progress'>) => void;
  /** Called once the run folder and its first manifest exist. */
  readonly onStart?: (runId: string, runDir: string) => void;
}

export interface AnalyzeResult {
  readonly runDir: string;
  readonly manifest: RunManifest;
}

const defaultChunkTokens = 512;

/** Yields to the event loop, so a server on the same thread answers requests and cancels between chunks. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function analyzeBook(options: AnalyzeOptions): Promise<AnalyzeResult> {
  const book = await readBook(options.book);
  // Read every model's config and tokenizer first: a bad model fails the run before any work is done.
  const plans = [];
  const tokenizers = new Map<string, Tokenizer>();
  for (const dir of options.models) {
    const description = await describeModelDir(dir);
    const spec = await tokenizerSpecFor(dir, description.tokenizer);
    const key = typeof spec === 'string' ? spec : `hf:${dir}`;
    if (!tokenizers.has(key)) tokenizers.set(key, await createTokenizer(spec));
    const tokenizer = tokenizers.get(key)!;
    assertTokenizerFitsModel(tokenizer, description.vocabSize, join(dir, 'config.json'));
    plans.push({ dir, description, tokenizer });
  }
  const encoded = new Map<Tokenizer, { ids: Int32Array; bytes: Uint32Array }>();
  const tokensOf = (tokenizer: Tokenizer) => {
    let e = encoded.get(tokenizer);
    if (!e) {
      const ids = encodeDocument(tokenizer, book.text);
      e = { ids, bytes: tokenizer.tokenBytes(ids) };
      encoded.set(tokenizer, e);
    }
    return e;
  };

  const runId = options.runId ?? newRunId();
  const runDir = options.runDir ?? join(options.runsDir ?? 'runs', runId);
  await mkdir(runDir, { recursive: true });
  const chunkTokens = options.chunkTokens ?? defaultChunkTokens;
  const innerLoop = options.innerLoop ?? true;
  const firstTokens = tokensOf(plans[0].tokenizer).ids.length;
  let manifest: RunManifest = {
    format: 'ttt-workbench-run/1',
    id: runId,
    status: 'running',
    createdAt: new Date().toISOString(),
    finishedAt: null,
    book: { path: book.path, name: basename(book.path), sha256: book.sha256, bytes: book.utf8Bytes, tokens: firstTokens },
    settings: { maxTokens: options.maxTokens ?? null, chunkTokens, window: options.window ?? null, innerLoop },
    backend: options.backend,
    versions: options.versions ?? {},
    models: plans.map((p, i) => ({
      key: `${i}-${slug(basename(p.dir))}`,
      dir: p.dir,
      name: basename(p.dir),
      family: p.description.family,
      architecture: p.description.architecture,
      tokenizer: p.tokenizer.name,
      parameters: 0,
      status: 'queued',
      tokensDone: 0,
      tokensTotal: Math.min(tokensOf(p.tokenizer).ids.length, options.maxTokens ?? Infinity),
      nllSum: 0,
      predictedTokens: 0,
      predictedBytes: 0,
      bitsPerByte: null,
      wallSeconds: 0,
      tokensPerSecond: null,
      files: {},
      miniBatchSize: typeof p.description.details.mini_batch_size === 'number' ? p.description.details.mini_batch_size : null,
      layers: p.description.layers,
      window: p.description.family === 'llama' ? options.window ?? null : null,
      error: null,
    })),
    error: null,
  };
  await writeManifest(runDir, manifest);
  options.onStart?.(runId, runDir);

  const update = async (index: number, patch: Partial<RunModel>) => {
    manifest = { ...manifest, models: manifest.models.map((m, i) => (i === index ? { ...m, ...patch } : m)) };
    await writeManifest(runDir, manifest);
  };

  let runStatus: RunManifest['status'] = 'finished';
  // one set of workers for the whole run: the models take turns, each spread over all of them (runtime/pipeline.ts)
  let pipeline: StagePipeline | null = null;
  try {
    for (let i = 0; i < plans.length; i++) {
      if (options.signal?.aborted) {
        await update(i, { status: 'cancelled' });
        runStatus = 'cancelled';
        continue;
      }
      const plan = plans[i];
      try {
        pipeline ??= await (options.startPipeline ?? StagePipeline.start)({ backend: options.backend.name, stages: options.stages });
        // the window is a Transformer setting: recurrent models carry fixed-size state and take none
        const loaded = await pipeline.load(plan.dir, plan.description.family === 'llama' ? { window: options.window } : {});
        await update(i, { status: 'running', parameters: loaded.parameterCount, stages: [...loaded.ranges] });
        const { ids, bytes } = tokensOf(plan.tokenizer);
        const outcome = await streamModel({
          pipeline, model: loaded, ids, bytes, runDir, entry: manifest.models[i], index: i, count: plans.length, runId,
          chunkTokens, innerLoop, snapshots: options.snapshots ?? 32, signal: options.signal, onProgress: options.onProgress,
          onChunk: (patch) => update(i, patch),
        });
        await update(i, outcome);
        if (outcome.status === 'cancelled') runStatus = 'cancelled';
      } catch (error) {
        const message = error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message}`;
        await update(i, { status: 'failed', error: message });
        runStatus = 'failed';
        manifest = { ...manifest, error: message };
        break;
      }
    }
  } finally {
    await pipeline?.close();
  }
  manifest = {
    ...manifest,
    status: runStatus,
    finishedAt: new Date().toISOString(),
    models: manifest.models.map((m) => (m.status === 'queued' ? { ...m, status: runStatus === 'failed' ? 'cancelled' as const : m.status } : m)),
  };
  await writeManifest(runDir, manifest);
  return { runDir, manifest };
}

interface StreamJob {
  readonly pipeline: StagePipeline;
  readonly model: PipelineModel;
  readonly ids: Int32Array;
  readonly bytes: Uint32Array;
  readonly runDir: string;
  readonly entry: RunModel;
  readonly index: number;
  readonly count: number;
  readonly runId: string;
  readonly chunkTokens: number;
  readonly innerLoop: boolean;
  readonly snapshots: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: AnalyzeOptions['onProgress'];
  readonly onChunk: (patch: Partial<RunModel>) => Promise<void>;
}

/** Manifest updates at most this often. */
const manifestIntervalMs = 2000;
/** Result files gather rows into large record batches (fast to read back), written at least every 2 s. */
const appenderOptions = { batchRows: 65_536, flushMs: 2000 };

/** A chunk sent into the pipeline and not yet written: tokens [start, end), the first `predicted` of them scored. */
interface InFlight {
  readonly start: number;
  readonly end: number;
  readonly predicted: number;
  readonly answer: Promise<ChunkResult>;
}

async function streamModel(job: StreamJob): Promise<Partial<RunModel>> {
  const { pipeline, model, ids, bytes, entry } = job;
  const total = entry.tokensTotal;
  const dir = join(job.runDir, 'models', entry.key);
  await mkdir(dir, { recursive: true });
  const rel = (name: string) => join('models', entry.key, name);
  const trace = (model.family === 'ttt' || model.family === 'delta') && job.innerLoop;
  const files: Record<string, string> = { nll: rel('tokens.arrow'), throughput: rel('throughput.arrow') };
  if (trace) Object.assign(files, { innerLoop: rel('inner_loop.arrow'), hiddenState: rel('hidden_state.arrow'), snapshots: rel('snapshots.safetensors') });
  if (model.stateSummary) files.modelState = rel('model_state.arrow');
  const writers = Object.fromEntries(Object.entries(files).filter(([, f]) => f.endsWith('.arrow')).map(([k, f]) => [k, new ArrowAppender(join(job.runDir, f), appenderOptions)]));
  await job.onChunk({ files });

  const K = entry.miniBatchSize ?? 1;
  const snapshots: FloatTensor[] = [];
  await pipeline.begin({
    innerLoop: trace, stateSummary: model.stateSummary, emit: 'nll',
    snapshotMiniBatches: trace ? logSpacedIndices(Math.floor(total / K), job.snapshots) : [],
  });
  let nllSum = 0, predictedTokens = 0, predictedBytes = 0;
  const started = performance.now();
  let lastManifest = started;
  let status: RunModel['status'] = 'finished';
  let done = 0;
  // enough chunks in flight that every stage has the next one waiting when it finishes the current one
  const depth = model.ranges.length + 1;
  const inFlight: InFlight[] = [];
  let sent = 0;
  try {
    while (done < total) {
      if (job.signal?.aborted) {
        status = 'cancelled';
        break;
      }
      while (inFlight.length < depth && sent < total) {
        const start = sent, end = Math.min(start + job.chunkTokens, total);
        const predicted = Math.min(end, total - 1) - start; // rows whose next token is inside the analysed range
        inFlight.push({ start, end, predicted, answer: pipeline.submit(ids.subarray(start, end), ids.subarray(start + 1, start + 1 + predicted)) });
        sent = end;
      }
      const chunk = inFlight.shift()!;
      const answer = await chunk.answer;
      if (job.signal?.aborted) {
        status = 'cancelled';
        break;
      }
      const { start: s, end: e, predicted } = chunk;
      const nll = answer.nll!;
      let chunkNll = 0, chunkBytes = 0;
      const position = new Int32Array(predicted), token = new Int32Array(predicted), tokenBytes = new Int32Array(predicted);
      for (let i = 0; i < predicted; i++) {
        position[i] = s + 1 + i;
        token[i] = ids[s + 1 + i];
        tokenBytes[i] = bytes[s + 1 + i];
        chunkNll += nll[i];
        chunkBytes += bytes[s + 1 + i];
      }
      writers.nll.append({ position, token, nll, bytes: tokenBytes });
      nllSum += chunkNll;
      predictedTokens += predicted;
      predictedBytes += chunkBytes;
      const firstMiniBatch = Math.floor(s / K);
      if (trace) {
        appendPerMiniBatch(writers.innerLoop, answer.series, (x) => x.innerLoop, firstMiniBatch, K, () => ['init', 'before', 'after']);
        appendPerMiniBatch(writers.hiddenState, answer.series, (x) => x.weightMetrics, firstMiniBatch, K, (x) => weightColumnNames(x.weightMetricNames?.length ?? 0));
        for (const x of answer.series) for (const p of x.snapshots) snapshots.push({ name: `layers.${p.layer}.${p.name}.mb${p.miniBatch}`, shape: p.shape, data: p.data });
      }
      if (model.stateSummary) {
        const values = concatFloat32(answer.series.map((x) => x.stateSummary ?? new Float32Array(0)));
        writers.modelState.append({ position: new Int32Array(values.length).fill(e), layer: Int32Array.from(values.keys()), value: values });
      }

      done = e;
      const seconds = (performance.now() - started) / 1000;
      const rate = done / Math.max(seconds, 1e-9);
      writers.throughput.append({ position: Int32Array.of(done), tokens_per_s: Float64Array.of(rate), elapsed_s: Float64Array.of(seconds) });
      job.onProgress?.({
        runId: job.runId, model: entry.key, modelIndex: job.index, models: job.count, tokensDone: done, tokensTotal: total,
        tokensPerSecond: rate, etaSeconds: (total - done) / rate,
      });
      if (performance.now() - lastManifest > manifestIntervalMs) {
        lastManifest = performance.now();
        await job.onChunk({ tokensDone: done, nllSum, predictedTokens, predictedBytes, wallSeconds: seconds, tokensPerSecond: rate });
      }
      await yieldToEventLoop();
    }
  } finally {
    for (const w of Object.values(writers)) await w.close();
  }
  if (trace) await writeFile(join(job.runDir, files.snapshots), writeSafetensors(snapshots, 'F32', { format: 'pt', mini_batch_size: String(K) }));
  const wallSeconds = (performance.now() - started) / 1000;
  return {
    status,
    tokensDone: done,
    nllSum,
    predictedTokens,
    predictedBytes,
    bitsPerByte: predictedBytes > 0 ? nllSum / Math.LN2 / predictedBytes : null,
    wallSeconds,
    tokensPerSecond: done / Math.max(wallSeconds, 1e-9),
  };
}

const weightColumnNames = (columns: number) =>
  (columns === 8 ? ['W1', 'W2'] : ['W1']).flatMap((w) => ['norm', 'dist_init', 'dist_prev', 'cos_init'].map((m) => `${w}_${m}`));

const concatFloat32 = (parts: readonly Float32Array[]): Float32Array => {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};

/**
 * Rows per (layer, finished mini-batch), long format: layer, mini_batch, position (its last token), values; the
 * stages' layers in order. `rowsOf` picks one per-layer series ([n, columns] row-major) of a stage.
 */
function appendPerMiniBatch(
  writer: ArrowAppender, series: readonly StageSeries[], rowsOf: (s: StageSeries) => readonly Float32Array[] | undefined,
  firstMiniBatch: number, K: number, namesOf: (s: StageSeries) => string[],
): void {
  for (const stage of series) {
    const names = namesOf(stage);
    (rowsOf(stage) ?? []).forEach((values, local) => {
      const c = names.length, n = values.length / c;
      if (n === 0) return;
      const columns: Record<string, Float32Array | Int32Array> = {
        layer: new Int32Array(n).fill(stage.layerStart + local),
        mini_batch: Int32Array.from({ length: n }, (_, i) => firstMiniBatch + i),
        position: Int32Array.from({ length: n }, (_, i) => (firstMiniBatch + i + 1) * K - 1),
      };
      names.forEach((name, j) => (columns[name] = Float32Array.from({ length: n }, (_, i) => values[i * c + j])));
      writer.append(columns);
    });
  }
}

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'model';
