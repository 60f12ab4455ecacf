/**
 * The probe methods (probe.start, probe.list, probe.get, cancel, probe.progress/probe.finished) over an in-memory
 * client/server pair, on tiny models: what `probe.get` draws is what the probe's Arrow files hold, cell by cell.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../core/backend.js';
import { EngineError, type NotificationName, type NotificationParams, type ProbeManifest, RpcClient } from '../protocol.js';
import { sampleText, tempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { EngineService } from './engine-service.js';
import { createRpcServer } from './rpc-server.js';

const work = tempDir();
const dataDir = join(work.dir, 'data');
const book = join(work.dir, 'book.txt');
let client: RpcClient;
let service: EngineService;
let models: string[];
const heard: { method: NotificationName; params: unknown }[] = [];

beforeAll(async () => {
  writeFileSync(book, sampleText.repeat(3));
  models = [writeTinyModel(work.dir, 'ttt-linear'), writeTinyModel(work.dir, 'mamba')];
  service = new EngineService({ dataDir, backend: await selectBackend('wasm') });
  const server = createRpcServer(service.handlers, () => undefined);
  service.subscribe((method, params) => heard.push({ method, params }));
  client = new RpcClient((frame) => void server.handle(frame).then((reply) => reply && client.receive(reply)));
}, 120_000);
afterAll(() => work.cleanup());

/** Resolves with the `probe.finished` of `runId`. */
async function finished(runId: string): Promise<NotificationParams<'probe.finished'>> {
  await service.queue.whenIdle();
  const end = heard.find((h) => h.method === 'probe.finished' && (h.params as { runId: string }).runId === runId);
  if (!end) throw new Error(`no probe.finished for ${runId}`);
  return end.params as NotificationParams<'probe.finished'>;
}

const manifestOf = (runId: string) => JSON.parse(readFileSync(join(dataDir, 'probes', runId, 'manifest.json'), 'utf8')) as ProbeManifest;
const tableOf = (runId: string, model: number, table: string) => tableFromIPC(readFileSync(join(dataDir, 'probes', runId, manifestOf(runId).models[model].files[table])));

