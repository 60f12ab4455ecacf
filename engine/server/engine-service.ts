/**
 * The engine's request handlers: what the UI can ask (protocol.ts `methods`) answered from disk and the job queue.
 * Models and books the user added are remembered in `<dataDir>/library.json`; runs live in `<dataDir>/runs`.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { type BackendInfo, describeBackend, probeBackends } from '../core/backend.js';
import { workbenchError, WorkbenchError } from '../core/errors.js';
import { createTokenizer, encodeDocument } from '../core/tokenizers/index.js';
import { analyzeBook } from '../analysis/analyze.js';
import { aggregatesFromRun, type RunAggregator } from '../analysis/aggregates.js';
import { LruCache } from '../analysis/column-cache.js';
import { estimateAnalysis } from '../analysis/estimate.js';
import { compareRuns } from '../analysis/comparison.js';
import { readSnapshots } from '../analysis/snapshots.js';
import { readTokens } from '../analysis/tokens.js';
import { listProbeDirs, probeSettings, probeView, probeWithLiveness, readProbeManifest, summarizeProbe } from '../analysis/probe-views.js';
import { listRunDirs, lockRunDir, newRunId, readManifest, readSeries, summarize, withLiveness } from '../analysis/run-store.js';
import { planResume, type ResumePlan } from '../analysis/resume.js';
import { preview, readBook } from '../io/book.js';
import { checkpointSize, tiedHeadOf } from '../io/checkpoint.js';
import { describeModel } from '../io/load-model.js';
import type { BookInfo, MethodParams, ModelInfo, NotificationName, NotificationParams, ProbeParams, ProbeSummary, RunAggregates, RunSummary } from '../protocol.js';
import { runProbe } from '../probes/run.js';
import { JobQueue } from '../runtime/job-queue.js';
import { defaultStageCount } from '../runtime/stage-plan.js';
import { trainModel } from '../train/train.js';
import { CorpusService } from './corpus-methods.js';
import type { HandlerContext, Handlers } from './rpc-server.js';
import { defaultUploadLimits, receiveUpload, type UploadLimits } from './uploads.js';

export interface EngineServiceOptions {
  readonly dataDir: string;
  /** Model folders always listed (the shipped demo models). */
  readonly builtinModels?: readonly string[];
  /** Books always listed (the shipped sample book). */
  readonly builtinBooks?: readonly string[];
  readonly backend: BackendInfo;
  readonly versions?: Record<string, string>;
  /** Web mode's upload limits (`uploadFile`); default 64 MiB per book, 4 GiB per model file. */
  readonly uploadLimits?: Partial<UploadLimits>;
  /** Seconds between state checkpoints of an analysis run, which `resumeRun` continues from (default: analyze.ts's). */
  readonly checkpointSeconds?: number;
}

interface Library {
  models: string[];
  books: string[];
}

/** Progress notifications of training at most this often; the last one is always sent. */
const progressIntervalMs = 100;
/** A live run's chart updates at most this often: a few small messages a second. */
const liveDataIntervalMs = 500;

export class EngineService {
  readonly queue = new JobQueue();
  readonly runsDir: string;
  /** Probe runs (engine/probes) live apart from analysis runs: their manifests differ. */
  readonly probesDir: string;
  private readonly libraryPath: string;
  /** Probes accepted but not started (their folder does not exist yet). */
  private readonly queuedProbes = new Map<string, ProbeSummary>();
  private readonly subscribers = new Set<HandlerContext['notify']>();
  private readonly queued = new Map<string, RunSummary>();
  /** The aggregates of runs streaming now, which their views are sent as they change. */
  private readonly live = new Map<string, RunAggregator>();
  /** Aggregates of stored runs, rebuilt from their files when those change. */
  private readonly storedAggregates = new LruCache<{ version: string; value: Promise<RunAggregates> }>(8);

  /** Corpus evaluations (`<dataDir>/corpus`), queued with the other runs. */
  private readonly corpus: CorpusService;

