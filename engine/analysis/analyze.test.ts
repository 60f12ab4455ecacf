import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableFromIPC } from 'apache-arrow';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendInfo, selectBackend } from '../core/backend.js';
import { readSafetensors, writeSafetensors } from '../core/safetensors.js';
import { StagePipeline } from '../runtime/pipeline.js';
import { computeLogits } from '../cli/logits.js';
import { loadModel } from '../io/load-model.js';
import { sampleText, tempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { analyzeBook } from './analyze.js';
import { readSeries } from './run-store.js';
import { partsDirOf } from './arrow-writer.js';
import { aggregatesFromRun, type RunAggregator } from './aggregates.js';
import { compareRuns, rowOf } from './comparison.js';

const work = tempDir();
let backend: BackendInfo;
let ttt: string, mlp: string, mamba: string, llama: string;
const book = join(work.dir, 'genesis.txt');

beforeAll(async () => {
  backend = await selectBackend('wasm');
  ttt = writeTinyModel(work.dir, 'ttt-linear');
  mlp = writeTinyModel(work.dir, 'ttt-mlp');
  mamba = writeTinyModel(work.dir, 'mamba');
  llama = writeTinyModel(work.dir, 'transformer');
  writeFileSync(book, sampleText.repeat(2));
});
afterAll(() => work.cleanup());

const readArrow = (path: string) => tableFromIPC(readFileSync(path));

describe('analyzeBook', () => {
  it('writes per-token NLL that matches the model\'s own logits, and bits per byte', async () => {
    const runDir = join(work.dir, 'run-nll');
    const { manifest } = await analyzeBook({ book, models: [ttt], runDir, backend, chunkTokens: 48, maxTokens: 300 });
    expect(manifest.status).toBe('finished');
    const m = manifest.models[0];
    expect(m.status).toBe('finished');
    expect(m.tokensDone).toBe(300);
    expect(m.predictedTokens).toBe(299);
    const tokens = readArrow(join(runDir, m.files.nll));
    expect(tokens.numRows).toBe(299);
    expect(tokens.schema.fields.map((f) => f.name)).toEqual(['position', 'token', 'nll', 'bytes']);
    // independent check: log-softmax of logits computed in one pass
    const ids = Int32Array.from(new TextEncoder().encode(sampleText.repeat(2)).subarray(0, 300));
    const { model } = await loadModel(ttt);
    const logits = await computeLogits(model, ids);
    model.dispose();
    const nll = tokens.getChild('nll')!.toArray() as Float32Array;
    for (const t of [0, 17, 100, 298]) {
      const row = logits.subarray(t * 256, (t + 1) * 256);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      expect(nll[t]).toBeCloseTo(lse - row[ids[t + 1]], 4);
    }
    const sum = nll.reduce((a, b) => a + b, 0);
    expect(m.bitsPerByte!).toBeCloseTo(sum / Math.LN2 / 299, 4);
    expect(m.bitsPerByte!).toBeGreaterThan(7); // an untrained byte model is near uniform: log2(256) = 8
  });

  it('records the TTT inner loop, hidden-state evolution and W snapshots', async () => {
    const runDir = join(work.dir, 'run-ttt');
    const { manifest } = await analyzeBook({ book, models: [ttt, mlp], runDir, backend, chunkTokens: 40, maxTokens: 200, snapshots: 4 });
    for (const m of manifest.models) {
      const inner = readArrow(join(runDir, m.files.innerLoop));
      expect(inner.numRows).toBe(2 * Math.floor(200 / 16)); // 2 layers × finished mini-batches
      expect(inner.schema.fields.map((f) => f.name)).toEqual(['layer', 'mini_batch', 'position', 'init', 'before', 'after']);
      const layer = inner.getChild('layer')!.toArray() as Int32Array;
      const positions = Array.from(inner.getChild('position')!.toArray() as Int32Array).filter((_, i) => layer[i] === 0);
      expect(positions.slice(0, 4)).toEqual([15, 31, 47, 63]);
      const hidden = readArrow(join(runDir, m.files.hiddenState));
      const expected = m.architecture.startsWith('TTT-MLP') ? 8 : 4;
      expect(hidden.schema.fields.length).toBe(3 + expected);
      const distInit = hidden.getChild('W1_dist_init')!.toArray() as Float32Array;
      const cos = hidden.getChild('W1_cos_init')!.toArray() as Float32Array;
      for (const v of cos) expect(v).toBeLessThanOrEqual(1 + 1e-5);
      expect(Math.max(...distInit)).toBeGreaterThan(0);
      const snaps = readSafetensors(readFileSync(join(runDir, m.files.snapshots)), 'snapshots').tensors;
      expect(snaps.size).toBeGreaterThanOrEqual(2 * 3);
      expect([...snaps.keys()][0]).toMatch(/^layers\.\d\.W[12]\.mb\d+$/);
      // the series reader gives the same rows, reduced on request
      const series = await readSeries(runDir, manifest, m.key, 'innerLoop', { layer: 1, points: 4 });
      expect(series.rows).toBe(Math.floor(200 / 16));
      expect(series.x.length).toBeLessThanOrEqual(4);
      expect(Object.keys(series.columns)).toEqual(['init', 'before', 'after', 'reduction', 'ratio']);
    }
  });

  it('stops between chunks on cancel, leaving a readable partial run marked cancelled', async () => {
    const runDir = join(work.dir, 'run-cancel');
    const controller = new AbortController();
    const { manifest } = await analyzeBook({
      book, models: [ttt, mlp], runDir, backend, chunkTokens: 32, signal: controller.signal, progressIntervalMs: 0,
      onProgress: (p) => p.models[0].tokensDone >= 64 && controller.abort(),
    });
    expect(manifest.status).toBe('cancelled');
    expect(manifest.models[0].status).toBe('cancelled');
    expect(manifest.models[0].tokensDone).toBe(64);
    expect(manifest.models[1].status).toBe('cancelled');
    expect(manifest.models[1].tokensDone).toBeLessThan(manifest.models[1].tokensTotal);
    const tokens = readArrow(join(runDir, manifest.models[0].files.nll));
    expect(tokens.numRows).toBe(64);
    const onDisk = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as { status: string };
    expect(onDisk.status).toBe('cancelled');
  });

  it('reads a live model that has stored no rows yet as an empty series (a zoom on a live run asks for it)', async () => {
    const runDir = join(work.dir, 'run-before-first-rows');
    const { manifest } = await analyzeBook({ book, models: [ttt], runDir, backend, chunkTokens: 48, maxTokens: 100 });
    const m = manifest.models[0];
    const path = join(runDir, m.files.nll);
    // what a writer leaves between opening and its first flush: an empty segment folder and no final file
    renameSync(path, `${path}.kept`);
    mkdirSync(partsDirOf(path));
    try {
      const series = await readSeries(runDir, manifest, m.key, 'nll', { start: 10, end: 90, reduce: 'logmean', points: 40 });
      expect(series.rows).toBe(0);
      expect(series.x).toHaveLength(0);
      expect(series.columns).toEqual({});
    } finally {
      rmSync(partsDirOf(path), { recursive: true });
      renameSync(`${path}.kept`, path);
    }
    expect((await readSeries(runDir, manifest, m.key, 'nll', { points: 100_000 })).rows).toBe(99);
  });

  it('writes the same columns from two pipeline stages as from one', async () => {
    const run = (stages: number) => analyzeBook({
      book, models: [ttt, mlp, mamba, llama], runDir: join(work.dir, `run-stages-${stages}`), backend, stages, chunkTokens: 48, maxTokens: 200, snapshots: 4,
    });
    const one = await run(1), two = await run(2);
    expect(one.manifest.models.map((m) => m.stages)).toEqual(new Array(4).fill([{ start: 0, end: 2 }]));
    expect(two.manifest.models.map((m) => m.stages)).toEqual(new Array(4).fill([{ start: 0, end: 1 }, { start: 1, end: 2 }]));
    for (const [i, m] of one.manifest.models.entries()) {
      const other = two.manifest.models[i];
      expect(other.status).toBe('finished');
      expect(other.parameters).toBe(m.parameters);
      expect(other.bitsPerByte!).toBeCloseTo(m.bitsPerByte!, 6);
      for (const [series, file] of Object.entries(m.files).filter(([k, f]) => f.endsWith('.arrow') && k !== 'throughput')) {
        const a = readArrow(join(one.runDir, file)), b = readArrow(join(two.runDir, other.files[series]));
        expect(b.schema.fields.map((f) => f.name), `${m.name} ${series}`).toEqual(a.schema.fields.map((f) => f.name));
        expect(b.numRows).toBe(a.numRows);
        for (const field of a.schema.fields) {
          const x = a.getChild(field.name)!.toArray() as Float32Array, y = b.getChild(field.name)!.toArray() as Float32Array;
          const d = x.reduce((worst, v, j) => Math.max(worst, Math.abs(v - y[j])), 0);
          expect(d, `${m.name} ${series}.${field.name}`).toBeLessThanOrEqual(1e-6);
        }
      }
      if (m.files.snapshots) {
        const a = readSafetensors(readFileSync(join(one.runDir, m.files.snapshots)), 'one').tensors;
        const b = readSafetensors(readFileSync(join(two.runDir, other.files.snapshots)), 'two').tensors;
        expect([...b.keys()]).toEqual([...a.keys()]);
      }
    }
  });

  it('fails a model in one line when a stage worker dies, and the other models of the run go on', async () => {
    const started: Promise<StagePipeline>[] = [];
    let injected = false;
    const { manifest } = await analyzeBook({
      book, models: [ttt, mlp], runDir: join(work.dir, 'run-crash'), backend, stages: 2, chunkTokens: 32, progressIntervalMs: 0,
      startPipeline: (options) => {
        const pipeline = StagePipeline.start(options);
        started.push(pipeline); // in model order: each model starts its workers before its first await
        return pipeline;
      },
      onProgress: (p) => {
        if (injected || p.models[0].tokensDone < 64) return;
        injected = true;
        void started[0].then((pipeline) => pipeline.injectFault(1, 'exit'));
      },
    });
    expect(manifest.status).toBe('failed');
    expect(manifest.models[0].status).toBe('failed');
    expect(manifest.models[0].error).toMatch(/^model stage 2 of 2 \(layers 1–1\): stopped \(its thread exited with code 3\)$/);
    expect(manifest.error).toMatch(/^1 of 2 models failed: ttt-linear: model stage 2 of 2/);
    expect(manifest.models[1].status).toBe('finished');
    expect(manifest.models[1].tokensDone).toBe(manifest.models[1].tokensTotal);
    expect(readArrow(join(work.dir, 'run-crash', manifest.models[0].files.nll)).numRows).toBeGreaterThanOrEqual(64);
  });

  it('starts at most one stage worker per layer, however many stages are asked for', async () => {
    const asked: (number | undefined)[] = [];
    const { manifest } = await analyzeBook({
      book, models: [ttt], runDir: join(work.dir, 'run-stages'), backend, stages: 64, chunkTokens: 64, maxTokens: 128,
      startPipeline: (options) => (asked.push(options.stages), StagePipeline.start(options)),
    });
    expect(asked).toEqual([manifest.models[0].layers]);
    expect(manifest.models[0].stages).toHaveLength(manifest.models[0].layers);
  });

  it('fails a model whose loss is not a number, alone, keeping what it computed before', async () => {
    const broken = writeTinyModel(work.dir, 'ttt-linear', 'nan-weights');
    const weights = join(broken, 'model.safetensors');
    const file = readSafetensors(readFileSync(weights), weights);
    const tensors = [...file.tensors.entries()].map(([name, t]) => ({ name, shape: t.shape, data: name.includes('lm_head') || name.endsWith('norm.weight') ? t.data.map(() => NaN) : t.data }));
    writeFileSync(weights, writeSafetensors(tensors, 'F32'));
    const { manifest } = await analyzeBook({ book, models: [broken, mamba], runDir: join(work.dir, 'run-nan'), backend, chunkTokens: 32, maxTokens: 200 });
    expect(manifest.models[0].status).toBe('failed');
    expect(manifest.models[0].error).toBe('nan-weights: the loss is not a number from token 1 on (NaN or infinite: its weights or activations overflowed); the model stopped there');
    expect(manifest.models[1].status).toBe('finished');
    expect(manifest.status).toBe('failed');
  });

  it('advances the models side by side, and keeps chart aggregates that equal those read back from the files', async () => {
    let aggregator: RunAggregator | null = null;
    const spread: number[] = [];
    const { manifest, runDir } = await analyzeBook({
      book, models: [ttt, mlp, mamba, llama], runDir: join(work.dir, 'run-live'), backend, chunkTokens: 32, maxTokens: 600, progressIntervalMs: 0,
      onStart: (_id, _dir, a) => (aggregator = a),
      onProgress: (p) => {
        const running = p.models.filter((m) => m.status === 'running').map((m) => m.tokensDone / m.tokensTotal);
        if (running.length > 1) spread.push(Math.max(...running) - Math.min(...running));
      },
    });
    expect(manifest.status).toBe('finished');
    expect(spread.length).toBeGreaterThan(10);
    // never more than the chunks in flight plus one ahead: (stages + 2) chunks of 32 out of 600 tokens
    expect(Math.max(...spread)).toBeLessThanOrEqual((3 * 32) / 600 + 1e-9);
    const live = aggregator!.take(true);
    const stored = await aggregatesFromRun(runDir, manifest);
    expect(stored).toEqual(live);
    const ttt0 = live.models[0];
    const counted = ttt0.tokens.raw.count.nll.reduce((a, b) => a + b, 0);
    expect(counted).toBe(599);
    expect(ttt0.innerLoop).toHaveLength(2);
    expect(ttt0.hiddenState[0].first.W1_dist_init.length).toBeGreaterThan(0);
    expect(live.models[2].modelState).toHaveLength(2);
    const sum = ttt0.tokens.smoothed.sum.nll.reduce((a, b) => a + b, 0);
    expect(sum / Math.LN2 / ttt0.tokens.smoothed.sum.bytes.reduce((a, b) => a + b, 0)).toBeCloseTo(manifest.models[0].bitsPerByte!, 9);
    // the Comparison tab of the live run (from its byte-offset sums) shows what getComparison reads from the files
    const compared = await compareRuns(() => runDir, async () => manifest, { runIds: [manifest.id] });
    live.models.forEach((m, i) => {
      const { figures, curve } = rowOf(m.byteOffsets!);
      const { bytes, bitsPerByte, ranges } = compared.rows[i];
      expect(figures).toEqual({ bytes, bitsPerByte, ranges });
      expect(curve).toEqual({ x: compared.curves[i].x, y: compared.curves[i].y });
      expect(bitsPerByte).toBe(manifest.models[i].bitsPerByte);
    });
  });

  it('runs a Transformer within its trained context by default, and says so', async () => {
    const shipped = fileURLToPath(new URL('../../assets/models/transformer', import.meta.url));
    const sample = fileURLToPath(new URL('../../assets/books/kjv-new-testament.txt', import.meta.url));
    const run = (window?: number | 'full') => analyzeBook({ book: sample, models: [shipped], runDir: join(work.dir, `run-window-${window}`), backend, maxTokens: 1500, window });
    const byDefault = (await run()).manifest, asked = (await run(1024)).manifest;
    expect(byDefault.settings.window).toBeNull();
    expect(byDefault.models[0].window).toBe(1024);
    expect(byDefault.models[0].attention).toBe('window 1,024, its trained context');
    expect(asked.models[0].attention).toBe('window 1,024 (asked for; trained context 1,024)');
    expect(byDefault.models[0].bitsPerByte).toBe(asked.models[0].bitsPerByte);
    const full = (await run('full')).manifest;
    expect(full.models[0].window).toBeNull();
    expect(full.models[0].attention).toBe('full attention (asked for; trained context 1,024)');
    // past its trained context, full attention is another (worse) model of the same text
    expect(full.models[0].bitsPerByte).not.toBe(byDefault.models[0].bitsPerByte);
  });

  it('leaks no tensors over a run', async () => {
    const before = tf.memory().numTensors;
    await analyzeBook({ book, models: [mlp], runDir: join(work.dir, 'run-leak'), backend, chunkTokens: 24, maxTokens: 100 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses bad books and mismatched tokenizers before writing anything', async () => {
    const empty = join(work.dir, 'empty.txt');
    writeFileSync(empty, '');
    await expect(analyzeBook({ book: empty, models: [ttt], runDir: join(work.dir, 'run-empty'), backend })).rejects.toThrow(/empty\.txt: the file is empty/);
    const binary = join(work.dir, 'blob.bin');
    writeFileSync(binary, Buffer.from([0, 1, 2, 3, 0, 255, 0, 7]));
    await expect(analyzeBook({ book: binary, models: [ttt], runDir: join(work.dir, 'run-bin'), backend })).rejects.toThrow(/blob\.bin: looks like a binary file/);
    const small = writeTinyModel(work.dir, 'ttt-linear', 'vocab-100', { vocab_size: 100, tokenizer: 'bytes' });
    await expect(analyzeBook({ book, models: [small], runDir: join(work.dir, 'run-vocab'), backend })).rejects.toThrow(/vocab-100\/config\.json: .*256.*100/);
  });
});
