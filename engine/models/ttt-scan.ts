/**
 * The TTT inner loop over whole, aligned mini-batches, laid out for CPU backends (wasm, cpu, tensorflow): one kernel
 * for TTT-Linear and TTT-MLP, behind the signature of the dual form in ttt.ts and tested against it.
 *
 * Same math as `tttDualFormSegment` (ref: ttt.py TTTLinear.ttt / TTTMLP.ttt compute_mini_batch, dual form), arranged
 * for where TF.js on a CPU is fast and slow (DESIGN.md "Engine backends"): batched matMuls are a plain loop, slices
 * of large tensors copy their whole input, and every small op costs ~10 µs of dispatch. So the scan goes per
 * mini-batch and head over token-major arrays ([T, H, f], as the projections produce them): each product is one
 * plain 2-D matrix product (`gemm`: OpenBLAS through core/native-matmul.ts where it loads, else XNNPACK), and the
 * rest (GELU, the layer-norm backward, the causal weights, the output layer norm and residual) runs in JavaScript
 * on the rows. The inner weights live in JavaScript arrays for the run (W − ΔW in float32 rounds as the tensor form
 * does); the inner-loop statistics and weight metrics are taken on the way (`ttt-stats.ts`). The result equals the
 * tensor form to float rounding (JavaScript accumulates in float64); the parity and chunking tests run both.
 *
 * Per mini-batch and head, with X̄ = XQ, η_ij = token_eta_i · lr_j on and below the diagonal, η_last = η's last row:
 *   Z1 = XK·W1 + b1, Z̄1 = XQ·W1 + b1 − (η ⊙ (XQ·XKᵀ + 1))·∇1                      (+ for MLP:)
 *   X2 = gelu(Z1), Z2 = X2·W2 + b2, X̄2 = gelu(Z̄1), Z̄2 = X̄2·W2 + b2 − (η ⊙ (X̄2·X2ᵀ + 1))·∇2
 *   ∇_last = ∇ of ½‖LN(Z_last) − (XV − XK)‖², ∇1 = (∇2·W2ᵀ) ⊙ gelu′(Z1) for MLP
 *   out = XQ + LN(Z̄_last);  W_l −= (η_last ⊙ X_l)ᵀ·∇_l, b_l −= Σ_j η_last,j ∇_l,j
 *
 * Glossary: T tokens (a multiple of K), n = T/K mini-batches, H heads of f features, K tokens per mini-batch,
 * F1 the first inner layer's width (f for TTT-Linear, F = 4f for TTT-MLP).
 */
import * as tf from '@tensorflow/tfjs-core';
import { gemm, readNow, type ScratchArrays } from './cpu-arrays.js';
import { geluAndGrad, type HeadNorm, headArrays, headNorms, type InnerArrays, innerForwardRows, joinHeads, lnFusedL2Bwd, WeightMetricSums } from './ttt-stats.js';
import type { InnerParams } from './ttt.js';

export interface ScanInputs {
  /** [T, H, f] token-major, XQ and XK after RoPE. */
  readonly XQ: Float32Array;
  readonly XK: Float32Array;
  readonly XV: Float32Array;
  /** [T, H] ttt_lr_eta. */
  readonly lr: Float32Array;
  readonly T: number;
  readonly H: number;
  readonly K: number;
  /** [K] token_eta. */
  readonly tokenEta: Float32Array;
  /** The inner weights at the start of the run, and W_0 of the sequence (for ttt_loss_init and the distances). */
  readonly params: InnerParams;
  readonly init: InnerParams;
  readonly lnWeight: tf.Tensor3D; // [H, 1, f]
  readonly lnBias: tf.Tensor3D;
  readonly stats: boolean;
  readonly metrics: boolean;
  /** Which mini-batches of the run (by index within it) to return weight snapshots of. */
  readonly snapshotAt?: (index: number) => boolean;
  /** Where to write `out` ([T, H, f]); default a new array. */
  readonly outInto?: Float32Array;
}

