import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { logitsInChunks, random, randomIds, stateBytes } from '../../test/helpers/chunks.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../core/backend.js';
import { webgpuTestsRun } from '../../test/helpers/webgpu.js';
import type { FloatTensor } from '../core/safetensors.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { loadModel } from '../io/load-model.js';
import { MambaModel, parseMambaConfig, scanBlockSize } from './mamba.js';
import { runChunk } from './model.js';
import { registryEntry } from './registry.js';

const fixtureDir = fileURLToPath(new URL('../../test/fixtures/parity/mamba', import.meta.url));

interface Golden {
  readonly input_ids: number[];
  readonly logits: number[];
}
const golden = JSON.parse(readFileSync(`${fixtureDir}/golden.json`, 'utf8')) as Golden;
const V = 96;

/** Largest |got − want| and where it is, so a failure says which token and logit drifted. */
function worst(got: Float32Array, want: ArrayLike<number>, cols: number): { max: number; at: string } {
  let max = 0, index = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= max)) [max, index] = [d, i];
  }
  return { max, at: `[${Math.floor(index / cols)}, ${index % cols}]` };
}

function expectClose(got: Float32Array, want: ArrayLike<number>, cols = V, tolerance = 1e-4): void {
  expect(got.length).toBe(want.length);
  const w = worst(got, want, cols);
  expect(w.max, `max |Δlogit| ${w.max.toExponential(2)} at [row, col] ${w.at}`).toBeLessThanOrEqual(tolerance);
}




interface TinyDims { readonly C: number; readonly N: number; readonly R: number; readonly V: number; readonly layers: number }

/** A tiny Mamba with random weights (expand 2, d_conv 4); `dtBias` and `aLog` push Δ and |A| where asked. */
function tinyMamba(d: TinyDims, seed: number, extremes: { dtBias?: number; aLog?: number } = {}): MambaModel {
  const next = random(seed);
  const Di = 2 * d.C;
  const tensors = new Map<string, FloatTensor>();
  const add = (name: string, shape: number[], value: () => number) =>
    tensors.set(name, { name, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, value) });
  add('backbone.embedding.weight', [d.V, d.C], () => next());
  add('backbone.norm_f.weight', [d.C], () => 1 + next() * 0.2);
  for (let l = 0; l < d.layers; l++) {
    const m = `backbone.layers.${l}.mixer.`;
    add(`backbone.layers.${l}.norm.weight`, [d.C], () => 1 + next() * 0.2);
    add(`${m}in_proj.weight`, [2 * Di, d.C], () => next() * 0.4);
    add(`${m}conv1d.weight`, [Di, 1, 4], () => next());
    add(`${m}conv1d.bias`, [Di], () => next() * 0.2);
    add(`${m}x_proj.weight`, [d.R + 2 * d.N, Di], () => next() * 0.4);
    add(`${m}dt_proj.weight`, [Di, d.R], () => next() * 0.4);
    add(`${m}dt_proj.bias`, [Di], () => extremes.dtBias ?? Math.log(Math.expm1(0.01 + (next() + 0.5) * 0.09)));
    add(`${m}A_log`, [Di, d.N], () => extremes.aLog ?? Math.log(1 + (next() + 0.5) * 15));
    add(`${m}D`, [Di], () => 1 + next() * 0.2);
    add(`${m}out_proj.weight`, [d.C, Di], () => next() * 0.4);
  }
  const config = parseMambaConfig({ architecture: 'mamba', d_model: d.C, n_layer: d.layers, vocab_size: d.V, d_state: d.N, dt_rank: d.R });
  return new MambaModel(config, tensors, 'tiny');
}

