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
import { countDispatches } from '../core/webgpu-program.js';
import { llamaTokensPerGroup } from './llama-fused-webgpu.js';
import { runChunk } from './model.js';
import { LlamaModel, parseLlamaConfig } from './transformer.js';

const fixtureDir = fileURLToPath(new URL('../../test/fixtures/parity/llama', import.meta.url));

interface Golden {
  readonly input_ids: number[];
  readonly logits: number[];
  readonly window: number;
  readonly window_logits: number[];
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

function expectClose(got: Float32Array, want: ArrayLike<number>, tolerance = 1e-4): void {
  expect(got.length).toBe(want.length);
  const w = worst(got, want, V);
  expect(w.max, `max |Δlogit| ${w.max.toExponential(2)} at [row, col] ${w.at}`).toBeLessThanOrEqual(tolerance);
}



function randomTensors(shapes: Record<string, number[]>, seed: number, scale = 0.3): Map<string, FloatTensor> {
  const next = random(seed);
  const tensors = new Map<string, FloatTensor>();
  for (const [name, shape] of Object.entries(shapes)) {
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (name.endsWith('norm.weight') ? 1 + next() * 0.2 : next() * scale));
    tensors.set(name, { name, shape, data });
  }
  return tensors;
}

/** A tiny Llama with random weights: hidden C, `layers` layers, H query heads over G K/V heads of size D. */
function tinyLlamaTensors(c: { C: number; H: number; G: number; I: number; V: number; layers: number }, seed: number): Map<string, FloatTensor> {
  const D = c.C / c.H;
  const shapes: Record<string, number[]> = { 'model.embed_tokens.weight': [c.V, c.C], 'model.norm.weight': [c.C] };
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    Object.assign(shapes, {
      [`${p}input_layernorm.weight`]: [c.C], [`${p}post_attention_layernorm.weight`]: [c.C],
      [`${p}self_attn.q_proj.weight`]: [c.H * D, c.C], [`${p}self_attn.k_proj.weight`]: [c.G * D, c.C],
      [`${p}self_attn.v_proj.weight`]: [c.G * D, c.C], [`${p}self_attn.o_proj.weight`]: [c.C, c.H * D],
      [`${p}mlp.gate_proj.weight`]: [c.I, c.C], [`${p}mlp.up_proj.weight`]: [c.I, c.C], [`${p}mlp.down_proj.weight`]: [c.C, c.I],
    });
  }
  return randomTensors(shapes, seed);
}

const tinyConfig = (c: { C: number; H: number; G: number; I: number; V: number; layers: number }) => parseLlamaConfig({
  model_type: 'llama', vocab_size: c.V, hidden_size: c.C, intermediate_size: c.I, num_hidden_layers: c.layers,
  num_attention_heads: c.H, num_key_value_heads: c.G, tie_word_embeddings: true, rms_norm_eps: 1e-6,
});