export interface ScanRun {
  /** [T, H, f] token-major: XQ + LN(Z̄) for every token of the run. */
  readonly out: Float32Array;
  /** The inner weights after the run. */
  readonly params: InnerParams;
  /** [n, 3] (init, before, after) per mini-batch, when asked. */
  readonly stats?: tf.Tensor2D;
  /** [n, 4 per weight matrix] ‖W‖, ‖W − W_0‖, ‖W − W_prev‖, cos(W, W_0) after each mini-batch, when asked. */
  readonly metrics?: tf.Tensor2D;
  /** The weight matrices after the mini-batches `snapshotAt` picked (index within the run). */
  readonly snapshots: { readonly index: number; readonly weights: Record<string, tf.Tensor3D> }[];
}

/**
 * The run's inputs from the layer's projections [T, C], read back token-major ([T, H, f] flat) into reused arrays:
 * XQ and XK with RoPE applied here (rope(x) = x·cos + swapPairs(x)·sin at each token's position in its mini-batch,
 * as blocks.ts `applyInterleavedRope` does), XV as it is, and ttt_lr_eta [T, H].
 */
export function tokenMajorInputs(
  projections: { readonly XQ: tf.Tensor2D; readonly XK: tf.Tensor2D; readonly XV: tf.Tensor2D; readonly lr: tf.Tensor2D },
  positions: Int32Array, H: number, rope: { readonly cosData: Float32Array; readonly sinData: Float32Array }, scratch: ScratchArrays,
): { XQ: Float32Array; XK: Float32Array; XV: Float32Array; lr: Float32Array } {
  const T = positions.length, C = projections.XQ.shape[1], f = C / H;
  const { cosData, sinData } = rope;
  const roped = (t: tf.Tensor2D, out: Float32Array) => {
    const x = readNow(t); // read at once: no TF.js call until the loop is done
    for (let tok = 0; tok < T; tok++) {
      const r0 = positions[tok] * f;
      for (let h = 0; h < H; h++) {
        const o = tok * C + h * f;
        for (let i = 0; i < f; i += 2) {
          out[o + i] = x[o + i] * cosData[r0 + i] + x[o + i + 1] * sinData[r0 + i];
          out[o + i + 1] = x[o + i + 1] * cosData[r0 + i + 1] + x[o + i] * sinData[r0 + i + 1];
        }
      }
    }
    return out;
  };
  const copied = (t: tf.Tensor2D, out: Float32Array) => (out.set(readNow(t)), out);
  return {
    XQ: roped(projections.XQ, scratch.get('XQ', T * C)), XK: roped(projections.XK, scratch.get('XK', T * C)),
    XV: copied(projections.XV, scratch.get('XV', T * C)), lr: copied(projections.lr, scratch.get('lr', T * H)),
  };
}

/** Work arrays of one mini-batch and head, allocated once per run. */
class Buffers {
  readonly rows: Float32Array; // [XK; XQ]                 [2K, f]
  readonly target: Float32Array; // XV − XK                [K, f]
  readonly keys: Float32Array; // η_last,j · XK_j          [K, f]
  readonly Z1: Float32Array; // [XK; XQ]·W1 + b1, its lower half then Z̄1   [2K, F1]
  readonly A: Float32Array; // XQ·XKᵀ or X̄2·X2ᵀ, then η ⊙ (A + 1)           [K, K]
  readonly grad1: Float32Array; // ∇1                      [K, F1]
  readonly dW1: Float32Array; // [f, F1]
  // TTT-MLP only
  readonly X2: Float32Array; // gelu(Z1), then η_last,j · X2_j   [K, F]
  readonly geluGrad: Float32Array; // gelu′(Z1)            [K, F]
  readonly X2Bar: Float32Array; // gelu(Z̄1)                [K, F]
  readonly Z2: Float32Array; // X2·W2 + b2, then Z̄2         [K, f]
  readonly grad2: Float32Array; // ∇2                      [K, f]
  readonly dW2: Float32Array; // [F, f]

