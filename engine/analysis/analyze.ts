/**
 * Streaming a whole book through models: chunks with carried state, so memory stays flat however long the book;
 * per-token NLL, the TTT inner loop and hidden-state evolution, appended to Arrow files as each chunk finishes.
 * A cancelled run stops between chunks and leaves a valid partial run marked `cancelled`.
 */
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BackendInfo } from '../core/backend.js';
import { WorkbenchError, workbenchError } from '../core/errors.js';
import { writeSafetensors, type FloatTensor } from '../core/safetensors.js';
import { assertTokenizerFitsModel, createTokenizer, encodeDocument, type Tokenizer } from '../core/tokenizers/index.js';
import { readBook } from '../io/book.js';
import { describeModelDir, tokenizerSpecFor } from '../io/model-dir.js';
import { type PipelineModel, type PipelineOptions, StagePipeline } from '../runtime/pipeline.js';
import type { ChunkResult, StatePart, StageSeries } from '../runtime/stage-messages.js';
import { defaultStageCount } from '../runtime/stage-plan.js';
import type { ModelDescription } from '../models/registry.js';
import { type ModelAggregator, replayRows, RunAggregator } from './aggregates.js';
import { SideBySide } from './side-by-side.js';
import { assertAttentionFits, attentionFor } from './estimate.js';
import type { NotificationParams, RunManifest, RunModel } from '../protocol.js';
import { ArrowAppender, writeFileAtomicSync } from './arrow-writer.js';
import { newRunId, writeManifest } from './run-store.js';
import { logSpacedIndices } from './metrics.js';
import { encodeCheckpoint, hashModelFiles, type ModelResume, type ResumePlan, stateFileOf } from './resume.js';

export interface AnalyzeOptions {
  readonly book: string;
  readonly models: readonly string[];
  /** Runs folder; the run gets `<runsDir>/<runId>` unless `runDir` is given. */
  readonly runsDir?: string;
  readonly runDir?: string;
  readonly runId?: string;
  readonly maxTokens?: number;
  /** Transformer attention: a window of N tokens, or `full`; absent: each Transformer's trained context. */
  readonly window?: number | 'full';
  /** Tokens per chunk: a multiple of the TTT mini-batch size keeps every chunk on the fast dual-form path. */
  readonly chunkTokens?: number;
  /** TTT inner-loop losses and hidden-state evolution (on by default). */
  readonly innerLoop?: boolean;
  /** Full W snapshots at about this many log-spaced positions. */
  readonly snapshots?: number;
  readonly backend: BackendInfo;
  /**
   * Worker threads each model is split across as a pipeline of stages (runtime/pipeline.ts); default: the cores
   * shared out among the run's models (they run side by side), at least one each. The numbers do not depend on it.
   */
  readonly stages?: number;
  /** Starts a model's workers (tests wrap it to make a worker die); default `StagePipeline.start`. */
  readonly startPipeline?: (options: PipelineOptions) => Promise<StagePipeline>;
  readonly versions?: Record<string, string>;
  readonly signal?: AbortSignal;
  /** The run's progress, every model's, after a chunk of any of them, at most every `progressIntervalMs` (200). */
  readonly onProgress?: (event: NotificationParams<'runProgress'>) => void;
  readonly progressIntervalMs?: number;
  /** Called once the run folder and its first manifest exist, with the aggregates the run keeps up to date. */
  readonly onStart?: (runId: string, runDir: string, aggregates: RunAggregator) => void;
  /**
   * Seconds between checkpoints of each model's carried state (default 60; 0: after every chunk), which `resume`
   * continues from. A checkpoint is recorded only once the model's result files hold every row up to it.
   */
  readonly checkpointSeconds?: number;
  /** Continue the run of this plan (resume.ts `planResume`) in its folder instead of starting a new one. */
  readonly resume?: ResumePlan;
}

export interface AnalyzeResult {
  readonly runDir: string;
  readonly manifest: RunManifest;
}

const defaultChunkTokens = 512;

/** Yields to the event loop, so a server on the same thread answers requests and cancels between chunks. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Stages per model when none are asked for: the cores shared out among the models that run side by side. */
export const stagesPerModel = (backend: string, models: number) => Math.max(1, Math.floor(defaultStageCount(backend) / Math.max(1, models)));

