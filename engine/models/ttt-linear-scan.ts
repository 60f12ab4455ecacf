/**
 * TTT-Linear's dual form over whole, aligned mini-batches, laid out for CPU backends (wasm, cpu).
 *
 * Same math as `tttDualFormSegment` in ttt.ts (ref: ttt.py TTTLinear.ttt compute_mini_batch, dual form), arranged
 * for where TF.js on a CPU is fast and slow (DESIGN.md "Engine backends"): plain 2-D matMuls run through XNNPACK,
 * while batched matMuls (a plain loop), slices of large tensors (which copy their whole input) and every small op
 * (~10 µs of dispatch each) are slow. So:
 *  - per mini-batch and head, two small 2-D matMuls: [XK; XQ]·W and the update (η·XK)ᵀ·∇; W stays a tensor;
 *  - everything else of the recurrence runs in plain JavaScript on the rows read back: b (+ its update), the
 *    layer-norm backward, the inner-loop losses and weight metrics; all arrays head-major ([H, T, f]), so a
 *    mini-batch's rows of one head are one contiguous block;
 *  - what does not depend on W — the causal (η·(XQ·XKᵀ + 1))·∇ term and the output layer norm — runs once per
 *    chunk, batched over all mini-batches, after the scan.
 * Reading tensors back with `dataSync` mid-step is deliberate: on CPU backends it is a copy out of the heap. The
 * result equals the general path to float rounding; the parity and chunking tests run both.
 *
 * Glossary: T tokens (a multiple of K), n = T/K mini-batches, H heads of f features.
 */
import * as tf from '@tensorflow/tfjs-core';
import { layerNorm } from './blocks.js';

export interface AlignedRun {
  /** [H, T, f] XQ + LN(Z̄) for every token of the run. */
  readonly out: tf.Tensor3D;
  readonly W1: tf.Tensor3D;
  readonly b1: tf.Tensor3D;
  /** [n, 3] (init, before, after) per mini-batch, when asked. */
  readonly stats?: tf.Tensor2D;
  /** [n, 4] ‖W‖, ‖W − W_0‖, ‖W − W_prev‖, cos(W, W_0) after each mini-batch, when asked. */
  readonly metrics?: tf.Tensor2D;
  /** W1 [H, f, f] after the mini-batches `snapshotAt` picked (index within the run). */
  readonly snapshots: { readonly index: number; readonly W1: tf.Tensor3D }[];
}

export interface AlignedRunInputs {
  readonly XQ: tf.Tensor3D; // [H, T, f]
  readonly XK: tf.Tensor3D;
  readonly XV: tf.Tensor3D;
  readonly lr: tf.Tensor3D; // [H, 1, T] ttt_lr_eta
  readonly tokenEtaTril: tf.Tensor2D; // [K, K]
  readonly W1: tf.Tensor3D; // [H, f, f] at the start of the run
  readonly b1: tf.Tensor3D; // [H, 1, f]
  readonly W1init: tf.Tensor3D; // W_0 of the sequence, for ttt_loss_init and the distances
  readonly b1init: tf.Tensor3D;
  readonly lnWeight: tf.Tensor3D; // [H, 1, f]
  readonly lnBias: tf.Tensor3D;
  readonly K: number;
  readonly stats: boolean;
  readonly metrics: boolean;
  /** Which mini-batches of the run (by index within it) to return W1 snapshots of. */
  readonly snapshotAt?: (index: number) => boolean;
}

/** One head's data for the scan, all [T, f] (or [T] for lr), head-major so a mini-batch is a contiguous block. */
interface HeadInputs {
  readonly XQ: Float32Array;
  readonly XK: Float32Array;
  readonly XV: Float32Array;
  readonly lr: Float32Array;
  readonly gamma: Float32Array; // ttt_norm weight [f]
  readonly beta: Float32Array; // ttt_norm bias [f]
}

/**
 * ∇_Z ½‖LN(Z) − target‖² for `rows` rows of one head, target = XV − XK at `xOffset`; writes ∇ to `out` and returns
 * the last row's mean squared error (the "before" loss when Z uses the mini-batch's start weights).
 * ref: ttt.py ln_fused_l2_bwd.
 */