  constructor(private readonly options: EngineServiceOptions) {
    this.runsDir = join(options.dataDir, 'runs');
    this.probesDir = join(options.dataDir, 'probes');
    this.libraryPath = join(options.dataDir, 'library.json');
    this.corpus = new CorpusService({
      dataDir: options.dataDir, queue: this.queue, backend: options.backend, versions: options.versions, broadcast: (method, params) => this.broadcast(method, params),
    });
  }

  /** Every connection's notify function; notifications go to all connected clients. */
  subscribe(notify: HandlerContext['notify']): () => void {
    this.subscribers.add(notify);
    return () => this.subscribers.delete(notify);
  }

  private broadcast<N extends NotificationName>(method: N, params: NotificationParams<N>): void {
    for (const notify of this.subscribers) notify(method, params);
  }

  private async library(): Promise<Library> {
    try {
      const json = JSON.parse(await readFile(this.libraryPath, 'utf8')) as Partial<Library>;
      return { models: json.models ?? [], books: json.books ?? [] };
    } catch {
      return { models: [], books: [] };
    }
  }

  private async remember(kind: keyof Library, path: string): Promise<void> {
    const lib = await this.library();
    if (!lib[kind].includes(path)) lib[kind].push(path);
    await mkdir(this.options.dataDir, { recursive: true });
    await writeFile(this.libraryPath, `${JSON.stringify(lib, null, 2)}\n`);
  }

  private async modelInfo(dir: string): Promise<ModelInfo> {
    const description = await describeModel(dir);
    const size = await checkpointSize(dir, tiedHeadOf(description.details));
    return { dir, name: basename(dir), ...description, parameters: size.parameters, bytesOnDisk: size.bytesOnDisk, details: { ...description.details } };
  }

  private async bookInfo(path: string, tokenizerName = 'bytes'): Promise<BookInfo> {
    const book = await readBook(path);
    const tokenizer = await createTokenizer(tokenizerName);
    const tokens = tokenizerName === 'bytes' ? book.utf8Bytes : encodeDocument(tokenizer, book.text).length;
    return { path: book.path, name: basename(book.path), bytes: book.utf8Bytes, sha256: book.sha256, encoding: book.encoding, tokens, tokenizer: tokenizer.name, preview: preview(book.text, 600) };
  }

