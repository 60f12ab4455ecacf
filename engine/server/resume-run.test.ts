/**
 * `resumeRun` over an in-memory client/server pair: a run cancelled part-way (checkpoints after every chunk)
 * continues in its folder under the same id and ends with the per-token NLL of an uninterrupted run; a finished
 * run and an unknown id are refused in one line.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeBook } from '../analysis/analyze.js';
import { readArrowTable } from '../analysis/arrow-writer.js';
import { type BackendInfo, selectBackend } from '../core/backend.js';
import { type NotificationName, RpcClient } from '../protocol.js';
import { sampleText, tempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { EngineService } from './engine-service.js';
import { createRpcServer } from './rpc-server.js';

const work = tempDir();
const dataDir = join(work.dir, 'data');
const runsDir = join(dataDir, 'runs');
let backend: BackendInfo;
let models: string[], book: string;

beforeAll(async () => {
  backend = await selectBackend('wasm');
  models = [writeTinyModel(work.dir, 'ttt-linear'), writeTinyModel(work.dir, 'mamba')];
  book = join(work.dir, 'book.txt');
  writeFileSync(book, sampleText.repeat(2));
});
afterAll(() => work.cleanup());

const nllOf = async (runId: string, key: string) => {
  const t = await readArrowTable(join(runsDir, runId, 'models', key, 'tokens.arrow'));
  return { position: t.getChild('position')!.toArray() as Int32Array, nll: t.getChild('nll')!.toArray() as Float32Array };
};

describe('resumeRun', () => {
  it('continues a cancelled run of two models from their checkpoints to the numbers of an uninterrupted one', async () => {
    const settings = { book, models, runsDir, backend, chunkTokens: 50, maxTokens: 600, stages: 1 };
    await analyzeBook({ ...settings, runId: 'straight' });
    const controller = new AbortController();
    const cancelled = await analyzeBook({
      ...settings, runId: 'stopped', checkpointSeconds: 0, signal: controller.signal, progressIntervalMs: 0,
      onProgress: (p) => p.models.every((m) => m.tokensDone >= 250) && controller.abort(),
    });
    expect(cancelled.manifest.status).toBe('cancelled');
    // both beyond the lead one model may take on another (150 tokens here): neither may wait on the other's start
    for (const m of cancelled.manifest.models) {
      expect(m.checkpoint?.position ?? 0).toBeGreaterThanOrEqual(200);
      expect(m.checkpoint?.position ?? 0).toBeLessThan(600);
    }

    const service = new EngineService({ dataDir, backend });
    const events: { method: NotificationName; params: unknown }[] = [];
    const notify = (method: NotificationName, params: unknown) => events.push({ method, params });
    const server = createRpcServer(service.handlers, notify);
    const unsubscribe = service.subscribe(notify);
    const client = new RpcClient((frame) => void server.handle(frame).then((reply) => reply && client.receive(reply)));
    try {
      expect(await client.call('resumeRun', { runId: 'stopped' })).toEqual({ runId: 'stopped' });
      await service.queue.whenIdle();
      expect(events.some((e) => e.method === 'runProgress')).toBe(true);
      expect(events.find((e) => e.method === 'runFinished')?.params).toEqual({ runId: 'stopped', status: 'finished' });
      const { manifest } = await client.call('getRun', { runId: 'stopped' });
      expect(manifest.status).toBe('finished');
      for (const m of manifest.models) {
        expect(m.tokensDone).toBe(600);
        const [a, b] = [await nllOf('straight', m.key), await nllOf('stopped', m.key)];
        expect(Array.from(b.position)).toEqual(Array.from({ length: 599 }, (_, i) => i + 1));
        expect(Math.max(...a.nll.map((v, i) => Math.abs(v - b.nll[i])))).toBeLessThanOrEqual(1e-5);
      }
      await expect(client.call('resumeRun', { runId: 'stopped' })).rejects.toThrow(/^run .*stopped: is finished; there is nothing to resume$/);
      await expect(client.call('resumeRun', { runId: 'nothing-here' })).rejects.toThrow(/no such run/);
    } finally {
      unsubscribe();
      server.close();
    }
  }, 120_000);
});