// webgpu (lavapipe in CI) scans through the fused kernel of mamba-scan-webgpu.ts
describe.each(['wasm', 'cpu', ...(webgpuTestsRun ? ['webgpu'] : [])])('Mamba on %s', (backend) => {
  let model: MambaModel;
  let tensors: Map<string, FloatTensor>;
  let config: Record<string, unknown>;
  const ids = Int32Array.from(golden.input_ids);

  beforeAll(async () => {
    await selectBackend(backend);
    model = (await loadModel(fixtureDir)).model as MambaModel;
    ({ tensors, config } = await readCheckpoint(fixtureDir));
  });
  afterAll(() => model?.dispose());

  it('matches the reference logits', async () => {
    expect(ids.length).toBeGreaterThan(scanBlockSize); // one pass crosses a scan-block boundary
    expectClose(await logitsInChunks(model, ids, [ids.length]), golden.logits);
  });

  it('gives the same logits for any chunking', async () => {
    for (const sizes of [[1], [7], [16], [5, 1, 13, 2, 40]]) expectClose(await logitsInChunks(model, ids, sizes), golden.logits);
  });

  it('agrees across scan-block alignments on a longer input', async () => {
    const long = randomIds(200, V, 3);
    const onePass = await logitsInChunks(model, long, [long.length]);
    expectClose(await logitsInChunks(model, long, [1]), onePass);
    expectClose(await logitsInChunks(model, long, [37, 64, 3]), onePass);
  });

  it('runs the loop scan (mamba-scan.ts, or the fused one on webgpu) by default and the tensor scan with form "dual", with the same logits', async () => {
    const long = randomIds(100, V, 4);
    expectClose(await logitsInChunks(model, long, [long.length], { form: 'dual' }), await logitsInChunks(model, long, [long.length]));
    expectClose(await logitsInChunks(model, ids, [ids.length], { form: 'dual' }), golden.logits);
    const extreme = tinyMamba({ C: 16, N: 8, R: 2, V: 32, layers: 1 }, 21, { dtBias: 20, aLog: Math.log(1000) });
    try {
      const x = randomIds(40, 32, 5);
      expectClose(await logitsInChunks(extreme, x, [x.length]), await logitsInChunks(extreme, x, [x.length], { form: 'dual' }), 32);
    } finally {
      extreme.dispose();
    }
  });

  it('stays finite and chunk-invariant when Δ and |A| are large (the scan never divides or overflows)', async () => {
    // Δ ≈ 20 and A = −1000: exp(ΔA) underflows to 0 (state forgotten every token); exp(−A·ΣΔ) would overflow
    const extreme = tinyMamba({ C: 16, N: 8, R: 2, V: 32, layers: 1 }, 21, { dtBias: 20, aLog: Math.log(1000) });
    const gentle = tinyMamba({ C: 16, N: 8, R: 2, V: 32, layers: 1 }, 21, { dtBias: 2, aLog: Math.log(0.01) });
    try {
      for (const m of [extreme, gentle]) {
        const x = randomIds(100, 32, 5);
        const onePass = await logitsInChunks(m, x, [x.length]);
        expect(onePass.every(Number.isFinite)).toBe(true);
        expectClose(await logitsInChunks(m, x, [1]), onePass, 32);
      }
    } finally {
      extreme.dispose();
      gentle.dispose();
    }
  });

  it('loads the Hugging Face MambaConfig form and backbone.embeddings.weight', async () => {
    const hfConfig = {
      model_type: 'mamba', vocab_size: 96, hidden_size: 64, num_hidden_layers: 2, state_size: 16, expand: 2, conv_kernel: 4,
      time_step_rank: 'auto', layer_norm_epsilon: 1e-5, intermediate_size: 128, tie_word_embeddings: true, use_bias: false, use_conv_bias: true,
    };
    expect(registryEntry(hfConfig, 'hf/config.json').family).toBe('mamba');
    const renamed = new Map(tensors);
    renamed.delete('backbone.embedding.weight');
    renamed.set('backbone.embeddings.weight', { ...tensors.get('backbone.embedding.weight')!, name: 'backbone.embeddings.weight' });
    const hf = new MambaModel(parseMambaConfig(hfConfig), renamed);
    try {
      expect(hf.config.dtRank).toBe(4); // "auto" = ceil(64 / 16)
      expect(hf.parameterCount).toBe(model.parameterCount);
      expectClose(await logitsInChunks(hf, ids, [ids.length]), golden.logits);
    } finally {
      hf.dispose();
    }
    expect(parseMambaConfig(config).dtRank).toBe(4);
  });

  it('reports the SSM state norm per layer', async () => {
    const r = runChunk(model, ids, model.initialState());
    const summary = model.stateSummary(r.state);
    expect(summary.quantity).toBe('ssm_state_norm');
    const norms = Array.from(await summary.perLayer.data());
    expect(norms.length).toBe(2);
    for (let l = 0; l < 2; l++) {
      const h = (await r.state.layers[l].ssm.data()) as Float32Array;
      expect(norms[l]).toBeCloseTo(Math.sqrt(h.reduce((n, v) => n + v * v, 0)), 4);
      expect(norms[l]).toBeGreaterThan(0);
    }
    tf.dispose([r.logits, summary.perLayer, r.state as unknown as tf.TensorContainer]);
  });

  it('does not leak tensors, and dispose() returns to the starting count', async () => {
    const start = tf.memory().numTensors;
    const loaded = (await loadModel(fixtureDir)).model as MambaModel;
    const baseline = tf.memory().numTensors;
    let state = loaded.initialState();
    for (const n of [20, 1, 40]) {
      const r = runChunk(loaded, ids.subarray(0, n), state);
      await r.logits.data();
      r.logits.dispose();
      state = r.state;
    }
    loaded.stateSummary(state).perLayer.dispose();
    tf.dispose(state as unknown as tf.TensorContainer);
    expect(tf.memory().numTensors).toBe(baseline);
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('streams a long input in memory that does not grow with position', async () => {
    // 65,536 tokens on wasm (~4 s); the cpu backend is ~20× slower here, so it streams 8,192
    const total = backend === 'wasm' ? 65_536 : 8_192, chunk = backend === 'wasm' ? 2048 : 1024;
    const d = { C: 32, N: 16, R: 2, V: 64, layers: 1 };
    const tiny = tinyMamba(d, 5);
    const x = randomIds(total, d.V, 9);
    let state = tiny.initialState();
    const initialBytes = stateBytes(state);
    const seen: { state: number; tensors: number; bytes: number }[] = [];
    for (let at = 0; at < total; at += chunk) {
      const r = runChunk(tiny, x.subarray(at, at + chunk), state);
      const logits = await r.logits.data();
      r.logits.dispose();
      state = r.state;
      expect(Number.isFinite(logits[logits.length - 1])).toBe(true);
      seen.push({ state: stateBytes(state), tensors: tf.memory().numTensors, bytes: tf.memory().numBytes });
    }
    expect(initialBytes).toBe(d.layers * (3 * 2 * d.C + 2 * d.C * d.N) * 4); // conv [k−1, Di] + ssm [Di, N]
    expect(seen.every((s) => s.state === initialBytes)).toBe(true);
    expect(new Set(seen.map((s) => s.bytes)).size).toBe(1);
    expect(new Set(seen.map((s) => s.tensors)).size).toBe(1);
    expect(state.position).toBe(total);
    tf.dispose(state as unknown as tf.TensorContainer);
    tiny.dispose();
  });
});

describe('Mamba config and checkpoint errors', () => {
  let tensors: Map<string, FloatTensor>;
  let config: Record<string, unknown>;
  beforeAll(async () => {
    await selectBackend('cpu');
    ({ tensors, config } = await readCheckpoint(fixtureDir));
  });
  const build = (c: Record<string, unknown>, t: ReadonlyMap<string, FloatTensor> = tensors) => () => new MambaModel(parseMambaConfig(c, 'mamba/config.json'), t, 'mamba/model.safetensors').dispose();

  it('names a missing tensor', () => {
    const t = new Map(tensors);
    t.delete('backbone.layers.1.mixer.A_log');
    expect(build(config, t)).toThrow(/mamba\/model\.safetensors: missing tensor backbone\.layers\.1\.mixer\.A_log/);
  });

  it('names a mis-shaped tensor', () => {
    const t = new Map(tensors);
    t.set('backbone.layers.0.mixer.x_proj.weight', { name: 'backbone.layers.0.mixer.x_proj.weight', shape: [40, 128], data: new Float32Array(40 * 128) });
    expect(build(config, t)).toThrow(/backbone\.layers\.0\.mixer\.x_proj\.weight is \[40, 128\], config\.json implies \[36, 128\] \(dt_rank \+ 2·d_state × expand·d_model\)/);
  });

  it('says which tensors disagree with a changed d_state or d_model', () => {
    expect(build({ ...config, d_state: 8 })).toThrow(/backbone\.layers\.0\.mixer\.A_log is \[128, 16\], config\.json implies \[128, 8\]/);
    expect(build({ ...config, d_model: 32, dt_rank: 'auto' })).toThrow(/backbone\.embedding\.weight is \[96, 64\], config\.json implies \[96, 32\] \(vocab_size × d_model\)/);
  });

  it('requires lm_head.weight when the head is untied', () => {
    expect(build({ ...config, tie_embeddings: false })).toThrow(/missing tensor lm_head\.weight/);
  });

  it('names config keys of the wrong type or that disagree', () => {
    expect(build({ ...config, d_state: '16' })).toThrow(/mamba\/config\.json: "d_state" should be a number, got "16"/);
    expect(build({ ...config, tie_embeddings: 1 })).toThrow(/"tie_embeddings" should be a boolean, got 1/);
    expect(build({ ...config, dt_rank: 'big' })).toThrow(/"dt_rank" must be a positive integer or "auto", got "big"/);
    expect(build({ ...config, hidden_size: 32 })).toThrow(/"d_model" \(64\) and "hidden_size" \(32\) disagree/);
    expect(build({ ...config, intermediate_size: 100 })).toThrow(/"intermediate_size" 100 disagrees with expand·d_model = 2·64 = 128/);
    expect(build({ ...config, n_layer: -1 })).toThrow(/"n_layer" must be a positive integer, got -1/);
    expect(build({ architecture: 'mamba', hidden_size: 64, num_hidden_layers: 2, vocab_size: 96, state_size: 0 })).toThrow(/"state_size" must be a positive integer, got 0/);
  });

  it('refuses a sliding window, which only attention models have', async () => {
    await expect(loadModel(fixtureDir, { window: 16 })).rejects.toThrow(/option window=16: sliding-window attention applies to llama models only; .*config\.json is a mamba model/);
  });
});