  readonly handlers: Handlers = {
    info: async () => ({
      engine: `ttt-workbench ${this.options.versions?.['ttt-workbench'] ?? ''}`.trim(),
      backend: this.options.backend,
      modelsDir: join(this.options.dataDir, 'models'),
      runsDir: this.runsDir,
      booksDir: join(this.options.dataDir, 'books'),
    }),

    // probed, not started: each run's workers start their own TensorFlow.js on the backend it names
    listBackends: async () => ({
      default: this.options.backend.name,
      backends: (await probeBackends()).map((b) => ({ ...b, defaultStages: defaultStageCount(b.name) })),
    }),

    listModels: async () => {
      const builtin = new Set(this.options.builtinModels ?? []);
      const dirs = [...new Set([...builtin, ...(await this.library()).models])];
      const models: ModelInfo[] = [];
      for (const dir of dirs) {
        try {
          models.push({ ...(await this.modelInfo(dir)), builtin: builtin.has(dir) });
        } catch {
          // a remembered folder that was moved or deleted is not an error worth failing the list for
        }
      }
      return { models };
    },

    addModel: async ({ dir }) => {
      const absolute = resolve(dir);
      const model = await this.modelInfo(absolute);
      await this.remember('models', absolute);
      return { model };
    },

    openBook: async ({ path, tokenizer }) => {
      const absolute = resolve(path);
      const book = await this.bookInfo(absolute, tokenizer);
      await this.remember('books', absolute);
      return { book };
    },

    uploadFile: async (params) => receiveUpload(this.options.dataDir, { ...defaultUploadLimits, ...this.options.uploadLimits }, params),

    listBooks: async () => {
      const builtin = new Set(this.options.builtinBooks ?? []);
      const paths = [...new Set([...builtin, ...(await this.library()).books])];
      const books: BookInfo[] = [];
      for (const path of paths) {
        try {
          books.push({ ...(await this.bookInfo(path)), builtin: builtin.has(path) });
        } catch {
          // a remembered book that is gone is skipped
        }
      }
      return { books };
    },

    startAnalysis: async (params) => {
      const book = resolve(params.book);
      await stat(book).catch(() => {
        throw workbenchError('E_FILE_NOT_FOUND', book);
      });
      const models = params.models.map((m) => resolve(m));
      for (const dir of models) await describeModel(dir); // a bad model fails the request, not the run
      // so does a backend that cannot start here; the engine's own needs no second look
      const backend = params.backend === undefined || params.backend === this.options.backend.name ? this.options.backend : await describeBackend(params.backend);
      const runId = newRunId();
      this.queued.set(runId, {
        id: runId, dir: join(this.runsDir, runId), status: 'queued', createdAt: new Date().toISOString(), book: basename(book), tokens: 0, backend,
        models: models.map((dir) => ({ name: basename(dir), family: 'ttt' as const, status: 'queued' as const, tokensDone: 0, bitsPerByte: null })),
      });
      this.queue.enqueue({
        id: runId,
        run: (signal) => this.runAnalysis(runId, book, models, { ...params, backend }, signal),
        onCancelledWhileQueued: () => {
          this.queued.delete(runId);
          this.broadcast('runFinished', { runId, status: 'cancelled' });
        },
      });
      return { runId };
    },

    resumeRun: async ({ runId }) => {
      await this.manifestOf(runId); // a bad id or a missing run is refused first
      if (this.queue.isRunning(runId) || this.queue.isQueued(runId)) throw workbenchError('E_RUN', runId, 'is running or queued already');
      const runDir = join(this.runsDir, runId);
      const plan = await planResume(runDir);
      const { manifest } = plan;
      this.queue.enqueue({
        id: runId,
        run: async (signal) => {
          const unlock = await lockRunDir(runDir).catch((error: unknown) => {
            this.broadcast('runFailed', { runId, message: error instanceof WorkbenchError ? error.message : String(error) });
            return null;
          });
          if (!unlock) return;
          try {
            await this.runAnalysis(runId, manifest.book.path, manifest.models.map((m) => m.dir), {
              maxTokens: manifest.settings.maxTokens ?? undefined, window: manifest.settings.window ?? undefined, innerLoop: manifest.settings.innerLoop,
              chunkTokens: manifest.settings.chunkTokens, backend: this.options.backend, resume: { ...plan, manifest: { ...manifest, id: runId } },
            }, signal);
          } finally {
            await unlock();
          }
        },
        onCancelledWhileQueued: () => this.broadcast('runFinished', { runId, status: 'cancelled' }),
      });
      return { runId };
    },

    train: async (params) => {
      const runId = `train-${newRunId()}`;
      this.queue.enqueue({
        id: runId,
        run: (signal) => this.runTraining(runId, params, signal),
        onCancelledWhileQueued: () => this.broadcast('runFinished', { runId, status: 'cancelled' }),
      });
      return { runId };
    },

    cancel: async ({ runId }) => ({ cancelled: this.queue.cancel(runId) }),

    listRuns: async () => {
      const stored = await listRunDirs(this.runsDir);
      // a run's id is its folder's name (see manifestOf), so a run folder copied in under another name opens
      const runs = stored.map(({ dir, manifest }) => summarize(withLiveness({ ...manifest, id: basename(dir) }, this.queue.isRunning(basename(dir))), dir));
      const queued = [...this.queued.values()].filter((q) => !runs.some((r) => r.id === q.id));
      return { runs: [...queued, ...runs] };
    },

    getRun: async ({ runId }) => ({ manifest: withLiveness(await this.manifestOf(runId), this.queue.isRunning(runId)) }),

    getSeries: async ({ runId, model, series, ...query }) => {
      const manifest = await this.manifestOf(runId);
      return readSeries(join(this.runsDir, runId), manifest, model, series, query);
    },

    watchRun: async ({ runId }) => this.aggregatesOf(runId),

    estimateAnalysis: async ({ book, models, maxTokens, window }) => ({
      models: await estimateAnalysis(resolve(book), models.map((m) => resolve(m)), { maxTokens, window }),
    }),

    getSnapshots: async ({ runId, model, ...query }) => readSnapshots(join(this.runsDir, runId), await this.manifestOf(runId), model, query),

    getTokens: async (params) => readTokens((id) => join(this.runsDir, id), (id) => this.manifestOf(id), params),

    getComparison: async (params) => compareRuns((id) => join(this.runsDir, id), (id) => this.manifestOf(id), params),

    startCorpusEval: async (params, context) => this.corpus.handlers.startCorpusEval(params, context),
    resumeCorpusEval: async (params, context) => this.corpus.handlers.resumeCorpusEval(params, context),
    listCorpusRuns: async (params, context) => this.corpus.handlers.listCorpusRuns(params, context),
    getCorpusRun: async (params, context) => this.corpus.handlers.getCorpusRun(params, context),
    'probe.start': async (params) => {
      const book = resolve(params.book);
      await stat(book).catch(() => {
        throw workbenchError('E_FILE_NOT_FOUND', book);
      });
      const models = params.models.map((m) => resolve(m));
      for (const dir of models) await describeModel(dir); // a bad model fails the request, not the probe
      const donor = params.kind === 'intervene' && params.donor ? resolve(params.donor) : undefined;
      if (donor) await stat(donor).catch(() => {
        throw workbenchError('E_FILE_NOT_FOUND', donor);
      });
      const runId = `probe-${newRunId()}`;
      const resolved = { ...params, book, models, ...(donor ? { donor } : {}) } as ProbeParams;
      this.queuedProbes.set(runId, {
        id: runId, kind: params.kind, status: 'queued', createdAt: new Date().toISOString(), book: basename(book), detail: '', error: null,
        models: models.map((dir) => ({ name: basename(dir), status: 'queued' as const })),
      });
      this.queue.enqueue({
        id: runId,
        run: (signal) => this.runProbeJob(runId, resolved, signal),
        onCancelledWhileQueued: () => {
          this.queuedProbes.delete(runId);
          this.broadcast('probe.finished', { runId, kind: params.kind, status: 'cancelled', error: null });
        },
      });
      return { runId };
    },

    'probe.list': async () => {
      const stored = (await listProbeDirs(this.probesDir)).map(({ dir, manifest }) => summarizeProbe(probeWithLiveness({ ...manifest, id: basename(dir) }, this.queue.isRunning(basename(dir)))));
      const queued = [...this.queuedProbes.values()].filter((q) => !stored.some((p) => p.id === q.id));
      return { probes: [...queued, ...stored] };
    },

    'probe.get': async ({ runId, points }) => {
      if (!/^[\w.-]+$/.test(runId) || runId === '.' || runId === '..') throw workbenchError('E_RUN', runId, 'is not a probe run id');
      if (this.queuedProbes.has(runId)) throw workbenchError('E_RUN', runId, 'is queued and has no results yet');
      const dir = join(this.probesDir, runId);
      const manifest = probeWithLiveness({ ...(await readProbeManifest(dir).catch((error: unknown) => {
        throw error instanceof WorkbenchError && error.code === 'E_FILE_NOT_FOUND' ? workbenchError('E_RUN', runId, 'no such probe run') : error;
      })), id: runId }, this.queue.isRunning(runId));
      return { summary: summarizeProbe(manifest), settings: probeSettings(manifest), view: await probeView(dir, manifest, points) };
    },
  };

