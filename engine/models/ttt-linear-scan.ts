/**
 * TTT-Linear's dual form over whole, aligned mini-batches, laid out for CPU backends (wasm, cpu).
 *
 * Same math as `tttDualFormSegment` in ttt.ts (ref: ttt.py TTTLinear.ttt compute_mini_batch, dual form), arranged
 * for where TF.js on a CPU is fast and slow (DESIGN.md "Engine backends"): plain 2-D matMuls run through XNNPACK,
 * while batched matMuls (a plain loop), slices of large tensors (which copy their whole input) and every small op
 * (~10 µs of dispatch each) are slow. So:
 *  - per mini-batch and head, two small 2-D matMuls, each doing two jobs: [XK; XQ]·[W | XKᵀ] gives Z = X·W and the
 *    attention XQ·XKᵀ; [(η·XK)ᵀ; η⊙(XQ·XKᵀ + 1)]·∇ gives the weight update and the dual form's causal term;
 *  - W and b live in JavaScript arrays for the run (W − ΔW in float32 is the same rounding either way), and
 *    everything else runs there too, on the rows read back: the layer-norm backward, the output layer norm and
 *    residual, the inner-loop losses and weight metrics.
 * The arrays stay token-major ([T, H, f], as the projections produce them), so no transposes are needed on the way
 * in or out. Reading tensors back mid-step is deliberate: on CPU backends it is a read of the heap (`readNow`). The
 * result equals the general path to float rounding (JavaScript accumulates in float64); the parity and chunking
 * tests run both.
 *
 * Glossary: T tokens (a multiple of K), n = T/K mini-batches, H heads of f features, K tokens per mini-batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeSgemm } from '../core/native-matmul.js';

export interface AlignedRun {
  /** [T, H, f] token-major: XQ + LN(Z̄) for every token of the run. */
  readonly out: Float32Array;
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
  /** [T, H, f] token-major, after RoPE. */
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
  readonly W1: tf.Tensor3D; // [H, f, f] at the start of the run
  readonly b1: tf.Tensor3D; // [H, 1, f]
  readonly W1init: tf.Tensor3D; // W_0 of the sequence, for ttt_loss_init and the distances
  readonly b1init: tf.Tensor3D;
  readonly lnWeight: tf.Tensor3D; // [H, 1, f]
  readonly lnBias: tf.Tensor3D;
  readonly stats: boolean;
  readonly metrics: boolean;
  /** Which mini-batches of the run (by index within it) to return W1 snapshots of. */
  readonly snapshotAt?: (index: number) => boolean;
  /** Where to write `out` ([T, H, f]); default a new array. */
  readonly outInto?: Float32Array;
}

/** One head's view: where its features start in a token's row, and its layer-norm parameters. */
interface Head {
  readonly offset: number; // h·f
  readonly gamma: Float32Array; // ttt_norm weight [f]
  readonly beta: Float32Array; // ttt_norm bias [f]
}

/**
 * ∇_Z ½‖LN(Z) − target‖² for `rows` rows of Z (row r at `r·f`), target = XV − XK of tokens t0 + r; writes ∇ to `out`
 * and returns the last row's mean squared error (the "before" loss when Z uses the mini-batch's start weights).
 * ref: ttt.py ln_fused_l2_bwd.
 */