describe('probe methods', () => {
  it('runs a needle grid as a queued job and answers its heatmap cells as the means of its rows', async () => {
    const { runId } = await client.call('probe.start', { kind: 'needle', book, models, lengths: [128, 256], depths: [0, 0.5, 1], keys: 2 });
    expect((await client.call('probe.list', {})).probes.find((p) => p.id === runId)?.status).toMatch(/queued|running/);
    expect(await finished(runId)).toEqual({ runId, kind: 'needle', status: 'finished', error: null });
    expect(heard.some((h) => h.method === 'probe.progress' && (h.params as { runId: string }).runId === runId)).toBe(true);

    const { summary, view, settings } = await client.call('probe.get', { runId });
    expect(summary).toMatchObject({ id: runId, kind: 'needle', status: 'finished', book: 'book.txt', detail: 'contexts 128–256 · 3 depths · 2 keys' });
    expect(settings.find(([k]) => k === 'Keys')?.[1]).toMatch(/^\d{5}, \d{5}$/);
    if (view?.kind !== 'needle') throw new Error('not a needle view');
    expect(view.lengths).toEqual([128, 256]);
    expect(view.depths).toEqual([0, 0.5, 1]);
    expect(view.models.map((m) => m.name)).toEqual(['ttt-linear', 'mamba']);
    // every cell, recomputed here from the rows of the model's Arrow file
    for (const [i, m] of view.models.entries()) {
      const rows = tableOf(runId, i, 'needle').toArray().map((r) => r.toJSON() as { length: number; depth: number; bits: number; correct: number });
      view.lengths.forEach((L, r) => view.depths.forEach((d, c) => {
        const mine = rows.filter((row) => row.length === L && row.depth === d);
        expect(mine).toHaveLength(2);
        expect(m.bits[r][c]).toBeCloseTo((mine[0].bits + mine[1].bits) / 2, 10);
        expect(m.retrieved[r][c]).toBe((mine[0].correct + mine[1].correct) / 2);
      }));
    }
  });

  it('draws each intervention\'s ΔNLL downsampled, says which models could not take one, and cancels', async () => {
    const { runId } = await client.call('probe.start', { kind: 'intervene', book, models, at: 64, maxTokens: 200 });
    expect((await finished(runId)).status).toBe('finished');
    const { view } = await client.call('probe.get', { runId, points: 50 });
    if (view?.kind !== 'intervene') throw new Error('not an intervention view');
    expect(view.at).toBe(64);
    expect(view.interventions.map((i) => i.intervention)).toEqual(['frozen', 'reset']);
    const [frozen, reset] = view.interventions;
    expect(frozen.models.map((m) => m.name)).toEqual(['ttt-linear']);
    expect(frozen.skipped.map((s) => s.name)).toEqual(['mamba']);
    expect(reset.models.map((m) => m.name)).toEqual(['ttt-linear', 'mamba']);
    for (const m of reset.models) {
      expect(m.rows).toBe(200);
      expect(m.x.length).toBeLessThanOrEqual(50);
    }
    // the whole series: the extremes of the stored ΔNLL survive downsampling
    const stored = Array.from(tableOf(runId, 1, 'intervene').getChild('dnll_reset')!.toArray() as Float32Array).filter(Number.isFinite);
    const drawn = reset.models[1].delta.filter((v): v is number => v !== null);
    expect(Math.max(...drawn)).toBeCloseTo(Math.max(...stored), 6);

    // cancel: a queued probe never starts; the list and probe.get say so in one line
    const first = await client.call('probe.start', { kind: 'intervene', book, models, at: 0, maxTokens: 200 });
    const second = await client.call('probe.start', { kind: 'intervene', book, models, at: 0, maxTokens: 200 });
    expect(await client.call('cancel', { runId: second.runId })).toEqual({ cancelled: true });
    expect(heard.find((h) => h.method === 'probe.finished' && (h.params as { runId: string }).runId === second.runId)?.params).toMatchObject({ status: 'cancelled' });
    await expect(client.call('probe.get', { runId: second.runId })).rejects.toThrow(`run ${second.runId}: no such probe run`);
    expect((await finished(first.runId)).status).toBe('finished');
    await expect(client.call('probe.get', { runId: '../x' })).rejects.toBeInstanceOf(EngineError);
  });

  it('answers a copy probe\'s curve as the mean over its spans at each distance', async () => {
    const { runId } = await client.call('probe.start', { kind: 'copy', book, models: [models[0]], spanTokens: 8, distances: [4, 64, 16], spans: 2 });
    expect((await finished(runId)).status).toBe('finished');
    const { view, summary } = await client.call('probe.get', { runId });
    expect(summary.detail).toMatch(/^spans of 8 tokens · 3 distances/);
    if (view?.kind !== 'copy') throw new Error('not a copy view');
    const [m] = view.models;
    expect(m.distances).toEqual([4, 16, 64]);
    const rows = tableOf(runId, 0, 'copy').toArray().map((r) => r.toJSON() as { distance: number; nll_first: number; nll_second: number });
    m.distances.forEach((D, i) => {
      const mine = rows.filter((r) => r.distance === D);
      expect(mine).toHaveLength(2);
      expect(m.second[i]).toBeCloseTo((mine[0].nll_second + mine[1].nll_second) / 2, 10);
      expect(m.first[i]).toBeCloseTo((mine[0].nll_first + mine[1].nll_first) / 2, 10);
    });
  });

  it('refuses a missing book or model at the request, in one line', async () => {
    await expect(client.call('probe.start', { kind: 'copy', book: join(work.dir, 'none.txt'), models })).rejects.toThrow(`${join(work.dir, 'none.txt')}: no such file`);
    await expect(client.call('probe.start', { kind: 'needle', book, models: [work.dir] })).rejects.toThrow(/config\.json/);
  });
});
