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
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from '../core/errors.js';
import { checkWeights, type WeightMap, type WeightSpec, weightSize, weightTensor } from '../core/weights.js';
import {
  applyInterleavedRope, causalConv, dense, depthwiseFilterOf, geluTanh, geluTanhGrad, interleavedRopeTables, layerNorm,
  rmsNorm, swiGluDense, transposeForDense,
} from './blocks.js';
import { tttLinearAlignedRun } from './ttt-linear-scan.js';
import { assertTokenIds, type CausalLM, type ForwardOptions, type ForwardResult, type ModelState } from './model.js';

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

/** Inner model forward f(x) = LN(x W1 + b1) or LN(gelu(x W1 + b1) W2 + b2), without the residual. */
function innerForward(p: InnerParams, X: tf.Tensor3D, norm: InnerNorm): tf.Tensor3D {
  const Z1 = tf.add(tf.matMul(X, p.W1), p.b1) as tf.Tensor3D;
  if (!p.W2 || !p.b2) return lnFwd(Z1, norm);
  return lnFwd(tf.add(tf.matMul(geluTanh(Z1), p.W2), p.b2) as tf.Tensor3D, norm);
}

/** Self-supervised loss on the last token: squared error averaged over features, then heads (JAX ttt_loss_mse). */
function lastTokenLoss(p: InnerParams, XK: tf.Tensor3D, XV: tf.Tensor3D, norm: InnerNorm): tf.Scalar {
  const last = XK.shape[1] - 1;
  const xk = tf.slice(XK, [0, last, 0], [-1, 1, -1]) as tf.Tensor3D; // [H, 1, f]
  const target = tf.sub(tf.slice(XV, [0, last, 0], [-1, 1, -1]), xk);
  return tf.mean(tf.square(tf.sub(innerForward(p, xk, norm), target)));
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
function applyGrads(p: InnerParams, g: InnerGrads, eta: number | tf.Tensor): InnerParams {
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
  readonly parameterCount: number;
  private readonly embed: tf.Tensor2D;
  private readonly lmHead: tf.Tensor2D;
  private readonly finalNorm: tf.Tensor1D;
  private readonly layers: TTTLayerWeights[];
  private readonly rope: { cos: tf.Tensor2D; sin: tf.Tensor2D; swap: tf.Tensor2D };

  /**
   * `tensors` may be checkpoint data (copied into tensors this model owns) or live tensors such as training
   * variables (borrowed: every derived weight below is built with tensor ops, so gradients reach the reference-named
   * tensors; such a model is built inside `tf.tidy` and never disposed).
   */
  constructor(readonly config: TTTConfig, tensors: WeightMap, source = 'model.safetensors') {
    checkWeights(source, tttWeightSpecs(config), tensors, { ignore: config.tieWordEmbeddings ? [/^lm_head\.weight$/] : [] });
    this.vocabSize = config.vocabSize;
    this.numLayers = config.numHiddenLayers;
    this.parameterCount = [...tensors.values()].reduce((n, t) => n + weightSize(t), 0)
      - (config.tieWordEmbeddings && tensors.has('lm_head.weight') ? weightSize(tensors.get('lm_head.weight')!) : 0);
    const w = (name: string, shape?: number[]) => weightTensor(tensors, name, shape);
    const C = config.hiddenSize, H = config.numAttentionHeads, f = C / H, K = config.miniBatchSize;
    this.embed = w('model.embed_tokens.weight') as tf.Tensor2D;
    this.lmHead = tf.tidy(() => transposeForDense(config.tieWordEmbeddings ? this.embed : w('lm_head.weight'))); // [C, V]
    this.finalNorm = w('model.norm.weight') as tf.Tensor1D;
    this.rope = interleavedRopeTables(config.miniBatchSize, f, config.ropeTheta);
    this.layers = [];
    for (let l = 0; l < config.numHiddenLayers; l++) {
      const p = `model.layers.${l}.`, s = `${p}seq_modeling_block.`;
      // tidy frees the copies of checkpoint data that went into a fused weight (live tensors are never freed)
      const tokenEta = tf.tidy(() => tf.relu(tf.add(tokenIdxBase(K), w(`${s}learnable_token_idx`)))) as tf.Tensor1D; // [K]
      const mlpInit = config.tttLayerType === 'mlp';
      this.layers.push({
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
      });
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
    assertTokenIds(ids, this.vocabSize, state.position);
    const T = ids.length;
    const K = this.config.miniBatchSize;
    const primal = options.form === 'primal' || (options.form !== 'dual' && T === 1);
    const segments = splitSegments(state.position, T, K, primal);
    const positions = new Int32Array(T);
    for (let t = 0; t < T; t++) positions[t] = (state.position + t) % K; // RoPE restarts every mini-batch
    const cos = tf.gather(this.rope.cos, positions); // [T, f]
    const sin = tf.gather(this.rope.sin, positions); // [T, f]

    let x = tf.gather(this.embed, ids) as tf.Tensor2D; // [T, C]
    const layers: TTTLayerState[] = [];
    const stats: tf.Tensor2D[] = [];
    const traces: LayerWeightTrace[] = [];
    const want: TraceRequest = {
      stats: options.innerLoopStats === true,
      weights: options.weightTrace === true,
      fast: (options.form ?? 'auto') === 'auto' && cpuBackends.has(tf.getBackend()),
      snapshots: options.weightTrace ? options.snapshotMiniBatches : undefined,
      firstMiniBatch: Math.floor(state.position / K),
    };
    for (let l = 0; l < this.layers.length; l++) {
      const out = this.block(this.layers[l], state.layers[l], x, segments, cos, sin, want);
      x = out.x;
      layers.push(out.state);
      if (out.stats) stats.push(out.stats);
      if (out.trace) traces.push(out.trace);
    }
    const firstMiniBatch = want.firstMiniBatch;
    const logits = dense(rmsNorm(x, this.finalNorm, this.config.rmsNormEps), this.lmHead); // [T, V]
    return {
      logits,
      state: { position: state.position + T, layers },
      ...(want.stats ? { innerLoop: { firstMiniBatch, perLayer: stats } } : {}),
      ...(want.weights ? { weightTrace: { firstMiniBatch, names: this.weightMetricColumns(), metrics: traces.map((t) => t.metrics), snapshots: traces.map((t) => t.snapshots) } } : {}),
    };
  }

  // ref: ttt.py Block.forward
  private block(
    lw: TTTLayerWeights, ls: TTTLayerState, x: tf.Tensor2D, segments: readonly Segment[],
    cos: tf.Tensor2D, sin: tf.Tensor2D, want: TraceRequest,
  ): { x: tf.Tensor2D; state: TTTLayerState } & LayerTrace {
    const eps = this.config.rmsNormEps;
    let preConvState = ls.preConv;
    if (lw.preConv && ls.preConv) {
      const conv = causalConv(rmsNorm(x, lw.preConv.norm, eps), ls.preConv, lw.preConv.filter, lw.preConv.bias);
      x = tf.add(x, conv.y);
      preConvState = conv.state;
    }
    const ttt = this.tttLayer(lw, ls, rmsNorm(x, lw.seqNorm, eps), segments, cos, sin, want);
    x = tf.add(x, ttt.y);
    x = tf.add(x, swiGluDense(rmsNorm(x, lw.ffnNorm, eps), lw.mlpGate, lw.mlpUp, lw.mlpDown));
    return { x, state: { ...ttt.state, preConv: preConvState }, stats: ttt.stats, trace: ttt.trace };
  }

  // ref: ttt.py TTTBase.forward
  private tttLayer(
    lw: TTTLayerWeights, ls: TTTLayerState, X: tf.Tensor2D, segments: readonly Segment[],
    cos: tf.Tensor2D, sin: tf.Tensor2D, want: TraceRequest,
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
    const heads = (flat: tf.Tensor2D) => tf.transpose(tf.reshape(flat, [T, H, f]), [1, 0, 2]) as tf.Tensor3D; // [H, T, f]
    const rope = (flat: tf.Tensor2D) => tf.transpose(applyInterleavedRope(tf.reshape(flat, [T, H, f]), cos, sin, this.rope.swap), [1, 0, 2]) as tf.Tensor3D;
    const XQ = rope(XQflat), XK = rope(XKflat), XV = heads(XVflat); // [H, T, f] each
    // ref: ttt.py TTTBase.get_eta — ttt_lr_eta = base_lr · sigmoid(X θ_lr + b) / head_dim
    const lrEta = tf.mul(tf.sigmoid(tf.add(lrLogits, lw.lrBias)), this.config.tttBaseLr / f); // [T, H]
    const lrRow = tf.reshape(tf.transpose(lrEta), [H, 1, T]) as tf.Tensor3D; // [H, 1, T]

    const norm: InnerNorm = lw;
    let params = ls.params;
    let grads = ls.grads;
    const outs: tf.Tensor3D[] = [];
    const stats: tf.Tensor2D[] = [];
    const metrics: tf.Tensor2D[] = []; // weight metrics after each mini-batch that ends in this chunk
    const snapshots: { miniBatch: number; weights: Record<string, tf.Tensor3D> }[] = [];
    let miniBatch = want.firstMiniBatch; // absolute index of the next mini-batch to finish
    const groups = groupSegments(segments, K, want.fast && this.config.tttLayerType === 'linear');
    const sizes = groups.map((g) => g.length);
    const byGroup = (t: tf.Tensor3D, axis: number) => (sizes.length > 1 ? (tf.split(t, sizes, axis) as tf.Tensor3D[]) : [t]);
    const XQg = byGroup(XQ, 1), XKg = byGroup(XK, 1), XVg = byGroup(XV, 1), lrg = byGroup(lrRow, 2);
    groups.forEach((group, g) => {
      if (group.aligned && grads === null) {
        const run = tttLinearAlignedRun({
          XQ: XQg[g], XK: XKg[g], XV: XVg[g], lr: lrg[g], tokenEtaTril: lw.tokenEtaTril, W1: params.W1, b1: params.b1,
          W1init: lw.init.W1, b1init: lw.init.b1, lnWeight: lw.lnWeight, lnBias: lw.lnBias, K, stats: want.stats, metrics: want.weights,
          snapshotAt: want.snapshots ? (index) => want.snapshots!.has(miniBatch + index) : undefined,
        });
        outs.push(run.out);
        params = { W1: run.W1, b1: run.b1 };
        if (run.stats) stats.push(run.stats);
        if (run.metrics) metrics.push(run.metrics);
        for (const snap of run.snapshots) snapshots.push({ miniBatch: miniBatch + snap.index, weights: { W1: snap.W1 } });
        miniBatch += group.length / K;
        return;
      }
      const pieces = group.segments.map((seg) => seg.length);
      const bySegment = (t: tf.Tensor3D, axis: number) => (pieces.length > 1 ? (tf.split(t, pieces, axis) as tf.Tensor3D[]) : [t]);
      const XQs = bySegment(XQg[g], 1), XKs = bySegment(XKg[g], 1), XVs = bySegment(XVg[g], 1), lrs = bySegment(lrg[g], 2);
      group.segments.forEach((seg, i) => {
        const s: SegmentInputs = { XQ: XQs[i], XK: XKs[i], XV: XVs[i], lr: lrs[i], offset: seg.offset };
        const last = seg.offset + seg.length - 1;
        let next: InnerParams | null = null;
        if (seg.primal) {
          const r = tttPrimalFormToken(params, grads, s, norm, lw.tokenEtaAt[seg.offset]);
          outs.push(r.out);
          grads = r.grads;
          if (last === K - 1) next = r.tokenParams;
        } else {
          const r = tttDualFormSegment(params, grads, s, norm, this.tokenEtaTril(lw, seg.offset, seg.length));
          outs.push(r.out);
          grads = r.grads;
          if (last === K - 1) next = applyGrads(params, r.grads, lw.tokenEtaAt[K - 1]);
        }
        if (next) {
          if (want.stats) stats.push(tf.expandDims(this.innerLoopStats(lw, params, next, s), 0) as tf.Tensor2D);
          if (want.weights) metrics.push(weightMetricsRow(lw.init, params, next));
          // clones: the caller disposes snapshots, while `next` lives on as the carried state
          if (want.snapshots?.has(miniBatch)) snapshots.push({ miniBatch, weights: { W1: tf.clone(next.W1), ...(next.W2 ? { W2: tf.clone(next.W2) } : {}) } });
          miniBatch += 1;
          params = next;
          grads = null;
        }
      });
    });
    const Z = outs.length > 1 ? tf.concat(outs, 1) : outs[0]; // [H, T, f]
    let y = tf.reshape(tf.transpose(Z, [1, 0, 2]), [T, C]) as tf.Tensor2D; // [T, C]
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

  private weightMetricColumns(): string[] {
    return (this.config.tttLayerType === 'mlp' ? ['W1', 'W2'] : ['W1']).flatMap((w) => weightMetricNames.map((m) => `${w}.${m}`));
  }

  /** (init, before, after) losses on a finished mini-batch's last token; DESIGN.md "Inner-loop statistics". */
  private innerLoopStats(lw: TTTLayerWeights, before: InnerParams, after: InnerParams, s: SegmentInputs): tf.Tensor1D {
    return tf.stack([
      lastTokenLoss(lw.init, s.XK, s.XV, lw),
      lastTokenLoss(before, s.XK, s.XV, lw),
      lastTokenLoss(after, s.XK, s.XV, lw),
    ]) as tf.Tensor1D;
  }

  /** tril(token_eta) for tokens o..o+k-1: the [o, o] block of the layer's full [K, K] table. */
  private tokenEtaTril(lw: TTTLayerWeights, offset: number, length: number): tf.Tensor2D {
    return length === this.config.miniBatchSize ? lw.tokenEtaTril : tf.slice(lw.tokenEtaTril, [offset, offset], [length, length]);
  }

  dispose(): void {
    const owned: tf.Tensor[] = [this.embed, this.lmHead, this.finalNorm, this.rope.cos, this.rope.sin, this.rope.swap];
    for (const lw of this.layers) owned.push(...tf.tensor_util.getTensorsInContainer(lw as unknown as tf.TensorContainer));
    tf.dispose(owned);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

interface TraceRequest {
  readonly stats: boolean;
  readonly weights: boolean;
  /** Whole mini-batches of TTT-Linear may take the CPU layout of ttt-linear-scan.ts. */
  readonly fast: boolean;
  readonly snapshots?: ReadonlySet<number>;
  /** Absolute index of the mini-batch the chunk's first token belongs to. */
  readonly firstMiniBatch: number;
}

/** Backends where the layout of ttt-linear-scan.ts is faster (its readbacks are heap copies there, not stalls). */
const cpuBackends = new Set(['wasm', 'cpu', 'tensorflow']);

interface LayerWeightTrace {
  readonly metrics: tf.Tensor2D;
  readonly snapshots: { miniBatch: number; weights: Record<string, tf.Tensor3D> }[];
}

interface LayerTrace {
  readonly stats?: tf.Tensor2D;
  readonly trace?: LayerWeightTrace;
}

/** Per weight matrix, after each finished mini-batch: ‖W_t‖_F, ‖W_t − W_0‖_F, ‖W_t − W_{t−1}‖_F, cos(W_t, W_0). */
const weightMetricNames = ['norm', 'dist_init', 'dist_prev', 'cos_init'] as const;

/** One row of weight metrics (all heads together) for the weights `next` that followed `previous`. [1, 4·#W] */
function weightMetricsRow(init: InnerParams, previous: InnerParams, next: InnerParams): tf.Tensor2D {
  const columns: tf.Tensor[] = [];
  for (const key of ['W1', 'W2'] as const) {
    const w = next[key], w0 = init[key], prev = previous[key];
    if (!w || !w0 || !prev) continue;
    // ‖·‖ as sqrt(sum(x²)): tf.norm goes through pow, which is slow on wasm
    const frobenius = (x: tf.Tensor) => tf.sqrt(tf.sum(tf.square(x)));
    const norm = frobenius(w), norm0 = frobenius(w0);
    columns.push(norm, frobenius(tf.sub(w, w0)), frobenius(tf.sub(w, prev)), tf.div(tf.sum(tf.mul(w, w0)), tf.mul(norm, norm0)));
  }
  return tf.reshape(tf.stack(columns), [1, -1]) as tf.Tensor2D;
}

interface Segment {
  readonly offset: number; // o: position of the first token inside its mini-batch
  readonly length: number;
  readonly primal: boolean;
}

interface SegmentGroup {
  readonly segments: readonly Segment[];
  readonly length: number;
  /** Whole mini-batches starting at a boundary, for `tttLinearAlignedRun`. */
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
