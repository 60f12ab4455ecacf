/**
 * TTT-Linear's dual form over whole, aligned mini-batches, laid out for CPU backends (wasm, cpu).
 *
 * Same math as `tttDualFormSegment` in ttt.ts (ref: ttt.py TTTLinear.ttt compute_mini_batch, dual form), arranged
 * for where TF.js on a CPU is fast and slow (DESIGN.md "Engine backends"): plain 2-D matMuls run at ~30 GFLOP/s
 * through XNNPACK, while batched matMuls, slices of large tensors (which copy their whole input) and every small op
 * (~10 µs each) are slow. So:
 *  - each head's W carries b as an extra row fed by a constant-1 input column ("augmented", [f+1, f]), so one
 *    small 2-D matMul per head gives X·W + b, and one gives the update (batched matMuls take a slow kernel);
 *  - per mini-batch only the two matMuls and the update run as tensor ops; the layer-norm backward (many tiny
 *    elementwise ops) runs in plain JavaScript on the rows read back, which is cheaper than dispatching it;
 *  - what does not depend on W — the causal (η·(XQ·XKᵀ + 1))·∇ term and the output layer norm — runs once per
 *    chunk, batched over all mini-batches, after the scan.
 * The result equals the general path to float rounding; the parity tests run both.
 *
 * Glossary: T tokens (a multiple of K), n = T/K mini-batches, C = H·f, F = f + 1 augmented input width.
 */
import * as tf from '@tensorflow/tfjs-core';
import { layerNorm } from './blocks.js';

export interface AlignedScanInputs {
  readonly T: number;
  readonly H: number;
  readonly f: number;
  readonly K: number;
  /** [T, C] row-major, heads side by side (column h·f + d). */
  readonly XQ: Float32Array;
  readonly XK: Float32Array;
  readonly XV: Float32Array;
  /** [T, H] ttt_lr_eta per token and head. */
  readonly lrEta: Float32Array;
  /** [K] token_eta. */
  readonly tokenEta: Float32Array;
  /** [C] ttt_norm weight and bias, heads side by side. */
  readonly lnWeight: Float32Array;
  readonly lnBias: Float32Array;
}

export interface AlignedScanResult {
  /** Each head's W_aug [F, f] after the last mini-batch: the carried state. */
  readonly weights: tf.Tensor2D[];
  /** [T, C] XQ·W + b with each token's mini-batch-start weights. */
  readonly ZQ: Float32Array;
  /** [T, C] ∇_Z of the inner loss for each token, at its mini-batch-start weights. */
  readonly grads: Float32Array;
  /** [n·H] squared error of LN(XK_last·W + b) against the target at each mini-batch's start weights. */
  readonly lossBefore: Float32Array;
}

/** W1 [H, f, f] and b1 [H, 1, f] as H augmented [F, f] matrices (b as the last row). */
export function toAugmented(W1: Float32Array, b1: Float32Array, H: number, f: number): Float32Array[] {
  return Array.from({ length: H }, (_, h) => {
    const out = new Float32Array((f + 1) * f);
    out.set(W1.subarray(h * f * f, (h + 1) * f * f));
    out.set(b1.subarray(h * f, (h + 1) * f), f * f);
    return out;
  });
}

/**
 * ∇_Z ½‖LN(Z) − target‖² for `rows` rows of one mini-batch, written to `out`; also returns each row's mean
 * squared error per head (for the inner-loop statistics). ref: ttt.py ln_fused_l2_bwd.
 */
