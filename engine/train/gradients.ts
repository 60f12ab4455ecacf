/**
 * Gradients for training on any backend.
 *
 * tfjs-core registers no gradients by itself (the `@tensorflow/tfjs` bundle imports its `register_all_gradients`,
 * whose Prod gradient does not load under Node's ES modules), so the ones the models' ops need are registered here
 * from tfjs-core's own files.
 *
 * Three are replaced: tfjs-core's gradient of `gather` needs the UnsortedSegmentSum kernel and that of
 * `depthwiseConv2d` the DepthwiseConv2dNativeBackprop* kernels, none of which tfjs-backend-wasm has. The models use
 * both only in simple forms (row lookups along axis 0; a causal stride-1 depthwise conv over one row), whose gradients
 * are a matMul and a few slices, which every backend runs; other forms go to tfjs-core's gradient. And the
 * gradient of `matMul` is written with explicit transposes where that pays: on wasm a matMul with a transposed
 * operand is 8–20× slower than a plain one (measured: [512,256]·[768,256]ᵀ 86 ms, [512,256]·[256,768] 11 ms,
 * [1024,768]ᵀ·[1024,256] 330 ms), while a transpose costs a few ns per element.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Add_grad.js';
import { addNGradConfig } from '@tensorflow/tfjs-core/dist/gradients/AddN_grad.js';
import { batchMatMulGradConfig } from '@tensorflow/tfjs-core/dist/gradients/BatchMatMul_grad.js';
import { castGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Cast_grad.js';
import { clipByValueGradConfig } from '@tensorflow/tfjs-core/dist/gradients/ClipByValue_grad.js';
import { concatGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Concat_grad.js';
import { cosGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Cos_grad.js';
import { depthwiseConv2dNativeGradConfig } from '@tensorflow/tfjs-core/dist/gradients/DepthwiseConv2dNative_grad.js';
import { erfGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Erf_grad.js';
import { expGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Exp_grad.js';
import { expandDimsGradConfig } from '@tensorflow/tfjs-core/dist/gradients/ExpandDims_grad.js';
import { expm1GradConfig } from '@tensorflow/tfjs-core/dist/gradients/Expm1_grad.js';
import { gatherGradConfig } from '@tensorflow/tfjs-core/dist/gradients/GatherV2_grad.js';
import { identityGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Identity_grad.js';
import { logGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Log_grad.js';
import { log1pGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Log1p_grad.js';
import { logSoftmaxGradConfig } from '@tensorflow/tfjs-core/dist/gradients/LogSoftmax_grad.js';
import { maxGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Max_grad.js';
import { maximumGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Maximum_grad.js';
import { meanGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Mean_grad.js';
import { minGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Min_grad.js';
import { minimumGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Minimum_grad.js';
import { multiplyGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Multiply_grad.js';
import { negGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Neg_grad.js';
import { packGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Pack_grad.js';
import { padV2GradConfig } from '@tensorflow/tfjs-core/dist/gradients/PadV2_grad.js';
import { powGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Pow_grad.js';
import { divGradConfig } from '@tensorflow/tfjs-core/dist/gradients/RealDiv_grad.js';
import { reciprocalGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Reciprocal_grad.js';
import { reluGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Relu_grad.js';
import { reshapeGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Reshape_grad.js';
import { reverseGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Reverse_grad.js';
import { rsqrtGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Rsqrt_grad.js';
import { selectGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Select_grad.js';
import { sigmoidGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sigmoid_grad.js';
import { sinGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sin_grad.js';
import { sliceGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Slice_grad.js';
import { softmaxGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Softmax_grad.js';
import { softplusGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Softplus_grad.js';
import { splitVGradConfig } from '@tensorflow/tfjs-core/dist/gradients/SplitV_grad.js';
import { sqrtGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sqrt_grad.js';
import { squareGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Square_grad.js';
import { squaredDifferenceGradConfig } from '@tensorflow/tfjs-core/dist/gradients/SquaredDifference_grad.js';
import { subGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sub_grad.js';
import { sumGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Sum_grad.js';
import { tanhGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Tanh_grad.js';
import { tileGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Tile_grad.js';
import { transposeGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Transpose_grad.js';
import { unpackGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Unpack_grad.js';

/** Kernels whose gradients the four model families and the loss need (a missing one fails loudly in `variableGrads`). */
const coreGradients: readonly tf.GradConfig[] = [
  addGradConfig, addNGradConfig, batchMatMulGradConfig, castGradConfig, clipByValueGradConfig, concatGradConfig,
  cosGradConfig, depthwiseConv2dNativeGradConfig, erfGradConfig, expGradConfig, expandDimsGradConfig, expm1GradConfig,
  gatherGradConfig, identityGradConfig, logGradConfig, log1pGradConfig, logSoftmaxGradConfig, maxGradConfig,
  maximumGradConfig, meanGradConfig, minGradConfig, minimumGradConfig, multiplyGradConfig, negGradConfig,
  packGradConfig, padV2GradConfig, powGradConfig, divGradConfig, reciprocalGradConfig, reluGradConfig,
  reshapeGradConfig, reverseGradConfig, rsqrtGradConfig, selectGradConfig, sigmoidGradConfig, sinGradConfig,
  sliceGradConfig, softmaxGradConfig, softplusGradConfig, splitVGradConfig, sqrtGradConfig, squareGradConfig,
  squaredDifferenceGradConfig, subGradConfig, sumGradConfig, tanhGradConfig, tileGradConfig, transposeGradConfig,
  unpackGradConfig,
];

/**
 * one-hot rows as float32. Asked for float32 directly, tfjs-backend-wasm's OneHot kernel still writes int32 ones
 * into a float32 tensor (each reads as 1.4e-45), so the ones are made as int32 and cast.
 */
