/**
 * Corpus evaluation across machines on BullMQ over Redis. The coordinator (`eval --redis`) enqueues one job per
 * (document, model) carrying the document's text, the model's path and content hash and the settings; workers
 * (`ttt-workbench worker`) on any number of machines take jobs, run them as `eval` does locally
 * (corpus/document.ts) and return the document's binned sums, which the coordinator saves as they arrive.
 *
 * Failure handling is BullMQ's: a worker holds a lock on its job and renews it while it runs; a worker that dies
 * stops renewing, and once the lock expires another worker's stalled-job check puts the job back in the queue.
 * A job that throws is retried up to `attempts` times, then reported with its error. A worker refuses a model
 * whose content hash differs from the coordinator's (an `UnrecoverableError`: no retry).
 */
import { hostname } from 'node:os';
import { type ConnectionOptions, type Job, Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { WorkbenchError, workbenchError } from '../core/errors.js';
import { type PipelineModel, StagePipeline } from '../runtime/pipeline.js';
import { type DocumentResult, type DocumentSettings, evaluateDocument, type ModelPlan, modelHash, planModel } from './document.js';
import { type Executor, loadOptions } from './eval.js';
import { endRedisClient, redisClient } from './redis-client.js';

export const defaultQueue = 'ttt-workbench-eval';

/** What a job carries: everything a worker needs but the model, which it reads from `model.dir`. */
export interface DocumentJobData {
  readonly document: { readonly index: number; readonly name: string; readonly text: string; readonly sha256: string };
  readonly model: { readonly key: string; readonly dir: string; readonly hash: string };
  readonly settings: DocumentSettings;
  readonly tokensFile: string | null;
}

/** Refuses, in one line, a URL that is not `redis://` or `rediss://` (TLS). */
export function checkRedisUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw workbenchError('E_OPTION', '--redis', redactUrl(url), 'not a URL (redis://[user:password@]host[:port][/db] or rediss:// for TLS)');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw workbenchError('E_OPTION', '--redis', redactUrl(url), `the scheme must be redis:// or rediss:// (TLS), not ${parsed.protocol}//`);
  }
}

/**
 * A BullMQ connection to a `redis://` or `rediss://` (TLS) URL, with user and password where given
 * (`redis://:password@host:6379/0`), and the way to close it (BullMQ leaves a client it was given open).
 */
export function redisConnection(url: string): { connection: ConnectionOptions; end: () => void } {
  checkRedisUrl(url);
  const client = redisClient(url);
  return { connection: client as ConnectionOptions, end: () => endRedisClient(client) };
}

/** The URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

export interface RedisExecutorOptions {
  readonly url: string;
  readonly queue?: string;
  /** Tries per job before it is reported as failed (default 3). */
  readonly attempts?: number;
}

