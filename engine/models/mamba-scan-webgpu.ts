/**
 * Mamba's selective scan as one WGSL dispatch per layer and chunk, for the webgpu backend: the recurrence of
 * `selectiveScanBlock` in mamba.ts (ref: mamba-minimal model.py MambaBlock.selective_scan), token after token, one
 * invocation per channel with its N states in registers:
 *   Δ_t = softplus(dtIn_t·dt_proj + dt_bias), h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t, y_t = h_t C_t + D u_t
 * The tensor form scans blocks of 32 tokens in log₂ 32 doubling steps of small ops (some 40 dispatches per block);
 * this is one. The same signature and results as mamba-scan.ts `selectiveScanLoop` (its CPU counterpart); tested on
 * webgpu against the parity fixtures (mamba.test.ts). Not differentiable: training keeps the tensor form.
 *
 * Glossary (mamba.ts): T tokens, Di d_inner, N d_state, R dt_rank.
 */
import * as tf from '@tensorflow/tfjs-core';
import { runFusedProgram } from '../core/webgpu-program.js';

const threads = 64;

/** y [T, Di] (D skip included) and h_T [Di, N] from h0, as `selectiveScanLoop` takes and returns them. */
export function selectiveScanFused(
  u: tf.Tensor2D, xdbl: tf.Tensor2D, dtProj: tf.Tensor2D, dtBias: tf.Tensor1D, A: tf.Tensor2D, D: tf.Tensor1D, h0: tf.Tensor2D,
): { y: tf.Tensor2D; h: tf.Tensor2D } {
  const [T, Di] = u.shape, N = A.shape[1], R = dtProj.shape[0];
  const result = runFusedProgram({
    key: `mamba-scan:Di${Di}:N${N}:R${R}`,
    inputs: ['U', 'XD', 'DTP', 'DTB', 'AM', 'DSK', 'H0'],
    uniforms: { tokens: T },
    code: scanSource(Di, N, R),
    workgroups: Math.ceil(Di / threads),
    threads,
    outputSize: T * Di + Di * N,
  }, [u, xdbl, dtProj, dtBias, A, D, h0]);
  return {
    y: tf.reshape(tf.slice(result, [0], [T * Di]), [T, Di]),
    h: tf.reshape(tf.slice(result, [T * Di], [Di * N]), [Di, N]),
  };
}

/** `result`: y [T, Di], then h_T [Di, N]. xdbl's rows are dtIn [R], B [N], C [N]. */
function scanSource(Di: number, N: number, R: number): string {
  return `
const DI = ${Di}; const N = ${N}; const R = ${R}; const W = ${R + 2 * N};

// log(1 + x) for x ≥ 0, exact where 1 + x rounds (Goldberg): softplus of a very negative input is its exp
fn log1p(x: f32) -> f32 {
  let y = 1.0 + x;
  if (y == 1.0) { return x; }
  return log(y) * x / (y - 1.0);
}

// torch's softplus: the input itself above 20
fn softplus(v: f32) -> f32 {
  if (v > 20.0) { return v; }
  return max(v, 0.0) + log1p(exp(-abs(v)));
}

fn main(index: i32) {
  let d = index;
  if (d >= DI) { return; }
  let T = uniforms.tokens;
  var h: array<f32, N>;
  for (var n = 0; n < N; n++) { h[n] = H0[d * N + n]; }
  let skip = DSK[d];
  let bias = DTB[d];
  for (var t = 0; t < T; t++) {
    var raw = 0.0;
    for (var r = 0; r < R; r++) { raw += XD[t * W + r] * DTP[r * DI + d]; }
    let dt = softplus(raw + bias);
    let x = U[t * DI + d];
    let du = dt * x;
    var acc = skip * x;
    for (var n = 0; n < N; n++) {
      let hn = exp(dt * AM[d * N + n]) * h[n] + du * XD[t * W + R + n];
      h[n] = hn;
      acc += hn * XD[t * W + R + N + n];
    }
    result[t * DI + d] = acc;
  }
  for (var n = 0; n < N; n++) { result[T * DI + d * N + n] = h[n]; }
}
`;
}
