/**
 * Causal (optionally sliding-window) attention as one WGSL dispatch per layer and chunk, for the webgpu backend:
 * softmax(q·Kᵀ/√D + mask)·V of transformer.ts `blockedAttention` (ref: modeling_llama.py eager_attention_forward,
 * repeat_kv), one invocation per query and head walking its keys with a running maximum and sum (the online softmax
 * of flash attention), so the scores are never stored. The same signature and results as attention-loop.ts
 * `causalAttentionLoop` (its CPU counterpart); tested on webgpu against the parity fixtures (transformer.test.ts).
 * Not differentiable: training keeps the tensor form.
 *
 * Glossary (transformer.ts): H query heads, G key/value heads (R = H/G query heads share one), D head size,
 * T queries at positions P … P+T−1 of S = P + T keys, W the window (0: every earlier key).
 */
import * as tf from '@tensorflow/tfjs-core';
import { runFusedProgram } from '../core/webgpu-program.js';

const threads = 64;

/** y [T, H·D] (before o_proj) for q [H, T, D] over K, V [G, S, D] (after RoPE), with a window (null: none). */
export function causalAttentionFused(q: tf.Tensor3D, K: tf.Tensor3D, V: tf.Tensor3D, window: number | null): tf.Tensor2D {
  const [H, T, D] = q.shape, [G, S] = K.shape;
  const result = runFusedProgram({
    key: `attention:H${H}:G${G}:D${D}`,
    inputs: ['Q', 'KS', 'VS'],
    uniforms: { tokens: T, keys: S, window: window ?? 0 },
    code: attentionSource(H, G, D),
    workgroups: Math.ceil((T * H) / threads),
    threads,
    outputSize: T * H * D,
  }, [q, K, V]);
  return tf.reshape(result, [T, H * D]);
}

function attentionSource(H: number, G: number, D: number): string {
  return `
const H = ${H}; const R = ${H / G}; const D = ${D};

fn main(index: i32) {
  let T = uniforms.tokens;
  let S = uniforms.keys;
  let W = uniforms.window;
  if (index >= T * H) { return; }
  let t = index / H;
  let h = index % H;
  let g = h / R; // repeat_kv: query head h reads key/value head h / R
  let pos = S - T + t;
  var first = 0;
  if (W > 0) { first = max(0, pos - W + 1); }
  let scale = 1.0 / sqrt(f32(D));
  let q0 = (h * T + t) * D;
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, D>;
  for (var j = first; j <= pos; j++) {
    let k0 = (g * S + j) * D;
    var s = 0.0;
    for (var d = 0; d < D; d++) { s += Q[q0 + d] * KS[k0 + d]; }
    s *= scale;
    let mNew = max(m, s);
    let carry = exp(m - mNew);
    let p = exp(s - mNew);
    l = l * carry + p;
    for (var d = 0; d < D; d++) { acc[d] = acc[d] * carry + p * VS[k0 + d]; }
    m = mNew;
  }
  let y0 = t * H * D + h * D;
  for (var d = 0; d < D; d++) { result[y0 + d] = acc[d] / l; }
}
`;
}
