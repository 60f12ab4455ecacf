/**
 * A model as a pipeline of worker threads (DESIGN.md "Execution"), seen from the engine's main thread, which only
 * moves data: token ids go into the first stage, hidden states flow stage to stage over direct MessagePorts, and
 * the last stage answers each chunk with its per-token results. Several chunks may be in flight, so while stage 2
 * works on chunk n, stage 1 already works on chunk n + 1.
 *
 * The workers outlive one model: a run that compares several models loads them one after another into the same
 * workers, each model spread over all of them (rather than one model per core side by side), so each model's
 * results arrive as early as possible and only one model's weights are in memory at a time.
 *
 * Failure is all-or-nothing: an error reported by a stage, an uncaught exception or an exit inside a worker
 * rejects every pending call with one line naming the stage, and ends the other workers. `close()` ends them all.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import type { BackendInfo } from '../core/backend.js';
import { type ErrorCode, WorkbenchError, workbenchError } from '../core/errors.js';
import type { ModelOptions } from '../models/registry.js';
import type { LayerRange } from '../models/stage.js';
import type { ChunkResult, DocumentSettings, FromStage, StatePart, ToStage } from './stage-messages.js';
import { defaultStageCount, planStages } from './stage-plan.js';

export interface PipelineOptions {
  /** Backend every worker selects (engine/core/backend.ts), by name. */
  readonly backend: string;
  /** Worker threads, i.e. the most stages a model is split into; default: `defaultStageCount(backend)`. */
  readonly stages?: number;
}

export interface PipelineModel {
  readonly family: string;
  readonly vocabSize: number;
  readonly parameterCount: number;
  /** The model reports a per-layer state summary after each chunk (Mamba: SSM-state norm; Transformer: KV bytes). */
  readonly stateSummary: boolean;
  /** The layers each stage holds, first stage first. */
  readonly ranges: readonly LayerRange[];
}

type Waiter = { resolve: (message: FromStage) => void; reject: (error: Error) => void };

/** Compiled (dist/engine, scripts/build-engine.mjs), a worker starts from stage-worker.js; from sources, through tsx. */
const workerEntry = import.meta.url.endsWith('.js') ? new URL('./stage-worker.js', import.meta.url) : new URL('./stage-worker-entry.mjs', import.meta.url);

export class StagePipeline {
  private failure: Error | null = null;
  private closing = false;
  /** Per worker, the replies its control messages are waiting for, in order. */
  private readonly replies: Waiter[][];
  private readonly chunks = new Map<number, Waiter>();
  /** Answers not yet settled, for `drain`. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private nextSeq = 0;
  private model: PipelineModel | null = null;
  private backendInfo: BackendInfo | null = null;

  private constructor(private readonly workers: readonly Worker[]) {
    this.replies = workers.map(() => []);
    workers.forEach((worker, index) => {
      worker.on('message', (message: FromStage) => this.onMessage(index, message));
      worker.on('error', (error: Error) => this.fail(this.stageError(index, `failed: ${firstLine(error.message)}`)));
      worker.on('messageerror', (error: Error) => this.fail(this.stageError(index, `sent an unreadable message (${firstLine(error.message)})`)));
      worker.on('exit', (code: number) => {
        if (!this.closing) this.fail(this.stageError(index, `stopped (its thread exited with code ${code})`));
      });
    });
  }

  /** Starts the workers, each selecting `backend`, and links each to the next. */
  static async start(options: PipelineOptions): Promise<StagePipeline> {
    const count = options.stages ?? defaultStageCount(options.backend);
    if (!Number.isInteger(count) || count < 1) throw workbenchError('E_USAGE', `stages must be a whole number ≥ 1, got ${count}`);
    const pipeline = new StagePipeline(Array.from({ length: count }, () => new Worker(workerEntry)));
    try {
      const ready = await Promise.all(pipeline.workers.map((_, index) => pipeline.request(index, { type: 'init', backend: options.backend, index })));
      pipeline.backendInfo = ready[0].type === 'ready' ? ready[0].backend : null;
      const channels = Array.from({ length: count - 1 }, () => new MessageChannel());
      await Promise.all(pipeline.workers.map((_, index) => {
        const next = index < count - 1 ? channels[index].port1 : null;
        const previous = index > 0 ? channels[index - 1].port2 : null;
        return pipeline.request(index, { type: 'link', next, previous }, [next, previous].filter((p): p is MessagePort => p !== null));
      }));
    } catch (error) {
      await pipeline.close();
      throw error;
    }
    return pipeline;
  }

  get size(): number {
    return this.workers.length;
  }

  /** What the workers' backend reported (they all select the same one). */
  get backend(): BackendInfo | null {
    return this.backendInfo;
  }

  /** Loads a model folder split into stages by cost (or into `ranges`), replacing the model loaded before. */
  async load(dir: string, options: ModelOptions = {}, ranges?: readonly LayerRange[]): Promise<PipelineModel> {
    const plan = ranges ?? (await planStages(dir, this.workers.length, options));
    if (plan.length > this.workers.length) throw workbenchError('E_USAGE', `${plan.length} stages need as many workers; this pipeline has ${this.workers.length}`);
    await this.unload();
    const loaded = await Promise.all(plan.map((range, index) => this.request(index, { type: 'load', dir, window: options.window, range })));
    const first = loaded[0];
    if (first.type !== 'loaded') throw new Error('pipeline: a stage answered load with something else');
    const parameterCount = loaded.reduce((n, m) => n + (m.type === 'loaded' ? m.parameterCount : 0), 0);
    this.model = { family: first.family, vocabSize: first.vocabSize, parameterCount, stateSummary: first.stateSummary, ranges: plan };
    return this.model;
  }

