/**
 * What the TTT inner loop reports about itself (DESIGN.md "Inner-loop statistics"), on plain arrays, for both TTT
 * variants: the self-supervised loss of a token under given inner weights (ttt_loss_init / _before / _after on a
 * mini-batch's last token), the layer-norm backward that loss and the inner gradients share, and the weight metrics
 * after each mini-batch (‖W‖, ‖W − W_0‖, ‖W − W_prev‖, cos(W, W_0) per weight matrix, all heads together).
 *
 * Glossary (ttt.ts): H heads of f features, F1 the first inner layer's width (f or 4f), r rows.
 */
import { gemm } from './cpu-arrays.js';
import { expNonPositive } from './loop-math.js';

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
 * y = gelu(x) (tanh form, ref: ttt.py gelu) and, when `grad` is given, gelu′(x) (ref: ttt.py gelu_bwd), for `size`
 * values (y may be x). As 0.5·x·(1 + tanh u) = x·σ(2u), with σ through `expNonPositive` (Math.tanh is slow).
 */
export function geluAndGrad(x: Float32Array, size: number, y: Float32Array, grad: Float32Array | null): void {
  for (let i = 0; i < size; i++) {
    const v = x[i], v2 = v * v;
    const z = 2 * 0.79788456 * v * (1 + 0.044715 * v2); // 2u
    const e = expNonPositive(-Math.abs(z));
    const s = z >= 0 ? 1 / (1 + e) : e / (1 + e); // σ(2u) = (1 + tanh u) / 2
    y[i] = v * s;
    if (grad) grad[i] = 2 * v * s * (1 - s) * (0.79788456 + 0.1070322243 * v2) + s; // 1 − tanh² u = 4σ(1 − σ)
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
