/**
 * The app's corpus evaluation (protocol.ts `startCorpusEval`, `listCorpusRuns`, `getCorpusRun`, `corpusProgress`):
 * `ttt-workbench eval` on this machine as a job of the engine's queue, in `<dataDir>/corpus/<runId>`, cancelled by
 * the engine's `cancel`. Progress is pushed a few times a second while documents stream; views never poll.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { type BackendInfo, describeBackend } from '../core/backend.js';
import { WorkbenchError, workbenchError } from '../core/errors.js';
import { evaluateCorpus, localExecutor } from '../corpus/eval.js';
import { type Corpus, readCorpus } from '../corpus/read.js';
import { CorpusProgressTracker, listCorpusRuns, readCorpusManifest, readCorpusRun } from '../corpus/run-view.js';
import { describeModel } from '../io/load-model.js';
import { newRunId } from '../analysis/run-store.js';
import type { CorpusRunSummary, MethodParams, NotificationName, NotificationParams } from '../protocol.js';
import type { JobQueue } from '../runtime/job-queue.js';
import type { Handlers } from './rpc-server.js';

export interface CorpusServiceOptions {
  readonly dataDir: string;
  readonly queue: JobQueue;
  readonly backend: BackendInfo;
  readonly versions?: Record<string, string>;
  readonly broadcast: <N extends NotificationName>(method: N, params: NotificationParams<N>) => void;
}

/** Progress goes out at most this often (and once more at the end). */
const progressIntervalMs = 250;

type CorpusHandlers = Pick<Handlers, 'startCorpusEval' | 'resumeCorpusEval' | 'listCorpusRuns' | 'getCorpusRun'>;
/** The request's settings the manifest does not keep (the text field), for `resumeCorpusEval`. */
const requestName = 'app-request.json';

export class CorpusService {
  readonly root: string;
  private readonly queued = new Map<string, CorpusRunSummary>();

  constructor(private readonly options: CorpusServiceOptions) {
    this.root = join(options.dataDir, 'corpus');
  }

  private dirOf(runId: string): string {
    if (!/^[\w.-]+$/.test(runId) || runId === '.' || runId === '..') throw workbenchError('E_RUN', runId, 'is not a run id');
    return join(this.root, runId);
  }

  readonly handlers: CorpusHandlers = {
    startCorpusEval: async (params) => {
      const path = resolve(params.corpus);
      await stat(path).catch(() => {
        throw workbenchError('E_FILE_NOT_FOUND', path);
      });
      // a bad corpus, model or backend fails the request, not the run
      const corpus = await readCorpus(path, { textField: params.textField, maxDocuments: params.documents });
      if (corpus.documents.length === 0) throw workbenchError('E_RUN', basename(path), 'has no usable documents');
      const runId = `corpus-${newRunId()}`;
      await mkdir(this.dirOf(runId), { recursive: true });
      // what the manifest does not say, for a resume
      await writeFile(join(this.dirOf(runId), requestName), `${JSON.stringify({ textField: params.textField ?? null })}\n`);
      return this.enqueue(runId, corpus, params);
    },

    resumeCorpusEval: async ({ runId, jobs, backend }) => {
      const dir = this.dirOf(runId);
      if (this.queued.has(runId) || this.options.queue.isRunning(runId)) throw workbenchError('E_RUN', runId, 'is already queued or running');
      const manifest = await readCorpusManifest(dir, false);
      if (manifest.status === 'finished') throw workbenchError('E_RUN', runId, 'is finished: nothing to resume');
      const request = JSON.parse(await readFile(join(dir, requestName), 'utf8').catch(() => '{}')) as { textField?: string | null };
      const corpus = await readCorpus(manifest.corpus.path, { textField: request.textField ?? undefined, maxDocuments: manifest.corpus.documents });
      const { settings } = manifest;
      return this.enqueue(runId, corpus, {
        models: manifest.models.map((m) => m.dir), jobs, backend, ...(settings.maxTokens === null ? {} : { maxTokens: settings.maxTokens }),
        ...(settings.window === null ? {} : { window: settings.window }),
      });
    },

    listCorpusRuns: async () => {
      const stored = await listCorpusRuns(this.root, (id) => this.options.queue.isRunning(id));
      const queued = [...this.queued.values()].filter((q) => !stored.some((r) => r.id === q.id));
      return { runs: [...queued, ...stored] };
    },

    getCorpusRun: async ({ runId }) => {
      const dir = this.dirOf(runId);
      if (this.queued.has(runId) && !this.options.queue.isRunning(runId)) throw workbenchError('E_RUN', runId, 'is queued and has no results yet');
      return readCorpusRun(dir, this.options.queue.isRunning(runId));
    },
  };