function lnFusedL2BwdRows(
  Z: Float32Array, zOffset: number, XV: Float32Array, XK: Float32Array, xOffset: number, rows: number, H: number, f: number,
  gamma: Float32Array, beta: Float32Array, out: Float32Array, outOffset: number, sqErr: Float32Array | null,
): void {
  const C = H * f;
  const xHat = new Float32Array(f);
  const gy = new Float32Array(f);
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < H; h++) {
      const z0 = zOffset + r * C + h * f, x0 = xOffset + r * C + h * f, o0 = outOffset + r * C + h * f;
      let mean = 0;
      for (let i = 0; i < f; i++) mean += Z[z0 + i];
      mean /= f;
      let variance = 0;
      for (let i = 0; i < f; i++) variance += (Z[z0 + i] - mean) ** 2;
      variance /= f;
      const std = Math.sqrt(variance + 1e-6);
      let s1 = 0, s2 = 0, err = 0;
      for (let i = 0; i < f; i++) {
        const c = h * f + i;
        xHat[i] = (Z[z0 + i] - mean) / std;
        const diff = gamma[c] * xHat[i] + beta[c] - (XV[x0 + i] - XK[x0 + i]); // LN(Z) − reconstruction target
        err += diff * diff;
        gy[i] = diff * gamma[c];
        s1 += gy[i];
        s2 += gy[i] * xHat[i];
      }
      for (let i = 0; i < f; i++) out[o0 + i] = (f * gy[i] - s1 - xHat[i] * s2) / (f * std);
      if (sqErr) sqErr[r * H + h] = err / f;
    }
  }
}

/**
 * Runs the mini-batch recurrence W_{n+1} = W_n − Σ_j η_last·lr_j·x_jᵀ∇_j over n = T/K mini-batches, from each head's
 * `Waug` [F, f]. Synchronous readbacks (`dataSync`) are deliberate: on CPU backends they are a copy out of the
 * heap, and they let the small per-token math run in JavaScript.
 */
export function tttLinearAlignedScan(
  Waug: tf.Tensor2D[], s: AlignedScanInputs, observe?: (miniBatch: number, weights: readonly tf.Tensor2D[]) => void,
): AlignedScanResult {
  const { T, H, f, K } = s;
  const C = H * f, F = f + 1, n = T / K;
  const ZQ = new Float32Array(T * C);
  const grads = new Float32Array(T * C);
  const lossBefore = new Float32Array(n * H);
  const lastErr = new Float32Array(K * H);
  const z = new Float32Array(2 * K * C); // [2K, C]: rows XK_m·W then XQ_m·W, heads side by side
  const etaLast = s.tokenEta[K - 1];
  let W = Waug;
  for (let m = 0; m < n; m++) {
    const previous = W;
    // one tidy per mini-batch: its inputs and updates are freed at once, only W_{m+1} survives
    W = tf.tidy(() => {
      for (let h = 0; h < H; h++) {
        const inputs = new Float32Array(2 * K * F); // rows [XK_m; XQ_m] of head h, each with a constant-1 column for b
        for (let r = 0; r < K; r++) {
          const t = (m * K + r) * C + h * f;
          inputs.set(s.XK.subarray(t, t + f), r * F);
          inputs[r * F + f] = 1;
          inputs.set(s.XQ.subarray(t, t + f), (K + r) * F);
          inputs[(K + r) * F + f] = 1;
        }
        const zh = tf.matMul(tf.tensor2d(inputs, [2 * K, F]), previous[h]).dataSync() as Float32Array; // [2K, f]
        for (let r = 0; r < 2 * K; r++) z.set(zh.subarray(r * f, (r + 1) * f), r * C + h * f);
      }
      ZQ.set(z.subarray(K * C), m * K * C);
      lnFusedL2BwdRows(z, 0, s.XV, s.XK, m * K * C, K, H, f, s.lnWeight, s.lnBias, grads, m * K * C, lastErr);
      lossBefore.set(lastErr.subarray((K - 1) * H, K * H), m * H);
      // update per head: (η_last·lr_j·[x_j, 1])ᵀ ∇_j summed over the mini-batch
      return previous.map((Wh, h) => {
        const scaledT = new Float32Array(F * K); // [F, K]
        const g = new Float32Array(K * f); // [K, f]
        for (let r = 0; r < K; r++) {
          const t = m * K + r;
          const eta = etaLast * s.lrEta[t * H + h];
          for (let i = 0; i < f; i++) scaledT[i * K + r] = eta * s.XK[t * C + h * f + i];
          scaledT[f * K + r] = eta;
          g.set(grads.subarray(t * C + h * f, t * C + (h + 1) * f), r * f);
        }
        return tf.sub(Wh, tf.matMul(tf.tensor2d(scaledT, [F, K]), tf.tensor2d(g, [K, f]))) as tf.Tensor2D; // [F, f]
      });
    });
    observe?.(m, W);
    if (previous !== Waug) tf.dispose(previous);
  }
  return { weights: W, ZQ, grads, lossBefore };
}

