import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../core/backend.js';
import { tttScanRun } from './ttt-scan.js';
import { miniBatchStatistics, tanhRational } from './ttt-stats.js';
import { applyGrads, type InnerParams, miniBatchStatisticsOnDevice, tttDualFormSegment } from './ttt.js';
import { maxDiff, seededValues } from '../../test/helpers/arrays.js';

it('tanhRational stays within 3e-7 of Math.tanh', () => {
  let worst = 0;
  for (let u = -12; u <= 12; u += 1 / 1024) worst = Math.max(worst, Math.abs(tanhRational(u) - Math.tanh(u)));
  expect(worst).toBeLessThanOrEqual(3e-7);
});

describe('the CPU scan (ttt-scan.ts) against the dual form of ttt.ts', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  for (const mlp of [false, true]) {
    it(`TTT-${mlp ? 'MLP' : 'Linear'}: the same outputs and weights over three mini-batches`, () => tf.tidy(() => {
      const [H, K, f, n] = [3, 16, 8, 3], T = n * K, C = H * f, F1 = mlp ? 4 * f : f;
      const tokenEta = Float32Array.from({ length: K }, (_, i) => 1 / (i + 1) + 0.01 * i);
      const t3 = (seed: number, shape: [number, number, number], scale = 0.3) => tf.tensor3d(seededValues(tf.util.sizeFromShape(shape), seed, scale), shape);
      const init: InnerParams = { W1: t3(1, [H, f, F1]), b1: t3(2, [H, 1, F1]), ...(mlp ? { W2: t3(3, [H, F1, f]), b2: t3(4, [H, 1, f]) } : {}) };
      const norm = { lnWeight: tf.add(1, t3(5, [H, 1, f], 0.1)) as tf.Tensor3D, lnBias: t3(6, [H, 1, f], 0.1) };
      const [XQ, XK, XV] = [7, 8, 9].map((seed) => seededValues(T * C, seed)); // [T, H, f]
      const lr = seededValues(T * H, 10, 0.02).map((v) => v + 0.03); // [T, H]

      const scan = tttScanRun({ XQ, XK, XV, lr, T, H, K, tokenEta, params: init, init, ...norm, stats: false, metrics: false });

      // the dual form, mini-batch after mini-batch, on head-major tensors
      const tril = tf.tensor2d(Float32Array.from({ length: K * K }, (_, x) => (x % K <= Math.floor(x / K) ? tokenEta[Math.floor(x / K)] : 0)), [K, K]);
      const headMajor = (a: Float32Array, m: number) => tf.transpose(tf.tensor3d(a.subarray(m * K * C, (m + 1) * K * C), [K, H, f]), [1, 0, 2]) as tf.Tensor3D;
      let params = init;
      const outs: tf.Tensor3D[] = [];
      for (let m = 0; m < n; m++) {
        const lrPiece = tf.transpose(tf.tensor3d(lr.subarray(m * K * H, (m + 1) * K * H), [1, K, H]), [2, 0, 1]) as tf.Tensor3D; // [H, 1, K]
        const r = tttDualFormSegment(params, null, { XQ: headMajor(XQ, m), XK: headMajor(XK, m), XV: headMajor(XV, m), lr: lrPiece, offset: 0 }, norm, tril);
        outs.push(tf.transpose(r.out, [1, 0, 2]) as tf.Tensor3D); // [K, H, f]
        params = applyGrads(params, r.grads, tokenEta[K - 1]);
      }
      expect(maxDiff(scan.out, tf.concat(outs, 0).dataSync()), 'outputs').toBeLessThanOrEqual(1e-5);
      for (const key of ['W1', 'b1', ...(mlp ? (['W2', 'b2'] as const) : [])] as const) {
        expect(maxDiff(scan.params[key]!.dataSync(), params[key]!.dataSync()), key).toBeLessThanOrEqual(1e-5);
      }
    }));
  }
});

describe('inner-loop statistics on a GPU backend', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  for (const mlp of [false, true]) {
    it(`${mlp ? 'TTT-MLP' : 'TTT-Linear'}: the tensor form (no readback) equals ttt-stats.ts's array form`, () => {
      const H = 2, k = 4, f = 8, F = mlp ? 16 : f;
      const t3 = (shape: [number, number, number], seed: number, scale = 0.5) => tf.tensor3d(seededValues(shape[0] * shape[1] * shape[2], seed, scale), shape);
      const params = (seed: number): InnerParams => ({
        W1: t3([H, f, F], seed), b1: t3([H, 1, F], seed + 1, 0.1),
        ...(mlp ? { W2: t3([H, F, f], seed + 2), b2: t3([H, 1, f], seed + 3, 0.1) } : {}),
      });
      const [init, before, after] = [params(1), params(11), params(21)];
      const XK = t3([H, k, f], 31, 1), XV = t3([H, k, f], 32, 1);
      const lnWeight = t3([H, 1, f], 33, 1), lnBias = t3([H, 1, f], 34, 0.2);
      const want = { stats: true, weights: true };
      const arrays = miniBatchStatistics(init, before, after, XK, XV, lnWeight, lnBias, want);
      const device = miniBatchStatisticsOnDevice(init, before, after, XK, XV, { lnWeight, lnBias }, want);
      expect(maxDiff(device.stats!.dataSync(), arrays.stats!.dataSync())).toBeLessThanOrEqual(1e-5);
      expect(maxDiff(device.metrics!.dataSync(), arrays.metrics!.dataSync())).toBeLessThanOrEqual(1e-5);
      expect(arrays.stats!.dataSync()[0]).toBeGreaterThan(0);
    });
  }
});