function lnFusedL2Bwd(Z: Float32Array, head: HeadInputs, xOffset: number, rows: number, f: number, out: Float32Array | null): number {
  let err = 0;
  for (let r = 0; r < rows; r++) {
    const z0 = r * f, x0 = xOffset + r * f;
    let mean = 0;
    for (let i = 0; i < f; i++) mean += Z[z0 + i];
    mean /= f;
    let variance = 0;
    for (let i = 0; i < f; i++) variance += (Z[z0 + i] - mean) ** 2;
    const std = Math.sqrt(variance / f + 1e-6);
    let s1 = 0, s2 = 0;
    err = 0;
    for (let i = 0; i < f; i++) {
      const xHat = (Z[z0 + i] - mean) / std;
      const diff = head.gamma[i] * xHat + head.beta[i] - (head.XV[x0 + i] - head.XK[x0 + i]); // LN(Z) − target
      err += diff * diff;
      const gy = diff * head.gamma[i];
      s1 += gy;
      s2 += gy * xHat;
      if (out) out[z0 + i] = gy; // keep gy, finish below once s1 and s2 are known
    }
    if (out) {
      for (let i = 0; i < f; i++) {
        const xHat = (Z[z0 + i] - mean) / std;
        out[z0 + i] = (f * out[z0 + i] - s1 - xHat * s2) / (f * std);
      }
    }
  }
  return err / f;
}

/** z = x·W + b for one row: [f]·[f, f] + [f] (one row is cheaper in JavaScript than as a tensor op). */
function rowTimes(x: Float32Array, xOffset: number, W: Float32Array, b: Float32Array, f: number, z: Float32Array): void {
  z.set(b);
  for (let i = 0; i < f; i++) {
    const xi = x[xOffset + i];
    for (let j = 0; j < f; j++) z[j] += xi * W[i * f + j];
  }
}

const perHead = (data: Float32Array, H: number, size: number) => Array.from({ length: H }, (_, h) => data.subarray(h * size, (h + 1) * size));

/**
 * A run of whole mini-batches starting at a mini-batch boundary: the recurrence W_{m+1} = W_m − Σ_j η_last·lr_j·
 * x_jᵀ∇_j (and b alike), then the outputs. Returns what the general path returns. Call inside `tf.tidy`.
 */