  /** Starts a document: every stage's carried state back to the beginning. Waits for chunks still in flight. */
  async begin(settings: DocumentSettings): Promise<void> {
    const model = this.loaded();
    await this.drain();
    await Promise.all(model.ranges.map((_, index) => this.request(index, { type: 'begin', settings })));
  }

  /**
   * Sends the next chunk of the document into the first stage; resolves with the last stage's answer. Chunks are
   * answered in the order they were submitted; call again before the answer arrives to keep every stage busy.
   */
  submit(ids: Int32Array, targets: Int32Array): Promise<ChunkResult> {
    this.loaded();
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.nextSeq++;
    const promise = new Promise<ChunkResult>((resolve, reject) => {
      this.chunks.set(seq, { resolve: (m) => resolve(m as ChunkResult), reject });
    });
    // handled here too: after a failure the caller awaits only the first of several rejected answers
    this.inFlight.add(promise);
    promise.catch(() => undefined).finally(() => this.inFlight.delete(promise));
    // copies: the caller's arrays are often views of a whole book, and transferring would take the book away
    const message: ToStage = { type: 'chunk', seq, T: ids.length, ids: ids.slice(), hidden: null, targets: targets.slice(), series: [] };
    this.workers[0].postMessage(message, [message.ids!.buffer as ArrayBuffer]);
    return promise;
  }

  /**
   * Every stage's carried state right after the chunks submitted so far (models/state-io.ts parts, first stage
   * first). Travels the pipeline behind those chunks, so chunks submitted later do not change it.
   */
  saveState(): Promise<StatePart[]> {
    this.loaded();
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.nextSeq++;
    const promise = new Promise<StatePart[]>((resolve, reject) => {
      this.chunks.set(seq, { resolve: (m) => resolve(m.type === 'state' ? [...m.parts] : []), reject });
    });
    this.inFlight.add(promise);
    promise.catch(() => undefined).finally(() => this.inFlight.delete(promise));
    this.workers[0].postMessage({ type: 'saveState', seq, parts: [] } satisfies ToStage);
    return promise;
  }

  /** Gives each stage the state `saveState` returned for it (after `begin`, before the first chunk). */
  async loadState(parts: readonly StatePart[]): Promise<void> {
    const model = this.loaded();
    if (parts.length !== model.ranges.length || parts.some((p, i) => p.layerStart !== model.ranges[i].start)) {
      throw workbenchError('E_INPUT', 'checkpoint', `its state is split at layers ${parts.map((p) => p.layerStart).join(', ')}, the pipeline at ${model.ranges.map((r) => r.start).join(', ')}`);
    }
    // copied, not transferred: tensors read from one file may share a buffer
    await Promise.all(parts.map((part, index) => this.request(index, { type: 'loadState', part })));
  }

  /** Frees the loaded model's weights and state in every stage. */
  async unload(): Promise<void> {
    if (!this.model) return;
    const { ranges } = this.model;
    this.model = null;
    await this.drain();
    await Promise.all(ranges.map((_, index) => this.request(index, { type: 'unload' })));
  }

  /** Ends every worker (idempotent). Pending calls reject. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.rejectAll(this.failure ?? new Error('the pipeline was closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** Tests only: makes stage `index` die as a crash would. */
  injectFault(index: number, kind: 'exit' | 'throw'): void {
    this.workers[index].postMessage({ type: 'fault', kind } satisfies ToStage);
  }

  private loaded(): PipelineModel {
    if (!this.model) throw new Error('pipeline: no model is loaded');
    return this.model;
  }

  /** Resolves once every submitted chunk has been answered (or has failed). */
  private async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private request(index: number, message: ToStage, transfer: MessagePort[] = []): Promise<FromStage> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.replies[index].push({ resolve, reject });
      this.workers[index].postMessage(message, transfer);
    });
  }

  private onMessage(index: number, message: FromStage): void {
    if (message.type === 'error') {
      this.fail(message.code ? new WorkbenchError(message.code as ErrorCode, message.message) : this.stageError(index, message.message));
      return;
    }
    if (message.type === 'result' || message.type === 'state') {
      const waiter = this.chunks.get(message.seq);
      this.chunks.delete(message.seq);
      waiter?.resolve(message);
      return;
    }
    this.replies[index].shift()?.resolve(message);
  }

  private stageError(index: number, reason: string): WorkbenchError {
    const range = this.model?.ranges[index];
    const layers = range ? ` (layers ${range.start}–${range.end - 1})` : '';
    return workbenchError('E_STAGE', `model stage ${index + 1} of ${this.model?.ranges.length ?? this.workers.length}${layers}`, reason);
  }

  /** The first failure wins: every pending call rejects with it, and the workers are ended. */
  private fail(error: Error): void {
    if (this.failure || this.closing) return;
    this.failure = error;
    this.rejectAll(error);
    void this.close();
  }

  private rejectAll(error: Error): void {
    for (const waiters of this.replies) for (const w of waiters.splice(0)) w.reject(error);
    const pending = [...this.chunks.values()];
    this.chunks.clear();
    for (const w of pending) w.reject(error);
  }
}

const firstLine = (text: string) => text.split('\n')[0];
