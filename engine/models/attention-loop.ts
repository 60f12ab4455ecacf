/**
 * Causal attention (full or in a sliding window) for CPU backends: per head and block of queries, two plain 2-D
 * matMuls (XNNPACK's fast path on wasm) and the masked softmax in a loop between them.
 *
 * The same math as the query blocks of `llamaAttention` in transformer.ts (ref: modeling_llama.py
 * eager_attention_forward): softmax(q·Kᵀ/√D + mask)·V, where the query at absolute position i sees the keys at
 * i−W+1 … i. The tensor form runs batched matMuls (a plain loop on wasm), adds a [b, keys] mask and takes the softmax
 * over keys it then masks away; here each query block is small enough (64) that it reads only ~W+64 keys, the
 * scores come out keys-major ([n, b]: K's rows as stored, so no transpose of the keys), and the softmax touches only
 * the keys a query sees, normalised on the [b, D] output rather than on the [b, n] weights. Not differentiable (it reads tensors back): training runs the tensor
 * form (`form: 'dual'`).
 *
 * Glossary (transformer.ts): T queries in the chunk, H query heads, G key/value heads, R = H/G, D head_dim,
 * P cached keys, S = P + T keys, W window; b queries in a block, n keys it reads.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeSgemm, type Sgemm } from '../core/native-matmul.js';
import { expNonPositive } from './loop-math.js';
import { readNow } from './cpu-arrays.js';
import { type SimdKernels, simdKernels } from './simd-kernels.js';

/** Queries per block: small enough that a block reads few keys it must mask, large enough for a fast matMul. */
const queryBlock = 64;

/** (a · b) [m, n] of a [m, k] and b [k, n] through TF.js, read into `out`; the tensors are freed at once. */
function matMulInto(a: Float32Array, b: Float32Array, m: number, k: number, n: number, out: Float32Array): void {
  const ta = tf.tensor2d(a, [m, k]), tb = tf.tensor2d(b, [k, n]);
  const product = tf.matMul(ta, tb);
  out.set(readNow(product)); // read at once: `readNow` is valid until the next TF.js call
  tf.dispose([ta, tb, product]);
}

/**
 * y [T, H·D] (before o_proj) for queries q [H, T, D] at positions P … P+T−1 over keys and values K, V [G, S, D]
 * (after RoPE), with a window W (null: every earlier key).
 */
export function causalAttentionLoop(q: tf.Tensor3D, K: tf.Tensor3D, V: tf.Tensor3D, window: number | null): tf.Tensor2D {
  const kernels = simdKernels(), sgemm = nativeSgemm();
  if (kernels && sgemm) return causalAttentionSimd(q, K, V, window, kernels, sgemm);
  const [H, T, D] = q.shape, [G, S] = K.shape, R = H / G, P = S - T;
  const W = window ?? Infinity, scale = 1 / Math.sqrt(D);
  // copies, as TF.js runs below; q scaled by 1/√D here rather than every score
  const qD = readNow(q).map((x) => x * scale), KD = Float32Array.from(readNow(K)), VD = Float32Array.from(readNow(V));
  const y = new Float32Array(T * H * D); // [T, H·D]
  const maxKeys = Math.min(S, queryBlock + (Number.isFinite(W) ? W - 1 : S));
  const qT = new Float32Array(D * queryBlock); // [D, b] one head's queries of the block, transposed
  const scoresT = new Float32Array(maxKeys * queryBlock); // [n, b] keys × queries: K rows are contiguous as stored
  const probs = new Float32Array(queryBlock * maxKeys); // [b, n] unnormalised: exp(score − max), 0 outside the window
  const sums = new Float64Array(queryBlock);
  const out = new Float32Array(queryBlock * D); // [b, D]
  for (let t0 = 0; t0 < T; t0 += queryBlock) {
    const b = Math.min(queryBlock, T - t0);
    const kStart = Math.max(0, P + t0 - (W - 1)), kEnd = P + t0 + b, n = kEnd - kStart; // keys any query of the block sees
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / R); // query head h uses K/V head floor(h / R) (repeat_kv)
      const Kg = KD.subarray((g * S + kStart) * D, (g * S + kEnd) * D), Vg = VD.subarray((g * S + kStart) * D, (g * S + kEnd) * D); // [n, D]
      const q0 = (h * T + t0) * D;
      for (let i = 0; i < b; i++) for (let d = 0; d < D; d++) qT[d * b + i] = qD[q0 + i * D + d];
      const s = scoresT.subarray(0, n * b);
      matMulInto(Kg, qT.subarray(0, D * b), n, D, b, s);
      const p = probs.subarray(0, b * n);
      for (let i = 0; i < b; i++) {
        const pos = P + t0 + i, row = i * n;
        const lo = Math.max(kStart, pos - (W - 1)) - kStart, hi = pos - kStart; // keys lo … hi of the block
        let max = -Infinity;
        for (let j = lo; j <= hi; j++) if (s[j * b + i] > max) max = s[j * b + i];
        let sum = 0;
        for (let j = lo; j <= hi; j++) sum += (p[row + j] = expNonPositive(s[j * b + i] - max));
        sums[i] = sum;
        p.fill(0, row, row + lo);
        p.fill(0, row + hi + 1, row + n);
      }
      matMulInto(p, Vg, b, n, D, out.subarray(0, b * D));
      for (let i = 0; i < b; i++) {
        const inv = 1 / sums[i], o = (t0 + i) * H * D + h * D;
        for (let d = 0; d < D; d++) y[o + d] = out[i * D + d] * inv;
      }
    }
  }
  return tf.tensor2d(y, [T, H * D]);
}