const messageOf = (error: unknown) => (error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message}`);

export async function analyzeBook(options: AnalyzeOptions): Promise<AnalyzeResult> {
  const book = await readBook(options.book);
  // Read every model's config and tokenizer first: a bad model fails the run before any work is done.
  const plans: { dir: string; description: ModelDescription; tokenizer: Tokenizer; attention: ReturnType<typeof attentionFor> }[] = [];
  const tokenizers = new Map<string, Tokenizer>();
  for (const dir of options.models) {
    const description = await describeModelDir(dir);
    const spec = await tokenizerSpecFor(dir, description.tokenizer);
    const key = typeof spec === 'string' ? spec : `hf:${dir}`;
    if (!tokenizers.has(key)) tokenizers.set(key, await createTokenizer(spec));
    const tokenizer = tokenizers.get(key)!;
    assertTokenizerFitsModel(tokenizer, description.vocabSize, join(dir, 'config.json'));
    const attention = attentionFor(description, options.window);
    // described with its window, so the architecture says how it attends
    plans.push({ dir, description: attention.window === null ? description : await describeModelDir(dir, { window: attention.window }), tokenizer, attention });
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

  for (const plan of plans) {
    const tokens = Math.min(tokensOf(plan.tokenizer).ids.length, options.maxTokens ?? Infinity);
    await assertAttentionFits(plan.dir, plan.description, tokens, plan.attention.window, options.backend.name);
  }

  const runId = options.resume?.manifest.id ?? options.runId ?? newRunId();
  const runDir = options.runDir ?? join(options.runsDir ?? 'runs', runId);
  await mkdir(runDir, { recursive: true });
  const chunkTokens = options.chunkTokens ?? defaultChunkTokens;
  const innerLoop = options.innerLoop ?? true;
  const firstTokens = tokensOf(plans[0].tokenizer).ids.length;
  const hashes = options.resume ? [] : await Promise.all(plans.map((p) => hashModelFiles(p.dir)));
  let manifest: RunManifest = options.resume ? resumedManifest(options.resume, options, runDir) : {
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
      window: p.attention.window,
      attention: p.attention.note,
      error: null,
      checkpoint: null,
      hashes: hashes[i],
    })),
    error: null,
  };
  manifest.models.forEach((m, i) => {
    if (m.tokensTotal !== Math.min(tokensOf(plans[i].tokenizer).ids.length, options.maxTokens ?? Infinity)) {
      throw workbenchError('E_RUN', runDir, `model ${m.name} now reads the book as a different number of tokens; start a new run`);
    }
  });
  await writeManifest(runDir, manifest);
  const aggregates = new RunAggregator(runId);
  for (const m of manifest.models) aggregates.model(m.key, m.tokensTotal, m.layers); // in the run's model order
  options.onStart?.(runId, runDir, aggregates);

  // one manifest write at a time, the latest state winning: models finish chunks concurrently
  let writing: Promise<void> = Promise.resolve();
  const save = () => (writing = writing.then(() => writeManifest(runDir, manifest)));
  const update = (index: number, patch: Partial<RunModel>) => {
    manifest = { ...manifest, models: manifest.models.map((m, i) => (i === index ? { ...m, ...patch } : m)) };
    return save();
  };

  const stages = options.stages ?? stagesPerModel(options.backend.name, plans.length);
  const depth = stages + 1;
  const lead = Math.max(...manifest.models.map((m) => ((depth + 1) * chunkTokens) / Math.max(1, m.tokensTotal)));
  const schedule = new SideBySide(manifest.models.map((m, i) => ({ model: m.key, total: m.tokensTotal, boundedAttention: plans[i].attention.window !== null || plans[i].description.trainedContext === null })), lead);
  // resumed models start where they stopped: side by side, none waits on another's position before its checkpoint
  manifest.models.forEach((m, i) => m.tokensDone > 0 && schedule.advance(i, m.tokensDone, m.bitsPerByte));
  let lastProgress = 0;
  const reportProgress = (force = false) => {
    if (!options.onProgress || (!force && performance.now() - lastProgress < (options.progressIntervalMs ?? progressIntervalMs))) return;
    lastProgress = performance.now();
    options.onProgress(schedule.progress(runId));
  };

  const resumeOf = (i: number) => options.resume?.models[i] ?? undefined;
  const runModel = async (i: number): Promise<void> => {
    const plan = plans[i];
    if (options.resume && !options.resume.models[i]) {
      // finished (or diverged) before: left as it is
      schedule.setStatus(i, manifest.models[i].status);
      schedule.advance(i, manifest.models[i].tokensDone, manifest.models[i].bitsPerByte);
      return;
    }
    let pipeline: StagePipeline | null = null;
    try {
      if (options.signal?.aborted) throw new Cancelled();
      pipeline = await (options.startPipeline ?? StagePipeline.start)({ backend: options.backend.name, stages });
      // the window is a Transformer setting: recurrent models carry fixed-size state and take none
      const loaded = await pipeline.load(plan.dir, plan.attention.window !== null ? { window: plan.attention.window } : {});
      schedule.setStatus(i, 'running');
      await update(i, { status: 'running', parameters: loaded.parameterCount, stages: [...loaded.ranges] });
      const { ids, bytes } = tokensOf(plan.tokenizer);
      const entry = manifest.models[i];
      const outcome = await streamModel({
        pipeline, model: loaded, ids, bytes, runDir, entry, runId, depth,
        chunkTokens, innerLoop: innerLoop && plan.description.innerLoop, snapshots: options.snapshots ?? 32, signal: options.signal,
        checkpointSeconds: options.checkpointSeconds ?? defaultCheckpointSeconds, resume: resumeOf(i),
        aggregator: aggregates.model(entry.key, entry.tokensTotal, entry.layers),
        admit: (end) => schedule.admit(i, end),
        onChunk: (done, bitsPerByte, patch) => {
          if (done > 0) {
            schedule.advance(i, done, bitsPerByte);
            reportProgress();
          }
          return patch ? update(i, patch) : Promise.resolve();
        },
      });
      schedule.setStatus(i, outcome.status ?? 'finished');
      await update(i, outcome);
    } catch (error) {
      const cancelled = error instanceof Cancelled;
      schedule.setStatus(i, cancelled ? 'cancelled' : 'failed');
      await update(i, cancelled ? { status: 'cancelled' } : { status: 'failed', error: messageOf(error), ...partialOf(error) });
    } finally {
      await pipeline?.close();
      reportProgress(true);
    }
  };
  await Promise.all(plans.map((_, i) => runModel(i)));
  await writing;

  const failed = manifest.models.filter((m) => m.status === 'failed');
  const runStatus: RunManifest['status'] = failed.length > 0 ? 'failed' : manifest.models.some((m) => m.status === 'cancelled') ? 'cancelled' : 'finished';
  manifest = {
    ...manifest,
    status: runStatus,
    finishedAt: new Date().toISOString(),
    error: failed.length === 0 ? null : manifest.models.length === 1 ? failed[0].error
      : `${failed.length} of ${manifest.models.length} models failed: ${failed.map((m) => `${m.name}: ${m.error}`).join('; ')}`,
  };
  await writeManifest(runDir, manifest);
  return { runDir, manifest };
}

/**
 * Checkpoints of a model's state at least this often, by default (TTT_WORKBENCH_CHECKPOINT_SECONDS sets another
 * default, e.g. for an end-to-end test of resume through the app).
 */
const defaultCheckpointSeconds = Number(process.env.TTT_WORKBENCH_CHECKPOINT_SECONDS ?? 60);

/** The manifest of a resumed run: its models that go on are queued again with the figures of the rows they keep. */
function resumedManifest(plan: ResumePlan, options: AnalyzeOptions, runDir: string): RunManifest {
  const m = plan.manifest;
  if (options.models.length !== m.models.length || options.models.some((dir, i) => dir !== m.models[i].dir)) throw workbenchError('E_RUN', runDir, 'resume runs the models of the run, in its order');
  return {
    ...m, status: 'running', finishedAt: null, error: null, backend: options.backend, versions: options.versions ?? m.versions,
    models: m.models.map((entry, i) => {
      const r = plan.models[i];
      if (!r) return entry;
      return {
        ...entry, status: 'queued', error: null, tokensDone: r.position, nllSum: r.nllSum, predictedTokens: r.predictedTokens, predictedBytes: r.predictedBytes,
        bitsPerByte: r.predictedBytes > 0 ? r.nllSum / Math.LN2 / r.predictedBytes : null, wallSeconds: r.wallSeconds,
        checkpoint: r.position > 0 ? { position: r.position, file: stateFileOf(entry.key) } : null,
      };
    }),
  };
}

/** Progress notifications at most this often (the last one always goes). */
const progressIntervalMs = 200;

class Cancelled extends Error {}

/** A model that failed mid-way keeps the figures of what it finished (the stream attaches them to its error). */
const partialOf = (error: unknown): Partial<RunModel> => (error instanceof StreamFailure ? error.partial : {});

class StreamFailure extends WorkbenchError {
  constructor(cause: unknown, readonly partial: Partial<RunModel>) {
    super(cause instanceof WorkbenchError ? cause.code : 'E_STAGE', messageOf(cause));
  }
}

interface StreamJob {
  readonly pipeline: StagePipeline;
  readonly model: PipelineModel;
  readonly ids: Int32Array;
  readonly bytes: Uint32Array;
  readonly runDir: string;
  readonly entry: RunModel;
  readonly runId: string;
  /** Chunks kept in flight, so that every stage has the next one waiting when it finishes the current one. */
  readonly depth: number;
  readonly chunkTokens: number;
  readonly innerLoop: boolean;
  readonly snapshots: number;
  readonly signal?: AbortSignal;
  readonly aggregator: ModelAggregator;
  /** Resolves when the model may send tokens up to `end` (models advance side by side). */
  readonly admit: (end: number) => Promise<void>;
  /** After each chunk: tokens done and bits per byte so far, and now and then the manifest's figures to save. */
  readonly onChunk: (done: number, bitsPerByte: number | null, patch: Partial<RunModel> | null) => Promise<void>;
  readonly checkpointSeconds: number;
  /** Where a resumed model goes on from. */
  readonly resume?: ModelResume;
}

/** Manifest updates at most this often. */
const manifestIntervalMs = 2000;
/**
 * Result files gather rows into large record batches (fast to read back), written at least every 2 s (tests set
 * another interval with TTT_WORKBENCH_FLUSH_MS, to see rows flushed between checkpoints without waiting).
 */
const appenderOptions = { batchRows: 65_536, flushMs: Number(process.env.TTT_WORKBENCH_FLUSH_MS ?? 2000) };

/** A chunk sent into the pipeline and not yet written: tokens [start, end), the first `predicted` of them scored. */
interface InFlight {
  readonly start: number;
  readonly end: number;
  readonly predicted: number;
  readonly answer: Promise<ChunkResult>;
  /** Every stage's state right after this chunk, when a checkpoint follows it. */
  readonly state?: Promise<StatePart[]>;
}

async function streamModel(job: StreamJob): Promise<Partial<RunModel>> {
  const { pipeline, model, ids, bytes, entry, aggregator } = job;
  const total = entry.tokensTotal;
  const dir = join(job.runDir, 'models', entry.key);
  await mkdir(dir, { recursive: true });
  const rel = (name: string) => join('models', entry.key, name);
  const trace = job.innerLoop;
  const files: Record<string, string> = { nll: rel('tokens.arrow'), throughput: rel('throughput.arrow') };
  if (trace) Object.assign(files, { innerLoop: rel('inner_loop.arrow'), hiddenState: rel('hidden_state.arrow'), snapshots: rel('snapshots.safetensors') });
  if (model.stateSummary) files.modelState = rel('model_state.arrow');
  // a checkpoint split into other stages than the pipeline's cannot be loaded: that model starts over
  const resume = job.resume && (!job.resume.state || sameSplit(job.resume.state, model.ranges)) ? job.resume : undefined;
  // a resumed model's files start with the rows up to its checkpoint; the rows beyond it go
  const writers = Object.fromEntries(Object.entries(files).filter(([, f]) => f.endsWith('.arrow'))
    .map(([k, f]) => [k, new ArrowAppender(join(job.runDir, f), { ...appenderOptions, keep: resume?.keep[k] })]));
  await job.onChunk(0, null, { files });

  const K = entry.miniBatchSize ?? 1;
  const snapshots: FloatTensor[] = [...(resume?.snapshots ?? [])];
  await pipeline.begin({
    innerLoop: trace, stateSummary: model.stateSummary, emit: 'nll',
    snapshotMiniBatches: trace ? logSpacedIndices(Math.floor(total / K), job.snapshots) : [],
  });
  if (resume?.state) await pipeline.loadState(resume.state);
  if (resume) replayRows(aggregator, Object.fromEntries(Object.entries(resume.keep).map(([k, c]) => [k, { columns: c, rows: c.position?.length ?? 0 }])));
  let nllSum = resume?.nllSum ?? 0, predictedTokens = resume?.predictedTokens ?? 0, predictedBytes = resume?.predictedBytes ?? 0;
  const started = performance.now() - (resume?.wallSeconds ?? 0) * 1000;
  let lastManifest = performance.now();
  let lastCheckpoint = performance.now();
  let status: RunModel['status'] = 'finished';
  let done = resume?.position ?? 0;
  const inFlight: InFlight[] = [];
  let sent = done;
  const figures = (): Partial<RunModel> => {
    const wallSeconds = (performance.now() - started) / 1000;
    return {
      tokensDone: done, nllSum, predictedTokens, predictedBytes, wallSeconds, tokensPerSecond: done / Math.max(wallSeconds, 1e-9),
      bitsPerByte: predictedBytes > 0 ? nllSum / Math.LN2 / predictedBytes : null,
    };
  };
  try {
    while (done < total) {
      if (job.signal?.aborted) {
        status = 'cancelled';
        break;
      }
      while (inFlight.length < job.depth && sent < total) {
        const start = sent, end = Math.min(start + job.chunkTokens, total);
        // the chunk in hand is never held back: only chunks beyond it wait for the slower models
        if (inFlight.length > 0) {
          const admitted = job.admit(end);
          if (await Promise.race([admitted.then(() => true), inFlight[0].answer.then(() => false, () => false)]) === false) break;
        } else {
          await job.admit(end);
        }
        const predicted = Math.min(end, total - 1) - start; // rows whose next token is inside the analysed range
        const answer = pipeline.submit(ids.subarray(start, end), ids.subarray(start + 1, start + 1 + predicted));
        answer.catch(() => undefined); // a failure is met where the chunk is awaited; until then it is not unhandled
        // a checkpoint's state is asked for right behind its chunk, so later chunks in flight do not change it
        let state: Promise<StatePart[]> | undefined;
        if (end < total && performance.now() - lastCheckpoint >= job.checkpointSeconds * 1000) {
          lastCheckpoint = performance.now();
          state = pipeline.saveState();
          state.catch(() => undefined);
        }
        inFlight.push({ start, end, predicted, answer, state });
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
      // a diverged model stops at its first bad chunk, keeping everything before it
      if (!Number.isFinite(chunkNll)) throw workbenchError('E_DIVERGED', entry.name, s + 1 + nll.findIndex((v) => !Number.isFinite(v)));
      writers.nll.append({ position, token, nll, bytes: tokenBytes });
      aggregator.addTokens(position, nll, tokenBytes);
      nllSum += chunkNll;
      predictedTokens += predicted;
      predictedBytes += chunkBytes;
      const firstMiniBatch = Math.floor(s / K);
      if (trace) {
        appendPerMiniBatch(answer.series, (x) => x.innerLoop, firstMiniBatch, K, () => ['init', 'before', 'after'], (layer, columns) => {
          writers.innerLoop.append(columns);
          aggregator.addInnerLoop(layer, columns.position, columns.init, columns.before, columns.after);
        });
        appendPerMiniBatch(answer.series, (x) => x.weightMetrics, firstMiniBatch, K, (x) => weightColumnNames(x.weightMetricNames?.length ?? 0), (layer, columns) => {
          writers.hiddenState.append(columns);
          const metrics = Object.fromEntries(Object.entries(columns).filter(([name]) => !perMiniBatchKeys.has(name)));
          aggregator.addHiddenState(layer, columns.position, metrics);
        });
        for (const x of answer.series) for (const p of x.snapshots) snapshots.push({ name: `layers.${p.layer}.${p.name}.mb${p.miniBatch}`, shape: p.shape, data: p.data });
      }
      if (model.stateSummary) {
        const values = concatFloat32(answer.series.map((x) => x.stateSummary ?? new Float32Array(0)));
        writers.modelState.append({ position: new Int32Array(values.length).fill(e), layer: Int32Array.from(values.keys()), value: values });
        values.forEach((v, layer) => aggregator.addModelState(layer, [e], [v]));
      }

      done = e;
      const seconds = (performance.now() - started) / 1000;
      writers.throughput.append({ position: Int32Array.of(done), tokens_per_s: Float64Array.of(done / Math.max(seconds, 1e-9)), elapsed_s: Float64Array.of(seconds) });
      const checkpoint = chunk.state ? await writeCheckpoint(job, writers, done, await chunk.state, trace ? { path: files.snapshots, snapshots, K } : null) : null;
      const saveNow = checkpoint !== null || performance.now() - lastManifest > manifestIntervalMs;
      if (saveNow) lastManifest = performance.now();
      await job.onChunk(done, predictedBytes > 0 ? nllSum / Math.LN2 / predictedBytes : null, saveNow ? { ...figures(), ...(checkpoint ? { checkpoint } : {}) } : null);
      await yieldToEventLoop();
    }
  } catch (error) {
    await closeAll(writers).catch(() => undefined);
    throw new StreamFailure(error, figures());
  }
  await closeAll(writers);
  if (trace) writeFileAtomicSync(join(job.runDir, files.snapshots), writeSafetensors(snapshots, 'F32', { format: 'pt', mini_batch_size: String(K) }));
  return { status, ...figures() };
}

/**
 * A checkpoint at `position`: the result files flushed up to it, the snapshots so far, then every stage's state
 * (each file atomic); the caller records it in the manifest only after this.
 */
async function writeCheckpoint(
  job: StreamJob, writers: Record<string, ArrowAppender>, position: number, parts: readonly StatePart[],
  snapshots: { path: string; snapshots: readonly FloatTensor[]; K: number } | null,
): Promise<NonNullable<RunModel['checkpoint']>> {
  for (const w of Object.values(writers)) w.flush();
  if (snapshots) writeFileAtomicSync(join(job.runDir, snapshots.path), writeSafetensors(snapshots.snapshots, 'F32', { format: 'pt', mini_batch_size: String(snapshots.K) }));
  const file = stateFileOf(job.entry.key);
  writeFileAtomicSync(join(job.runDir, file), encodeCheckpoint(position, parts));
  return { position, file };
}

const sameSplit = (parts: readonly StatePart[], ranges: PipelineModel['ranges']) =>
  parts.length === ranges.length && parts.every((p, i) => p.layerStart === ranges[i].start);

/** The key columns of per-mini-batch rows; the others are values. */
const perMiniBatchKeys: ReadonlySet<string> = new Set(['layer', 'mini_batch', 'position']);

/** Closes every writer, each even if another fails (one left open keeps its flushed segments, still readable). */
const closeAll = async (writers: Record<string, ArrowAppender>) => {
  const failures = [];
  for (const w of Object.values(writers)) {
    try {
      await w.close();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
};

const weightColumnNames = (columns: number) =>
  (columns === 8 ? ['W1', 'W2'] : ['W1']).flatMap((w) => ['norm', 'dist_init', 'dist_prev', 'cos_init'].map((m) => `${w}_${m}`));

const concatFloat32 = (parts: readonly Float32Array[]): Float32Array => {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};

/**
 * Rows per (layer, finished mini-batch), long format: layer, mini_batch, position (its last token), values; the
 * stages' layers in order. `rowsOf` picks one per-layer series ([n, columns] row-major) of a stage; `emit` gets
 * each layer's rows.
 */
function appendPerMiniBatch(
  series: readonly StageSeries[], rowsOf: (s: StageSeries) => readonly Float32Array[] | undefined,
  firstMiniBatch: number, K: number, namesOf: (s: StageSeries) => string[],
  emit: (layer: number, columns: Record<string, Float32Array | Int32Array>) => void,
): void {
  for (const stage of series) {
    const names = namesOf(stage);
    (rowsOf(stage) ?? []).forEach((values, local) => {
      const c = names.length, n = values.length / c;
      if (n === 0) return;
      const layer = stage.layerStart + local;
      const columns: Record<string, Float32Array | Int32Array> = {
        layer: new Int32Array(n).fill(layer),
        mini_batch: Int32Array.from({ length: n }, (_, i) => firstMiniBatch + i),
        position: Int32Array.from({ length: n }, (_, i) => (firstMiniBatch + i + 1) * K - 1),
      };
      names.forEach((name, j) => (columns[name] = Float32Array.from({ length: n }, (_, i) => values[i * c + j])));
      emit(layer, columns);
    });
  }
}

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'model';