  /**
   * The manifest of the run in folder `<runsDir>/<runId>`, with `id` set to the folder's name: a run folder copied
   * in under another name (as assets/models/README.md suggests) is that name everywhere, whatever id it was made with.
   */
  private async manifestOf(runId: string) {
    if (!/^[\w.-]+$/.test(runId) || runId === '.' || runId === '..') throw workbenchError('E_RUN', runId, 'is not a run id');
    try {
      return { ...(await readManifest(join(this.runsDir, runId))), id: runId };
    } catch (error) {
      if (this.queued.has(runId)) throw workbenchError('E_RUN', runId, 'is queued and has no results yet');
      if (error instanceof WorkbenchError && error.code === 'E_FILE_NOT_FOUND') throw workbenchError('E_RUN', runId, 'no such run');
      throw error;
    }
  }

  private async runProbeJob(runId: string, params: ProbeParams, signal: AbortSignal): Promise<void> {
    try {
      const { manifest } = await runProbe({
        params, runId, runsDir: this.probesDir, backend: this.options.backend, versions: this.options.versions, signal,
        onProgress: (event) => {
          this.queuedProbes.delete(runId);
          this.broadcast('probe.progress', event);
        },
      });
      this.broadcast('probe.finished', { runId, kind: params.kind, status: manifest.status, error: manifest.error });
    } catch (error) {
      const message = error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message}`;
      this.broadcast('probe.finished', { runId, kind: params.kind, status: 'failed', error: message.split('\n')[0] });
    } finally {
      this.queuedProbes.delete(runId);
    }
  }

  private async runTraining(runId: string, params: MethodParams<'train'>, signal: AbortSignal): Promise<void> {
    let lastSent = 0;
    let valLoss: number | null = null;
    try {
      const result = await trainModel({ ...params, out: resolve(params.out), model: params.model && resolve(params.model), data: params.data?.map((d) => resolve(d)) }, {
        signal,
        onProgress: (event) => {
          if (event.type === 'validation') valLoss = event.valLoss;
          if (event.type !== 'step') return;
          const now = performance.now();
          if (event.step !== event.steps && now - lastSent < progressIntervalMs) return;
          lastSent = now;
          this.broadcast('trainProgress', {
            runId, step: event.step, steps: event.steps, loss: event.loss, valLoss, tokensPerSecond: event.tokensPerSecond, etaSeconds: event.etaSeconds,
          });
        },
      });
      this.broadcast('runFinished', { runId, status: result.status });
    } catch (error) {
      const message = error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message}`;
      this.broadcast('runFailed', { runId, message });
    }
  }

  private async runAnalysis(
    runId: string, book: string, models: string[],
    params: {
      maxTokens?: number; window?: number | 'full'; innerLoop?: boolean; stages?: number; backend: BackendInfo;
      chunkTokens?: number; resume?: ResumePlan;
    }, signal: AbortSignal,
  ): Promise<void> {
    let pushTimer: NodeJS.Timeout | null = null;
    const push = () => {
      const aggregates = this.live.get(runId);
      if (aggregates) this.broadcast('runData', aggregates.take());
    };
    try {
      const { manifest } = await analyzeBook({
        book, models, runId, runsDir: this.runsDir, maxTokens: params.maxTokens, window: params.window, innerLoop: params.innerLoop,
        backend: params.backend, stages: params.stages, versions: this.options.versions, signal, chunkTokens: params.chunkTokens, resume: params.resume,
        checkpointSeconds: this.options.checkpointSeconds,
        onStart: (_id, _dir, aggregates) => {
          this.queued.delete(runId);
          this.live.set(runId, aggregates);
          pushTimer = setInterval(push, liveDataIntervalMs);
        },
        onProgress: (p) => this.broadcast('runProgress', p),
      });
      push();
      if (manifest.status === 'failed') this.broadcast('runFailed', { runId, message: manifest.error ?? 'the run failed' });
      this.broadcast('runFinished', { runId, status: manifest.status });
    } catch (error) {
      this.queued.delete(runId);
      const message = error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message}`;
      this.broadcast('runFailed', { runId, message });
    } finally {
      if (pushTimer) clearInterval(pushTimer);
      this.live.delete(runId);
    }
  }

  /** A run's aggregates: kept in memory while it streams, else rebuilt from its files (once per version of them). */
  private async aggregatesOf(runId: string): Promise<RunAggregates> {
    const live = this.live.get(runId);
    if (live) return live.take(true);
    const manifest = await this.manifestOf(runId);
    const version = `${manifest.status}:${manifest.finishedAt}:${manifest.models.map((m) => m.tokensDone).join(',')}`;
    const hit = this.storedAggregates.get(runId);
    if (hit?.version === version) return hit.value;
    const value = aggregatesFromRun(join(this.runsDir, runId), manifest);
    this.storedAggregates.set(runId, { version, value });
    return value.catch((error: unknown) => {
      this.storedAggregates.delete(runId);
      throw error;
    });
  }
}

