import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../core/backend.js';
import { causalAttentionLoop } from './attention-loop.js';
import { selectiveScanLoop } from './mamba-scan.js';
import { simdKernels, useSimdKernels } from './simd-kernels.js';

/** Uniform values in [lo, hi) from a fixed seed. */
function uniform(n: number, lo: number, hi: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: n }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return lo + ((hi - lo) * state) / 2 ** 31;
  });
}

/** Largest |a − b| / (1 + |b|) over two tensors of one shape. */
async function worst(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  expect(a.shape).toEqual(b.shape);
  const [x, y] = [await a.data(), await b.data()];
  let max = 0;
  for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  return Number.isNaN(max) ? Infinity : max;
}

/** `f` with the kernels on, then with the JavaScript loops, as [kernels, loops]. */
function bothWays<R>(f: () => R): [R, R] {
  useSimdKernels(true);
  const fast = f();
  useSimdKernels(false);
  const plain = f();
  useSimdKernels(true);
  return [fast, plain];
}

describe('WebAssembly SIMD kernels on wasm', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  afterEach(() => useSimdKernels(true));

  it('compile here (the module validates)', () => {
    expect(simdKernels()).not.toBeNull();
  });

  it('run the selective scan (softplus of Δ included) as the JavaScript loop does, for d_state 3, 8 and 16', async () => {
    for (const [T, Di, N, seed] of [[37, 12, 8, 1], [70, 8, 16, 2], [20, 4, 3, 3]]) {
      const t = (shape: number[], lo: number, hi: number, s: number) => tf.tensor(uniform(shape.reduce((a, b) => a * b), lo, hi, seed * 10 + s), shape);
      const R = 3;
      // dtIn·dt_proj from −30 to 30: both sides of softplus's threshold (20) and far below 0; A down to −1,000: exp(ΔA) underflows
      const [u, xdbl, dtProj, dtBias, A, D, h0] = [
        t([T, Di], -2, 2, 1), t([T, R + 2 * N], -2, 2, 2), t([R, Di], -5, 5, 3), t([Di], -1, 1, 4), t([Di, N], -1000, -0.1, 5),
        t([Di], -1, 1, 7), t([Di, N], -1, 1, 8),
      ] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D];
      const [fast, plain] = bothWays(() => selectiveScanLoop(u, xdbl, dtProj, dtBias, A, D, h0));
      expect(await worst(fast.y, plain.y)).toBeLessThan(1e-5);
      expect(await worst(fast.h, plain.h)).toBeLessThan(1e-5);
      tf.dispose([u, xdbl, dtProj, dtBias, A, D, h0, fast.y, fast.h, plain.y, plain.h]);
    }
  });

  it('run windowed and full causal attention as the JavaScript loop does, over several query blocks and a cache', async () => {
    const [H, G, D, T, P] = [4, 2, 8, 150, 30];
    const q = tf.tensor3d(uniform(H * T * D, -3, 3, 3), [H, T, D]);
    const K = tf.tensor3d(uniform(G * (P + T) * D, -3, 3, 4), [G, P + T, D]);
    const V = tf.tensor3d(uniform(G * (P + T) * D, -1, 1, 5), [G, P + T, D]);
    for (const window of [null, 1, 5, 70]) {
      const [fast, plain] = bothWays(() => causalAttentionLoop(q, K, V, window));
      expect(await worst(fast, plain), `window ${window}`).toBeLessThan(1e-5);
      tf.dispose([fast, plain]);
    }
    tf.dispose([q, K, V]);
  });
});
