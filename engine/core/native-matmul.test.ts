import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { nativeMatMulReason, nativeSgemm, useNativeMatMul } from './native-matmul.js';
import { tttScanRun } from '../models/ttt-scan.js';
import { maxDiff, seededValues } from '../../test/helpers/arrays.js';

/** op(a)·op(b) in float64 for [batch, rows, cols] arrays, a batch of one standing for every batch. */
function reference(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], transposeA = false, transposeB = false): Float32Array {
  const [ra, rb] = [aShape.length, bShape.length];
  const m = transposeA ? aShape[ra - 1] : aShape[ra - 2], k = transposeA ? aShape[ra - 2] : aShape[ra - 1];
  const n = transposeB ? bShape[rb - 2] : bShape[rb - 1];
  const batchA = a.length / (m * k), batchB = b.length / (k * n), batch = Math.max(batchA, batchB);
  const out = new Float32Array(batch * m * n);
  for (let p = 0; p < batch; p++) {
    const a0 = (batchA === 1 ? 0 : p) * m * k, b0 = (batchB === 1 ? 0 : p) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let l = 0; l < k; l++) sum += a[a0 + (transposeA ? l * m + i : i * k + l)] * b[b0 + (transposeB ? j * k + l : l * n + j)];
        out[p * m * n + i * n + j] = sum;
      }
    }
  }
  return out;
}

describe('native matrix products (cblas_sgemm through koffi) on wasm', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  afterAll(() => useNativeMatMul(true));

  it('says in one line which library computes products, or why none does', () => {
    const line = nativeMatMulReason();
    expect(line).not.toContain('\n');
    expect(line).toMatch(nativeSgemm() ? /^cblas_sgemm of / : /^XNNPACK \(no native BLAS: /);
  });

  const cases: { name: string; a: number[]; b: number[]; transposeA?: boolean; transposeB?: boolean }[] = [
    { name: '2-D', a: [33, 17], b: [17, 9] },
    { name: 'transposed A', a: [17, 33], b: [17, 9], transposeA: true },
    { name: 'transposed B', a: [33, 17], b: [9, 17], transposeB: true },
    { name: 'both transposed', a: [17, 33], b: [9, 17], transposeA: true, transposeB: true },
    { name: 'batched', a: [3, 5, 7], b: [3, 7, 4] },
    { name: 'a batch of one against three', a: [1, 5, 7], b: [3, 7, 4] },
    { name: '2-D against a batch', a: [5, 7], b: [2, 3, 7, 4] },
    { name: 'a batch against 2-D, transposed B', a: [2, 3, 5, 7], b: [4, 7], transposeB: true },
  ];
  for (const c of cases) {
    it(`computes tf.matMul: ${c.name}`, async (ctx) => {
      if (!nativeSgemm()) ctx.skip(); // no BLAS here: the plain path is all there is
      const [aData, bData] = [seededValues(tf.util.sizeFromShape(c.a), 1), seededValues(tf.util.sizeFromShape(c.b), 2)];
      const product = tf.tidy(() => tf.matMul(tf.tensor(aData, c.a), tf.tensor(bData, c.b), c.transposeA, c.transposeB));
      const expected = reference(aData, c.a, bData, c.b, c.transposeA, c.transposeB);
      expect(maxDiff(await product.data(), expected)).toBeLessThanOrEqual(1e-5);
      product.dispose();
    });
  }

  for (const mlp of [false, true]) {
    it(`gives the TTT-${mlp ? 'MLP' : 'Linear'} scan the same outputs, weights and statistics as the TF.js product`, (ctx) => {
      if (!nativeSgemm()) ctx.skip();
      const [T, H, K, f] = [48, 2, 16, 8], C = H * f, F1 = mlp ? 4 * f : f;
      const t3 = (seed: number, shape: [number, number, number]) => tf.tensor3d(seededValues(tf.util.sizeFromShape(shape), seed).map((v) => v * 0.3), shape);
      const tokenEta = Float32Array.from({ length: K }, (_, i) => 1 / (i + 1));
      const params = {
        W1: t3(7, [H, f, F1]), b1: t3(8, [H, 1, F1]), ...(mlp ? { W2: t3(10, [H, F1, f]), b2: t3(11, [H, 1, f]) } : {}),
      };
      const ln = t3(9, [H, 1, f]), lnBias = t3(12, [H, 1, f]);
      const run = () => tttScanRun({
        XQ: seededValues(T * C, 3), XK: seededValues(T * C, 4), XV: seededValues(T * C, 5), lr: seededValues(T * H, 6).map((v) => 0.05 * (v + 1)), T, H, K, tokenEta,
        params, init: params, lnWeight: ln, lnBias, stats: true, metrics: true,
      });
      const native = run();
      useNativeMatMul(false);
      let plain: ReturnType<typeof run>;
      try {
        plain = run();
      } finally {
        useNativeMatMul(true);
      }
      expect(maxDiff(native.out, plain.out)).toBeLessThanOrEqual(1e-5);
      for (const key of ['W1', 'b1', ...(mlp ? ['W2', 'b2'] as const : [])] as const) {
        expect(maxDiff(native.params[key]!.dataSync(), plain.params[key]!.dataSync()), key).toBeLessThanOrEqual(1e-5);
      }
      for (const key of ['stats', 'metrics'] as const) expect(maxDiff(native[key]!.dataSync(), plain[key]!.dataSync()), key).toBeLessThanOrEqual(1e-5);
      tf.dispose([params, ln, lnBias, native.params, native.stats!, native.metrics!, plain.params, plain.stats!, plain.metrics!] as tf.TensorContainer);
    });
  }
});