/**
 * `causalAttentionLoop` with the products through the native BLAS directly (no tensors) and the masked softmax by
 * the WebAssembly SIMD kernel (simd-kernels.ts `softmax`, four queries at a time): per head and block of queries,
 * scores [n, b] = K·qᵀ, weights P = exp(scores − max) in the window (0 elsewhere), out [b, D] = Pᵀ·V / Σ P.
 */
function causalAttentionSimd(q: tf.Tensor3D, K: tf.Tensor3D, V: tf.Tensor3D, window: number | null, kernels: SimdKernels, sgemm: Sgemm): tf.Tensor2D {
  const [H, T, D] = q.shape, [G, S] = K.shape, R = H / G, P = S - T;
  const W = window ?? 2 ** 30, scale = 1 / Math.sqrt(D);
  const maxKeys = Math.min(S, queryBlock + (window === null ? S : window - 1));
  const stride = Math.ceil(queryBlock / 4) * 4; // columns of the kernel's [n, ·] arrays: a multiple of its 4 lanes
  const [scores, weights, sums, qT, out] = kernels.arena(maxKeys * stride, maxKeys * stride, stride, D * stride, queryBlock * D);
  qT.fill(0); // columns past a short last block stay 0
  // views of the backend's memory on wasm, valid until the next TF.js call: none is made before the end
  const qD = readNow(q), KD = readNow(K), VD = readNow(V);
  const y = new Float32Array(T * H * D); // [T, H·D]
  for (let t0 = 0; t0 < T; t0 += queryBlock) {
    const b = Math.min(queryBlock, T - t0);
    const kStart = Math.max(0, P + t0 - (W - 1)), kEnd = P + t0 + b, n = kEnd - kStart; // keys any query of the block sees
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / R); // query head h uses K/V head floor(h / R) (repeat_kv)
      const Kg = KD.subarray((g * S + kStart) * D, (g * S + kEnd) * D), Vg = VD.subarray((g * S + kStart) * D, (g * S + kEnd) * D); // [n, D]
      const q0 = (h * T + t0) * D;
      for (let i = 0; i < b; i++) for (let d = 0; d < D; d++) qT[d * stride + i] = qD[q0 + i * D + d] * scale; // [D, stride]
      if (b < stride) for (let d = 0; d < D; d++) qT.fill(0, d * stride + b, (d + 1) * stride);
      sgemm(false, false, n, stride, D, Kg, D, qT, stride, scores, stride); // [n, stride]
      kernels.softmax(n, stride, P + t0 - kStart, W, kernels.offset(scores), kernels.offset(weights), kernels.offset(sums));
      sgemm(true, false, b, D, n, weights, stride, Vg, D, out, D); // [b, D]
      for (let i = 0; i < b; i++) {
        const inv = 1 / sums[i], o = (t0 + i) * H * D + h * D;
        for (let d = 0; d < D; d++) y[o + d] = out[i * D + d] * inv;
      }
    }
  }
  return tf.tensor2d(y, [T, H * D]);
}
