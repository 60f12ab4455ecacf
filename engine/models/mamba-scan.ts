/**
 * Mamba's selective scan as a plain loop over the chunk's rows, for CPU backends (wasm, cpu, tensorflow).
 *
 * The same recurrence as `selectiveScanBlock` in mamba.ts (ref: mamba-minimal model.py MambaBlock.selective_scan):
 * h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t, y_t = h_t C_t + D u_t, token after token. At the demo sizes (Di 384,
 * N 8) the tensor form spends its time dispatching small ops and building [L, Di, N] blocks; this loop touches each
 * (token, channel, state) once. Not differentiable (it reads tensors back): training runs the tensor form
 * (`form: 'dual'`). Every factor exp(Δ A) ≤ 1 is multiplied, never divided, as in the tensor form.
 *
 * Glossary (mamba.ts): T tokens, Di d_inner, N d_state.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeSgemm, type Sgemm } from '../core/native-matmul.js';
import { expNonPositive } from './loop-math.js';
import { readNow, ScratchArrays } from './cpu-arrays.js';
import { type SimdKernels, simdKernels } from './simd-kernels.js';

/**
 * y [T, Di] (D skip included) and h_T [Di, N] of the selective scan from h0, as the tensor form returns them, from
 * x_proj's output: Δ = softplus(dtIn·dt_proj + dt_bias) is taken here. Inputs: u [T, Di]; xdbl [T, R + 2N] (dtIn,
 * B, C side by side); dtProj [R, Di]; dtBias [Di]; A [Di, N]; D [Di]; h0 [Di, N]. By the WebAssembly SIMD kernels
 * and the native BLAS where both run and d_inner is a multiple of 4, else by this loop.
 */
export function selectiveScanLoop(
  u: tf.Tensor2D, xdbl: tf.Tensor2D, dtProj: tf.Tensor2D, dtBias: tf.Tensor1D, A: tf.Tensor2D, D: tf.Tensor1D, h0: tf.Tensor2D,
): { y: tf.Tensor2D; h: tf.Tensor2D } {
  const [T, Di] = u.shape, N = A.shape[1], R = dtProj.shape[0];
  const kernels = simdKernels(), sgemm = nativeSgemm();
  if (kernels && sgemm && Di % 4 === 0) return selectiveScanSimd(u, xdbl, dtProj, dtBias, A, D, h0, kernels, sgemm);
  const [dtIn, B, C] = tf.split(xdbl, [R, N, N], 1) as tf.Tensor2D[]; // [T, R], [T, N], [T, N]
  const dtRaw = tf.matMul(dtIn, dtProj); // [T, Di]
  const h = Float32Array.from(readNow(h0)); // [Di, N] a copy, updated in place
  const y = new Float32Array(T * Di); // [T, Di]
  const dD = softplusRows(readNow(dtRaw), readNow(dtBias), T, Di); // Δ [T, Di], a new array
  // views of the backend's memory on wasm: valid until the next TF.js call, so the loop makes none
  const uD = readNow(u), aD = readNow(A), bD = readNow(B), cD = readNow(C), skip = readNow(D);
  for (let t = 0; t < T; t++) {
    const row = t * Di, bc = t * N;
    for (let d = 0; d < Di; d++) {
      const dt = dD[row + d], x = uD[row + d], du = dt * x, hd = d * N;
      let acc = skip[d] * x;
      for (let n = 0; n < N; n++) {
        const hn = expNonPositive(dt * aD[hd + n]) * h[hd + n] + du * bD[bc + n];
        h[hd + n] = hn;
        acc += hn * cD[bc + n];
      }
      y[row + d] = acc;
    }
  }
  tf.dispose([dtIn, B, C, dtRaw]);
  return { y: tf.tensor2d(y, [T, Di]), h: tf.tensor2d(h, [Di, N]) };
}

/** softplus(raw + bias) of [T, Di] rows, as torch computes it (the raw value itself above 20). */
function softplusRows(raw: Float32Array, bias: Float32Array, T: number, Di: number): Float32Array {
  const out = new Float32Array(T * Di);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < Di; d++) {
      const v = raw[t * Di + d] + bias[d];
      out[t * Di + d] = v > 20 ? v : Math.log1p(Math.exp(v));
    }
  }
  return out;
}

/**
 * `selectiveScanLoop` by the native BLAS (dtIn·dt_proj, read from x_proj's output in place) and the WebAssembly
 * SIMD kernels (simd-kernels.ts `softplus`, then `scan`, four channels at a time): the inputs are copied into the
 * kernels' memory (A and h transposed), the outputs out.
 */
function selectiveScanSimd(
  u: tf.Tensor2D, xdbl: tf.Tensor2D, dtProj: tf.Tensor2D, dtBias: tf.Tensor1D, A: tf.Tensor2D, D: tf.Tensor1D, h0: tf.Tensor2D,
  k: SimdKernels, sgemm: Sgemm,
): { y: tf.Tensor2D; h: tf.Tensor2D } {
  const [T, Di] = u.shape, N = A.shape[1], R = dtProj.shape[0], width = R + 2 * N;
  const [uK, xK, deltaK, biasK, aK, dK, hK, yK] = k.arena(T * Di, T * width, T * Di, Di, N * Di, Di, N * Di, T * Di);
  // views of the backend's memory on wasm, valid until the next TF.js call: none is made before the outputs
  uK.set(readNow(u));
  xK.set(readNow(xdbl));
  sgemm(false, false, T, Di, R, xK, width, readNow(dtProj), Di, deltaK, Di); // dtIn·dt_proj [T, Di]
  biasK.set(readNow(dtBias));
  k.softplus(T, Di, k.offset(deltaK), k.offset(biasK), k.offset(deltaK)); // Δ in place
  transposeInto(readNow(A), Di, N, aK); // [N, Di]
  dK.set(readNow(D));
  transposeInto(readNow(h0), Di, N, hK); // [N, Di]
  // B and C: columns R … R+2N−1 of xdbl's rows
  k.scan(T, Di, N, k.offset(uK), k.offset(deltaK), k.offset(aK), k.offset(xK) + R * 4, width, k.offset(dK), k.offset(hK), k.offset(yK));
  const h = transposeInto(hK, N, Di, new Float32Array(Di * N)); // [Di, N]
  // the cpu backend keeps the array it is given: hand it copies, as the kernels' memory is reused
  const own = (a: Float32Array) => (ScratchArrays.uploadsCopy() ? a : a.slice());
  return { y: tf.tensor2d(own(yK), [T, Di]), h: tf.tensor2d(h, [Di, N]) };
}

/** `out` [cols, rows] = x [rows, cols] transposed. */
function transposeInto(x: Float32Array, rows: number, cols: number, out: Float32Array): Float32Array {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  return out;
}