export function oneHotFloat(indices: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.cast(tf.oneHot(indices, depth), 'float32') as tf.Tensor2D;
}

/**
 * a·b with the given transposes, moving a transposed operand into place first where that pays on wasm: for 2-D
 * products both (XNNPACK runs only the plain form), for batched ones only `a` (the batched loop is fine with a
 * transposed `b`, slow with a transposed `a`: [4,1024,1024]ᵀ·[4,1024,64] 740 ms, after a transpose 230 ms). Small
 * products, like the TTT inner loop's, stay as they are: there an extra op costs more than it saves.
 */
function matMulPlain(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): tf.Tensor {
  const rows = (t: tf.Tensor) => t.shape[t.rank - 2], cols = (t: tf.Tensor) => t.shape[t.rank - 1];
  const batch = a.size / (rows(a) * cols(a));
  const macs = a.size * (transposeB ? rows(b) : cols(b));
  const worth = (t: tf.Tensor) => macs >= 8 * t.size && t.size >= 4096;
  const swap = (t: tf.Tensor) => tf.transpose(t, [...t.shape.keys()].map((i, _, all) => (i < all.length - 2 ? i : 2 * all.length - 3 - i)));
  const moveA = transposeA && worth(a), moveB = transposeB && batch === 1 && worth(b);
  return tf.matMul(moveA ? swap(a) : a, moveB ? swap(b) : b, transposeA && !moveA, transposeB && !moveB);
}

/** tfjs-core's matMul gradient (same four cases) through `matMulPlain`. */
function matMulGrad(original: tf.GradConfig): tf.GradConfig {
  return {
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const g = dy as tf.Tensor;
      const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
      if (!transposeA && !transposeB) return { a: () => matMulPlain(g, b, false, true), b: () => matMulPlain(a, g, true, false) };
      if (!transposeA && transposeB) return { a: () => matMulPlain(g, b, false, false), b: () => matMulPlain(g, a, true, false) };
      if (transposeA && !transposeB) return { a: () => matMulPlain(b, g, false, true), b: () => matMulPlain(a, g, false, false) };
      return { a: () => matMulPlain(b, g, true, true), b: () => matMulPlain(g, a, true, true) };
    },
  };
}

/**
 * Gradient of `gather(x, indices, axis 0)` (an embedding lookup, rows of a block): scatter-add dy's rows as
 * one-hot(indices)ᵀ · dy, a matMul, for x of any rank.
 */
function gatherGrad(original: tf.GradConfig): tf.GradConfig {
  return {
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x, indices] = saved;
      const { axis, batchDims } = attrs as unknown as tf.GatherV2Attrs;
      if (axis !== 0 || batchDims !== 0) return original.gradFunc(dy, saved, attrs);
      const n = indices.size, V = x.shape[0], inner = x.size / V;
      return {
        x: () => {
          const hot = oneHotFloat(tf.reshape(indices, [n]) as tf.Tensor1D, V); // [n, V]
          return tf.reshape(matMulPlain(hot, tf.reshape(dy as tf.Tensor, [n, inner]), true, false), x.shape); // [V, ...]
        },
        indices: () => indices,
      };
    },
  };
}

/**
 * Gradient of the causal conv's `depthwiseConv2d(x [1, 1, L, C], filter [1, k, C, 1], stride 1, 'valid')`, whose
 * output y [1, 1, T, C] (T = L − k + 1) is y_t = Σ_j x_{t+j} ⊙ f_j. Then dx is dy zero-padded by k−1 on both sides
 * and convolved with the reversed filter, and df_j = Σ_t dy_t ⊙ x_{t+j}.
 */
function depthwiseConvGrad(original: tf.GradConfig): tf.GradConfig {
  return {
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as tf.Tensor4D[];
      const { strides, pad, dilations } = attrs as unknown as tf.DepthwiseConv2dNativeAttrs;
      const ones = (v: number | [number, number] | undefined) => v === undefined || v === 1 || (Array.isArray(v) && v[0] === 1 && v[1] === 1);
      const simple = x.shape[0] === 1 && x.shape[1] === 1 && filter.shape[0] === 1 && filter.shape[3] === 1 && pad === 'valid'
        && ones(strides) && ones(dilations);
      if (!simple) return original.gradFunc(dy, saved, attrs);
      const dy4 = dy as tf.Tensor4D; // [1, 1, T, C]
      const k = filter.shape[1], C = x.shape[3], T = dy4.shape[2];
      return {
        x: () => tf.depthwiseConv2d(tf.pad(dy4, [[0, 0], [0, 0], [k - 1, k - 1], [0, 0]]), tf.reverse(filter, 1), 1, 'valid'), // [1, 1, L, C]
        filter: () => {
          const taps = Array.from({ length: k }, (_, j) => tf.sum(tf.mul(dy4, tf.slice(x, [0, 0, j, 0], [1, 1, T, C])), [0, 1, 2])); // k × [C]
          return tf.reshape(tf.stack(taps), [1, k, C, 1]); // [1, k, C, 1]
        },
      };
    },
  };
}

let installed = false;

/** Registers the gradients (once per process; the replacements agree with tfjs-core's wherever both run). */
export function installTrainingGradients(): void {
  if (installed) return;
  installed = true;
  const replacements: Readonly<Record<string, (original: tf.GradConfig) => tf.GradConfig>> = {
    GatherV2: gatherGrad, DepthwiseConv2dNative: depthwiseConvGrad, BatchMatMul: matMulGrad,
  };
  for (const config of coreGradients) tf.registerGradient(replacements[config.kernelName]?.(config) ?? config);
}
