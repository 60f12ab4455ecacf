/**
 * TTT-Linear and TTT-MLP language models: "Learning to (Learn at Test Time): RNNs with Expressive Hidden
 * States", Sun et al., arXiv 2407.04620. Reference: ttt-lm-pytorch `ttt.py` (TTTForCausalLM), whose tensor names
 * this file loads unchanged. Both backbones: Mamba (pre_conv, share_qk, use_gate) and Transformer (none).
 *
 * Glossary (ttt.py's letters where it has them):
 *   T   tokens in the chunk being processed           C   hidden size (width)
 *   H   heads (num_attention_heads)                    f   head_dim = C / H
 *   F   TTT-MLP inner width (4f)                       K   mini-batch size (16)
 *   k   tokens of a mini-batch segment (≤ K)           o   offset of a segment's first token in its mini-batch
 *   W1, b1 (, W2, b2)   the hidden state: the inner model's weights, per head
 *   G1, gb1 (, G2, gb2) gradients accumulated over the tokens of an unfinished mini-batch (ttt.py "*_grad")
 *   eta  per-token inner learning rate = token_eta[o] · ttt_lr_eta[j]  (ttt.py get_eta)
 *
 * Mini-batch TTT: every gradient inside a mini-batch is taken at the weights from the end of the previous one.
 * A mini-batch may be split across chunks; its partial gradient sums are carried in the state, so any chunking
 * gives the same numbers. Dual form: outputs and end-of-mini-batch weights with matmuls only. Primal form:
 * token by token with explicit per-token weight updates (decoding). Both are exact; they differ in rounding only.
 * This file is the definition of the math (`tttDualFormSegment`, `tttPrimalFormToken`). On CPU backends, runs of whole
 * mini-batches go through a kernel of the same dual form laid out for the CPU (ttt-scan.ts, tested against
 * `tttDualFormSegment`); the inner-loop statistics and weight metrics of both are defined once, in ttt-stats.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from '../core/errors.js';
import { checkWeights, type WeightMap, type WeightSpec, weightTensor } from '../core/weights.js';
import {
  applyInterleavedRope, causalConv, dense, depthwiseFilterOf, geluTanh, geluTanhGrad, interleavedRopeTables, layerNorm,
  rmsNorm, swiGluDense, transposeForDense,
} from './blocks.js';
import { ScratchArrays } from './cpu-arrays.js';
import { type ScanRun, tokenMajorInputs, tttScanRun } from './ttt-scan.js';
import { kernelPath, loopKernelsAvailable } from './loop-math.js';
import { type FusedLayerConstants, fusedLayerConstants, tttFusedGroup } from './ttt-fused-webgpu.js';
import { miniBatchStatistics, weightMetricNames } from './ttt-stats.js';
import {
  assertTokenIds, type CausalLM, type ForwardOptions, type ForwardResult, forwardWhole, innerLoopMask, type ModelState, type StageInput,
  type StageResult,
} from './model.js';
import {
  checkLayerRange, denseMacMicros, type LayerRange, logitMicros, type StageCosts, stageParameterCount, stageWeightSpecs, tensorsForStage,
} from './stage.js';

// ---------------------------------------------------------------------------------------------------------
// Config

export interface TTTConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly rmsNormEps: number;
  readonly tieWordEmbeddings: boolean;
  readonly ropeTheta: number;
  readonly useGate: boolean;
  readonly shareQk: boolean;
  readonly tttLayerType: 'linear' | 'mlp';
  readonly tttBaseLr: number;
  readonly miniBatchSize: number;
  readonly preConv: boolean;
  readonly convKernel: number;
  readonly hiddenAct: string;
  readonly tokenizer?: string;
}

/** ttt.py TTTConfig's defaults, for keys a config.json leaves out. */
const tttDefaults = {
  vocab_size: 32000, hidden_size: 2048, intermediate_size: 5504, num_hidden_layers: 24, num_attention_heads: 32,
  rms_norm_eps: 1e-6, tie_word_embeddings: true, rope_theta: 10000.0, use_gate: false, share_qk: false,
  ttt_layer_type: 'linear', ttt_base_lr: 1.0, mini_batch_size: 16, pre_conv: false, conv_kernel: 4, hidden_act: 'silu',
} as const;

