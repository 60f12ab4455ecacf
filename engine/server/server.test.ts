import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { availableParallelism } from 'node:os';
import { backendOrder, selectBackend, useWebGPUProbe } from '../core/backend.js';
import { type RunAggregates, EngineError, errorCodes, type NotificationName, RpcClient } from '../protocol.js';
import { sampleText, tempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { EngineService } from './engine-service.js';
import { createRpcServer } from './rpc-server.js';
import { serveWebSocket } from './websocket-transport.js';
import { until } from '../../test/helpers/until.js';

const work = tempDir();
let service: EngineService;
let model: string, model2: string;
const book = join(work.dir, 'book.txt');

beforeAll(async () => {
  const backend = await selectBackend('wasm');
  model = writeTinyModel(work.dir, 'ttt-linear');
  model2 = writeTinyModel(work.dir, 'mamba');
  writeFileSync(book, sampleText.repeat(8));
  service = new EngineService({ dataDir: join(work.dir, 'data'), builtinModels: [model], builtinBooks: [book], backend });
});
afterAll(() => work.cleanup());

/** Client and server joined in memory, as the transports join them over a process boundary. */
function connect() {
  const events: { method: NotificationName; params: unknown }[] = [];
  const notify = (method: NotificationName, params: unknown) => client.receive(JSON.stringify({ jsonrpc: '2.0', method, params }));
  const server = createRpcServer(service.handlers, notify);
  const client: RpcClient = new RpcClient((frame) => void server.handle(frame).then((r) => r && client.receive(r)));
  const unsubscribe = service.subscribe(notify);
  client.onNotification((method, params) => events.push({ method, params }));
  return { client, server, events, close: () => (unsubscribe(), server.close()) };
}

describe('engine JSON-RPC', () => {
  it('answers info, lists built-in models and books, and opens a book', async () => {
    const { client, close } = connect();
    const info = await client.call('info', {});
    expect(info.backend.name).toBe('wasm');
    const { models } = await client.call('listModels', {});
    expect(models.map((m) => m.name)).toEqual(['ttt-linear']);
    expect(models[0].builtin).toBe(true);
    expect(models[0].parameters).toBeGreaterThan(10_000);
    const { books } = await client.call('listBooks', {});
    expect(books[0].tokens).toBe(Buffer.byteLength(sampleText) * 8);
    expect(books[0].builtin).toBe(true);
    const opened = await client.call('openBook', { path: book });
    expect(opened.book.preview.startsWith('In the beginning')).toBe(true);
    const added = await client.call('addModel', { dir: model2 });
    expect(added.model.family).toBe('mamba');
    expect((await client.call('listModels', {})).models.map((m) => m.builtin)).toEqual([true, false]);
    close();
  });

  it('rejects malformed frames, unknown methods and invalid params with JSON-RPC errors', async () => {
    const server = createRpcServer(service.handlers, () => undefined);
    const parse = async (frame: string) => JSON.parse((await server.handle(frame))!) as { id: unknown; error: { code: number; message: string } };
    expect((await parse('{not json')).error.code).toBe(errorCodes.parseError);
    expect((await parse('{"jsonrpc":"1.0","id":1,"method":"info"}')).error.code).toBe(errorCodes.invalidRequest);
    expect((await parse('{"jsonrpc":"2.0","id":2,"method":"explode"}')).error).toEqual({ code: errorCodes.methodNotFound, message: 'unknown method "explode"' });
    const bad = await parse('{"jsonrpc":"2.0","id":3,"method":"startAnalysis","params":{"book":"x","models":[]}}');
    expect(bad.id).toBe(3);
    expect(bad.error.code).toBe(errorCodes.invalidParams);
    expect(bad.error.message).toMatch(/^invalid params for startAnalysis: models /);
    const missing = await parse(`{"jsonrpc":"2.0","id":4,"method":"openBook","params":{"path":"${join(work.dir, 'nope.txt')}"}}`);
    expect(missing.error.code).toBe(errorCodes.requestFailed);
    expect(missing.error.message).toMatch(/nope\.txt: no such file/);
    expect(await server.handle('{"jsonrpc":"2.0","method":"info"}')).toBeNull(); // a notification gets no reply
  });

  it('runs analyses one at a time, reports progress, cancels, and keeps partial results', async () => {
    const { client, events, close } = connect();
    const first = await client.call('startAnalysis', { book, models: [model], maxTokens: 2048 });
    const second = await client.call('startAnalysis', { book, models: [model, model2], maxTokens: 1024 });
    const queued = (await client.call('listRuns', {})).runs.find((r) => r.id === second.runId);
    expect(queued?.status).toBe('queued');
    await until(() => events.some((e) => e.method === 'runProgress' && (e.params as { runId: string }).runId === first.runId));
    expect((await client.call('cancel', { runId: first.runId })).cancelled).toBe(true);
    await until(() => events.some((e) => e.method === 'runFinished' && (e.params as { runId: string }).runId === second.runId));
    const finished = events.filter((e) => e.method === 'runFinished').map((e) => e.params);
    expect(finished).toEqual([{ runId: first.runId, status: 'cancelled' }, { runId: second.runId, status: 'finished' }]);
    const cancelled = (await client.call('getRun', { runId: first.runId })).manifest;
    expect(cancelled.models[0].tokensDone).toBeGreaterThan(0);
    expect(cancelled.models[0].tokensDone).toBeLessThan(2048);
    const series = await client.call('getSeries', { runId: first.runId, model: cancelled.models[0].key, series: 'nll', points: 10 });
    expect(series.rows).toBe(cancelled.models[0].tokensDone); // rows 0..n-1 predict tokens 1..n
    expect(series.x.length).toBeLessThanOrEqual(10);
    const done = (await client.call('getRun', { runId: second.runId })).manifest;
    expect(done.models.map((m) => m.status)).toEqual(['finished', 'finished']);
    const state = await client.call('getSeries', { runId: second.runId, model: done.models[1].key, series: 'modelState', layer: 0 });
    expect(state.rows).toBeGreaterThan(0);
    const perplexity = await client.call('getSeries', { runId: second.runId, model: done.models[0].key, series: 'nll', points: 8, reduce: 'logmean' });
    expect(perplexity.x.length).toBeLessThanOrEqual(8);
    expect(perplexity.x[0]).toBeLessThan(perplexity.x[perplexity.x.length - 1]);
    // at most ~20 notifications a second: 2048 tokens in chunks of 512 is far below that anyway
    expect(events.filter((e) => e.method === 'runProgress').length).toBeLessThan(40);
    // the views' aggregates: pushed while it ran, and the whole of them on request, equal to what was pushed
    const pushed = events.filter((e) => e.method === 'runData' && (e.params as { runId: string }).runId === second.runId);
    expect(pushed.length).toBeGreaterThan(0);
    const watched = await client.call('watchRun', { runId: second.runId });
    expect(watched.complete).toBe(true);
    expect(watched.models.map((m) => m.model)).toEqual(done.models.map((m) => m.key));
    const bins = new Map<number, number>();
    for (const e of pushed) for (const [i, k] of (e.params as RunAggregates).models[0].tokens.raw.index.entries()) bins.set(k, (e.params as RunAggregates).models[0].tokens.raw.count.nll[i]);
    expect([...bins.entries()].sort((a, b) => a[0] - b[0])).toEqual(watched.models[0].tokens.raw.index.map((k, i) => [k, watched.models[0].tokens.raw.count.nll[i]]));
    await expect(client.call('getRun', { runId: 'no-such-run' })).rejects.toThrow(EngineError);
    close();
  });

  it('lists the backends and runs on the one picked, split into the stages asked for', async () => {
    const { client, events, close } = connect();
    // a software adapter, as lavapipe gives one: listed (to be picked by name), never the automatic choice
    const adapter = { vendor: 'mesa', architecture: 'software', description: 'llvmpipe', software: true };
    useWebGPUProbe(async () => ({ ok: true, fromDawn: true, adapter }));
    const listed = await client.call('listBackends', {});
    expect(listed.default).toBe('wasm');
    expect(listed.backends.map((b) => b.name)).toEqual([...backendOrder]);
    expect(listed.backends.find((b) => b.name === 'webgpu')).toEqual({ name: 'webgpu', available: true, reason: null, adapter, defaultStages: 1 });
    expect(listed.backends.find((b) => b.name === 'cpu')).toEqual({ name: 'cpu', available: true, reason: null, defaultStages: availableParallelism() });

    const { runId } = await client.call('startAnalysis', { book, models: [model], maxTokens: 300, backend: 'cpu', stages: 1 });
    expect((await client.call('listRuns', {})).runs.find((r) => r.id === runId)?.backend?.name).toBe('cpu');
    await until(() => events.some((e) => e.method === 'runFinished' && (e.params as { runId: string }).runId === runId));
    const { manifest } = await client.call('getRun', { runId });
    expect(manifest.status).toBe('finished');
    expect(manifest.backend).toMatchObject({ name: 'cpu', detail: 'plain JavaScript' });
    expect(manifest.models[0].stages).toEqual([{ start: 0, end: 2 }]);
    const summary = (await client.call('listRuns', {})).runs.find((r) => r.id === runId)!;
    expect(summary.backend?.name).toBe('cpu');
    expect(summary.models[0].stages).toEqual([{ start: 0, end: 2 }]);

    // a backend that cannot start here fails the request in one line; bad values fail validation
    useWebGPUProbe(async () => ({ ok: false, reason: 'Dawn found no Vulkan, Metal or D3D12 adapter' }));
    const refused = client.call('startAnalysis', { book, models: [model], backend: 'webgpu' });
    await expect(refused).rejects.toMatchObject({ code: errorCodes.requestFailed, message: expect.stringMatching(/^backend "webgpu" is not available \(Dawn found no .*\); available: .*wasm, cpu$/) });
    const server = createRpcServer(service.handlers, () => undefined);
    for (const params of [{ backend: 'tpu' }, { stages: 0 }, { stages: 1.5 }]) {
      const reply = JSON.parse((await server.handle(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'startAnalysis', params: { book, models: [model], ...params } })))!) as { error: { code: number; message: string } };
      expect(reply.error.code).toBe(errorCodes.invalidParams);
      expect(reply.error.message).toMatch(new RegExp(`^invalid params for startAnalysis: ${Object.keys(params)[0]} `));
    }
    close();
  });

  it('trains a model with progress notifications, and cancels a queued training run', async () => {
    const { client, events, close } = connect();
    const out = join(work.dir, 'trained');
    const first = await client.call('train', { model, data: [book], out, context: 32, batch: 2, steps: 3 });
    const second = await client.call('train', { model, data: [book], out: join(work.dir, 'never'), context: 32, batch: 2, steps: 3 });
    expect((await client.call('cancel', { runId: second.runId })).cancelled).toBe(true);
    await until(() => events.some((e) => e.method === 'runFinished' && (e.params as { runId: string }).runId === first.runId));
    const finished = events.filter((e) => e.method === 'runFinished').map((e) => e.params);
    expect(finished).toContainEqual({ runId: second.runId, status: 'cancelled' });
    expect(finished).toContainEqual({ runId: first.runId, status: 'finished' });
    const progress = events.filter((e) => e.method === 'trainProgress').map((e) => e.params as { step: number; steps: number; loss: number });
    expect(progress.at(-1)).toMatchObject({ step: 3, steps: 3 });
    expect(Number.isFinite(progress.at(-1)!.loss)).toBe(true);
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toContain('"model_type"');
    close();
  });

  it('serves WebSocket clients with the access token only, and a reconnecting client sees earlier runs', async () => {
    const engine = await serveWebSocket(service);
    try {
      const refused = await new Promise<number>((resolve) => {
        const ws = new WebSocket(engine.wsUrl.replace(/token=\w+/, 'token=wrong'));
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(200));
      });
      expect(refused).toBe(401);
      const session = async () => {
        const ws = new WebSocket(engine.wsUrl);
        await new Promise((resolve) => ws.once('open', resolve));
        const client = new RpcClient((frame) => ws.send(frame));
        ws.on('message', (data) => client.receive(data.toString()));
        return { client, ws };
      };
      const a = await session();
      const runs = (await a.client.call('listRuns', {})).runs;
      a.ws.close();
      const b = await session();
      expect((await b.client.call('listRuns', {})).runs.map((r) => r.id)).toEqual(runs.map((r) => r.id));
      b.ws.close();
    } finally {
      await engine.close();
    }
  });
});