  constructor(K: number, f: number, F1: number, mlp: boolean) {
    const a = (n: number) => new Float32Array(n);
    [this.rows, this.target, this.keys, this.Z1, this.A] = [a(2 * K * f), a(K * f), a(K * f), a(2 * K * F1), a(K * K)];
    [this.grad1, this.dW1] = [a(K * F1), a(f * F1)];
    const m = mlp ? 1 : 0;
    [this.X2, this.geluGrad, this.X2Bar, this.Z2, this.grad2, this.dW2] = [a(m * K * F1), a(m * K * F1), a(m * K * F1), a(m * K * f), a(m * K * f), a(m * F1 * f)];
  }
}

/**
 * A run of whole mini-batches starting at a mini-batch boundary, with every token's output. Returns what the tensor
 * form returns. Call inside `tf.tidy`.
 */
export function tttScanRun(inp: ScanInputs): ScanRun {
  const { T, H, K, XK, XV } = inp;
  const f = inp.params.W1.shape[1], F1 = inp.params.W1.shape[2], stride = H * f, n = T / K;
  const mlp = inp.params.W2 !== undefined;
  const norms = headNorms(inp.lnWeight, inp.lnBias);
  const W = headArrays(inp.params, H, true); // updated in place through the run
  const W0 = headArrays(inp.init, H, false);
  const out = inp.outInto ?? new Float32Array(T * stride);
  const buf = new Buffers(K, f, F1, mlp);
  const sums = inp.metrics ? new WeightMetricSums(W0, mlp) : null;
  const statsRows = new Float32Array(n * 3);
  const metricRows = new Float32Array(n * (sums?.columns ?? 0));
  const snapshots: { index: number; weights: Record<string, tf.Tensor3D> }[] = [];
  const lastRows = new Float32Array(2 * f); // one token's XK and target, for the "after" loss
  const forward = { Z1: new Float32Array(n * F1), Z: new Float32Array(n * f) }; // innerForwardRows' work arrays

  for (let m = 0; m < n; m++) {
    const t0 = m * K;
    let before = 0, after = 0;
    sums?.start();
    for (let h = 0; h < H; h++) {
      before += miniBatchHead(inp, W[h], norms[h], buf, t0, h, f, F1, sums, out);
      if (inp.stats) {
        // ttt_loss_last: the mini-batch's last token through the weights it produced
        packLastToken(XK, XV, (t0 + K - 1) * stride + h * f, f, lastRows);
        after += innerForwardRows(W[h], lastRows.subarray(0, f), lastRows.subarray(f), 1, f, norms[h], forward, null);
      }
    }
    statsRows[m * 3 + 1] = before / H;
    statsRows[m * 3 + 2] = after / H;
    if (sums) metricRows.set(sums.row(), m * sums.columns);
    if (inp.snapshotAt?.(m)) {
      const now = joinHeads(W, inp.params);
      tf.dispose([now.b1, now.b2 ?? []]);
      snapshots.push({ index: m, weights: { W1: now.W1, ...(now.W2 ? { W2: now.W2 } : {}) } });
    }
  }
  if (inp.stats) initLosses(inp, W0, norms, f, F1, statsRows);
  return {
    out,
    params: joinHeads(W, inp.params),
    stats: inp.stats ? tf.tensor2d(statsRows, [n, 3]) : undefined,
    metrics: sums ? tf.tensor2d(metricRows, [n, sums.columns]) : undefined,
    snapshots,
  };
}

/** ttt_loss_init of every mini-batch of the run: their last tokens through W_0, one product per head. */
function initLosses(inp: ScanInputs, W0: readonly InnerArrays[], norms: readonly HeadNorm[], f: number, F1: number, statsRows: Float32Array): void {
  const { H, K, XK, XV } = inp, n = inp.T / K, stride = H * f;
  const X = new Float32Array(n * f), target = new Float32Array(n * f), losses = new Float32Array(n);
  const work = { Z1: new Float32Array(n * F1), Z: new Float32Array(n * f) };
  for (let h = 0; h < H; h++) {
    for (let m = 0; m < n; m++) {
      const x0 = (m * K + K - 1) * stride + h * f;
      for (let i = 0; i < f; i++) {
        X[m * f + i] = XK[x0 + i];
        target[m * f + i] = XV[x0 + i] - XK[x0 + i];
      }
    }
    innerForwardRows(W0[h], X, target, n, f, norms[h], work, losses);
    for (let m = 0; m < n; m++) statsRows[m * 3] += losses[m] / H;
  }
}