export interface AlignedRun {
  /** [H, Tr, f] XQ + LN(Z̄) for every token of the run. */
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
  readonly XQ: tf.Tensor3D; // [H, Tr, f]
  readonly XK: tf.Tensor3D;
  readonly XV: tf.Tensor3D;
  readonly lr: tf.Tensor3D; // [H, 1, Tr] ttt_lr_eta
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

const tokenMajor = (x: tf.Tensor3D): Float32Array => tf.transpose(x, [1, 0, 2]).dataSync() as Float32Array; // [Tr, H, f]

/** x_aug · W_aug for one head: [F] · [F, f] → z [f] (a single row is cheaper in JavaScript than as an op). */
function rowTimes(x: Float32Array, xOffset: number, W: Float32Array, f: number, z: Float32Array, zOffset: number): void {
  for (let j = 0; j < f; j++) z[zOffset + j] = W[f * f + j]; // b row (the constant-1 input)
  for (let i = 0; i < f; i++) {
    const xi = x[xOffset + i];
    for (let j = 0; j < f; j++) z[zOffset + j] += xi * W[i * f + j];
  }
}

/**
 * A run of whole mini-batches starting at a mini-batch boundary, through `tttLinearAlignedScan`, returning what
 * the general path returns. The inner-loop statistics and weight metrics are computed in JavaScript from each
 * mini-batch's weights as the scan produces them (a few thousand numbers per head), never stacking tensors.
 * Call inside `tf.tidy`.
 */
export function tttLinearAlignedRun(inp: AlignedRunInputs): AlignedRun {
  const [H, Tr, f] = inp.XQ.shape;
  const { K } = inp;
  const C = H * f, F = f + 1, n = Tr / K;
  const tokenEtaTable = inp.tokenEtaTril.dataSync() as Float32Array;
  const s: AlignedScanInputs = {
    T: Tr, H, f, K,
    XQ: tokenMajor(inp.XQ), XK: tokenMajor(inp.XK), XV: tokenMajor(inp.XV),
    lrEta: tf.transpose(tf.reshape(inp.lr, [H, Tr])).dataSync() as Float32Array, // [Tr, H]
    tokenEta: Float32Array.from({ length: K }, (_, i) => tokenEtaTable[i * K]), // column 0 of tril(token_eta)
    lnWeight: inp.lnWeight.dataSync() as Float32Array,
    lnBias: inp.lnBias.dataSync() as Float32Array,
  };
  const start = toAugmented(inp.W1.dataSync() as Float32Array, inp.b1.dataSync() as Float32Array, H, f);
  const W0 = toAugmented(inp.W1init.dataSync() as Float32Array, inp.b1init.dataSync() as Float32Array, H, f);
  const statsRows = new Float32Array(n * 3);
  const metricRows = new Float32Array(n * 4);
  const snapshots: { index: number; W1: tf.Tensor3D }[] = [];
  let norm0 = 0;
  for (const w of W0) for (let i = 0; i < f * f; i++) norm0 += w[i] * w[i];
  norm0 = Math.sqrt(norm0);
  const z = new Float32Array(C);
  const zInit = new Float32Array(C);
  const scratch = new Float32Array(C);
  const err = new Float32Array(H);
  let previous = start;

  const observe = (m: number, weights: readonly tf.Tensor2D[]) => {
    const data = weights.map((w) => w.dataSync() as Float32Array); // H × [F, f]
    const t = (m + 1) * K - 1; // the mini-batch's last token
    if (inp.stats) {
      for (let h = 0; h < H; h++) {
        rowTimes(s.XK, t * C + h * f, data[h], f, z, h * f);
        rowTimes(s.XK, t * C + h * f, W0[h], f, zInit, h * f);
      }
      const loss = (row: Float32Array) => {
        lnFusedL2BwdRows(row, 0, s.XV, s.XK, t * C, 1, H, f, s.lnWeight, s.lnBias, scratch, 0, err);
        return err.reduce((a, b) => a + b, 0) / H;
      };
      statsRows[m * 3] = loss(zInit);
      statsRows[m * 3 + 2] = loss(z); // "before" comes from the scan itself
    }
    if (inp.metrics) {
      let norm = 0, dInit = 0, dPrev = 0, dot = 0;
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < f * f; i++) {
          const w = data[h][i], w0 = W0[h][i], p = previous[h][i];
          norm += w * w;
          dInit += (w - w0) ** 2;
          dPrev += (w - p) ** 2;
          dot += w * w0;
        }
      }
      metricRows.set([Math.sqrt(norm), Math.sqrt(dInit), Math.sqrt(dPrev), dot / (Math.sqrt(norm) * norm0)], m * 4);
    }
    if (inp.snapshotAt?.(m)) {
      const W1 = new Float32Array(H * f * f);
      data.forEach((w, h) => W1.set(w.subarray(0, f * f), h * f * f));
      snapshots.push({ index: m, W1: tf.keep(tf.tensor3d(W1, [H, f, f])) }); // kept past the scan's per-step tidy; the caller's tidy owns it
    }
    previous = data;
  };
  const scan = tttLinearAlignedScan(start.map((w) => tf.tensor2d(w, [F, f])), s, inp.stats || inp.metrics || inp.snapshotAt ? observe : undefined);
  const last = tf.stack(scan.weights); // [H, F, f]

  // ---- outputs, batched over all mini-batches: Z̄ = XQ·W + b − (η ⊙ (XQ·XKᵀ + 1))·∇
  const heads = (x: Float32Array) => tf.transpose(tf.tensor3d(x, [Tr, H, f]), [1, 0, 2]); // [H, Tr, f]
  const perBatch = (x: tf.Tensor) => tf.reshape(x, [H * n, K, -1]); // [H·n, K, ·]
  const Attn = tf.matMul(perBatch(inp.XQ), perBatch(inp.XK), false, true); // [H·n, K, K]
  const eta = tf.mul(inp.tokenEtaTril, tf.reshape(inp.lr, [H * n, 1, K])); // [H·n, K, K]
  const MG = tf.reshape(tf.matMul(tf.mul(eta, tf.add(Attn, 1)), perBatch(heads(scan.grads))), [H, Tr, f]);
  const Zbar = tf.sub(heads(scan.ZQ), MG) as tf.Tensor3D;
  const out = tf.add(inp.XQ, layerNorm(Zbar, inp.lnWeight, inp.lnBias, 1e-6)) as tf.Tensor3D;

  if (inp.stats) {
    for (let m = 0; m < n; m++) {
      let before = 0;
      for (let h = 0; h < H; h++) before += scan.lossBefore[m * H + h];
      statsRows[m * 3 + 1] = before / H;
    }
  }
  return {
    out,
    W1: tf.slice(last, [0, 0, 0], [H, f, f]) as tf.Tensor3D,
    b1: tf.slice(last, [0, f, 0], [H, 1, f]) as tf.Tensor3D,
    stats: inp.stats ? tf.tensor2d(statsRows, [n, 3]) : undefined,
    metrics: inp.metrics ? tf.tensor2d(metricRows, [n, 4]) : undefined,
    snapshots,
  };
}