  /** Checks the models and backend (a bad one fails the request, not the run) and queues the evaluation. */
  private async enqueue(runId: string, corpus: Corpus, params: Omit<MethodParams<'startCorpusEval'>, 'corpus'>): Promise<{ runId: string }> {
    const models = params.models.map((m) => resolve(m));
    for (const dir of models) await describeModel(dir);
    const { backend: own } = this.options;
    const backend = params.backend === undefined || params.backend === own.name ? own : await describeBackend(params.backend);
    this.queued.set(runId, {
      id: runId, status: 'queued', createdAt: new Date().toISOString(), corpus: basename(corpus.path), format: corpus.format, documents: corpus.documents.length,
      models: models.map((dir) => ({ name: basename(dir), documentsDone: 0, bitsPerByte: null })),
    });
    const jobs = params.jobs ?? availableParallelism();
    this.options.queue.enqueue({
      id: runId,
      run: async (signal) => {
        try {
          await this.run(runId, { corpus, models, backend, jobs, maxTokens: params.maxTokens, window: params.window }, signal);
        } finally {
          this.queued.delete(runId);
        }
      },
      onCancelledWhileQueued: () => {
        this.queued.delete(runId);
        this.options.broadcast('runFinished', { runId, status: 'cancelled' });
      },
    });
    return { runId };
  }

  private async run(
    runId: string,
    params: Pick<MethodParams<'startCorpusEval'>, 'maxTokens' | 'window'> & { corpus: Corpus; models: string[]; backend: BackendInfo; jobs: number },
    signal: AbortSignal,
  ): Promise<void> {
    const { broadcast } = this.options;
    let tracker: CorpusProgressTracker | null = null;
    let timer: NodeJS.Timeout | null = null;
    try {
      const { manifest } = await evaluateCorpus({
        corpus: params.corpus, models: params.models, outDir: this.dirOf(runId), backend: params.backend, window: params.window, maxTokens: params.maxTokens,
        versions: this.options.versions, signal, executor: localExecutor({ backend: params.backend.name, jobs: params.jobs }), executorName: `local, ${params.jobs} jobs`,
        onStart: (m) => {
          tracker = new CorpusProgressTracker(runId, m.corpus.documents * m.models.length, m.models.reduce((n, x) => n + x.documentsDone, 0));
          broadcast('corpusProgress', tracker.take('running'));
          timer = setInterval(() => {
            if (tracker?.dirty) broadcast('corpusProgress', tracker.take('running'));
          }, progressIntervalMs);
        },
        onProgress: (event) => tracker?.apply(event),
      });
      if (timer) clearInterval(timer);
      if (tracker) broadcast('corpusProgress', (tracker as CorpusProgressTracker).take(manifest.status));
      if (manifest.status === 'failed') {
        const first = manifest.failures[0];
        broadcast('runFailed', { runId, message: first ? `${first.name}: ${first.error}` : 'the corpus evaluation did not finish' });
      }
      broadcast('runFinished', { runId, status: manifest.status });
    } catch (error) {
      const message = error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message}`;
      broadcast('runFailed', { runId, message });
    } finally {
      if (timer) clearInterval(timer);
    }
  }
}