/** XK and XV − XK of one token of one head, from `x0` in the token-major arrays, into `into` ([2, f]). */
function packLastToken(XK: Float32Array, XV: Float32Array, x0: number, f: number, into: Float32Array): void {
  for (let i = 0; i < f; i++) {
    into[i] = XK[x0 + i];
    into[f + i] = XV[x0 + i] - XK[x0 + i];
  }
}

/**
 * One mini-batch of one head: writes the outputs of its K tokens to `out`, updates the head's weights `w` in place
 * (adding to `sums` what the weight metrics need) and returns the last token's loss at the starting weights
 * (ttt_loss_before). ref: ttt.py TTTLinear.ttt / TTTMLP.ttt compute_mini_batch, dual form.
 */
function miniBatchHead(
  inp: ScanInputs, w: InnerArrays, norm: HeadNorm, buf: Buffers, t0: number, h: number, f: number, F1: number, sums: WeightMetricSums | null,
  out: Float32Array,
): number {
  const { XQ, XK, XV, lr, tokenEta, H, K } = inp;
  const stride = H * f, etaLast = tokenEta[K - 1];
  const { rows, target, keys, Z1, A, grad1 } = buf;
  for (let r = 0; r < K; r++) {
    const x0 = (t0 + r) * stride + h * f, eta = etaLast * lr[(t0 + r) * H + h];
    for (let i = 0; i < f; i++) {
      const xk = XK[x0 + i];
      rows[r * f + i] = xk;
      rows[(K + r) * f + i] = XQ[x0 + i];
      target[r * f + i] = XV[x0 + i] - xk;
      keys[r * f + i] = eta * xk;
    }
  }
  const XQrows = rows.subarray(K * f);
  gemm(false, false, 2 * K, F1, f, rows, w.W1, Z1); // [XK; XQ]·W1          [2K, F1]
  addRowVector(Z1, w.b1, 2 * K, F1);
  gemm(false, true, K, K, f, XQrows, rows, A); // XQ·XKᵀ                    [K, K]
  let before: number;
  if (w.W2 && w.b2) {
    // ref: ttt.py TTTMLP.ttt — X2 = gelu(Z1), Z2 = X2·W2 + b2, ∇1 = (∇2·W2ᵀ) ⊙ gelu′(Z1)
    geluAndGrad(Z1, K * F1, buf.X2, buf.geluGrad);
    gemm(false, false, K, f, F1, buf.X2, w.W2, buf.Z2); // [K, f]
    addRowVector(buf.Z2, w.b2, K, f);
    before = lnFusedL2Bwd(buf.Z2, target, K, f, norm, buf.grad2, null);
    gemm(false, true, K, F1, f, buf.grad2, w.W2, grad1); // ∇2·W2ᵀ        [K, F1]
    for (let i = 0; i < K * F1; i++) grad1[i] *= buf.geluGrad[i];
  } else {
    before = lnFusedL2Bwd(Z1, target, K, f, norm, grad1, null);
  }
  // Z̄1 = XQ·W1 + b1 − (η ⊙ (XQ·XKᵀ + 1))·∇1, in the lower half of Z1
  const Z1Bar = Z1.subarray(K * F1);
  causalWeights(A, tokenEta, lr, t0, h, H, K);
  gemm(false, false, K, F1, K, A, grad1, Z1Bar, -1, 1);
  update(w.W1, w.b1, keys, grad1, lr, etaLast, t0, h, H, K, f, F1, buf.dW1, sums?.W1 ?? null);
  if (!w.W2 || !w.b2) {
    outputs(XQ, Z1Bar, t0, stride, h * f, K, f, norm, out);
    return before;
  }
  // Z̄2 = X̄2·W2 + b2 − (η ⊙ (X̄2·X2ᵀ + 1))·∇2, with W2 and b2 before their update
  const { X2, X2Bar, Z2, grad2 } = buf;
  geluAndGrad(Z1Bar, K * F1, X2Bar, null);
  gemm(false, false, K, f, F1, X2Bar, w.W2, Z2); // [K, f]
  addRowVector(Z2, w.b2, K, f);
  gemm(false, true, K, K, F1, X2Bar, X2, A); // X̄2·X2ᵀ                     [K, K]
  causalWeights(A, tokenEta, lr, t0, h, H, K);
  gemm(false, false, K, f, K, A, grad2, Z2, -1, 1);
  for (let r = 0; r < K; r++) {
    const eta = etaLast * lr[(t0 + r) * H + h];
    for (let i = 0; i < F1; i++) X2[r * F1 + i] *= eta; // η_last,j · X2_j
  }
  update(w.W2, w.b2, X2, grad2, lr, etaLast, t0, h, H, K, F1, f, buf.dW2, sums?.W2 ?? null);
  outputs(XQ, Z2, t0, stride, h * f, K, f, norm, out);
  return before;
}