export function tttLinearAlignedRun(inp: AlignedRunInputs): AlignedRun {
  const [H, T, f] = inp.XQ.shape;
  const { K } = inp;
  const n = T / K;
  const tokenEta = inp.tokenEtaTril.dataSync() as Float32Array; // column 0 holds token_eta
  const etaLast = tokenEta[(K - 1) * K];
  const [XQ, XK, XV, lr] = [inp.XQ, inp.XK, inp.XV, inp.lr].map((t) => t.dataSync() as Float32Array);
  const [gamma, beta] = [inp.lnWeight, inp.lnBias].map((t) => t.dataSync() as Float32Array);
  const heads: HeadInputs[] = Array.from({ length: H }, (_, h) => ({
    XQ: XQ.subarray(h * T * f, (h + 1) * T * f), XK: XK.subarray(h * T * f, (h + 1) * T * f), XV: XV.subarray(h * T * f, (h + 1) * T * f),
    lr: lr.subarray(h * T, (h + 1) * T), gamma: gamma.subarray(h * f, (h + 1) * f), beta: beta.subarray(h * f, (h + 1) * f),
  }));
  const W0 = perHead(inp.W1init.dataSync() as Float32Array, H, f * f);
  const b0 = perHead(inp.b1init.dataSync() as Float32Array, H, f);
  const b = perHead(Float32Array.from(inp.b1.dataSync()), H, f); // b lives in JavaScript for the whole run
  let W = tf.unstack(inp.W1) as tf.Tensor2D[]; // [f, f] per head
  let previous = perHead(Float32Array.from(inp.W1.dataSync()), H, f * f);

  const ZQ = new Float32Array(H * T * f); // XQ·W + b with each token's mini-batch-start weights
  const grads = new Float32Array(H * T * f);
  const statsRows = new Float32Array(n * 3);
  const metricRows = new Float32Array(n * 4);
  const snapshots: { index: number; W1: tf.Tensor3D }[] = [];
  const rows = new Float32Array(2 * K * f); // [XK_m; XQ_m] of one head
  const scaledT = new Float32Array(f * K); // (η_last·lr_j·x_j)ᵀ of one head
  const z = new Float32Array(f);
  let norm0 = 0;
  for (const w of W0) for (let i = 0; i < f * f; i++) norm0 += w[i] * w[i];
  norm0 = Math.sqrt(norm0);

  for (let m = 0; m < n; m++) {
    const start = m * K * f; // this mini-batch's rows inside each head's [T, f]
    const next = tf.tidy(() => W.map((Wh, h) => {
      const head = heads[h];
      rows.set(head.XK.subarray(start, start + K * f), 0);
      rows.set(head.XQ.subarray(start, start + K * f), K * f);
      const Z = tf.matMul(tf.tensor2d(rows, [2 * K, f]), Wh).dataSync() as Float32Array; // [2K, f], a fresh copy
      for (let r = 0; r < 2 * K; r++) for (let i = 0; i < f; i++) Z[r * f + i] += b[h][i];
      ZQ.set(Z.subarray(K * f), h * T * f + start);
      const g = grads.subarray(h * T * f + start, h * T * f + start + K * f);
      const before = lnFusedL2Bwd(Z, head, start, K, f, g);
      if (inp.stats) statsRows[m * 3 + 1] += before / H;
      for (let r = 0; r < K; r++) {
        const eta = etaLast * head.lr[m * K + r];
        for (let i = 0; i < f; i++) {
          scaledT[i * K + r] = eta * head.XK[start + r * f + i];
          b[h][i] -= eta * g[r * f + i];
        }
      }
      return tf.sub(Wh, tf.matMul(tf.tensor2d(scaledT, [f, K]), tf.tensor2d(g, [K, f]))) as tf.Tensor2D; // [f, f]
    }));
    tf.dispose(W);
    W = next;
    if (inp.stats || inp.metrics || inp.snapshotAt) {
      const data = W.map((w) => w.dataSync() as Float32Array);
      const last = (m + 1) * K - 1;
      if (inp.stats) {
        let init = 0, after = 0;
        for (let h = 0; h < H; h++) {
          rowTimes(heads[h].XK, last * f, W0[h], b0[h], f, z);
          init += lnFusedL2Bwd(z, heads[h], last * f, 1, f, null);
          rowTimes(heads[h].XK, last * f, data[h], b[h], f, z);
          after += lnFusedL2Bwd(z, heads[h], last * f, 1, f, null);
        }
        statsRows[m * 3] = init / H;
        statsRows[m * 3 + 2] = after / H;
      }
      if (inp.metrics) {
        let norm = 0, dInit = 0, dPrev = 0, dot = 0;
        for (let h = 0; h < H; h++) {
          const w = data[h], w0 = W0[h], p = previous[h];
          for (let i = 0; i < f * f; i++) {
            norm += w[i] * w[i];
            dInit += (w[i] - w0[i]) ** 2;
            dPrev += (w[i] - p[i]) ** 2;
            dot += w[i] * w0[i];
          }
        }
        metricRows.set([Math.sqrt(norm), Math.sqrt(dInit), Math.sqrt(dPrev), dot / (Math.sqrt(norm) * norm0)], m * 4);
      }
      if (inp.snapshotAt?.(m)) {
        const W1 = new Float32Array(H * f * f);
        data.forEach((w, h) => W1.set(w, h * f * f));
        snapshots.push({ index: m, W1: tf.tensor3d(W1, [H, f, f]) });
      }
      previous = data;
    }
  }

  // ---- outputs, batched over all mini-batches: Z̄ = XQ·W + b − (η ⊙ (XQ·XKᵀ + 1))·∇
  const perBatch = (x: tf.Tensor) => tf.reshape(x, [H * n, K, -1]); // [H·n, K, ·]
  const Attn = tf.matMul(perBatch(inp.XQ), perBatch(inp.XK), false, true); // [H·n, K, K]
  const eta = tf.mul(inp.tokenEtaTril, tf.reshape(inp.lr, [H * n, 1, K])); // [H·n, K, K]
  const MG = tf.reshape(tf.matMul(tf.mul(eta, tf.add(Attn, 1)), perBatch(tf.tensor3d(grads, [H, T, f]))), [H, T, f]);
  const Zbar = tf.sub(tf.tensor3d(ZQ, [H, T, f]), MG) as tf.Tensor3D;
  const out = tf.add(inp.XQ, layerNorm(Zbar, inp.lnWeight, inp.lnBias, 1e-6)) as tf.Tensor3D;
  const bFinal = new Float32Array(H * f);
  b.forEach((bh, h) => bFinal.set(bh, h * f));
  return {
    out,
    W1: tf.stack(W) as tf.Tensor3D,
    b1: tf.tensor3d(bFinal, [H, 1, f]),
    stats: inp.stats ? tf.tensor2d(statsRows, [n, 3]) : undefined,
    metrics: inp.metrics ? tf.tensor2d(metricRows, [n, 4]) : undefined,
    snapshots,
  };
}