/** The coordinator's side: enqueue every task, then save each result as its job completes. */
export function redisExecutor(options: RedisExecutorOptions): Executor {
  return async (tasks, context) => {
    if (tasks.length === 0) return;
    const queueConnection = redisConnection(options.url), eventsConnection = redisConnection(options.url);
    const name = options.queue ?? defaultQueue;
    const queue = new Queue<DocumentJobData, DocumentResult>(name, { connection: queueConnection.connection });
    const events = new QueueEvents(name, { connection: eventsConnection.connection });
    // one pending wait per job: many listeners are expected here
    queue.setMaxListeners(0);
    events.setMaxListeners(0);
    const aborted = new Promise<'aborted'>((resolve) => {
      if (context.signal?.aborted) resolve('aborted');
      context.signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    try {
      await Promise.race([Promise.all([queue.waitUntilReady(), events.waitUntilReady()]), aborted, unreachable(options.url)]);
      if (context.signal?.aborted) return;
      // the same job id when a run is resumed: a job already queued, running or finished is not added twice
      const jobs = await queue.addBulk(tasks.map((task) => ({
        name: 'document',
        data: {
          document: { index: task.document.index, name: task.document.name, text: task.document.text, sha256: task.document.sha256 },
          model: { key: task.model.key, dir: task.model.plan.dir, hash: task.model.plan.hash },
          settings: task.model.settings,
          tokensFile: task.tokensFile ?? null,
        },
        opts: { jobId: task.id, attempts: options.attempts ?? 3, removeOnComplete: { age: 24 * 3600 }, removeOnFail: { age: 24 * 3600 } },
      })));
      await Promise.all(jobs.map(async (job, i) => {
        const task = tasks[i];
        let outcome: DocumentResult | 'aborted';
        try {
          outcome = await Promise.race([job.waitUntilFinished(events) as Promise<DocumentResult>, aborted]);
        } catch (error) {
          context.onFailure(task, firstLine((error as Error).message));
          return;
        }
        if (outcome !== 'aborted') await context.onResult(task, outcome);
      }));
    } finally {
      await Promise.allSettled([events.close(), queue.close()]);
      queueConnection.end();
      eventsConnection.end();
    }
  };
}

/** Rejects in one line when Redis cannot be reached for a while (BullMQ itself retries forever). */
function unreachable(url: string, ms = 15_000): Promise<never> {
  return new Promise((_, reject) => {
    setTimeout(() => reject(workbenchError('E_OPTION', '--redis', redactUrl(url), `no answer from Redis within ${ms / 1000} s`)), ms).unref();
  });
}

export interface WorkerOptions {
  readonly url: string;
  readonly queue?: string;
  readonly backend: string;
  /** Jobs at once, each on its own single-stage pipeline (default 1). */
  readonly concurrency?: number;
  /**
   * How long a job's lock lasts without renewal, and how often stalled jobs are looked for (ms): a dead
   * worker's job is back in the queue within about twice this (BullMQ's default 30 s).
   */
  readonly lockMs?: number;
  readonly log?: (line: string) => void;
}

export interface RunningWorker {
  /** Stops taking jobs, waits for those running, ends the pipelines. */
  close(): Promise<void>;
  /** This worker's name in results: `host:pid`. */
  readonly name: string;
}

interface Slot {
  busy: boolean;
  pipeline: StagePipeline | null;
  loadedKey: string | null;
  model: PipelineModel | null;
}

/** A worker: takes jobs from the queue until closed. */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const log = options.log ?? (() => undefined);
  const name = `${hostname()}:${process.pid}`;
  const concurrency = options.concurrency ?? 1;
  const slots: Slot[] = Array.from({ length: concurrency }, () => ({ busy: false, pipeline: null, loadedKey: null, model: null }));
  const hashes = new Map<string, Promise<string>>();
  const plans = new Map<string, Promise<ModelPlan>>();

  const processJob = async (job: Job<DocumentJobData, DocumentResult>): Promise<DocumentResult> => {
    const { document, model, settings } = job.data;
    const slot = slots.find((s) => !s.busy)!;
    slot.busy = true;
    log(`started job ${job.id}: ${model.key} ${document.name} (attempt ${job.attemptsMade + 1})`);
    try {
      let hash = hashes.get(model.dir);
      if (!hash) hashes.set(model.dir, (hash = modelHash(model.dir)));
      const found = await hash.catch((error: Error) => {
        hashes.delete(model.dir);
        throw new UnrecoverableError(firstLine(error.message));
      });
      if (found !== model.hash) {
        throw new UnrecoverableError(`${model.dir}: the model here (content hash ${found.slice(0, 12)}) differs from the coordinator's (${model.hash.slice(0, 12)}); copy the same model to this machine`);
      }
      const planKey = `${model.dir}\n${settings.window}`;
      let plan = plans.get(planKey);
      if (!plan) plans.set(planKey, (plan = planModel(model.dir, settings.window ?? 'full')));
      const ready = await plan;
      slot.pipeline ??= await StagePipeline.start({ backend: options.backend, stages: 1 });
      if (slot.loadedKey !== planKey || !slot.model) {
        slot.loadedKey = null;
        slot.model = await slot.pipeline.load(model.dir, loadOptions(settings));
        slot.loadedKey = planKey;
      }
      const result = await evaluateDocument({
        pipeline: slot.pipeline, model: slot.model, plan: ready, document, settings, worker: name, tokensFile: job.data.tokensFile ?? undefined,
      });
      log(`finished job ${job.id}: ${result.tokens} tokens in ${result.seconds.toFixed(2)} s`);
      return result;
    } catch (error) {
      const message = error instanceof WorkbenchError || error instanceof UnrecoverableError ? error.message : `internal error: ${(error as Error).message}`;
      log(`failed job ${job.id}: ${firstLine(message)}`);
      if (!(error instanceof UnrecoverableError)) {
        // a failed pipeline is ended: the next job starts a fresh one
        await slot.pipeline?.close();
        slot.pipeline = null;
        slot.loadedKey = null;
        slot.model = null;
      }
      throw error instanceof UnrecoverableError ? error : new Error(firstLine(message));
    } finally {
      slot.busy = false;
    }
  };

  const lockMs = options.lockMs ?? 30_000;
  const workerConnection = redisConnection(options.url);
  const worker = new Worker<DocumentJobData, DocumentResult>(options.queue ?? defaultQueue, processJob, {
    connection: workerConnection.connection, concurrency, lockDuration: lockMs, stalledInterval: lockMs, maxStalledCount: 2,
  });
  worker.on('error', (error) => log(`redis: ${firstLine(error.message)}`));
  await Promise.race([worker.waitUntilReady(), unreachable(options.url)]);
  log(`worker ${name} on ${redactUrl(options.url)} queue ${options.queue ?? defaultQueue}: ${concurrency} at once, backend ${options.backend}`);
  return {
    name,
    async close() {
      await worker.close();
      workerConnection.end();
      await Promise.all(slots.map((s) => s.pipeline?.close()));
    },
  };
}

const firstLine = (text: string) => text.split('\n')[0];