/** rows × cols `Z` += b on every row. */
function addRowVector(Z: Float32Array, b: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) for (let i = 0; i < cols; i++) Z[r * cols + i] += b[i];
}

/** A [K, K] (XQ·XKᵀ or X̄2·X2ᵀ) becomes η ⊙ (A + 1): token_eta_i · lr_j · (A_ij + 1) for j ≤ i, else 0. */
function causalWeights(A: Float32Array, tokenEta: Float32Array, lr: Float32Array, t0: number, h: number, H: number, K: number): void {
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < K; j++) A[i * K + j] = j <= i ? tokenEta[i] * lr[(t0 + j) * H + h] * (A[i * K + j] + 1) : 0;
  }
}

/**
 * W −= keysᵀ·∇ ([rowsW, cols]), keys already scaled by η_last,j, and b −= Σ_j η_last,j ∇_j; with `sums`, the weight
 * metrics' sums are taken in the same pass.
 */
function update(
  W: Float32Array, b: Float32Array, keys: Float32Array, grad: Float32Array, lr: Float32Array, etaLast: number,
  t0: number, h: number, H: number, K: number, rowsW: number, cols: number, dW: Float32Array, sums: WeightMetricSums['W1'] | null,
): void {
  for (let r = 0; r < K; r++) {
    const eta = etaLast * lr[(t0 + r) * H + h];
    for (let i = 0; i < cols; i++) b[i] -= eta * grad[r * cols + i];
  }
  if (!sums) return gemm(true, false, rowsW, cols, K, keys, grad, W, -1, 1); // W −= keysᵀ·∇ in place
  gemm(true, false, rowsW, cols, K, keys, grad, dW);
  sums.update(W, dW, h);
}

/** out_i = XQ_i + LN(Z̄_i) for the K tokens of one head, written into `out` at their token-major places. */
function outputs(XQ: Float32Array, Zbar: Float32Array, t0: number, stride: number, offset: number, K: number, f: number, norm: HeadNorm, out: Float32Array): void {
  const { gamma, beta } = norm;
  for (let i = 0; i < K; i++) {
    const q0 = (t0 + i) * stride + offset, z0 = i * f;
    let mean = 0;
    for (let c = 0; c < f; c++) mean += Zbar[z0 + c];
    mean /= f;
    let variance = 0;
    for (let c = 0; c < f; c++) variance += (Zbar[z0 + c] - mean) ** 2;
    const std = Math.sqrt(variance / f + 1e-6);
    for (let c = 0; c < f; c++) out[q0 + c] = XQ[q0 + c] + gamma[c] * ((Zbar[z0 + c] - mean) / std) + beta[c];
  }
}
