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
import { expNonPositive } from './loop-math.js';
import { readNow } from './cpu-arrays.js';

/**
 * y [T, Di] (D skip included) and h_T [Di, N] of the selective scan from h0, as the tensor form returns them.
 * Inputs: u, delta [T, Di]; A [Di, N]; B, C [T, N]; D [Di]; h0 [Di, N].
 */
export function selectiveScanLoop(
  u: tf.Tensor2D, delta: tf.Tensor2D, A: tf.Tensor2D, B: tf.Tensor2D, C: tf.Tensor2D, D: tf.Tensor1D, h0: tf.Tensor2D,
): { y: tf.Tensor2D; h: tf.Tensor2D } {
  const [T, Di] = u.shape, N = A.shape[1];
  const h = Float32Array.from(readNow(h0)); // [Di, N] a copy, updated in place
  const y = new Float32Array(T * Di); // [T, Di]
  // views of the backend's memory on wasm: valid until the next TF.js call, so the loop makes none
  const uD = readNow(u), dD = readNow(delta), aD = readNow(A), bD = readNow(B), cD = readNow(C), skip = readNow(D);
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
  return { y: tf.tensor2d(y, [T, Di]), h: tf.tensor2d(h, [Di, N]) };
}
