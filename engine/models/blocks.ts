/**
 * Building blocks shared by the model families: norms, projections, SwiGLU, tanh-GELU, causal depthwise
 * convolution with carried state, and rotary position tables. Each is a small pure function of tensors.
 *
 * Glossary: T tokens in the chunk, C channels (hidden size), I intermediate size, k conv kernel width.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * x @ Wᵀ for a PyTorch-layout weight W [out, in]. Slow on wasm for large weights (its transposed-B matMul
 * misses XNNPACK's fast path, ~10× slower): weights used on every chunk should be transposed once at load
 * (`transposeForDense`) and applied with `dense`.
 */
export function linear(x: tf.Tensor2D, weight: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(x, weight, false, true); // [T, out]
}

/** x @ W for a weight stored [in, out] (transposed at load): a plain matMul, XNNPACK's fast path on wasm. */
export function dense(x: tf.Tensor2D, weightInOut: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(x, weightInOut); // [T, out]
}

/** A PyTorch [out, in] weight as [in, out] for `dense`; built with tensor ops so gradients reach the original. */
export function transposeForDense(weight: tf.Tensor): tf.Tensor2D {
  return tf.transpose(weight) as tf.Tensor2D;
}

/**
 * SwiGLU with [in, out] weights: gate and up [C, I], down [I, C]. Gate and up stay separate matMuls: on wasm,
 * splitting one fused [T, 2I] output copies the whole output per piece.
 */
export function swiGluDense(x: tf.Tensor2D, gate: tf.Tensor2D, up: tf.Tensor2D, down: tf.Tensor2D): tf.Tensor2D {
  return dense(tf.mul(silu(dense(x, gate)), dense(x, up)) as tf.Tensor2D, down); // [T, C]
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

/**
 * GELU with the tanh approximation (torch `approximate="tanh"`), as the JAX reference uses, written as
 * x·sigmoid(2u) = ½x(1 + tanh(u)): the same function, but wasm's sigmoid is vectorised and ~15× faster than its tanh.
 */
export function geluTanh<T extends tf.Tensor>(x: T): T {
  const u2 = tf.mul(tf.add(x, tf.mul(0.044715, tf.mul(tf.square(x), x))), 2 * Math.sqrt(2 / Math.PI)); // 2u; x³ as x²·x: pow is slow on wasm
  return tf.mul(x, tf.sigmoid(u2)) as T;
}

/** tanh(x) = 2·sigmoid(2x) − 1: on wasm, sigmoid is vectorised and tanh is not (absolute error ~1e-7). */
export function tanhBySigmoid<T extends tf.Tensor>(x: T): T {
  return tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1) as T;
}

/** d gelu_tanh / dx, with the constants of ttt.py gelu_bwd (Megatron's fused kernel). */
export function geluTanhGrad<T extends tf.Tensor>(x: T): T {
  // ref: ttt.py gelu_bwd
  const x2 = tf.square(x);
  const tanhOut = tanhBySigmoid(tf.mul(tf.mul(0.79788456, x), tf.add(1, tf.mul(0.044715, x2))));
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
 * `depthwiseFilter` as tensor ops, for weights that are live tensors (training variables): the same layout change,
 * differentiable, so the gradient reaches the PyTorch-layout weight [C, 1, k].
 */
export function depthwiseFilterOf(weight: tf.Tensor): tf.Tensor4D {
  const [channels, , kernel] = weight.shape;
  return tf.reshape(tf.transpose(tf.reshape(weight, [channels, kernel])), [1, kernel, channels, 1]); // [1, k, C, 1]
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
export function interleavedRopeTables(positions: number, headDim: number, theta: number): {
  cos: tf.Tensor2D; sin: tf.Tensor2D; swap: tf.Tensor2D;
  /** The same tables as plain [positions, headDim] arrays, for code that applies RoPE in JavaScript. */
  cosData: Float32Array; sinData: Float32Array;
} {
  const cos = new Float32Array(positions * headDim);
  const sin = new Float32Array(positions * headDim);
  const invFreq = ropeInverseFrequencies(headDim, theta);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < headDim / 2; i++) {
      // float32 angles, as torch computes inv_freq and freqs in float32
      const angle = Math.fround(p * invFreq[i]);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * headDim + 2 * i] = c;
      cos[p * headDim + 2 * i + 1] = c;
      sin[p * headDim + 2 * i] = -s;
      sin[p * headDim + 2 * i + 1] = s;
    }
  }
  // swapping each pair (x0, x1) → (x1, x0) as a matMul by a permutation: one fast op, where reverse is slow on wasm
  const swap = new Float32Array(headDim * headDim);
  for (let i = 0; i < headDim; i++) swap[i * headDim + (i ^ 1)] = 1;
  return {
    cos: tf.tensor2d(cos, [positions, headDim]), sin: tf.tensor2d(sin, [positions, headDim]), swap: tf.tensor2d(swap, [headDim, headDim]),
    cosData: cos, sinData: sin,
  };
}

/** Applies interleaved rotary tables to x [T, N, D] with per-token rows cos/sin [T, D] and the pair swap [D, D]. */
export function applyInterleavedRope(x: tf.Tensor3D, cos: tf.Tensor2D, sin: tf.Tensor2D, swap: tf.Tensor2D): tf.Tensor3D {
  const [T, N, D] = x.shape;
  const swapped = tf.reshape(tf.matMul(tf.reshape(x, [T * N, D]), swap), [T, N, D]); // (x1, x0) pairs
  return tf.add(tf.mul(x, tf.expandDims(cos, 1)), tf.mul(swapped, tf.expandDims(sin, 1))) as tf.Tensor3D;
}

/**
 * Rotary inverse frequencies θ^(-2i/D) for i < D/2, rounded to float32 at each step as torch computes them.
 * ref: modeling_rope_utils.py _compute_default_rope_parameters
 */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  const invFreq = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) invFreq[i] = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
  return invFreq;
}

/**
 * Hugging Face Llama rotary tables (the rotate_half convention: feature i pairs with i + D/2) for the absolute
 * positions [start, start + T): cos and sin of cat(freqs, freqs), [T, D]. Computed from the load-time `invFreq`
 * [1, D/2] with a few ops rather than read from a table, because a book's positions run past any table we would
 * keep. Float32 positions are exact below 2^24 tokens. ref: modeling_llama.py LlamaRotaryEmbedding.forward
 */
export function halfRopeTables(invFreq: tf.Tensor2D, start: number, T: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const positions = tf.reshape(tf.range(start, start + T, 1, 'float32'), [T, 1]); // [T, 1]
  const freqs = tf.mul(positions, invFreq); // [T, D/2]
  const emb = tf.concat([freqs, freqs], 1) as tf.Tensor2D; // [T, D]
  return { cos: tf.cos(emb), sin: tf.sin(emb) };
}

/** Applies rotate_half rotary tables to x [T, N, D] with per-token rows cos/sin [T, D]. ref: modeling_llama.py apply_rotary_pos_emb */
export function applyHalfRope(x: tf.Tensor3D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor3D {
  const [x1, x2] = tf.split(x, 2, 2); // 2 × [T, N, D/2]
  const rotated = tf.concat([tf.neg(x2), x1], 2); // rotate_half(x) [T, N, D]
  return tf.add(tf.mul(x, tf.expandDims(cos, 1)), tf.mul(rotated, tf.expandDims(sin, 1))) as tf.Tensor3D;
}

/** Concatenates weight data (e.g. rows of projections fused into one matrix at load). */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
