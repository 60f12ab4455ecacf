/**
 * What the TTT inner loop reports about itself (DESIGN.md "Inner-loop statistics"), on plain arrays, for both TTT
 * variants: the self-supervised loss of a token under given inner weights (ttt_loss_init / _before / _after on a
 * mini-batch's last token), the layer-norm backward that loss and the inner gradients share, and the weight metrics
 * after each mini-batch (‖W‖, ‖W − W_0‖, ‖W − W_prev‖, cos(W, W_0) per weight matrix, all heads together).
 *
 * Glossary (ttt.ts): H heads of f features, F1 the first inner layer's width (f or 4f), r rows.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gemm, readNow } from './cpu-arrays.js';
import type { InnerParams } from './ttt.js';

/** One head's inner weights as plain arrays: W1 [f, F1], b1 [F1] (, W2 [F1, f], b2 [f]). */
export interface InnerArrays {
  readonly W1: Float32Array;
  readonly b1: Float32Array;
  readonly W2?: Float32Array;
  readonly b2?: Float32Array;
}

/** One head's ttt_norm: weight and bias [f]. */
export interface HeadNorm {
  readonly gamma: Float32Array;
  readonly beta: Float32Array;
}

const weightKeys = ['W1', 'b1', 'W2', 'b2'] as const;

/** A layer's inner weights as per-head arrays (copies when `copy`, for weights the run updates). */
export function headArrays(p: InnerParams, H: number, copy: boolean): InnerArrays[] {
  const all: Partial<Record<(typeof weightKeys)[number], Float32Array>> = {};
  for (const key of weightKeys) {
    const t = p[key];
    if (t) all[key] = copy ? Float32Array.from(t.dataSync() as Float32Array) : (t.dataSync() as Float32Array);
  }
  const part = (a: Float32Array, h: number) => a.subarray((h * a.length) / H, ((h + 1) * a.length) / H);
  return Array.from({ length: H }, (_, h) => ({
    W1: part(all.W1!, h), b1: part(all.b1!, h), ...(all.W2 && all.b2 ? { W2: part(all.W2, h), b2: part(all.b2, h) } : {}),
  }));
}

/** Per-head arrays back into [H, …] tensors of the given shapes. */
export function joinHeads(heads: readonly InnerArrays[], like: InnerParams): InnerParams {
  const join = (key: (typeof weightKeys)[number]) => {
    const parts = heads.map((w) => w[key]!), size = parts[0].length;
    const all = new Float32Array(parts.length * size);
    parts.forEach((p, h) => all.set(p, h * size));
    return tf.tensor3d(all, like[key]!.shape);
  };
  return { W1: join('W1'), b1: join('b1'), ...(like.W2 && like.b2 ? { W2: join('W2'), b2: join('b2') } : {}) };
}

/** ttt_norm's weight and bias ([H, 1, f] each) as per-head arrays. */
export function headNorms(lnWeight: tf.Tensor3D, lnBias: tf.Tensor3D): HeadNorm[] {
  const [gamma, beta] = [lnWeight, lnBias].map((t) => t.dataSync() as Float32Array);
  const f = lnWeight.shape[2];
  return Array.from({ length: lnWeight.shape[0] }, (_, h) => ({ gamma: gamma.subarray(h * f, (h + 1) * f), beta: beta.subarray(h * f, (h + 1) * f) }));
}

/**
 * ∇_Z ½‖LN(Z) − target‖² for `rows` rows of Z and target ([rows, f]) into `grads` (when given); each row's mean
 * squared error ‖LN(Z) − target‖²/f into `losses` (when given). Returns the last row's. ref: ttt.py ln_fused_l2_bwd.
 */
export function lnFusedL2Bwd(
  Z: Float32Array, target: Float32Array, rows: number, f: number, norm: HeadNorm, grads: Float32Array | null, losses: Float32Array | null,
): number {
  const { gamma, beta } = norm;
  let err = 0;
  for (let r = 0; r < rows; r++) {
    const z0 = r * f;
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
      const diff = gamma[i] * xHat + beta[i] - target[z0 + i]; // LN(Z) − target
      err += diff * diff;
      const gy = diff * gamma[i];
      s1 += gy;
      s2 += gy * xHat;
      if (grads) grads[z0 + i] = gy; // finished below once s1 and s2 are known
    }
    if (grads) {
      for (let i = 0; i < f; i++) grads[z0 + i] = (f * grads[z0 + i] - s1 - ((Z[z0 + i] - mean) / std) * s2) / (f * std);
    }
    if (losses) losses[r] = err / f;
  }
  return err / f;
}

