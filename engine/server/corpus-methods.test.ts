/**
 * The app's corpus evaluation over an in-memory client/server pair: start, pushed progress per document and
 * worker, the run listed and read back with the numbers `evaluateCorpus` computes, invalid params, cancel and resume.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../core/backend.js';
import { evaluateCorpus, localExecutor } from '../corpus/eval.js';
import { readCorpus } from '../corpus/read.js';
import { EngineError, type NotificationName, type NotificationParams, RpcClient } from '../protocol.js';
import { writeTestCorpus } from '../../test/helpers/corpus.js';
import { tempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { EngineService } from './engine-service.js';
import { createRpcServer } from './rpc-server.js';

const work = tempDir('ttt-corpus-methods-');
let client: RpcClient;
let service: EngineService;
let models: string[];
let folder: string;
const events: { method: NotificationName; params: unknown }[] = [];

beforeAll(async () => {
  const backend = await selectBackend('wasm');
  models = [writeTinyModel(work.dir, 'ttt-linear'), writeTinyModel(work.dir, 'mamba')];
  folder = writeTestCorpus(work.dir, 6).folder;
  service = new EngineService({ dataDir: join(work.dir, 'data'), backend });
  const server = createRpcServer(service.handlers, () => undefined);
  service.subscribe((method, params) => events.push({ method, params }));
  client = new RpcClient((frame) => void server.handle(frame).then((reply) => reply && client.receive(reply)));
}, 60_000);
afterAll(() => work.cleanup());

/** Resolves once `found` finds something in the notifications so far. */
const waitFor = <T,>(found: () => T | undefined) => new Promise<T>((resolve) => {
  const check = setInterval(() => {
    const value = found();
    if (value === undefined) return;
    clearInterval(check);
    resolve(value);
  }, 10);
});
const finished = (runId: string) => waitFor(() => events.find((e) => e.method === 'runFinished' && (e.params as { runId: string }).runId === runId))
  .then((e) => (e.params as NotificationParams<'runFinished'>).status);
const progressOf = (runId: string) => events.filter((e) => e.method === 'corpusProgress').map((e) => e.params as NotificationParams<'corpusProgress'>).filter((p) => p.runId === runId);

describe('corpus evaluation in the app', () => {
  it('runs, pushes progress per document and worker, and reads back what evaluateCorpus computes', async () => {
    const { runId } = await client.call('startCorpusEval', { corpus: folder, models, documents: 4, maxTokens: 64, jobs: 2 });
    expect(await finished(runId)).toBe('finished');

    const progress = progressOf(runId);
    expect(progress.at(-1)).toMatchObject({ status: 'finished', done: 8, total: 8, failed: 0 });
    const rows = progress.flatMap((p) => p.finished);
    expect(rows).toHaveLength(8); // each document of each model once
    expect(new Set(progress.flatMap((p) => p.workers.map((w) => w.worker)))).toEqual(new Set(['local 1', 'local 2']));
    expect(progress.at(-1)!.workers.reduce((n, w) => n + w.documentsDone, 0)).toBe(8);

    const { runs } = await client.call('listCorpusRuns', {});
    expect(runs.map((r) => [r.id, r.status, r.documents])).toEqual([[runId, 'finished', 4]]);
    const run = await client.call('getCorpusRun', { runId });
    expect(run.models.map((m) => m.documents.length)).toEqual([4, 4]);

    // the same corpus through evaluateCorpus directly: the same bins and documents
    const backend = await selectBackend('wasm');
    const corpus = await readCorpus(folder, { maxDocuments: 4 });
    const direct = await evaluateCorpus({ corpus, models, outDir: join(work.dir, 'direct'), backend, maxTokens: 64, executor: localExecutor({ backend: 'wasm', jobs: 1 }) });
    for (const [i, model] of run.manifest.models.entries()) {
      const bins = direct.bins.get(model.key)!;
      expect(run.models[i].curve.meanNll).toEqual(bins.map((b) => b.meanNll));
      expect(run.models[i].curve.ciHigh).toEqual(bins.map((b) => b.ciHigh));
      expect(run.models[i].documents.map((d) => d.nllSum)).toEqual(direct.documents.get(model.key)!.map((d) => d.nllSum));
      expect(rows.filter((r) => r.model === model.key).map((r) => r.nllSum).sort()).toEqual(run.models[i].documents.map((d) => d.nllSum).sort());
    }
  }, 120_000);

  it('refuses bad params and a missing corpus in one line, cancels a run and resumes it', async () => {
    await expect(client.call('startCorpusEval', { corpus: folder, models: [] })).rejects.toBeInstanceOf(EngineError);
    await expect(client.call('startCorpusEval', { corpus: join(work.dir, 'nope'), models })).rejects.toThrow(/nope: no such file$/);
    await expect(client.call('getCorpusRun', { runId: '..' })).rejects.toThrow(/is not a run id/);

    const { runId } = await client.call('startCorpusEval', { corpus: folder, models, jobs: 1 });
    await waitFor(() => progressOf(runId)[0]); // started: cancel stops it between documents
    expect(await client.call('cancel', { runId })).toEqual({ cancelled: true });
    expect(await finished(runId)).toBe('cancelled');
    const run = await client.call('getCorpusRun', { runId });
    expect(run.manifest.status).toBe('cancelled');
    expect(run.models[0].documents.length).toBeLessThan(6);

    // resumed in its folder: what was finished is read back, the rest computed, and nothing is left to resume
    const before = run.models.reduce((n, m) => n + m.documents.length, 0);
    expect(await client.call('resumeCorpusEval', { runId, jobs: 2 })).toEqual({ runId });
    await expect(client.call('resumeCorpusEval', { runId })).rejects.toThrow(/is already queued or running$/);
    events.splice(0, events.length);
    expect(await finished(runId)).toBe('finished');
    const resumed = await client.call('getCorpusRun', { runId });
    expect(resumed.models.map((m) => m.documents.length)).toEqual([6, 6]);
    expect(resumed.manifest.createdAt).toBe(run.manifest.createdAt);
    expect(progressOf(runId).flatMap((p) => p.finished)).toHaveLength(12 - before);
    await expect(client.call('resumeCorpusEval', { runId })).rejects.toThrow(/is finished: nothing to resume$/);
  }, 120_000);
});
