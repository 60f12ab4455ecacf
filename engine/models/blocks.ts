/**
 * Building blocks shared by the model families: norms, projections, SwiGLU, tanh-GELU, causal depthwise
 * convolution with carried state, and rotary position tables. Each is a small pure function of tensors.
 *
 * Glossary: T tokens in the chunk, C channels (hidden size), I intermediate size, k conv kernel width.
 */
import * as tf from '@tensorflow/tfjs-core';

/** x @ W^T for a PyTorch-layout weight W [out, in]; the transposed-B matMul is the fast path on wasm. */
export function linear(x: tf.Tensor2D, weight: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(x, weight, false, true); // [T, out]
}

// ref: ttt.py RMSNorm.forward (same as Llama's and Mamba's)
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  const variance = tf.mean(tf.square(x), -1, true); // [T, 1]
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight);
}

/** LayerNorm over the last axis with biased variance, as torch's nn.LayerNorm and ttt.py ln_fwd. */
export function layerNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, eps: number): T {
  const { mean, variance } = tf.moments(x, -1, true);
  const xHat = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(gamma, xHat), beta) as T;
}

/** GELU with the tanh approximation (torch `approximate="tanh"`), as the JAX reference uses. */
export function geluTanh<T extends tf.Tensor>(x: T): T {
  const inner = tf.mul(tf.add(x, tf.mul(0.044715, tf.pow(x, 3))), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner))) as T;
}

/** d gelu_tanh / dx, with the constants of ttt.py gelu_bwd (Megatron's fused kernel). */
export function geluTanhGrad<T extends tf.Tensor>(x: T): T {
  // ref: ttt.py gelu_bwd
  const x2 = tf.square(x);
  const tanhOut = tf.tanh(tf.mul(tf.mul(0.79788456, x), tf.add(1, tf.mul(0.044715, x2))));
  const left = tf.mul(tf.mul(0.5, x), tf.mul(tf.sub(1, tf.square(tanhOut)), tf.add(0.79788456, tf.mul(0.1070322243, x2))));
  return tf.add(left, tf.mul(0.5, tf.add(1, tanhOut))) as T;
}

export function silu<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x)) as T;
}

/** SwiGLU MLP with gate and up projections fused into one [2I, C] weight: down(silu(gate x) * up x). */
export function swiGlu(x: tf.Tensor2D, gateUp: tf.Tensor2D, down: tf.Tensor2D): tf.Tensor2D {
  const [gate, up] = tf.split(linear(x, gateUp), 2, 1); // 2 × [T, I]
  return linear(tf.mul(silu(gate), up) as tf.Tensor2D, down); // [T, C]
}

/**
 * A depthwise conv weight from PyTorch's Conv1d layout [C, 1, k] to the depthwiseConv2d filter [1, k, C, 1].
 * Plain data, done once at load.
 */
export function depthwiseFilter(weight: Float32Array, channels: number, kernel: number): tf.Tensor4D {
  const filter = new Float32Array(kernel * channels);
  for (let c = 0; c < channels; c++) for (let j = 0; j < kernel; j++) filter[j * channels + c] = weight[c * kernel + j];
  return tf.tensor4d(filter, [1, kernel, channels, 1]);
}

/**
 * Causal depthwise Conv1d (PyTorch `Conv1d(groups=C, padding=k-1)[..., :T]`) continued from `state`, the last
 * k-1 inputs of the previous chunk (zeros at the start of a document). Returns the output and the next state.
 */
export function causalConv(
  x: tf.Tensor2D,
  state: tf.Tensor2D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D,
): { y: tf.Tensor2D; state: tf.Tensor2D } {
  const [T, C] = x.shape;
  const kernel = filter.shape[1];
  const padded = tf.concat([state, x], 0); // [k-1+T, C]
  const y = tf.depthwiseConv2d(tf.reshape(padded, [1, 1, T + kernel - 1, C]) as tf.Tensor4D, filter, 1, 'valid'); // [1, 1, T, C]
  const next = tf.slice(padded, [T, 0], [kernel - 1, C]); // [k-1, C]
  return { y: tf.add(tf.reshape(y, [T, C]), bias), state: next };
}

/**
 * Rotary tables for `positions` distinct positions, for rotating pairs of adjacent features (2i, 2i+1) by
 * pos·θ^(-2i/D): `cos` repeats each angle's cosine twice; `sin` is signed (-sin, +sin) so that
 * rope(x) = x * cos + swapPairs(x) * sin. (The TTT reference's permute_qk / rotate_half / undo_permute_qk
 * composes to exactly this interleaved rotation.)
 */
export function interleavedRopeTables(positions: number, headDim: number, theta: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const cos = new Float32Array(positions * headDim);
  const sin = new Float32Array(positions * headDim);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < headDim / 2; i++) {
      // float32 angles, as torch computes inv_freq and freqs in float32
      const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
      const angle = Math.fround(p * invFreq);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * headDim + 2 * i] = c;
      cos[p * headDim + 2 * i + 1] = c;
      sin[p * headDim + 2 * i] = -s;
      sin[p * headDim + 2 * i + 1] = s;
    }
  }
  return { cos: tf.tensor2d(cos, [positions, headDim]), sin: tf.tensor2d(sin, [positions, headDim]) };
}

/** Applies interleaved rotary tables to x [T, N, D] with per-token rows cos/sin [T, D]. */
export function applyInterleavedRope(x: tf.Tensor3D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor3D {
  const [T, N, D] = x.shape;
  const swapped = tf.reshape(tf.reverse(tf.reshape(x, [T, N, D / 2, 2]), 3), [T, N, D]); // (x1, x0) pairs
  return tf.add(tf.mul(x, tf.expandDims(cos, 1)), tf.mul(swapped, tf.expandDims(sin, 1))) as tf.Tensor3D;
}