/**
 * The inner model on `rows` rows of X ([rows, f]): f(X) = X·W1 + b1, or gelu(X·W1 + b1)·W2 + b2 for TTT-MLP, and
 * its loss against `target`, per row into `losses` (when given); returns the last row's. `work` holds at least
 * rows·F1 (Z1) and rows·f (Z) floats.
 */
export function innerForwardRows(
  w: InnerArrays, X: Float32Array, target: Float32Array, rows: number, f: number, norm: HeadNorm,
  work: { readonly Z1: Float32Array; readonly Z: Float32Array }, losses: Float32Array | null,
): number {
  const F1 = w.b1.length;
  const Z1 = work.Z1.subarray(0, rows * F1);
  gemm(false, false, rows, F1, f, X, w.W1, Z1);
  for (let r = 0; r < rows; r++) for (let i = 0; i < F1; i++) Z1[r * F1 + i] += w.b1[i];
  if (!w.W2 || !w.b2) return lnFusedL2Bwd(Z1, target, rows, f, norm, null, losses);
  geluAndGrad(Z1, rows * F1, Z1, null);
  const Z = work.Z.subarray(0, rows * f);
  gemm(false, false, rows, f, F1, Z1, w.W2, Z);
  for (let r = 0; r < rows; r++) for (let i = 0; i < f; i++) Z[r * f + i] += w.b2[i];
  return lnFusedL2Bwd(Z, target, rows, f, norm, null, losses);
}

/**
 * tanh(u) as u·P(u²)/Q(u²) on [−7.9, 7.9] (±1 to float32 beyond), the rational approximation of Eigen's
 * `generic_fast_tanh_float`: within 3e-7 of tanh everywhere (float32 rounding is ~6e-8), and several times cheaper
 * than Math.tanh or an exp in JavaScript.
 */
export function tanhRational(u: number): number {
  const c = u > 7.90531110763549805 ? 7.90531110763549805 : u < -7.90531110763549805 ? -7.90531110763549805 : u;
  const x2 = c * c;
  const p = (((((-2.76076847742355e-16 * x2 + 2.00018790482477e-13) * x2 - 8.60467152213735e-11) * x2 + 5.12229709037114e-8) * x2
    + 1.48572235717979e-5) * x2 + 6.37261928875436e-4) * x2 + 4.89352455891786e-3;
  const q = ((1.19825839466702e-6 * x2 + 1.18534705686654e-4) * x2 + 2.268434632439e-3) * x2 + 4.89352518554385e-3;
  return (c * p) / q;
}

/**
 * y = gelu(x) (tanh form, ref: ttt.py gelu) and, when `grad` is given, gelu′(x) (ref: ttt.py gelu_bwd), for `size`
 * values (y may be x), sharing one tanh.
 */
export function geluAndGrad(x: Float32Array, size: number, y: Float32Array, grad: Float32Array | null): void {
  for (let i = 0; i < size; i++) {
    const v = x[i], v2 = v * v;
    const t = tanhRational(0.79788456 * v * (1 + 0.044715 * v2));
    y[i] = 0.5 * v * (1 + t);
    if (grad) grad[i] = 0.5 * v * (1 - t * t) * (0.79788456 + 0.1070322243 * v2) + 0.5 * (1 + t);
  }
}

/** Per weight matrix, after each finished mini-batch: ‖W_t‖_F, ‖W_t − W_0‖_F, ‖W_t − W_{t−1}‖_F, cos(W_t, W_0). */
export const weightMetricNames = ['norm', 'dist_init', 'dist_prev', 'cos_init'] as const;

/** The weight metrics' sums for one weight matrix over all heads, taken while its heads are updated. */
class MatrixSums {
  private norm = 0;
  private dInit = 0;
  private dPrev = 0;
  private dot = 0;
  private readonly norm0: number;

  constructor(private readonly W0: readonly Float32Array[]) {
    let sq = 0;
    for (const w of W0) for (let i = 0; i < w.length; i++) sq += w[i] * w[i];
    this.norm0 = Math.sqrt(sq);
  }

  start(): void {
    this.norm = this.dInit = this.dPrev = this.dot = 0;
  }

