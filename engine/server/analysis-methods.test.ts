/**
 * The analysis methods behind the charts (getSeries zoom and cache, getSnapshots, getTokens, getComparison), over
 * an in-memory client/server pair, on real runs of tiny models.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeBook } from '../analysis/analyze.js';
import { clearColumnCache, decodeCount } from '../analysis/column-cache.js';
import { pca2 } from '../analysis/linalg.js';
import { readSafetensors } from '../core/safetensors.js';
import { selectBackend } from '../core/backend.js';
import { EngineError, type RunManifest, RpcClient } from '../protocol.js';
import { sampleText, tempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { EngineService } from './engine-service.js';
import { createRpcServer } from './rpc-server.js';

const work = tempDir();
const runsDir = join(work.dir, 'data', 'runs');
const text = sampleText.repeat(4); // ~2.2 KB: reaches the 1k–8k range of the comparison table
const tokens = 1600;
let client: RpcClient;
let run: RunManifest, other: RunManifest;

beforeAll(async () => {
  const backend = await selectBackend('wasm');
  const book = join(work.dir, 'book.txt');
  const otherBook = join(work.dir, 'other.txt');
  writeFileSync(book, text);
  writeFileSync(otherBook, text.toUpperCase());
  const models = ['ttt-linear', 'ttt-mlp', 'mamba'] as const;
  const dirs = models.map((arch) => writeTinyModel(work.dir, arch));
  run = (await analyzeBook({ book, models: dirs, runsDir, runId: 'run-a', backend, maxTokens: tokens, snapshots: 6 })).manifest;
  other = (await analyzeBook({ book: otherBook, models: [dirs[0]], runsDir, runId: 'run-b', backend, maxTokens: 100 })).manifest;
  const service = new EngineService({ dataDir: join(work.dir, 'data'), backend });
  const server = createRpcServer(service.handlers, () => undefined);
  client = new RpcClient((frame) => void server.handle(frame).then((reply) => reply && client.receive(reply)));
}, 120_000);
afterAll(() => work.cleanup());

const key = (arch: string) => run.models.find((m) => m.name === arch)!.key;
const arrow = (manifest: RunManifest, arch: string, file: string) =>
  tableFromIPC(readFileSync(join(runsDir, manifest.id, manifest.models.find((m) => m.name === arch)!.files[file])));

describe('getSeries on large files', () => {
  it('decodes a file once and answers zooms from the cache, with every point inside the range', async () => {
    clearColumnCache();
    const before = decodeCount();
    const all = await client.call('getSeries', { runId: 'run-a', model: key('ttt-linear'), series: 'nll', points: 100 });
    expect(all.rows).toBe(tokens - 1);
    expect(all.x.length).toBeLessThanOrEqual(100);
    const zoom = await client.call('getSeries', { runId: 'run-a', model: key('ttt-linear'), series: 'nll', start: 500, end: 540, points: 100 });
    expect(zoom.rows).toBe(40);
    expect(zoom.downsampled).toBe(false);
    expect(zoom.x).toEqual(Array.from({ length: 40 }, (_, i) => 500 + i));
    const stored = arrow(run, 'ttt-linear', 'nll').getChild('nll')!.toArray() as Float32Array;
    expect(zoom.columns.nll[0]).toBeCloseTo(stored[499], 6); // row r holds position r + 1
    await client.call('getSeries', { runId: 'run-a', model: key('ttt-linear'), series: 'nll', reduce: 'logmean', points: 20 });
    expect(decodeCount() - before).toBe(1);
  });

  it('gives the inner loop per layer with its reduction, before − after and after / before', async () => {
    const s = await client.call('getSeries', { runId: 'run-a', model: key('ttt-linear'), series: 'innerLoop', layer: 1, points: 10_000 });
    expect(Object.keys(s.columns).sort()).toEqual(['after', 'before', 'init', 'ratio', 'reduction']);
    expect(s.rows).toBe(Math.floor(tokens / 16));
    for (let i = 0; i < s.x.length; i += 17) {
      expect(s.columns.reduction[i]).toBeCloseTo(s.columns.before[i] - s.columns.after[i], 5);
      expect(s.columns.ratio[i]).toBeCloseTo(s.columns.after[i] / s.columns.before[i], 5);
    }
    const zoomed = await client.call('getSeries', { runId: 'run-a', model: key('ttt-linear'), series: 'innerLoop', layer: 1, start: 320, end: 800 });
    expect(zoomed.x.every((x) => x >= 320 && x < 800)).toBe(true);
    expect(zoomed.rows).toBe(30); // mini-batches ending at 335, 351, … 799
  });
});

describe('getSnapshots', () => {
  it('gives a PCA trajectory of every snapshot and spectra whose squares sum to ‖W‖²', async () => {
    const s = await client.call('getSnapshots', { runId: 'run-a', model: key('ttt-linear'), layer: 0 });
    expect(s.matrices).toEqual(['W1']);
    expect(s.miniBatchSize).toBe(16);
    expect(s.positions.length).toBeGreaterThanOrEqual(5);
    expect(s.positions.every((p) => (p + 1) % 16 === 0)).toBe(true);
    expect(s.pca.x.length).toBe(s.positions.length);
    expect(s.spectra.map((x) => x.position)).toEqual([s.positions[0], s.positions[Math.floor((s.positions.length - 1) / 2)], s.positions.at(-1)]);
    // independent check against the stored tensors: PCA of the same vectors, and Frobenius norms
    const file = readSafetensors(readFileSync(join(runsDir, 'run-a', run.models[0].files.snapshots)), 'snapshots');
    const vectors = s.positions.map((p) => file.tensors.get(`layers.0.W1.mb${(p + 1) / 16 - 1}`)!.data);
    expect(s.pca.x).toEqual(pca2(vectors).x.map((v) => expect.closeTo(v, 6)));
    const last = vectors.at(-1)!;
    expect(s.spectra.at(-1)!.values.length).toBe(64); // 4 heads × 16
    expect(s.spectra.at(-1)!.values.reduce((sum, v) => sum + v * v, 0)).toBeCloseTo(last.reduce((sum, v) => sum + v * v, 0), 3);
    const picked = await client.call('getSnapshots', { runId: 'run-a', model: key('ttt-linear'), layer: 0, spectra: [s.positions[1] + 3] });
    expect(picked.spectra.map((x) => x.position)).toEqual([s.positions[1]]);
  });

  it('has W1 and W2 for TTT-MLP, and a one-line error for models without snapshots', async () => {
    const w2 = await client.call('getSnapshots', { runId: 'run-a', model: key('ttt-mlp'), layer: 1, matrix: 'W2' });
    expect(w2.matrices).toEqual(['W1', 'W2']);
    expect(w2.spectra[0].values.length).toBe(4 * 16); // [heads, 4·16, 16]: 16 singular values per head
    await expect(client.call('getSnapshots', { runId: 'run-a', model: key('mamba'), layer: 0 })).rejects.toThrow(/run run-a: model mamba has no weight-snapshot series/);
    await expect(client.call('getSnapshots', { runId: 'run-a', model: key('ttt-linear'), layer: 9 })).rejects.toThrow(/no W1 snapshots for layer 9 \(layers 0\.\.1/);
  });
});

describe('getTokens', () => {
  it('reads the book back token by token with each token\'s NLL, position 0 unpredicted', async () => {
    const w = await client.call('getTokens', { runId: 'run-a', model: key('ttt-linear'), start: 0, count: 300 });
    expect(w.total).toBe(tokens);
    expect(w.tokens.join('')).toBe(text.slice(0, 300));
    expect(w.nll[0]).toBeNull();
    const stored = arrow(run, 'ttt-linear', 'nll').getChild('nll')!.toArray() as Float32Array;
    expect(w.nll.slice(1, 4)).toEqual(Array.from(stored.subarray(0, 3)));
    const end = await client.call('getTokens', { runId: 'run-a', model: key('ttt-linear'), start: tokens - 10, count: 4096 });
    expect(end.tokens.length).toBe(10);
    await expect(client.call('getTokens', { runId: 'run-a', model: key('ttt-linear'), start: 0, count: 5000 })).rejects.toThrow(/invalid params for getTokens: count/);
  });

  it('gives the NLL difference to another model on the same book, and refuses another book', async () => {
    const w = await client.call('getTokens', { runId: 'run-a', model: key('ttt-linear'), start: 100, count: 50, compare: { model: key('mamba') } });
    const mamba = arrow(run, 'mamba', 'nll').getChild('nll')!.toArray() as Float32Array;
    expect(w.byteAligned).toBe(false);
    expect(w.diff![0]).toBeCloseTo(w.nll[0]! - mamba[99], 6);
    await expect(client.call('getTokens', { runId: 'run-a', model: key('ttt-linear'), start: 0, count: 5, compare: { runId: 'run-b', model: other.models[0].key } }))
      .rejects.toThrow(EngineError);
  });
});

describe('getComparison', () => {
  it('tabulates bits per byte overall and per byte range, consistent with the manifests', async () => {
    const c = await client.call('getComparison', { runIds: ['run-a'] });
    expect(c.ranges.map((r) => r.label)).toEqual(['0–1k', '1k–8k', '8k–64k', '64k+']);
    expect(c.rows.map((r) => r.name)).toEqual(['ttt-linear', 'ttt-mlp', 'mamba']);
    for (const [i, row] of c.rows.entries()) {
      expect(row.bitsPerByte).toBeCloseTo(run.models[i].bitsPerByte!, 5);
      expect(row.bytes).toBe(tokens - 1);
      // byte-level: bytes 1..1023 then 1024..1599 make up the whole
      const [early, later, none] = row.ranges;
      expect(none).toBeNull();
      expect((early! * 1023 + later! * 576) / 1599).toBeCloseTo(row.bitsPerByte!, 6);
    }
    expect(c.curves).toHaveLength(3);
    expect(c.curves[0].x.every((x, i, xs) => i === 0 || x > xs[i - 1])).toBe(true);
    const zoomed = await client.call('getComparison', { runIds: ['run-a'], start: 100, end: 400, points: 10 });
    expect(zoomed.curves[0].x.every((x) => x >= 100 && x < 400)).toBe(true);
    await expect(client.call('getComparison', { runIds: ['run-a', 'run-b'] })).rejects.toThrow(/run run-b: read other\.txt, not book\.txt/);
  });
});