function lnFusedL2Bwd(
  Z: Float32Array, XK: Float32Array, XV: Float32Array, t0: number, stride: number, head: Head, rows: number, f: number, out: Float32Array | null,
): number {
  let err = 0;
  for (let r = 0; r < rows; r++) {
    const z0 = r * f, x0 = (t0 + r) * stride + head.offset;
    let mean = 0;
    for (let i = 0; i < f; i++) mean += Z[z0 + i];
    mean /= f;
    let variance = 0;
    for (let i = 0; i < f; i++) {
      const d = Z[z0 + i] - mean;
      variance += d * d;
    }
    const std = Math.sqrt(variance / f + 1e-6);
    let s1 = 0, s2 = 0;
    err = 0;
    for (let i = 0; i < f; i++) {
      const xHat = (Z[z0 + i] - mean) / std;
      const diff = head.gamma[i] * xHat + head.beta[i] - (XV[x0 + i] - XK[x0 + i]); // LN(Z) − target
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

/**
 * a·b for plain [m, k] and [k, n] arrays: through the native BLAS where one is loaded (core/native-matmul.ts), into
 * `into`; otherwise through TF.js (XNNPACK on wasm). The caller reads the product from `data` and then calls `done`,
 * before any other TF.js call: on wasm `data` is then a view of the backend's heap (no copy, no garbage), which the
 * next allocation may move. Tensors are freed by hand: `tf.tidy` would walk a returned typed array element by
 * element looking for tensors.
 */
function matMulInPlace(a: Float32Array, b: Float32Array, m: number, k: number, n: number, into: Float32Array): { data: Float32Array; done: () => void } {
  const sgemm = nativeSgemm();
  if (sgemm) {
    sgemm(false, false, m, n, k, a, k, b, n, into, n);
    return { data: into, done: () => {} };
  }
  const ta = tf.tensor2d(a, [m, k]), tb = tf.tensor2d(b, [k, n]);
  const product = tf.matMul(ta, tb);
  return { data: readNow(product), done: () => tf.dispose([ta, tb, product]) };
}

/** The wasm backend's view of a tensor's memory (absent on other backends, where `dataSync` does not copy anyway). */
interface HeapBackend {
  typedArrayFromHeap?(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * A float32 tensor's values without a copy where the backend allows: on wasm a view of its heap, valid only until
 * the next TF.js call that allocates (read it at once); elsewhere `dataSync`. Never write to it.
 */
export function readNow(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as HeapBackend;
  return (backend.typedArrayFromHeap ? backend.typedArrayFromHeap(t) : t.dataSync()) as Float32Array;
}

/**
 * Arrays the CPU layout reuses from chunk to chunk, by role. Fresh multi-megabyte arrays cost more than their
 * contents here: each new page is zero-filled on first touch (a page fault; expensive in a VM), then collected.
 * Only for arrays nothing else keeps: uploads to wasm copy, but the cpu backend's `tf.tensor` keeps the array it is
 * given (`uploadsCopy` says which).
 */
export class ScratchArrays {
  private readonly arrays = new Map<string, Float32Array>();

  /** An array of `size` floats for `role` (contents left from before). */
  get(role: string, size: number): Float32Array {
    let a = this.arrays.get(role);
    if (!a || a.length < size) this.arrays.set(role, (a = new Float32Array(size)));
    return a.length === size ? a : a.subarray(0, size);
  }

  /** Whether `tf.tensor` copies its values on the active backend, so that an array passed to it may be reused. */
  static uploadsCopy(): boolean {
    return tf.getBackend() === 'wasm';
  }
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

const perHead = (data: Float32Array, H: number, size: number) => Array.from({ length: H }, (_, h) => data.subarray(h * size, (h + 1) * size));

/**
 * A run of whole mini-batches starting at a mini-batch boundary: the recurrence W_{m+1} = W_m − Σ_j η_last·lr_j·
 * x_jᵀ∇_j (and b alike), and every token's output. Returns what the general path returns. Call inside `tf.tidy`.
 */
export function tttLinearAlignedRun(inp: AlignedRunInputs): AlignedRun {
  const { T, H, K, XQ, XK, XV, lr, tokenEta } = inp;
  const f = inp.W1.shape[1], stride = H * f, F = f + K;
  const n = T / K;
  const etaLast = tokenEta[K - 1];
  const [gamma, beta] = [inp.lnWeight, inp.lnBias].map((t) => t.dataSync() as Float32Array);
  const heads: Head[] = Array.from({ length: H }, (_, h) => ({ offset: h * f, gamma: gamma.subarray(h * f, (h + 1) * f), beta: beta.subarray(h * f, (h + 1) * f) }));
  const W0 = perHead(inp.W1init.dataSync() as Float32Array, H, f * f);
  const b0 = perHead(inp.b1init.dataSync() as Float32Array, H, f);
  // W and b live in JavaScript for the whole run
  const W = perHead(Float32Array.from(inp.W1.dataSync()), H, f * f);
  const b = perHead(Float32Array.from(inp.b1.dataSync()), H, f);

  const out = inp.outInto ?? new Float32Array(T * stride);
  const statsRows = new Float32Array(n * 3);
  const metricRows = new Float32Array(n * 4);
  const snapshots: { index: number; W1: tf.Tensor3D }[] = [];
  const rows = new Float32Array(2 * K * f); // [XK_m; XQ_m] of one head                     [2K, f]
  const WX = new Float32Array(f * F); // [W | XK_mᵀ]                                               [f, f+K]
  const SE = new Float32Array(F * K); // [(η_last·lr_j·x_j)ᵀ; token_eta_i·lr_j·(XQ_i·XK_j + 1), j ≤ i]   [f+K, K]
  const grads = new Float32Array(K * f); // ∇ of one head's mini-batch                             [K, f]
  const Z = new Float32Array(2 * K * f); // XK·W + b, then XQ·W + b                               [2K, f]
  const z = new Float32Array(f);
  const products = { P: new Float32Array(2 * K * F), Q: new Float32Array(F * f) }; // for a native matMul to write into
  let norm0 = 0;
  for (const w of W0) for (let i = 0; i < f * f; i++) norm0 += w[i] * w[i];
  norm0 = Math.sqrt(norm0);

  for (let m = 0; m < n; m++) {
    const t0 = m * K; // this mini-batch's first token
    let before = 0;
    const sums = { norm: 0, dInit: 0, dPrev: 0, dot: 0 }; // the weight metrics' sums over heads, after this mini-batch
    for (let h = 0; h < H; h++) {
      const head = heads[h], Wh = W[h], bh = b[h];
      packZInputs(XQ, XK, Wh, t0, stride, head.offset, K, f, rows, WX);
      const P = matMulInPlace(rows, WX, 2 * K, f, F, products.P); // [2K, f+K]
      addBias(P.data, bh, 2 * K, f, F, Z);
      before += lnFusedL2Bwd(Z, XK, XV, t0, stride, head, K, f, grads);
      packUpdate(XK, lr, tokenEta, P.data, grads, bh, etaLast, t0, stride, head.offset, h, H, K, f, SE);
      P.done();
      const Q = matMulInPlace(SE, grads, F, K, f, products.Q); // [f+K, f]
      if (inp.metrics) updateAndMeasure(Wh, Q.data, W0[h], f * f, sums);
      else for (let i = 0; i < f * f; i++) Wh[i] -= Q.data[i];
      dualFormOutputs(XQ, Z, Q.data, f * f, t0, stride, head, K, f, out);
      Q.done();
    }
    if (inp.stats) statsRows[m * 3 + 1] = before / H;
    const last = t0 + K - 1;
    if (inp.stats) {
      let init = 0, after = 0;
      for (let h = 0; h < H; h++) {
        const x0 = last * stride + heads[h].offset;
        rowTimes(XK, x0, W0[h], b0[h], f, z);
        init += lnFusedL2Bwd(z, XK, XV, last, stride, heads[h], 1, f, null);
        rowTimes(XK, x0, W[h], b[h], f, z);
        after += lnFusedL2Bwd(z, XK, XV, last, stride, heads[h], 1, f, null);
      }
      statsRows[m * 3] = init / H;
      statsRows[m * 3 + 2] = after / H;
    }
    if (inp.metrics) {
      const { norm, dInit, dPrev, dot } = sums;
      metricRows.set([Math.sqrt(norm), Math.sqrt(dInit), Math.sqrt(dPrev), dot / (Math.sqrt(norm) * norm0)], m * 4);
    }
    if (inp.snapshotAt?.(m)) {
      const W1 = new Float32Array(H * f * f);
      W.forEach((w, h) => W1.set(w, h * f * f));
      snapshots.push({ index: m, W1: tf.tensor3d(W1, [H, f, f]) });
    }
  }

  const join = (parts: Float32Array[], size: number) => {
    const all = new Float32Array(H * size);
    parts.forEach((p, h) => all.set(p, h * size));
    return all;
  };
  return {
    out,
    W1: tf.tensor3d(join(W, f * f), [H, f, f]),
    b1: tf.tensor3d(join(b, f), [H, 1, f]),
    stats: inp.stats ? tf.tensor2d(statsRows, [n, 3]) : undefined,
    metrics: inp.metrics ? tf.tensor2d(metricRows, [n, 4]) : undefined,
    snapshots,
  };
}

/**
 * W −= ΔW for one head, adding to `sums` what the weight metrics need from that head, in the same pass: ‖W‖²,
 * ‖W − W_0‖², ‖W − W_prev‖² (W_prev the weights before this update, read as they are overwritten) and W·W_0.
 */
function updateAndMeasure(
  W: Float32Array, dW: Float32Array, W0: Float32Array, size: number, sums: { norm: number; dInit: number; dPrev: number; dot: number },
): void {
  let { norm, dInit, dPrev, dot } = sums;
  for (let i = 0; i < size; i++) {
    const before = W[i];
    W[i] = before - dW[i]; // float32, as the general path rounds it
    const w = W[i], w0 = W0[i];
    norm += w * w;
    dInit += (w - w0) * (w - w0);
    dPrev += (w - before) * (w - before);
    dot += w * w0;
  }
  Object.assign(sums, { norm, dInit, dPrev, dot });
}

/** rows = [XK_m; XQ_m] of one head ([2K, f]) and WX = [W | XK_mᵀ] ([f, f+K]), for P = rows·WX. */
function packZInputs(
  XQ: Float32Array, XK: Float32Array, Wh: Float32Array, t0: number, stride: number, offset: number, K: number, f: number, rows: Float32Array, WX: Float32Array,
): void {
  const F = f + K;
  for (let r = 0; r < K; r++) {
    const x0 = (t0 + r) * stride + offset;
    for (let i = 0; i < f; i++) {
      const xk = XK[x0 + i];
      rows[r * f + i] = xk;
      rows[(K + r) * f + i] = XQ[x0 + i];
      WX[i * F + f + r] = xk;
    }
  }
  for (let i = 0; i < f; i++) for (let j = 0; j < f; j++) WX[i * F + j] = Wh[i * f + j];
}

/** Z = P's first f columns + b: XK·W + b (rows 0…K−1) and XQ·W + b (rows K…2K−1). */
function addBias(P: Float32Array, b: Float32Array, rows: number, f: number, F: number, Z: Float32Array): void {
  for (let r = 0; r < rows; r++) for (let i = 0; i < f; i++) Z[r * f + i] = P[r * F + i] + b[i];
}

/**
 * SE = [(η_last·lr_j·x_j)ᵀ; token_eta_i·lr_j·(XQ_i·XK_j + 1) for j ≤ i] ([f+K, K]) for Q = SE·∇, and b's update
 * b −= Σ_j η_last·lr_j·∇_j. XQ_i·XK_j is P's column f + j of row K + i.
 */
function packUpdate(
  XK: Float32Array, lr: Float32Array, tokenEta: Float32Array, P: Float32Array, grads: Float32Array, b: Float32Array, etaLast: number,
  t0: number, stride: number, offset: number, h: number, H: number, K: number, f: number, SE: Float32Array,
): void {
  const F = f + K;
  for (let r = 0; r < K; r++) {
    const lrR = lr[(t0 + r) * H + h], eta = etaLast * lrR;
    const x0 = (t0 + r) * stride + offset;
    for (let i = 0; i < f; i++) {
      SE[i * K + r] = eta * XK[x0 + i];
      b[i] -= eta * grads[r * f + i];
    }
    for (let i = 0; i < K; i++) SE[(f + i) * K + r] = r <= i ? tokenEta[i] * lrR * (P[(K + i) * F + f + r] + 1) : 0;
  }
}

/**
 * One mini-batch and head's outputs, written to `out` at tokens t0…t0+K−1: XQ_i + LN(Z̄_i), where
 * Z̄_i = ZQ_i − MG_i, ZQ = XQ·W + b (rows K… of Z) and MG the dual form's causal term (rows of Q from `mgAt`).
 */
function dualFormOutputs(
  XQ: Float32Array, Z: Float32Array, Q: Float32Array, mgAt: number, t0: number, stride: number, head: Head, K: number, f: number, out: Float32Array,
): void {
  const { gamma, beta, offset } = head;
  for (let i = 0; i < K; i++) {
    const q0 = (t0 + i) * stride + offset, z0 = (K + i) * f, g0 = mgAt + i * f;
    let mean = 0;
    for (let c = 0; c < f; c++) mean += Z[z0 + c] - Q[g0 + c];
    mean /= f;
    let variance = 0;
    for (let c = 0; c < f; c++) {
      const d = Z[z0 + c] - Q[g0 + c] - mean;
      variance += d * d;
    }
    const std = Math.sqrt(variance / f + 1e-6);
    for (let c = 0; c < f; c++) out[q0 + c] = XQ[q0 + c] + gamma[c] * ((Z[z0 + c] - Q[g0 + c] - mean) / std) + beta[c];
  }
}