export function parseTTTConfig(json: Record<string, unknown>, source = 'config.json'): TTTConfig {
  const get = <K extends keyof typeof tttDefaults>(key: K): (typeof tttDefaults)[K] => {
    const value = json[key] ?? tttDefaults[key];
    if (typeof value !== typeof tttDefaults[key]) {
      throw workbenchError('E_CONFIG', source, `"${key}" should be a ${typeof tttDefaults[key]}, got ${JSON.stringify(value)}`);
    }
    return value as (typeof tttDefaults)[K];
  };
  const positiveInt = (key: 'vocab_size' | 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads' | 'mini_batch_size' | 'conv_kernel') => {
    const v = get(key);
    if (!Number.isInteger(v) || v <= 0) throw workbenchError('E_CONFIG', source, `"${key}" must be a positive integer, got ${v}`);
    return v;
  };
  const hiddenSize = positiveInt('hidden_size');
  const heads = positiveInt('num_attention_heads');
  if (hiddenSize % heads !== 0) throw workbenchError('E_CONFIG', source, `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${heads}`);
  if ((hiddenSize / heads) % 2 !== 0) throw workbenchError('E_CONFIG', source, `head_dim ${hiddenSize / heads} must be even for rotary embeddings`);
  const layerType = get('ttt_layer_type');
  if (layerType !== 'linear' && layerType !== 'mlp') throw workbenchError('E_CONFIG', source, `ttt_layer_type "${layerType}" is not "linear" or "mlp"`);
  const act = get('hidden_act');
  if (act !== 'silu') throw workbenchError('E_CONFIG', source, `hidden_act "${act}" is not supported (only "silu")`);
  return {
    vocabSize: positiveInt('vocab_size'),
    hiddenSize,
    intermediateSize: positiveInt('intermediate_size'),
    numHiddenLayers: positiveInt('num_hidden_layers'),
    numAttentionHeads: heads,
    rmsNormEps: get('rms_norm_eps'),
    tieWordEmbeddings: get('tie_word_embeddings'),
    ropeTheta: get('rope_theta'),
    useGate: get('use_gate'),
    shareQk: get('share_qk'),
    tttLayerType: layerType,
    tttBaseLr: get('ttt_base_lr'),
    miniBatchSize: positiveInt('mini_batch_size'),
    preConv: get('pre_conv'),
    convKernel: positiveInt('conv_kernel'),
    hiddenAct: act,
    tokenizer: typeof json.tokenizer === 'string' ? json.tokenizer : undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Weights

/** The tensors a TTT checkpoint must hold, with shapes implied by the config (reference names). */
export function tttWeightSpecs(c: TTTConfig): WeightSpec[] {
  const C = c.hiddenSize, H = c.numAttentionHeads, f = C / H, F = 4 * f, K = c.miniBatchSize, I = c.intermediateSize;
  const specs: WeightSpec[] = [
    { name: 'model.embed_tokens.weight', shape: [c.vocabSize, C], because: 'vocab_size × hidden_size' },
    { name: 'model.norm.weight', shape: [C] },
  ];
  if (!c.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocabSize, C], because: 'vocab_size × hidden_size' });
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`, s = `${p}seq_modeling_block.`;
    specs.push(
      { name: `${p}seq_norm.weight`, shape: [C] },
      { name: `${p}ffn_norm.weight`, shape: [C] },
      { name: `${p}mlp.gate_proj.weight`, shape: [I, C], because: 'intermediate_size × hidden_size' },
      { name: `${p}mlp.up_proj.weight`, shape: [I, C], because: 'intermediate_size × hidden_size' },
      { name: `${p}mlp.down_proj.weight`, shape: [C, I], because: 'hidden_size × intermediate_size' },
      { name: `${s}q_proj.weight`, shape: [C, C] },
      { name: `${s}v_proj.weight`, shape: [C, C] },
      { name: `${s}o_proj.weight`, shape: [C, C] },
      { name: `${s}learnable_token_idx`, shape: [K], because: 'mini_batch_size' },
      { name: `${s}learnable_ttt_lr_weight`, shape: [H, 1, C], because: 'num_attention_heads × 1 × hidden_size' },
      { name: `${s}learnable_ttt_lr_bias`, shape: [H, 1] },
      { name: `${s}ttt_norm_weight`, shape: [H, f], because: 'heads × head_dim' },
      { name: `${s}ttt_norm_bias`, shape: [H, f], because: 'heads × head_dim' },
      { name: `${s}post_norm.weight`, shape: [C] },
      { name: `${s}post_norm.bias`, shape: [C] },
    );
    if (c.tttLayerType === 'linear') {
      specs.push({ name: `${s}W1`, shape: [H, f, f], because: 'ttt_layer_type linear: heads × head_dim × head_dim' }, { name: `${s}b1`, shape: [H, 1, f] });
    } else {
      specs.push(
        { name: `${s}W1`, shape: [H, f, F], because: 'ttt_layer_type mlp: heads × head_dim × 4·head_dim' },
        { name: `${s}b1`, shape: [H, 1, F] },
        { name: `${s}W2`, shape: [H, F, f], because: 'ttt_layer_type mlp: heads × 4·head_dim × head_dim' },
        { name: `${s}b2`, shape: [H, 1, f] },
      );
    }
    if (c.shareQk) {
      specs.push(
        { name: `${s}conv_q.weight`, shape: [C, 1, c.convKernel], because: 'share_qk: hidden_size × 1 × conv_kernel' },
        { name: `${s}conv_q.bias`, shape: [C] },
        { name: `${s}conv_k.weight`, shape: [C, 1, c.convKernel], because: 'share_qk: hidden_size × 1 × conv_kernel' },
        { name: `${s}conv_k.bias`, shape: [C] },
      );
    } else {
      specs.push({ name: `${s}k_proj.weight`, shape: [C, C] });
    }
    if (c.useGate) specs.push({ name: `${s}g_proj.weight`, shape: [C, C] });
    if (c.preConv) {
      specs.push(
        { name: `${p}conv.norm.weight`, shape: [C] },
        { name: `${p}conv.conv.weight`, shape: [C, 1, c.convKernel], because: 'pre_conv: hidden_size × 1 × conv_kernel' },
        { name: `${p}conv.conv.bias`, shape: [C] },
      );
    }
  }
  return specs;
}

/**
 * Estimated per-token cost of each layer and of the head (models/stage.ts), for balancing pipeline stages: the
 * dense projections and MLP by their multiply-adds, the inner loop by its op count per head (on CPU backends it is
 * bound by op dispatch, not arithmetic; the µs per head-token were measured with the `bench` preset on wasm).
 */
export function tttStageCosts(c: TTTConfig): StageCosts {
  const C = c.hiddenSize, H = c.numAttentionHeads, I = c.intermediateSize, V = c.vocabSize;
  const projections = 3 + (c.shareQk ? 0 : 1) + (c.useGate ? 1 : 0); // q, v, o (, k, g)
  const dense = (projections * C * C + C * H + 3 * C * I) * denseMacMicros;
  const inner = H * (c.tttLayerType === 'linear' ? 5 : 12);
  return { layers: new Array<number>(c.numHiddenLayers).fill(dense + inner), head: C * V * denseMacMicros + V * logitMicros };
}

/** The inner model's weights (the TTT hidden state) for one layer, all heads: [H, ...]. */
export interface InnerParams {
  readonly W1: tf.Tensor3D; // [H, f, f] linear, [H, f, F] mlp
  readonly b1: tf.Tensor3D; // [H, 1, f] or [H, 1, F]
  readonly W2?: tf.Tensor3D; // [H, F, f]
  readonly b2?: tf.Tensor3D; // [H, 1, f]
}

interface TTTLayerWeights {
  readonly preConv?: { readonly norm: tf.Tensor1D; readonly filter: tf.Tensor4D; readonly bias: tf.Tensor1D };
  readonly seqNorm: tf.Tensor1D;
  readonly ffnNorm: tf.Tensor1D;
  /**
   * Projections as separate [in, out] matrices: on wasm a split of one fused output copies the whole output per
   * piece, costlier than the extra matMul calls. k is absent with share_qk.
   */
  readonly qProj: tf.Tensor2D; // [C, C]
  readonly kProj?: tf.Tensor2D; // [C, C]
  readonly vProj: tf.Tensor2D; // [C, C]
  readonly lrProj: tf.Tensor2D; // learnable_ttt_lr_weight as [C, H]
  readonly lrBias: tf.Tensor1D; // [H]
  /** share_qk: conv_q and conv_k over the shared q projection */
  readonly convQ?: { readonly filter: tf.Tensor4D; readonly bias: tf.Tensor1D };
  readonly convK?: { readonly filter: tf.Tensor4D; readonly bias: tf.Tensor1D };
  readonly lnWeight: tf.Tensor3D; // ttt_norm_weight [H, 1, f]
  readonly lnBias: tf.Tensor3D; // ttt_norm_bias [H, 1, f]
  readonly init: InnerParams; // W_0
  readonly tokenEtaAt: readonly tf.Tensor1D[]; // K × [1]: token_eta[i] = clamp(1/(i+1) + learnable_token_idx[i], 0)
  readonly tokenEtaTril: tf.Tensor2D; // [K, K] row i = token_eta[i] on and below the diagonal
  readonly postNormWeight: tf.Tensor1D;
  readonly postNormBias: tf.Tensor1D;
  readonly gProj?: tf.Tensor2D;
  readonly oProj: tf.Tensor2D;
  readonly mlpGate: tf.Tensor2D; // [C, I]
  readonly mlpUp: tf.Tensor2D; // [C, I]
  readonly mlpDown: tf.Tensor2D; // [I, C]
  /** What the fused WebGPU kernel reads of this layer (ttt-fused-webgpu.ts); made only on the webgpu backend. */
  readonly fused?: FusedLayerConstants;
}

// ---------------------------------------------------------------------------------------------------------
// State

/** Gradient sums over the finished tokens of the current mini-batch, already scaled by ttt_lr_eta. */
export interface InnerGrads {
  readonly G1: tf.Tensor3D;
  readonly gb1: tf.Tensor3D;
  readonly G2?: tf.Tensor3D;
  readonly gb2?: tf.Tensor3D;
}

export interface TTTLayerState {
  /** Weights at the start of the current mini-batch. */
  readonly params: InnerParams;
  /** null at a mini-batch boundary. */
  readonly grads: InnerGrads | null;
  readonly preConv?: tf.Tensor2D; // [k-1, C] last normed inputs of the pre-conv
  readonly qkConv?: tf.Tensor2D; // [k-1, C] last xq inputs of conv_q / conv_k
}

export interface TTTState extends ModelState {
  readonly layers: readonly TTTLayerState[];
}

// ---------------------------------------------------------------------------------------------------------
// The inner loop

/** Per-segment inputs, head-major. */
interface SegmentInputs {
  readonly XQ: tf.Tensor3D; // [H, k, f]
  readonly XK: tf.Tensor3D; // [H, k, f]
  readonly XV: tf.Tensor3D; // [H, k, f]
  readonly lr: tf.Tensor3D; // ttt_lr_eta as [H, 1, k] (per key token j)
  readonly offset: number; // o
}

interface InnerNorm {
  readonly lnWeight: tf.Tensor3D;
  readonly lnBias: tf.Tensor3D;
}

// ref: ttt.py ln_fused_l2_bwd — gradient of ½‖LN(Z) − target‖² with respect to Z
function lnFusedL2Bwd(Z: tf.Tensor3D, target: tf.Tensor3D, norm: InnerNorm): tf.Tensor3D {
  const D = Z.shape[2];
  const { mean, variance } = tf.moments(Z, -1, true);
  const std = tf.sqrt(tf.add(variance, 1e-6));
  const xHat = tf.div(tf.sub(Z, mean), std);
  const y = tf.add(tf.mul(norm.lnWeight, xHat), norm.lnBias);
  const gradXHat = tf.mul(tf.sub(y, target), norm.lnWeight);
  const inner = tf.sub(
    tf.sub(tf.mul(D, gradXHat), tf.sum(gradXHat, -1, true)),
    tf.mul(xHat, tf.sum(tf.mul(gradXHat, xHat), -1, true)),
  );
  return tf.div(tf.mul(inner, 1 / D), std) as tf.Tensor3D;
}

const lnFwd = (Z: tf.Tensor3D, norm: InnerNorm) => layerNorm(Z, norm.lnWeight, norm.lnBias, 1e-6);

/**
 * The statistics of ttt-stats.ts `miniBatchStatistics` as tensor ops, for GPU backends: there the arrays would have
 * to be read back synchronously, which WebGPU cannot do under Node (and would stall the queue elsewhere). Held to the
 * array definition by ttt.test.ts (the same losses and metrics on `cpu` through both).
 */
export function miniBatchStatisticsOnDevice(
  init: InnerParams, before: InnerParams, after: InnerParams, XK: tf.Tensor3D, XV: tf.Tensor3D, norm: InnerNorm,
  want: { readonly stats: boolean; readonly weights: boolean },
): { stats?: tf.Tensor2D; metrics?: tf.Tensor2D } {
  const last = XK.shape[1] - 1;
  const xk = tf.slice(XK, [0, last, 0], [-1, 1, -1]) as tf.Tensor3D; // [H, 1, f]
  const target = tf.sub(tf.slice(XV, [0, last, 0], [-1, 1, -1]), xk);
  // f(x) = LN(x W1 + b1) or LN(gelu(x W1 + b1) W2 + b2); the loss averaged over features, then heads (JAX ttt_loss_mse)
  const loss = (p: InnerParams) => {
    const Z1 = tf.add(tf.matMul(xk, p.W1), p.b1) as tf.Tensor3D;
    const Z = !p.W2 || !p.b2 ? Z1 : (tf.add(tf.matMul(geluTanh(Z1), p.W2), p.b2) as tf.Tensor3D);
    return tf.mean(tf.square(tf.sub(lnFwd(Z, norm), target)));
  };
  const frobenius = (x: tf.Tensor) => tf.sqrt(tf.sum(tf.square(x)));
  const metrics = () => tf.reshape(tf.stack((['W1', 'W2'] as const).flatMap((key) => {
    const w = after[key], w0 = init[key], prev = before[key];
    if (!w || !w0 || !prev) return [];
    const n = frobenius(w), n0 = frobenius(w0);
    return [n, frobenius(tf.sub(w, w0)), frobenius(tf.sub(w, prev)), tf.div(tf.sum(tf.mul(w, w0)), tf.mul(n, n0))];
  })), [1, -1]) as tf.Tensor2D;
  return {
    ...(want.stats ? { stats: tf.reshape(tf.stack([loss(init), loss(before), loss(after)]), [1, 3]) as tf.Tensor2D } : {}),
    ...(want.weights ? { metrics: metrics() } : {}),
  };
}

/** Adds `step` to carried gradient sums (either may be absent). */
function addGrads(prev: InnerGrads | null, step: InnerGrads): InnerGrads {
  if (!prev) return step;
  return {
    G1: tf.add(prev.G1, step.G1), gb1: tf.add(prev.gb1, step.gb1),
    ...(step.G2 && prev.G2 && step.gb2 && prev.gb2 ? { G2: tf.add(prev.G2, step.G2) as tf.Tensor3D, gb2: tf.add(prev.gb2, step.gb2) as tf.Tensor3D } : {}),
  };
}

/** W − eta·G for every inner weight: the end-of-mini-batch update, or a token's weights in the primal form. */
export function applyGrads(p: InnerParams, g: InnerGrads, eta: number | tf.Tensor): InnerParams {
  return {
    W1: tf.sub(p.W1, tf.mul(eta, g.G1)) as tf.Tensor3D, b1: tf.sub(p.b1, tf.mul(eta, g.gb1)) as tf.Tensor3D,
    ...(p.W2 && p.b2 && g.G2 && g.gb2
      ? { W2: tf.sub(p.W2, tf.mul(eta, g.G2)) as tf.Tensor3D, b2: tf.sub(p.b2, tf.mul(eta, g.gb2)) as tf.Tensor3D }
      : {}),
  };
}

/** Gradients of the segment's tokens at the mini-batch's starting weights, each scaled by its ttt_lr_eta. */
function segmentGrads(p: InnerParams, s: SegmentInputs, norm: InnerNorm) {
  const target = tf.sub(s.XV, s.XK) as tf.Tensor3D; // reconstruction_target [H, k, f]
  const lrCol = tf.transpose(s.lr, [0, 2, 1]); // [H, k, 1]
  const Z1 = tf.add(tf.matMul(s.XK, p.W1), p.b1) as tf.Tensor3D; // [H, k, f|F]
  if (!p.W2 || !p.b2) {
    const gZ1 = lnFusedL2Bwd(Z1, target, norm); // grad_l_wrt_Z1 [H, k, f]
    const step: InnerGrads = {
      G1: tf.matMul(tf.mul(s.XK, lrCol), gZ1, true, false) as tf.Tensor3D, // [H, f, f]
      gb1: tf.sum(tf.mul(lrCol, gZ1), 1, true) as tf.Tensor3D, // [H, 1, f]
    };
    return { gZ1, step };
  }
  // ref: ttt.py TTTMLP.ttt compute_mini_batch
  const X2 = geluTanh(Z1); // [H, k, F]
  const Z2 = tf.add(tf.matMul(X2, p.W2), p.b2) as tf.Tensor3D; // [H, k, f]
  const gZ2 = lnFusedL2Bwd(Z2, target, norm); // [H, k, f]
  const gZ1 = tf.mul(tf.matMul(gZ2, p.W2, false, true), geluTanhGrad(Z1)) as tf.Tensor3D; // [H, k, F]
  const step: InnerGrads = {
    G1: tf.matMul(tf.mul(s.XK, lrCol), gZ1, true, false) as tf.Tensor3D, // [H, f, F]
    gb1: tf.sum(tf.mul(lrCol, gZ1), 1, true) as tf.Tensor3D, // [H, 1, F]
    G2: tf.matMul(tf.mul(X2, lrCol), gZ2, true, false) as tf.Tensor3D, // [H, F, f]
    gb2: tf.sum(tf.mul(lrCol, gZ2), 1, true) as tf.Tensor3D, // [H, 1, f]
  };
  return { gZ1, gZ2, X2, step };
}

/**
 * Dual form over one mini-batch segment (tokens o..o+k-1 of a mini-batch), continuing carried gradient sums.
 * ref: ttt.py TTTLinear.ttt / TTTMLP.ttt compute_mini_batch, use_dual_form branch; with carried sums G the
 * token i sees W_init − token_eta[i]·(G + Σ_{j≤i} lr_j ∇_j), which is the dual form's Z̄ plus −token_eta[i]·(XQ_i G).
 */
export function tttDualFormSegment(
  p: InnerParams, carried: InnerGrads | null, s: SegmentInputs, norm: InnerNorm, tokenEtaTril: tf.Tensor2D,
): { out: tf.Tensor3D; grads: InnerGrads } {
  const { gZ1, gZ2, X2, step } = segmentGrads(p, s, norm);
  const eta = tf.mul(tokenEtaTril, s.lr) as tf.Tensor3D; // tril(te_i) [k, k] × lr_j [H, 1, k] → [H, k, k]
  const te = tf.slice(tokenEtaTril, [0, 0], [-1, 1]); // column 0 of tril(te_i) is te_i: [k, 1]
  // ---- first inner layer
  const Attn1 = tf.matMul(s.XQ, s.XK, false, true); // [H, k, k]; eta's zeros above the diagonal make it causal
  const b1Bar = tf.sub(p.b1, tf.matMul(eta, gZ1)); // [H, k, f|F]
  let Z1Bar = tf.add(tf.sub(tf.matMul(s.XQ, p.W1), tf.matMul(tf.mul(eta, Attn1), gZ1)), b1Bar) as tf.Tensor3D;
  if (carried) Z1Bar = tf.sub(Z1Bar, tf.mul(te, tf.add(tf.matMul(s.XQ, carried.G1), carried.gb1))) as tf.Tensor3D;
  if (!p.W2 || !p.b2 || !gZ2 || !X2) {
    return { out: tf.add(s.XQ, lnFwd(Z1Bar, norm)) as tf.Tensor3D, grads: addGrads(carried, step) };
  }
  // ---- second inner layer
  const X2Bar = geluTanh(Z1Bar); // [H, k, F]
  const Attn2 = tf.matMul(X2Bar, X2, false, true); // [H, k, k]
  const b2Bar = tf.sub(p.b2, tf.matMul(eta, gZ2)); // [H, k, f]
  let Z2Bar = tf.add(tf.sub(tf.matMul(X2Bar, p.W2), tf.matMul(tf.mul(eta, Attn2), gZ2)), b2Bar) as tf.Tensor3D;
  if (carried && carried.G2 && carried.gb2) {
    Z2Bar = tf.sub(Z2Bar, tf.mul(te, tf.add(tf.matMul(X2Bar, carried.G2), carried.gb2))) as tf.Tensor3D;
  }
  return { out: tf.add(s.XQ, lnFwd(Z2Bar, norm)) as tf.Tensor3D, grads: addGrads(carried, step) };
}

/**
 * Primal form for one token at offset o: accumulate its (lr-scaled) gradient into G, then apply
 * W̄ = W_init − token_eta[o]·G. ref: ttt.py TTTLinear.ttt / TTTMLP.ttt, the branch with use_dual_form False.
 */
export function tttPrimalFormToken(
  p: InnerParams, carried: InnerGrads | null, s: SegmentInputs, norm: InnerNorm, tokenEta: number | tf.Tensor,
): { out: tf.Tensor3D; grads: InnerGrads; tokenParams: InnerParams } {
  const { step } = segmentGrads(p, s, norm);
  const grads = addGrads(carried, step);
  const tokenParams = applyGrads(p, grads, tokenEta);
  const Z1Bar = tf.add(tf.matMul(s.XQ, tokenParams.W1), tokenParams.b1) as tf.Tensor3D; // [H, 1, f|F]
  if (!tokenParams.W2 || !tokenParams.b2) return { out: tf.add(s.XQ, lnFwd(Z1Bar, norm)) as tf.Tensor3D, grads, tokenParams };
  const Z2Bar = tf.add(tf.matMul(geluTanh(Z1Bar), tokenParams.W2), tokenParams.b2) as tf.Tensor3D;
  return { out: tf.add(s.XQ, lnFwd(Z2Bar, norm)) as tf.Tensor3D, grads, tokenParams };
}

// ---------------------------------------------------------------------------------------------------------
// The model

export class TTTModel implements CausalLM<TTTState> {
  readonly family = 'ttt' as const;
  readonly vocabSize: number;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly parameterCount: number;
  readonly layerRange: LayerRange;
  /** Held by the first stage (it embeds tokens); null elsewhere. */
  private readonly embed: tf.Tensor2D | null;
  /** Held by the last stage; null elsewhere. */
  private readonly lmHead: tf.Tensor2D | null;
  private readonly finalNorm: tf.Tensor1D | null;
  /** This stage's layers, `layers[i]` being layer `layerRange.start + i` of the model. */
  private readonly layers: TTTLayerWeights[];
  private readonly rope: ReturnType<typeof interleavedRopeTables>;
  private readonly tokenEtaCache = new WeakMap<TTTLayerWeights, Float32Array>();
  /** Arrays of the CPU layout, reused from chunk to chunk (ttt-scan.ts). */
  private readonly scratch = new ScratchArrays();

  /**
   * `tensors` may be checkpoint data (copied into tensors this model owns) or live tensors such as training
   * variables (borrowed: every derived weight below is built with tensor ops, so gradients reach the reference-named
   * tensors; such a model is built inside `tf.tidy` and never disposed). `range`: build only layers [start, end) as
   * one stage of a pipeline (models/stage.ts); tensors of other layers may be absent from `tensors`.
   */
  constructor(readonly config: TTTConfig, tensors: WeightMap, source = 'model.safetensors', range?: LayerRange) {
    const L = config.numHiddenLayers;
    this.layerRange = checkLayerRange(range, L, source);
    const { start, end } = this.layerRange;
    const allSpecs = tttWeightSpecs(config);
    const embedding = 'model.embed_tokens.weight';
    const specs = stageWeightSpecs(allSpecs, this.layerRange, L, { embedding, tied: config.tieWordEmbeddings });
    tensors = tensorsForStage(tensors, allSpecs, specs);
    checkWeights(source, specs, tensors, { ignore: config.tieWordEmbeddings ? [/^lm_head\.weight$/] : [] });
    this.vocabSize = config.vocabSize;
    this.numLayers = L;
    this.hiddenSize = config.hiddenSize;
    this.parameterCount = stageParameterCount(specs, this.layerRange, embedding);
    const w = (name: string, shape?: number[]) => weightTensor(tensors, name, shape);
    const C = config.hiddenSize, H = config.numAttentionHeads, f = C / H, K = config.miniBatchSize;
    const embed = start === 0 ? (w(embedding) as tf.Tensor2D) : null;
    this.embed = embed;
    // a tied head of a stage that does not embed reads the embedding once, here; tidy frees that copy
    this.lmHead = end === L ? tf.tidy(() => transposeForDense(config.tieWordEmbeddings ? embed ?? w(embedding) : w('lm_head.weight'))) : null; // [C, V]
    this.finalNorm = end === L ? (w('model.norm.weight') as tf.Tensor1D) : null;
    this.rope = interleavedRopeTables(config.miniBatchSize, f, config.ropeTheta);
    this.layers = [];
    for (let l = start; l < end; l++) {
      const p = `model.layers.${l}.`, s = `${p}seq_modeling_block.`;
      // tidy frees the copies of checkpoint data that went into a fused weight (live tensors are never freed)
      const tokenEta = tf.tidy(() => tf.relu(tf.add(tokenIdxBase(K), w(`${s}learnable_token_idx`)))) as tf.Tensor1D; // [K]
      const mlpInit = config.tttLayerType === 'mlp';
      const layer: TTTLayerWeights = {
        preConv: config.preConv ? {
          norm: w(`${p}conv.norm.weight`) as tf.Tensor1D,
          filter: tf.tidy(() => depthwiseFilterOf(w(`${p}conv.conv.weight`))),
          bias: w(`${p}conv.conv.bias`) as tf.Tensor1D,
        } : undefined,
        seqNorm: w(`${p}seq_norm.weight`) as tf.Tensor1D,
        ffnNorm: w(`${p}ffn_norm.weight`) as tf.Tensor1D,
        qProj: tf.tidy(() => transposeForDense(w(`${s}q_proj.weight`))),
        kProj: config.shareQk ? undefined : tf.tidy(() => transposeForDense(w(`${s}k_proj.weight`))),
        vProj: tf.tidy(() => transposeForDense(w(`${s}v_proj.weight`))),
        lrProj: tf.tidy(() => transposeForDense(w(`${s}learnable_ttt_lr_weight`, [H, C]))), // [C, H]
        lrBias: w(`${s}learnable_ttt_lr_bias`, [H]) as tf.Tensor1D,
        convQ: config.shareQk ? { filter: tf.tidy(() => depthwiseFilterOf(w(`${s}conv_q.weight`))), bias: w(`${s}conv_q.bias`) as tf.Tensor1D } : undefined,
        convK: config.shareQk ? { filter: tf.tidy(() => depthwiseFilterOf(w(`${s}conv_k.weight`))), bias: w(`${s}conv_k.bias`) as tf.Tensor1D } : undefined,
        lnWeight: w(`${s}ttt_norm_weight`, [H, 1, f]) as tf.Tensor3D,
        lnBias: w(`${s}ttt_norm_bias`, [H, 1, f]) as tf.Tensor3D,
        init: {
          W1: w(`${s}W1`) as tf.Tensor3D,
          b1: w(`${s}b1`) as tf.Tensor3D,
          ...(mlpInit ? { W2: w(`${s}W2`) as tf.Tensor3D, b2: w(`${s}b2`) as tf.Tensor3D } : {}),
        },
        tokenEtaAt: tf.split(tokenEta, K) as tf.Tensor1D[],
        tokenEtaTril: tf.tidy(() => tf.mul(lowerTriangle(K), tf.reshape(tokenEta, [K, 1]))) as tf.Tensor2D,
        postNormWeight: w(`${s}post_norm.weight`) as tf.Tensor1D,
        postNormBias: w(`${s}post_norm.bias`) as tf.Tensor1D,
        gProj: config.useGate ? tf.tidy(() => transposeForDense(w(`${s}g_proj.weight`))) : undefined,
        oProj: tf.tidy(() => transposeForDense(w(`${s}o_proj.weight`))),
        mlpGate: tf.tidy(() => transposeForDense(w(`${p}mlp.gate_proj.weight`))), // [C, I]
        mlpUp: tf.tidy(() => transposeForDense(w(`${p}mlp.up_proj.weight`))), // [C, I]
        mlpDown: tf.tidy(() => transposeForDense(w(`${p}mlp.down_proj.weight`))), // [I, C]
      };
      // on webgpu, what the fused kernel reads (ttt-fused-webgpu.ts), packed once
      this.layers.push(tf.getBackend() === 'webgpu' ? { ...layer, fused: fusedLayerConstants(this.rope, tokenEta, layer.lnWeight, layer.lnBias, layer.init) } : layer);
      tokenEta.dispose();
    }
  }

  initialState(): TTTState {
    const C = this.config.hiddenSize, k = this.config.convKernel;
    return {
      position: 0,
      layers: this.layers.map((lw) => ({
        // clones share the weights' data; the state owns the handles and may dispose them freely
        params: {
          W1: tf.clone(lw.init.W1), b1: tf.clone(lw.init.b1),
          ...(lw.init.W2 && lw.init.b2 ? { W2: tf.clone(lw.init.W2), b2: tf.clone(lw.init.b2) } : {}),
        },
        grads: null,
        preConv: this.config.preConv ? tf.zeros([k - 1, C]) : undefined,
        qkConv: this.config.shareQk ? tf.zeros([k - 1, C]) : undefined,
      })),
    };
  }

  forward(ids: Int32Array, state: TTTState, options: ForwardOptions = {}): ForwardResult<TTTState> {
    return forwardWhole(this, ids, state, options);
  }

  // ref: ttt.py TTTForCausalLM.forward / TTTModel.forward, for this stage's part of it
  forwardStage(input: StageInput, state: TTTState, options: ForwardOptions = {}): StageResult<TTTState> {
    const T = input instanceof Int32Array ? input.length : input.shape[0];
    const K = this.config.miniBatchSize;
    const primal = options.form === 'primal' || (options.form !== 'dual' && T === 1);
    const segments = splitSegments(state.position, T, K, primal);
    let x = input instanceof Int32Array ? this.embedTokens(input, state.position) : input; // [T, C]
    const layers: TTTLayerState[] = [];
    const stats: tf.Tensor2D[] = [];
    const traces: LayerWeightTrace[] = [];
    const want: TraceRequest = {
      stats: options.innerLoopStats === true,
      weights: options.weightTrace === true,
      fast: kernelPath(options.form) !== 'tensor',
      snapshots: options.weightTrace ? options.snapshotMiniBatches : undefined,
      firstMiniBatch: Math.floor(state.position / K),
      freeze: { position: state.position, options },
    };
    for (let l = 0; l < this.layers.length; l++) {
      // a tidy per layer: a long chunk holds one layer's intermediates at a time (the RoPE tables are per layer too)
      const h = x;
      const out = tf.tidy(() => this.block(this.layers[l], state.layers[l], h, segments, this.ropeAt(state.position, T), want) as unknown as tf.TensorContainer) as unknown as BlockOutput;
      x = out.x;
      layers.push(out.state);
      if (out.stats) stats.push(out.stats);
      if (out.trace) traces.push(out.trace);
    }
    const firstMiniBatch = want.firstMiniBatch;
    const output = this.lmHead && this.finalNorm ? dense(rmsNorm(x, this.finalNorm, this.config.rmsNormEps), this.lmHead) : x; // [T, V] or [T, C]
    return {
      output,
      state: { position: state.position + T, layers },
      ...(want.stats ? { innerLoop: { firstMiniBatch, perLayer: stats } } : {}),
      ...(want.weights ? { weightTrace: { firstMiniBatch, names: this.weightMetricColumns(), metrics: traces.map((t) => t.metrics), snapshots: traces.map((t) => t.snapshots) } } : {}),
    };
  }

  /** [T, C] embeddings of token ids; only the first stage holds the table. */
  private embedTokens(ids: Int32Array, position: number): tf.Tensor2D {
    if (!this.embed) throw new Error(`TTT stage [${this.layerRange.start}, ${this.layerRange.end}) takes hidden states, not token ids`);
    assertTokenIds(ids, this.vocabSize, position);
    return tf.gather(this.embed, ids) as tf.Tensor2D; // [T, C]
  }

  // ref: ttt.py Block.forward
  private block(
    lw: TTTLayerWeights, ls: TTTLayerState, x: tf.Tensor2D, segments: readonly Segment[], rope: ChunkRope, want: TraceRequest,
  ): BlockOutput {
    const eps = this.config.rmsNormEps;
    let preConvState = ls.preConv;
    if (lw.preConv && ls.preConv) {
      const conv = causalConv(rmsNorm(x, lw.preConv.norm, eps), ls.preConv, lw.preConv.filter, lw.preConv.bias);
      x = tf.add(x, conv.y);
      preConvState = conv.state;
    }
    const ttt = this.tttLayer(lw, ls, rmsNorm(x, lw.seqNorm, eps), segments, rope, want);
    x = tf.add(x, ttt.y);
    x = tf.add(x, swiGluDense(rmsNorm(x, lw.ffnNorm, eps), lw.mlpGate, lw.mlpUp, lw.mlpDown));
    return { x, state: { ...ttt.state, preConv: preConvState }, stats: ttt.stats, trace: ttt.trace };
  }

  // ref: ttt.py TTTBase.forward
  private tttLayer(
    lw: TTTLayerWeights, ls: TTTLayerState, X: tf.Tensor2D, segments: readonly Segment[], rope: ChunkRope, want: TraceRequest,
  ): { y: tf.Tensor2D; state: TTTLayerState } & LayerTrace {
    const { hiddenSize: C, numAttentionHeads: H, miniBatchSize: K } = this.config;
    const f = C / H, T = X.shape[0];
    let XQflat: tf.Tensor2D, XKflat: tf.Tensor2D;
    let qkConvState = ls.qkConv;
    if (lw.convQ && lw.convK && ls.qkConv) {
      // ref: ttt.py TTTBase.get_qkv_projections (share_qk): one projection, two causal convs over it
      const xq = dense(X, lw.qProj); // [T, C]
      const convQ = causalConv(xq, ls.qkConv, lw.convQ.filter, lw.convQ.bias);
      XQflat = convQ.y;
      XKflat = causalConv(xq, ls.qkConv, lw.convK.filter, lw.convK.bias).y;
      qkConvState = convQ.state; // both convs read the same inputs, so one carried tail serves both
    } else {
      XQflat = dense(X, lw.qProj);
      XKflat = dense(X, lw.kProj!);
    }
    const XVflat = dense(X, lw.vProj); // [T, C]
    const lrLogits = dense(X, lw.lrProj); // [T, H]
    // ref: ttt.py TTTBase.get_eta — ttt_lr_eta = base_lr · sigmoid(X θ_lr + b) / head_dim
    let lrEta = tf.mul(tf.sigmoid(tf.add(lrLogits, lw.lrBias)), this.config.tttBaseLr / f) as tf.Tensor2D; // [T, H]
    const frozen = innerLoopMask(T, want.freeze.position, want.freeze.options); // [T, 1]: 0 where the inner loop is frozen
    if (frozen) lrEta = tf.mul(lrEta, frozen) as tf.Tensor2D; // [T, H]
    const groups = groupSegments(segments, K, want.fast);
    // whole mini-batches take the CPU layout of ttt-scan.ts, on the projections read back token-major once (masked η too)
    const onCpu = loopKernelsAvailable();
    const tokenMajor = onCpu && groups.some((g) => g.aligned)
      ? tokenMajorInputs({ XQ: XQflat, XK: XKflat, XV: XVflat, lr: lrEta }, rope.positions, H, this.rope, this.scratch)
      : null;
    const wholeChunkAligned = groups.length === 1 && groups[0].aligned && ls.grads === null;
    // the general path's inputs, token-major so that a segment's rows are one contiguous slice; made only when needed
    let tokenRows: { XQ: tf.Tensor3D; XK: tf.Tensor3D; XV: tf.Tensor3D } | null = null;
    const general = () => (tokenRows ??= {
      XQ: applyInterleavedRope(tf.reshape(XQflat, [T, H, f]), rope.cos(), rope.sin(), this.rope.swap), // [T, H, f]
      XK: applyInterleavedRope(tf.reshape(XKflat, [T, H, f]), rope.cos(), rope.sin(), this.rope.swap), // [T, H, f]
      XV: tf.reshape(XVflat, [T, H, f]) as tf.Tensor3D, // [T, H, f]
    });

    const norm: InnerNorm = lw;
    let params = ls.params;
    let grads = ls.grads;
    const outs: tf.Tensor3D[] = []; // [H, k, f] per segment, unless the whole chunk took the CPU layout
    let wholeOut: tf.Tensor2D | null = null; // [T, C] when it did
    const stats: tf.Tensor2D[] = [];
    const metrics: tf.Tensor2D[] = []; // weight metrics after each mini-batch that ends in this chunk
    const snapshots: { miniBatch: number; weights: Record<string, tf.Tensor3D> }[] = [];
    let miniBatch = want.firstMiniBatch; // absolute index of the next mini-batch to finish
    let start = 0; // first token of the group in the chunk
    let packed: tf.Tensor2D | null = null; // XQ | XK | XV [T, 3C] for the fused kernel, made once per layer
    for (const group of groups) {
      const t0 = start;
      start += group.length;
      const snapshotAt = want.snapshots ? (index: number) => want.snapshots!.has(miniBatch + index) : undefined;
      // whole mini-batches from a boundary: the CPU scan (ttt-scan.ts) or the fused WebGPU kernel (ttt-fused-webgpu.ts)
      let run: AlignedRun | null = null;
      if (group.aligned && grads === null && tokenMajor) {
        const slice = (a: Float32Array, width: number) => a.subarray(t0 * width, (t0 + group.length) * width);
        const scan = tttScanRun({
          XQ: slice(tokenMajor.XQ, C), XK: slice(tokenMajor.XK, C), XV: slice(tokenMajor.XV, C), lr: slice(tokenMajor.lr, H), T: group.length, H, K,
          tokenEta: this.tokenEtaData(lw), params, init: lw.init, lnWeight: lw.lnWeight, lnBias: lw.lnBias,
          stats: want.stats, metrics: want.weights, snapshotAt,
          outInto: ScratchArrays.uploadsCopy() ? this.scratch.get('out', group.length * C) : undefined,
        });
        run = { ...scan, out: tf.tensor2d(scan.out, [group.length, C]) }; // a copy where `outInto` is reused
      } else if (group.aligned && grads === null && !onCpu && lw.fused) {
        packed ??= tf.concat([XQflat, XKflat, XVflat], 1) as tf.Tensor2D;
        run = tttFusedGroup({
          X: packed, lr: lrEta, firstRow: t0, T: group.length, H, K, params, constants: lw.fused, stats: want.stats, metrics: want.weights, snapshotAt,
        });
      }
      if (run) {
        if (wholeChunkAligned) wholeOut = run.out;
        else outs.push(tf.transpose(tf.reshape(run.out, [group.length, H, f]), [1, 0, 2]) as tf.Tensor3D); // [H, k, f]
        params = run.params;
        if (run.stats) stats.push(run.stats);
        if (run.metrics) metrics.push(run.metrics);
        for (const snap of run.snapshots) snapshots.push({ miniBatch: miniBatch + snap.index, weights: snap.weights });
        miniBatch += group.length / K;
        continue;
      }
      let at = t0;
      const { XQ, XK, XV } = general(); // outside the segments' tidies, which would free it
      for (const seg of group.segments) {
        const from = at;
        at += seg.length;
        const last = seg.offset + seg.length - 1;
        const finishes = last === K - 1;
        const snapshot = finishes && want.snapshots?.has(miniBatch) === true;
        // one tidy per segment: a long chunk of the general path holds one segment's intermediates at a time
        const step = tf.tidy(() => {
          const piece = (t: tf.Tensor3D) => tf.transpose(tf.slice(t, [from, 0, 0], [seg.length, H, f]), [1, 0, 2]) as tf.Tensor3D; // [H, k, f]
          const lrPiece = tf.reshape(tf.transpose(tf.slice(lrEta, [from, 0], [seg.length, H])), [H, 1, seg.length]) as tf.Tensor3D; // [H, 1, k]
          const s: SegmentInputs = { XQ: piece(XQ), XK: piece(XK), XV: piece(XV), lr: lrPiece, offset: seg.offset };
          let out: tf.Tensor3D, stepGrads: InnerGrads, next: InnerParams | undefined;
          if (seg.primal) {
            const r = tttPrimalFormToken(params, grads, s, norm, lw.tokenEtaAt[seg.offset]);
            [out, stepGrads, next] = [r.out, r.grads, finishes ? r.tokenParams : undefined];
          } else {
            const r = tttDualFormSegment(params, grads, s, norm, this.tokenEtaTril(lw, seg.offset, seg.length));
            [out, stepGrads, next] = [r.out, r.grads, finishes ? applyGrads(params, r.grads, lw.tokenEtaAt[K - 1]) : undefined];
          }
          const result: SegmentStep = !next ? { out, grads: stepGrads } : {
            out, next,
            ...(loopKernelsAvailable()
              ? miniBatchStatistics(lw.init, params, next, s.XK, s.XV, lw.lnWeight, lw.lnBias, want)
              : miniBatchStatisticsOnDevice(lw.init, params, next, s.XK, s.XV, lw, want)),
            // clones: the caller disposes snapshots, while `next` lives on as the carried state
            snapshot: snapshot ? { W1: tf.clone(next.W1), ...(next.W2 ? { W2: tf.clone(next.W2) } : {}) } : undefined,
          };
          return result as unknown as tf.TensorContainer;
        }) as unknown as SegmentStep;
        outs.push(step.out);
        if (!step.next) {
          grads = step.grads!;
          continue;
        }
        if (step.stats) stats.push(step.stats);
        if (step.metrics) metrics.push(step.metrics);
        if (step.snapshot) snapshots.push({ miniBatch, weights: step.snapshot });
        miniBatch += 1;
        params = step.next;
        grads = null;
      }
    }
    let y = wholeOut ?? (tf.reshape(tf.transpose(outs.length > 1 ? tf.concat(outs, 1) : outs[0], [1, 0, 2]), [T, C]) as tf.Tensor2D); // [T, C]
    y = layerNorm(y, lw.postNormWeight, lw.postNormBias, 1e-6);
    if (lw.gProj) y = tf.mul(geluTanh(dense(X, lw.gProj)), y); // ref: ttt.py TTTBase.apply_gate
    return {
      y: dense(y, lw.oProj),
      state: { params, grads, qkConv: qkConvState },
      stats: want.stats ? (stats.length ? tf.concat(stats, 0) as tf.Tensor2D : tf.zeros([0, 3]) as tf.Tensor2D) : undefined,
      trace: want.weights
        ? { metrics: metrics.length ? tf.concat(metrics, 0) as tf.Tensor2D : tf.zeros([0, this.weightMetricColumns().length]) as tf.Tensor2D, snapshots }
        : undefined,
    };
  }

  /** token_eta [K] as plain numbers (column 0 of tril(token_eta)), read back once per layer, for the CPU layout. */
  private tokenEtaData(lw: TTTLayerWeights): Float32Array {
    let data = this.tokenEtaCache.get(lw);
    if (!data) {
      const K = this.config.miniBatchSize, tril = lw.tokenEtaTril.dataSync() as Float32Array;
      data = Float32Array.from({ length: K }, (_, i) => tril[i * K]);
      this.tokenEtaCache.set(lw, data);
    }
    return data;
  }

  /** RoPE for the chunk's tokens (positions restart every mini-batch); the tables are gathered only if asked for. */
  private ropeAt(position: number, T: number): ChunkRope {
    const K = this.config.miniBatchSize;
    const positions = new Int32Array(T);
    for (let t = 0; t < T; t++) positions[t] = (position + t) % K;
    let cos: tf.Tensor2D | null = null, sin: tf.Tensor2D | null = null;
    return {
      positions,
      cos: () => (cos ??= tf.gather(this.rope.cos, positions)), // [T, f]
      sin: () => (sin ??= tf.gather(this.rope.sin, positions)), // [T, f]
    };
  }

  private weightMetricColumns(): string[] {
    return (this.config.tttLayerType === 'mlp' ? ['W1', 'W2'] : ['W1']).flatMap((w) => weightMetricNames.map((m) => `${w}.${m}`));
  }

  /** tril(token_eta) for tokens o..o+k-1: the [o, o] block of the layer's full [K, K] table. */
  private tokenEtaTril(lw: TTTLayerWeights, offset: number, length: number): tf.Tensor2D {
    return length === this.config.miniBatchSize ? lw.tokenEtaTril : tf.slice(lw.tokenEtaTril, [offset, offset], [length, length]);
  }

  dispose(): void {
    const owned: tf.Tensor[] = [this.rope.cos, this.rope.sin, this.rope.swap];
    for (const t of [this.embed, this.lmHead, this.finalNorm]) if (t) owned.push(t);
    for (const lw of this.layers) owned.push(...tf.tensor_util.getTensorsInContainer(lw as unknown as tf.TensorContainer));
    tf.dispose(owned);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** What a fast path leaves behind for a group of whole mini-batches: ttt-scan.ts's run, its outputs [len, C] a tensor. */
type AlignedRun = Omit<ScanRun, 'out'> & { readonly out: tf.Tensor2D };

/** What one segment of the general path leaves behind: its outputs, and the state after it. */
interface SegmentStep {
  readonly out: tf.Tensor3D; // [H, k, f]
  /** The gradient sums carried on (the mini-batch is unfinished). */
  readonly grads?: InnerGrads;
  /** The weights after the mini-batch (it finished here), with what was asked about it. */
  readonly next?: InnerParams;
  readonly stats?: tf.Tensor2D;
  readonly metrics?: tf.Tensor2D;
  readonly snapshot?: Record<string, tf.Tensor3D>;
}

/** The chunk's RoPE: each token's position inside its mini-batch, and the [T, f] tables when a path needs them. */
interface ChunkRope {
  readonly positions: Int32Array;
  cos(): tf.Tensor2D;
  sin(): tf.Tensor2D;
}

interface TraceRequest {
  readonly stats: boolean;
  readonly weights: boolean;
  /** Whole mini-batches may take the CPU layout of ttt-scan.ts. */
  readonly fast: boolean;
  readonly snapshots?: ReadonlySet<number>;
  /** Absolute index of the mini-batch the chunk's first token belongs to. */
  readonly firstMiniBatch: number;
  /** Where the chunk starts and the options, for `freezeInnerLoopFrom`. */
  readonly freeze: { readonly position: number; readonly options: ForwardOptions };
}

interface LayerWeightTrace {
  readonly metrics: tf.Tensor2D;
  readonly snapshots: { miniBatch: number; weights: Record<string, tf.Tensor3D> }[];
}

interface LayerTrace {
  readonly stats?: tf.Tensor2D;
  readonly trace?: LayerWeightTrace;
}

/** One block's output: the residual stream, the layer's next state, and what was asked about its inner loop. */
type BlockOutput = { x: tf.Tensor2D; state: TTTLayerState } & LayerTrace;

interface Segment {
  readonly offset: number; // o: position of the first token inside its mini-batch
  readonly length: number;
  readonly primal: boolean;
}

interface SegmentGroup {
  readonly segments: readonly Segment[];
  readonly length: number;
  /** Whole mini-batches starting at a boundary, for `tttScanRun`. */
  readonly aligned: boolean;
}

/** Consecutive whole mini-batches become one aligned group (when `fast`); every other segment is its own group. */
function groupSegments(segments: readonly Segment[], K: number, fast: boolean): SegmentGroup[] {
  const groups: SegmentGroup[] = [];
  for (const seg of segments) {
    const whole = fast && !seg.primal && seg.offset === 0 && seg.length === K;
    const last = groups[groups.length - 1];
    if (whole && last?.aligned) groups[groups.length - 1] = { segments: [...last.segments, seg], length: last.length + K, aligned: true };
    else groups.push({ segments: [seg], length: seg.length, aligned: whole });
  }
  return groups;
}

/** Cuts tokens [position, position + T) at mini-batch boundaries (or into single tokens for the primal form). */
function splitSegments(position: number, T: number, K: number, primal: boolean): Segment[] {
  const segments: Segment[] = [];
  let t = 0;
  while (t < T) {
    const offset = (position + t) % K;
    const length = primal ? 1 : Math.min(K - offset, T - t);
    segments.push({ offset, length, primal });
    t += length;
  }
  return segments;
}

/** token_idx = 1/(i+1) for i < K, in float32 as the reference's buffer holds it. ref: ttt.py TTTBase.__init__ */
function tokenIdxBase(K: number): tf.Tensor1D {
  return tf.tensor1d(Float32Array.from({ length: K }, (_, i) => 1 / (i + 1)));
}

/** [K, K] ones on and below the diagonal. */
function lowerTriangle(K: number): tf.Tensor2D {
  const values = new Float32Array(K * K);
  for (let i = 0; i < K; i++) for (let j = 0; j <= i; j++) values[i * K + j] = 1;
  return tf.tensor2d(values, [K, K]);
}