// webgpu (lavapipe in CI) runs the layers as the fused kernels of llama-fused-webgpu.ts
describe.each(['wasm', 'cpu', ...(webgpuTestsRun ? ['webgpu'] : [])])('Llama on %s', (backend) => {
  let model: LlamaModel;
  let tensors: Map<string, FloatTensor>;
  let config: Record<string, unknown>;
  const ids = Int32Array.from(golden.input_ids);

  beforeAll(async () => {
    await selectBackend(backend);
    model = (await loadModel(fixtureDir)).model as LlamaModel;
    ({ tensors, config } = await readCheckpoint(fixtureDir));
  });
  afterAll(() => model?.dispose());

  it('matches the reference logits', async () => {
    expectClose(await logitsInChunks(model, ids, [ids.length]), golden.logits);
  });

  it('matches the reference sliding-window logits (window 16: the last 16 tokens, itself included)', async () => {
    expect(golden.window).toBe(16);
    expectClose(await logitsInChunks(model, ids, [ids.length], {}, model.initialState(16)), golden.window_logits);
    const windowed = (await loadModel(fixtureDir, { window: 16 })).model as LlamaModel;
    try {
      expect(windowed.window).toBe(16);
      expectClose(await logitsInChunks(windowed, ids, [ids.length]), golden.window_logits);
    } finally {
      windowed.dispose();
    }
  });

  it('gives the same logits for any chunking, full and windowed', async () => {
    for (const sizes of [[1], [7], [16], [5, 1, 13, 2, 32]]) {
      expectClose(await logitsInChunks(model, ids, sizes), golden.logits);
      expectClose(await logitsInChunks(model, ids, sizes, {}, model.initialState(16)), golden.window_logits);
    }
  });

  it('splits long windowed chunks into query blocks that agree with token-by-token steps', async () => {
    const long = randomIds(150, V, 7); // blocks of max(W, 64) queries: 3 blocks for W ≤ 64, 2 for W = 70
    for (const window of [1, 5, 70]) {
      const onePass = await logitsInChunks(model, long, [long.length], {}, model.initialState(window));
      expectClose(await logitsInChunks(model, long, [1], {}, model.initialState(window)), onePass);
      expectClose(await logitsInChunks(model, long, [70, 3, 65], {}, model.initialState(window)), onePass);
    }
  });

  it('runs the loop attention (attention-loop.ts, or the fused one on webgpu) by default and the tensor attention with form "dual", with the same logits', async () => {
    const dual = { form: 'dual' } as const;
    expectClose(await logitsInChunks(model, ids, [ids.length], dual), golden.logits);
    expectClose(await logitsInChunks(model, ids, [ids.length], dual, model.initialState(16)), golden.window_logits);
    const long = randomIds(150, V, 8); // several query blocks of the loop (64) and of the tensor form
    for (const window of [null, 5, 70]) {
      const loop = await logitsInChunks(model, long, [100, 50], {}, model.initialState(window));
      expectClose(await logitsInChunks(model, long, [100, 50], dual, model.initialState(window)), loop);
    }
    const dims = { C: 32, H: 4, G: 2, I: 48, V: 40, layers: 1 }; // grouped-query attention
    const gqa = new LlamaModel(tinyConfig(dims), tinyLlamaTensors(dims, 12));
    try {
      const x = randomIds(80, dims.V, 2);
      expectClose(await logitsInChunks(gqa, x, [80], {}, gqa.initialState(9)), await logitsInChunks(gqa, x, [80], dual, gqa.initialState(9)), 1e-4);
    } finally {
      gqa.dispose();
    }
  });

  it('implements grouped-query attention as repeat_kv (each K/V head serves R consecutive query heads)', async () => {
    const dims = { C: 32, H: 4, G: 2, I: 48, V: 40, layers: 2 };
    const gqaTensors = tinyLlamaTensors(dims, 11);
    // the same model as plain multi-head attention: K/V head g's rows repeated for its R = H/G query heads
    const D = dims.C / dims.H, R = dims.H / dims.G;
    const mhaTensors = new Map(gqaTensors);
    for (const [name, t] of gqaTensors) {
      if (!/self_attn\.[kv]_proj/.test(name)) continue;
      const data = new Float32Array(dims.H * D * dims.C);
      for (let h = 0; h < dims.H; h++) data.set(t.data.subarray(Math.floor(h / R) * D * dims.C, (Math.floor(h / R) + 1) * D * dims.C), h * D * dims.C);
      mhaTensors.set(name, { name, shape: [dims.H * D, dims.C], data });
    }
    const gqa = new LlamaModel(tinyConfig(dims), gqaTensors);
    const mha = new LlamaModel(tinyConfig({ ...dims, G: dims.H }), mhaTensors);
    try {
      const x = randomIds(40, dims.V, 3);
      expectClose(await logitsInChunks(gqa, x, [40]), await logitsInChunks(mha, x, [40]), 1e-5);
      expectClose(await logitsInChunks(gqa, x, [3, 9], {}, gqa.initialState(6)), await logitsInChunks(mha, x, [40], {}, mha.initialState(6)), 1e-5);
    } finally {
      gqa.dispose();
      mha.dispose();
    }
  });

  it('loads an untied head from lm_head.weight and ignores a tied copy', async () => {
    const withHead = new Map(tensors);
    withHead.set('lm_head.weight', { ...tensors.get('model.embed_tokens.weight')!, name: 'lm_head.weight' });
    const untied = new LlamaModel(parseLlamaConfig({ ...config, tie_word_embeddings: false }), withHead);
    const tiedWithCopy = new LlamaModel(parseLlamaConfig(config), withHead);
    try {
      expect(untied.parameterCount).toBe(model.parameterCount + V * 64);
      expect(tiedWithCopy.parameterCount).toBe(model.parameterCount);
      expectClose(await logitsInChunks(untied, ids, [ids.length]), golden.logits);
      expectClose(await logitsInChunks(tiedWithCopy, ids, [ids.length]), golden.logits);
    } finally {
      untied.dispose();
      tiedWithCopy.dispose();
    }
  });

  it('reports the KV cache size per layer', async () => {
    const r = runChunk(model, ids, model.initialState());
    const full = model.stateSummary(r.state);
    expect(full.quantity).toBe('kv_cache_bytes');
    expect(Array.from(await full.perLayer.data())).toEqual([2, 2].map(() => 2 * 4 * ids.length * 16 * 4)); // K and V: G × P × D floats
    const w = runChunk(model, ids, model.initialState(16));
    const windowed = model.stateSummary(w.state);
    expect(Array.from(await windowed.perLayer.data())).toEqual([2, 2].map(() => 2 * 4 * 15 * 16 * 4));
    tf.dispose([r.logits, w.logits, full.perLayer, windowed.perLayer, r.state as unknown as tf.TensorContainer, w.state as unknown as tf.TensorContainer]);
  });

  it('does not leak tensors, and dispose() returns to the starting count', async () => {
    const start = tf.memory().numTensors;
    const loaded = (await loadModel(fixtureDir)).model as LlamaModel;
    const baseline = tf.memory().numTensors;
    for (const window of [null, 16]) {
      let state = loaded.initialState(window);
      for (const n of [20, 1, 32]) {
        const r = runChunk(loaded, ids.subarray(0, n), state);
        await r.logits.data();
        r.logits.dispose();
        state = r.state;
      }
      const summary = loaded.stateSummary(state);
      summary.perLayer.dispose();
      tf.dispose(state as unknown as tf.TensorContainer);
      expect(tf.memory().numTensors).toBe(baseline);
    }
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('streams a long input with a window in memory that does not grow with position', async () => {
    // 65,536 tokens on wasm (~3 s); the cpu backend is ~15× slower here, so it streams 8,192
    const total = backend === 'wasm' ? 65_536 : 8_192, chunk = backend === 'wasm' ? 2048 : 1024, W = 256;
    const dims = { C: 32, H: 2, G: 1, I: 64, V: 64, layers: 1 };
    const tiny = new LlamaModel(tinyConfig(dims), tinyLlamaTensors(dims, 5), 'tiny', { window: W });
    const x = randomIds(total, dims.V, 9);
    let state = tiny.initialState();
    const seen: { position: number; state: number; tensors: number; bytes: number }[] = [];
    for (let at = 0; at < total; at += chunk) {
      const r = runChunk(tiny, x.subarray(at, at + chunk), state);
      const logits = await r.logits.data();
      r.logits.dispose();
      state = r.state;
      expect(Number.isFinite(logits[logits.length - 1])).toBe(true);
      seen.push({ position: state.position, state: stateBytes(state), tensors: tf.memory().numTensors, bytes: tf.memory().numBytes });
    }
    const cacheBytes = 2 * dims.G * (W - 1) * (dims.C / dims.H) * 4;
    expect(seen.every((s) => s.state === cacheBytes)).toBe(true); // full from the first chunk (chunk ≥ W)
    expect(new Set(seen.map((s) => s.bytes)).size).toBe(1);
    expect(new Set(seen.map((s) => s.tensors)).size).toBe(1);
    expect(seen.at(-1)!.position).toBe(total);
    tf.dispose(state as unknown as tf.TensorContainer);
    tiny.dispose();
  });
});

describe('the fused Llama layers (llama-fused-webgpu.ts)', () => {
  it('fit a workgroup\'s memory by tokens per workgroup, or not at all', () => {
    const shape = { C: 256, I: 704, H: 4, G: 4, D: 64, V: 256, eps: 1e-6 };
    expect(llamaTokensPerGroup(shape, 32768)).toBe(8); // the bench preset on a 32 KiB device
    expect(llamaTokensPerGroup({ ...shape, C: 768, H: 12 }, 32768)).toBe(3); // 125m
    expect(llamaTokensPerGroup({ ...shape, C: 4096, H: 32 }, 32768)).toBe(0); // a 7B layer keeps the op-by-op path
    expect(llamaTokensPerGroup(shape, 16384)).toBe(4); // WebGPU's guaranteed 16 KiB
  });

  describe.skipIf(!webgpuTestsRun)('on webgpu', () => {
    beforeAll(async () => {
      await selectBackend('webgpu');
    });

    it('take three dispatches per layer, the head and embedding included, and equal the tensor form', async () => {
      const dims = { C: 40, H: 4, G: 2, I: 80, V: 50, layers: 3 }; // head size 10, I past a tile of 64
      const llama = new LlamaModel(tinyConfig(dims), tinyLlamaTensors(dims, 21), 'tiny', { window: 40 });
      try {
        const x = randomIds(37, dims.V, 4);
        const state = llama.initialState();
        const { result, dispatches } = await countDispatches(async () => runChunk(llama, x, state));
        await result.logits.data();
        tf.dispose([result as unknown as tf.TensorContainer, state as unknown as tf.TensorContainer]);
        expect(dispatches).toBe(3 * dims.layers);
        // chunks shorter and longer than the window (cut from all S rows then), 11 tokens: not whole workgroups
        const long = randomIds(130, dims.V, 5);
        const dual = await logitsInChunks(llama, long, [130], { form: 'dual' });
        expectClose(await logitsInChunks(llama, long, [11, 64, 55]), dual, 1e-4);
        expectClose(await logitsInChunks(llama, long, [130], {}, llama.initialState(null)), await logitsInChunks(llama, long, [130], { form: 'dual' }, llama.initialState(null)), 1e-4);
      } finally {
        llama.dispose();
      }
    });

    it('split into pipeline stages give the whole model\'s logits', async () => {
      const dims = { C: 32, H: 2, G: 1, I: 64, V: 40, layers: 3 };
      const tensors = tinyLlamaTensors(dims, 22);
      const whole = new LlamaModel(tinyConfig(dims), tensors);
      const first = new LlamaModel(tinyConfig(dims), tensors, 'tiny', { layers: { start: 0, end: 1 } });
      const rest = new LlamaModel(tinyConfig(dims), tensors, 'tiny', { layers: { start: 1, end: 3 } });
      try {
        const x = randomIds(30, dims.V, 6);
        const want = await logitsInChunks(whole, x, [30]);
        const a = first.forwardStage(x, first.initialState());
        const b = rest.forwardStage(a.output, rest.initialState());
        expectClose(await b.output.data() as Float32Array, want, 1e-5);
        tf.dispose([a as unknown as tf.TensorContainer, b as unknown as tf.TensorContainer]);
      } finally {
        for (const m of [whole, first, rest]) m.dispose();
      }
    });
  });
});

describe('Llama config and checkpoint errors', () => {
  let tensors: Map<string, FloatTensor>;
  let config: Record<string, unknown>;
  beforeAll(async () => {
    await selectBackend('cpu');
    ({ tensors, config } = await readCheckpoint(fixtureDir));
  });
  const build = (c: Record<string, unknown>, t: ReadonlyMap<string, FloatTensor> = tensors) => () => new LlamaModel(parseLlamaConfig(c, 'llama/config.json'), t, 'llama/model.safetensors').dispose();

  it('names a missing tensor', () => {
    const t = new Map(tensors);
    t.delete('model.layers.1.mlp.up_proj.weight');
    expect(build(config, t)).toThrow(/llama\/model\.safetensors: missing tensor model\.layers\.1\.mlp\.up_proj\.weight/);
  });

  it('names a mis-shaped tensor and an unexpected one', () => {
    const t = new Map(tensors);
    t.set('model.layers.0.self_attn.o_proj.weight', { name: 'model.layers.0.self_attn.o_proj.weight', shape: [64, 32], data: new Float32Array(64 * 32) });
    t.set('model.layers.2.input_layernorm.weight', { name: 'model.layers.2.input_layernorm.weight', shape: [64], data: new Float32Array(64) });
    expect(build(config, t)).toThrow(/model\.layers\.0\.self_attn\.o_proj\.weight is \[64, 32\], config\.json implies \[64, 64\].*unexpected tensor model\.layers\.2\.input_layernorm\.weight/);
  });

  it('says which tensors disagree with a changed hidden_size', () => {
    expect(build({ ...config, hidden_size: 32 })).toThrow(/model\.embed_tokens\.weight is \[96, 64\], config\.json implies \[96, 32\] \(vocab_size × hidden_size\)/);
  });

  it('requires lm_head.weight when the head is untied', () => {
    expect(build({ ...config, tie_word_embeddings: false })).toThrow(/missing tensor lm_head\.weight/);
  });

  it('names config keys of the wrong type or inconsistent values', () => {
    expect(build({ ...config, num_attention_heads: '4' })).toThrow(/llama\/config\.json: "num_attention_heads" should be a number, got "4"/);
    expect(build({ ...config, tie_word_embeddings: 'yes' })).toThrow(/"tie_word_embeddings" should be a boolean/);
    expect(build({ ...config, num_key_value_heads: 3 })).toThrow(/num_attention_heads 4 is not a multiple of num_key_value_heads 3/);
    expect(build({ ...config, num_hidden_layers: 0 })).toThrow(/"num_hidden_layers" must be a positive integer, got 0/);
    expect(build({ ...config, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(/rope_scaling .* is not supported/);
    expect(build({ ...config, hidden_act: 'gelu' })).toThrow(/hidden_act "gelu" is not supported/);
  });

  it('rejects a bad window and token ids outside the vocabulary', async () => {
    await expect(loadModel(fixtureDir, { window: 0 })).rejects.toThrow(/option window=0: must be a positive integer/);
    await expect(loadModel(fixtureDir, { window: 2.5 })).rejects.toThrow(/option window=2\.5/);
    const model = new LlamaModel(parseLlamaConfig(config), tensors);
    const state = model.initialState();
    try {
      expect(() => runChunk(model, Int32Array.from([1, 2, 96]), state)).toThrow(/input_ids\[2\]|position 2/);
    } finally {
      tf.dispose(state as unknown as tf.TensorContainer);
      model.dispose();
    }
  });
});