  /** W −= dW for head h, adding ‖W‖², ‖W − W_0‖², ‖W − W_prev‖² and W·W_0 of the result in the same pass. */
  update(W: Float32Array, dW: Float32Array, h: number): void {
    const W0 = this.W0[h];
    let { norm, dInit, dPrev, dot } = this;
    for (let i = 0; i < W.length; i++) {
      const before = W[i];
      W[i] = before - dW[i]; // float32, as the tensor form rounds it
      const w = W[i], w0 = W0[i];
      norm += w * w;
      dInit += (w - w0) * (w - w0);
      dPrev += (w - before) * (w - before);
      dot += w * w0;
    }
    Object.assign(this, { norm, dInit, dPrev, dot });
  }

  row(): number[] {
    const norm = Math.sqrt(this.norm);
    return [norm, Math.sqrt(this.dInit), Math.sqrt(this.dPrev), this.dot / (norm * this.norm0)];
  }
}

/** The weight metrics of one layer (W1, and W2 for TTT-MLP), one row per finished mini-batch. */
export class WeightMetricSums {
  readonly W1: MatrixSums;
  readonly W2: MatrixSums | null;
  /** Columns of a row: W1's four metrics, then W2's. */
  readonly columns: number;

  constructor(W0: readonly InnerArrays[], mlp: boolean) {
    this.W1 = new MatrixSums(W0.map((w) => w.W1));
    this.W2 = mlp ? new MatrixSums(W0.map((w) => w.W2!)) : null;
    this.columns = weightMetricNames.length * (mlp ? 2 : 1);
  }

  /** Before a mini-batch's updates. */
  start(): void {
    this.W1.start();
    this.W2?.start();
  }

  /** After all heads of a mini-batch were updated. */
  row(): number[] {
    return [...this.W1.row(), ...(this.W2?.row() ?? [])];
  }
}

/**
 * The statistics of one finished mini-batch for the tensor form (ttt.ts), by the same definitions as the scan's:
 * (init, before, after) losses of its last token, whose XK and XV are the last rows of `XK`, `XV` ([H, k, f]), and
 * the weight metrics of `after` that followed `before`. Reads the tensors back (one small read per finished
 * mini-batch). Returns [1, 3] and [1, columns] tensors for what is asked.
 */
export function miniBatchStatistics(
  init: InnerParams, before: InnerParams, after: InnerParams, XK: tf.Tensor3D, XV: tf.Tensor3D, lnWeight: tf.Tensor3D, lnBias: tf.Tensor3D,
  want: { readonly stats: boolean; readonly weights: boolean },
): { stats?: tf.Tensor2D; metrics?: tf.Tensor2D } {
  if (!want.stats && !want.weights) return {};
  const [H, k, f] = XK.shape, mlp = after.W2 !== undefined;
  const heads = { init: headArrays(init, H, false), before: headArrays(before, H, true), after: headArrays(after, H, false) };
  const norms = headNorms(lnWeight, lnBias);
  const result: { stats?: tf.Tensor2D; metrics?: tf.Tensor2D } = {};
  if (want.stats) {
    const [xk, xv] = [XK, XV].map((t) => Float32Array.from(readNow(t)));
    const row = new Float32Array(2 * f), losses = [0, 0, 0];
    const work = { Z1: new Float32Array(after.W1.shape[2]), Z: new Float32Array(f) };
    for (let h = 0; h < H; h++) {
      const x0 = (h * k + k - 1) * f;
      for (let i = 0; i < f; i++) [row[i], row[f + i]] = [xk[x0 + i], xv[x0 + i] - xk[x0 + i]];
      [heads.init, heads.before, heads.after].forEach((w, j) => (losses[j] += innerForwardRows(w[h], row.subarray(0, f), row.subarray(f), 1, f, norms[h], work, null) / H));
    }
    result.stats = tf.tensor2d(losses, [1, 3]);
  }
  if (want.weights) {
    // the scan's update W −= ΔW, replayed from `before` with ΔW = before − after
    const sums = new WeightMetricSums(heads.init, mlp);
    sums.start();
    for (let h = 0; h < H; h++) {
      for (const [key, matrix] of [['W1', sums.W1], ['W2', sums.W2]] as const) {
        if (!matrix) continue;
        const W = heads.before[h][key]!, next = heads.after[h][key]!;
        matrix.update(W, W.map((w, i) => w - next[i]), h);
      }
    }
    result.metrics = tf.tensor2d(sums.row(), [1, sums.columns]);
  }
  return result;
}
