/**
 * The delta-rule family as flash-linear-attention ("fla", fla-org/flash-linear-attention) publishes it:
 * DeltaNet (Yang et al., "Parallelizing Linear Transformers with the Delta Rule over Sequence Length", arXiv
 * 2406.06484) and Gated DeltaNet (Yang, Kautz & Hatamizadeh, "Gated Delta Networks", arXiv 2412.06464).
 * References, whose tensor names and config keys this file loads unchanged:
 *   fla/models/delta_net/{configuration,modeling}_delta_net.py, fla/layers/delta_net.py        (model_type delta_net)
 *   fla/models/gated_deltanet/{configuration,modeling}_gated_deltanet.py, fla/layers/gated_deltanet.py
 *   fla/modules: ShortConvolution (causal depthwise conv, SiLU), RMSNorm, FusedRMSNormGated (norm · swish(g)),
 *     GatedMLP (SwiGLU), l2norm (x / sqrt(Σx² + 1e-6));
 *   fla/ops/delta_rule/naive.py delta_rule_recurrence, fla/ops/gated_delta_rule/naive.py
 *     naive_recurrent_gated_delta_rule and naive_chunk_gated_delta_rule, fla/ops/gated_delta_rule/gate.py naive_gdn_gate.
 *
 * Each head keeps a state S [dk, dv] and, per token, takes one gradient step on the reconstruction loss
 * ½‖Sᵀk − v‖² with step size β (Gated DeltaNet first decays S by α = exp(g)):
 *   S ← α S;  S ← S + β k (v − Sᵀk)ᵀ;  o = Sᵀ (q / √dk).
 * This is TTT-Linear's inner loop with one token per mini-batch, which is why the views treat it as a
 * test-time learner (see "Inner loop" below).
 *
 * Two forms give the same numbers (tests check it): the recurrent one steps token by token (decoding), and the
 * chunked one (fla's WY / UT-transform form, naive_chunk_gated_delta_rule) handles up to `deltaChunk` tokens with
 * matmuls: within a piece, (I + A)⁻¹ for the strictly lower A = tril(β k kᵀ ⊙ exp(Gᵢ − Gⱼ)) is built by doubling
 * block inversion (log₂ steps, stable: no power series), every exp argument is ≤ 0 so nothing overflows.
 *
 * Inner loop, as reported to the inner-loop and hidden-state views (per layer, per block of K = 16 tokens:
 * `innerLoopBlock`): for each token, before = ‖(αS)ᵀk − v‖² with the state the token's update starts from,
 * after = ‖S'ᵀk − v‖² with the state after it, init = ‖S₀ᵀk − v‖² = ‖v‖² (S₀ = 0); squared error averaged over
 * dv, then over heads (as DESIGN.md defines TTT's), then over the block's K tokens. Weight metrics after each
 * block, over all heads together like TTT's W1: ‖S‖, ‖S − S₀‖ (= ‖S‖), ‖S − S_prev block‖, and cos(S, S₀), which
 * is 0 as S₀ = 0 has no direction. Snapshots are S [H, dk, dv], under TTT's name `W1` so the views take them.
 *
 * Glossary:
 *   T   tokens in the chunk        C   hidden_size             V   vocabulary        I   intermediate_size
 *   H   num_heads                  dk  head_k_dim              dv  head_v_dim        k   conv_size
 *   Dk  key_dim = H·dk             Dv  value_dim = H·dv        P   tokens in one piece of the chunked form
 *   β   per-token step size [T, H]; g  log decay (Gated DeltaNet) [T, H]; G its cumulative sum in a piece
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from '../core/errors.js';
import { checkWeights, type WeightMap, type WeightSpec, weightTensor } from '../core/weights.js';
import { causalConv, dense, depthwiseFilterOf, rmsNorm, silu, swiGluDense, transposeForDense } from './blocks.js';
import {
  assertTokenIds, type CausalLM, type ForwardOptions, type ForwardResult, forwardWhole, innerLoopMask, type ModelState, type StageInput, type StageResult,
  type WeightTrace,
} from './model.js';
import {
  checkLayerRange, denseMacMicros, type LayerRange, logitMicros, type StageCosts, stageParameterCount, stageWeightSpecs, tensorsForStage,
} from './stage.js';

// ---------------------------------------------------------------------------------------------------------
// Config

export type DeltaType = 'delta_net' | 'gated_deltanet';

export interface DeltaConfig {
  readonly modelType: DeltaType;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numHiddenLayers: number;
  readonly numHeads: number;
  readonly headKDim: number;
  readonly headVDim: number;
  readonly keyDim: number;
  readonly valueDim: number;
  readonly useGate: boolean;
  readonly useShortConv: boolean;
  readonly convSize: number;
  /** DeltaNet only (Gated DeltaNet always has b_proj). */
  readonly useBeta: boolean;
  /** β · 2: eigenvalues of (I − β k kᵀ) in [−1, 1]. */
  readonly allowNegEigval: boolean;
  readonly qkActivation: 'silu' | 'relu' | 'elu' | 'identity';
  readonly qkNorm: 'l2' | 'sum';
  readonly intermediateSize: number;
  readonly normEps: number;
  readonly tieWordEmbeddings: boolean;
  readonly tokenizer?: string;
}

/** fla's defaults per family (configuration_delta_net.py, configuration_gated_deltanet.py). */
const defaults = {
  delta_net: { hidden_size: 2048, num_heads: 16, num_hidden_layers: 24, expand_k: 1, expand_v: 1, use_gate: false },
  gated_deltanet: { hidden_size: 2048, num_heads: 6, num_hidden_layers: 21, head_dim: 256, expand_v: 2, use_gate: true },
} as const;

/** Reads an fla config (either family) once into `DeltaConfig`; unknown keys are accepted, unsupported options refused. */
export function parseDeltaConfig(json: Record<string, unknown>, source = 'config.json'): DeltaConfig {
  const type = json.model_type ?? json.architecture;
  if (type !== 'delta_net' && type !== 'gated_deltanet') throw workbenchError('E_CONFIG', source, `model_type ${JSON.stringify(type)} is not delta_net or gated_deltanet`);
  const modelType: DeltaType = type;
  const bad = (reason: string) => workbenchError('E_CONFIG', source, reason);
  const d = defaults[modelType] as Record<string, number | boolean>;
  const present = (key: string) => json[key] !== undefined && json[key] !== null;
  const num = (key: string, fallback: number): number => {
    const v = present(key) ? json[key] : fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`"${key}" should be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const int = (key: string, fallback: number): number => {
    const v = num(key, fallback);
    if (!Number.isInteger(v) || v <= 0) throw bad(`"${key}" must be a positive integer, got ${v}`);
    return v;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = present(key) ? json[key] : fallback;
    if (typeof v !== 'boolean') throw bad(`"${key}" should be a boolean, got ${JSON.stringify(v)}`);
    return v;
  };
  const refuse = (key: string, reason: string) => bad(`"${key}": ${JSON.stringify(json[key])} is not supported (${reason})`);
  // options this engine does not implement, each refused by name
  if (present('attn')) throw refuse('attn', 'hybrid attention layers');
  if (present('attnres_block_size')) throw refuse('attnres_block_size', 'attention residuals');
  if (present('hidden_act') && json.hidden_act !== 'swish') throw refuse('hidden_act', 'only "swish"');
  if (modelType === 'gated_deltanet' && present('num_v_heads') && json.num_v_heads !== json.num_heads) {
    throw refuse('num_v_heads', 'grouped value heads: num_v_heads must equal num_heads');
  }
  if (present('norm_eps') && present('rms_norm_eps') && json.norm_eps !== json.rms_norm_eps) throw bad('"norm_eps" and "rms_norm_eps" disagree');

  const C = int('hidden_size', d.hidden_size as number);
  const H = int('num_heads', d.num_heads as number);
  let keyDim: number, valueDim: number, headKDim: number, headVDim: number;
  if (modelType === 'delta_net') {
    // ref: fla/layers/delta_net.py DeltaNet.__init__: key_dim = int(hidden_size · expand_k), head_k_dim = key_dim // num_heads
    keyDim = Math.trunc(C * num('expand_k', 1));
    valueDim = Math.trunc(C * num('expand_v', 1));
    if (keyDim <= 0 || keyDim % H !== 0) throw bad(`key dim hidden_size·expand_k = ${keyDim} must be a positive multiple of num_heads ${H}`);
    if (valueDim <= 0 || valueDim % H !== 0) throw bad(`value dim hidden_size·expand_v = ${valueDim} must be a positive multiple of num_heads ${H}`);
    headKDim = keyDim / H;
    headVDim = valueDim / H;
  } else {
    // ref: fla/layers/gated_deltanet.py GatedDeltaNet.__init__: head_v_dim = int(head_dim · expand_v)
    headKDim = int('head_dim', 256);
    const expandV = num('expand_v', 2);
    headVDim = Math.trunc(headKDim * expandV);
    if (Math.abs(headKDim * expandV - headVDim) > 1e-5 * headVDim || headVDim <= 0) throw bad(`expand_v ${expandV} × head_dim ${headKDim} is not a whole number`);
    keyDim = H * headKDim;
    valueDim = H * headVDim;
  }
  const qkActivation = (present('qk_activation') ? json.qk_activation : 'silu') as DeltaConfig['qkActivation'];
  const qkNorm = (present('qk_norm') ? json.qk_norm : 'l2') as DeltaConfig['qkNorm'];
  if (modelType === 'delta_net' && !['silu', 'relu', 'elu', 'identity'].includes(qkActivation)) throw refuse('qk_activation', 'silu, relu, elu or identity');
  if (modelType === 'delta_net' && !['l2', 'sum'].includes(qkNorm)) throw refuse('qk_norm', 'l2 or sum');
  // ref: fla/modules/mlp.py GatedMLP.__init__: intermediate_size = 256·⌈int(C · hidden_ratio · 2/3) / 256⌉ when null
  const hiddenRatio = num('hidden_ratio', 4);
  const intermediateSize = present('intermediate_size') ? int('intermediate_size', 0) : 256 * Math.ceil(Math.trunc((C * hiddenRatio * 2) / 3) / 256);
  const normEps = present('norm_eps') ? num('norm_eps', 1e-6) : num('rms_norm_eps', 1e-6);
  return {
    modelType, vocabSize: int('vocab_size', 32000), hiddenSize: C, numHiddenLayers: int('num_hidden_layers', d.num_hidden_layers as number),
    numHeads: H, headKDim, headVDim, keyDim, valueDim,
    useGate: bool('use_gate', d.use_gate as boolean), useShortConv: bool('use_short_conv', true), convSize: int('conv_size', 4),
    useBeta: modelType === 'gated_deltanet' ? true : bool('use_beta', true), allowNegEigval: bool('allow_neg_eigval', false),
    qkActivation: modelType === 'gated_deltanet' ? 'silu' : qkActivation, qkNorm: modelType === 'gated_deltanet' ? 'l2' : qkNorm,
    intermediateSize, normEps, tieWordEmbeddings: bool('tie_word_embeddings', false),
    tokenizer: typeof json.tokenizer === 'string' ? json.tokenizer : undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Weights

const embeddingName = 'model.embeddings.weight';

/** The tensors an fla checkpoint of this config holds (fla's names), with shapes implied by the config. */
export function deltaWeightSpecs(c: DeltaConfig): WeightSpec[] {
  const C = c.hiddenSize, H = c.numHeads, I = c.intermediateSize, k = c.convSize;
  const specs: WeightSpec[] = [
    { name: embeddingName, shape: [c.vocabSize, C], because: 'vocab_size × hidden_size' },
    { name: 'model.norm.weight', shape: [C], because: 'hidden_size' },
  ];
  if (!c.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocabSize, C], because: 'vocab_size × hidden_size' });
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`, a = `${p}attn.`;
    specs.push(
      { name: `${p}attn_norm.weight`, shape: [C], because: 'hidden_size' },
      { name: `${a}q_proj.weight`, shape: [c.keyDim, C], because: 'key dim × hidden_size' },
      { name: `${a}k_proj.weight`, shape: [c.keyDim, C], because: 'key dim × hidden_size' },
      { name: `${a}v_proj.weight`, shape: [c.valueDim, C], because: 'value dim × hidden_size' },
      { name: `${a}o_norm.weight`, shape: [c.headVDim], because: 'head_v_dim' },
      { name: `${a}o_proj.weight`, shape: [C, c.valueDim], because: 'hidden_size × value dim' },
      { name: `${p}mlp_norm.weight`, shape: [C], because: 'hidden_size' },
      { name: `${p}mlp.gate_proj.weight`, shape: [I, C], because: 'intermediate_size × hidden_size' },
      { name: `${p}mlp.up_proj.weight`, shape: [I, C], because: 'intermediate_size × hidden_size' },
      { name: `${p}mlp.down_proj.weight`, shape: [C, I], because: 'hidden_size × intermediate_size' },
    );
    if (c.useBeta) specs.push({ name: `${a}b_proj.weight`, shape: [H, C], because: 'num_heads × hidden_size' });
    if (c.modelType === 'gated_deltanet') {
      specs.push(
        { name: `${a}a_proj.weight`, shape: [H, C], because: 'num_heads × hidden_size' },
        { name: `${a}A_log`, shape: [H], because: 'num_heads' },
        { name: `${a}dt_bias`, shape: [H], because: 'num_heads' },
      );
    }
    if (c.useShortConv) {
      for (const [name, D] of [['q', c.keyDim], ['k', c.keyDim], ['v', c.valueDim]] as const) {
        specs.push({ name: `${a}${name}_conv1d.weight`, shape: [D, 1, k], because: `${name} dim × 1 × conv_size` });
      }
    }
    if (c.useGate) specs.push({ name: `${a}g_proj.weight`, shape: [c.valueDim, C], because: 'value dim × hidden_size' });
  }
  return specs;
}

/**
 * Estimated per-token cost of each layer and of the head (models/stage.ts): projections and MLP by their
 * multiply-adds, the delta rule by its state-sized work per token (a few passes over [H, dk, dv]).
 */
export function deltaStageCosts(c: DeltaConfig): StageCosts {
  const C = c.hiddenSize, I = c.intermediateSize, V = c.vocabSize;
  const proj = C * (2 * c.keyDim + c.valueDim * (c.useGate ? 2 : 1) + 2 * c.numHeads) + c.valueDim * C + 3 * C * I;
  const rule = 4 * c.numHeads * c.headKDim * c.headVDim;
  return { layers: new Array<number>(c.numHiddenLayers).fill((proj + rule) * denseMacMicros), head: C * V * denseMacMicros + V * logitMicros };
}

interface DeltaLayerWeights {
  readonly attnNorm: tf.Tensor1D;
  readonly qProj: tf.Tensor2D; // [C, Dk] (projections stored [in, out] for `dense`)
  readonly kProj: tf.Tensor2D; // [C, Dk]
  readonly vProj: tf.Tensor2D; // [C, Dv]
  readonly bProj: tf.Tensor2D | null; // [C, H]
  readonly aProj: tf.Tensor2D | null; // [C, H] Gated DeltaNet
  readonly A: tf.Tensor1D | null; // exp(A_log) [H]
  readonly dtBias: tf.Tensor1D | null; // [H]
  readonly conv: { readonly q: tf.Tensor4D; readonly k: tf.Tensor4D; readonly v: tf.Tensor4D; readonly zk: tf.Tensor1D; readonly zv: tf.Tensor1D } | null;
  readonly gProj: tf.Tensor2D | null; // [C, Dv]
  readonly oNorm: tf.Tensor1D; // [dv]
  readonly oProj: tf.Tensor2D; // [Dv, C]
  readonly mlpNorm: tf.Tensor1D;
  readonly gate: tf.Tensor2D; // [C, I]
  readonly up: tf.Tensor2D; // [C, I]
  readonly down: tf.Tensor2D; // [I, C]
}

// ---------------------------------------------------------------------------------------------------------
// State

export interface DeltaLayerState {
  readonly S: tf.Tensor3D; // [H, dk, dv] the fast weights after the last token consumed
  /** The conv's last k−1 inputs, q, k, v (zeros at the start of a document); null without short convolutions. */
  readonly conv: { readonly q: tf.Tensor2D; readonly k: tf.Tensor2D; readonly v: tf.Tensor2D } | null;
  /** Inner-loop tracing only: (init, before, after) sums of the unfinished block's tokens [1, 3], and S at the last block end. */
  readonly blockSums?: tf.Tensor2D;
  readonly blockS?: tf.Tensor3D;
}

export interface DeltaState extends ModelState {
  readonly layers: readonly DeltaLayerState[];
}

// ---------------------------------------------------------------------------------------------------------
// Blocks

/** Tokens per piece of the chunked form (fla's chunk size). */
export const deltaChunk = 64;
/** Tokens per row of the inner-loop series (the "mini-batch" of the views). */
export const innerLoopBlock = 16;

/** Per-head inputs of the delta rule, heads first. */
interface RuleInputs {
  readonly q: tf.Tensor3D; // [H, T, dk] scaled by dk^−½
  readonly k: tf.Tensor3D; // [H, T, dk]
  readonly v: tf.Tensor3D; // [H, T, dv]
  readonly beta: tf.Tensor2D; // [H, T]
  readonly g: tf.Tensor2D | null; // [H, T] log decay (Gated DeltaNet)
}

interface RuleOutput {
  readonly o: tf.Tensor3D; // [H, T, dv]
  readonly S: tf.Tensor3D; // [H, dk, dv]
  /** With stats: per token (init, before, after) losses [T, 3]. */
  readonly losses?: tf.Tensor2D;
}

/** Per-token losses from predictions before and after each update: squared error averaged over dv, then heads. [T, 3] */
function tokenLosses(v: tf.Tensor3D, before: tf.Tensor3D, after: tf.Tensor3D): tf.Tensor2D {
  const loss = (pred: tf.Tensor3D | null) => tf.mean(tf.mean(tf.square(pred ? tf.sub(pred, v) : v), 2), 0); // [T]
  return tf.stack([loss(null), loss(before), loss(after)], 1) as tf.Tensor2D; // [T, 3]
}

/**
 * The delta rule token by token from S.
 * ref: fla/ops/gated_delta_rule/naive.py naive_recurrent_gated_delta_rule (delta_rule/naive.py delta_rule_recurrence without g)
 */
export function deltaRuleRecurrent(x: RuleInputs, S0: tf.Tensor3D, stats: boolean): RuleOutput {
  const [H, T, dk] = x.k.shape, dv = x.v.shape[2];
  let S = S0;
  const outs: tf.Tensor3D[] = [], before: tf.Tensor3D[] = [], after: tf.Tensor3D[] = [];
  const at = <R extends tf.Rank>(t: tf.Tensor<R>, i: number, d: number) => tf.slice(t, [0, i, 0], [H, 1, d]) as tf.Tensor3D; // [H, 1, d]
  for (let i = 0; i < T; i++) {
    const k = at(x.k, i, dk), v = at(x.v, i, dv), q = at(x.q, i, dk);
    const beta = tf.reshape(tf.slice(x.beta, [0, i], [H, 1]), [H, 1, 1]);
    if (x.g) S = tf.mul(S, tf.reshape(tf.exp(tf.slice(x.g, [0, i], [H, 1])), [H, 1, 1])); // α S
    const pred = tf.matMul(k, S) as tf.Tensor3D; // (αS)ᵀk [H, 1, dv]
    const u = tf.mul(tf.sub(v, pred), beta); // β (v − (αS)ᵀk) [H, 1, dv]
    S = tf.add(S, tf.matMul(k, u, true, false)); // S + k uᵀ [H, dk, dv]
    outs.push(tf.matMul(q, S) as tf.Tensor3D); // [H, 1, dv]
    if (stats) {
      before.push(pred);
      after.push(tf.matMul(k, S) as tf.Tensor3D);
    }
  }
  const cat = (xs: tf.Tensor3D[]) => (xs.length === 1 ? xs[0] : tf.concat(xs, 1) as tf.Tensor3D); // [H, T, ·]
  return { o: cat(outs), S, losses: stats ? tokenLosses(x.v, cat(before), cat(after)) : undefined };
}

/**
 * (I + A)⁻¹ for A strictly lower triangular, P a power of two, by doubling block inversion: with the inverse
 * diagonal blocks D₁₁, D₂₂ of size s, the block of size 2s is [[D₁₁, 0], [−D₂₂ A₂₁ D₁₁, D₂₂]]. Only A's
 * off-diagonal blocks A₂₁ are needed, and `offDiagonal(s)` gives them, [B, P/2s, s, s].
 */
function unitLowerInverse(B: number, P: number, offDiagonal: (s: number) => tf.Tensor4D): tf.Tensor3D {
  let D = tf.ones([B, P, 1, 1]) as tf.Tensor4D; // [B, P/s, s, s]
  for (let s = 1; s < P; s *= 2) {
    const n = P / (2 * s);
    const [D11, D22] = tf.split(tf.reshape(D, [B, n, 2 * s, s]), 2, 2) as tf.Tensor4D[]; // [B, n, s, s] each
    const X21 = tf.neg(tf.matMul(tf.matMul(D22, offDiagonal(s)), D11)) as tf.Tensor4D; // [B, n, s, s]
    D = tf.concat([tf.concat([D11, tf.zerosLike(D11)], 3), tf.concat([X21, D22], 3)], 2) as tf.Tensor4D; // [B, n, 2s, 2s]
  }
  return tf.reshape(D, [B, P, P]);
}

/** The masks of the chunked form, made once at load: [P, P] ones on and below the diagonal, and strictly below. */
export interface ChunkMasks {
  readonly lower: tf.Tensor2D;
  readonly strict: tf.Tensor2D;
}

function makeChunkMasks(P: number): ChunkMasks {
  const lower = new Float32Array(P * P), strict = new Float32Array(P * P);
  for (let i = 0; i < P; i++) for (let j = 0; j <= i; j++) [lower[i * P + j], strict[i * P + j]] = [1, i === j ? 0 : 1];
  return { lower: tf.tensor2d(lower, [P, P]), strict: tf.tensor2d(strict, [P, P]) };
}

const nextPowerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

/**
 * The delta rule over one piece of n ≤ deltaChunk tokens in the WY / UT-transform form, from state S0. The piece is
 * padded to P = 2^⌈log₂ n⌉ with k = v = q = β = g = 0 rows, which change neither earlier outputs nor the state.
 * ref: fla/ops/gated_delta_rule/naive.py naive_chunk_gated_delta_rule (delta_rule/naive.py delta_rule_chunkwise without g)
 */
export function deltaRuleChunk(x: RuleInputs, S0: tf.Tensor3D, masks: ChunkMasks, stats: boolean): RuleOutput {
  const [H, n, dk] = x.k.shape, dv = x.v.shape[2];
  const P = nextPowerOfTwo(n);
  const pad3 = (t: tf.Tensor3D) => (P > n ? tf.pad(t, [[0, 0], [0, P - n], [0, 0]]) : t) as tf.Tensor3D; // [H, P, ·]
  const pad2 = (t: tf.Tensor2D) => (P > n ? tf.pad(t, [[0, 0], [0, P - n]]) : t) as tf.Tensor2D; // [H, P]
  const q = pad3(x.q), k = pad3(x.k), v = pad3(x.v), beta = pad2(x.beta);
  const G = x.g ? tf.cumsum(pad2(x.g), 1) as tf.Tensor2D : null; // [H, P] cumulative log decay, ≤ 0
  const cut = (m: tf.Tensor2D) => (P < deltaChunk ? tf.slice(m, [0, 0], [P, P]) : m) as tf.Tensor2D; // [P, P]
  const lower = cut(masks.lower), strict = cut(masks.strict);
  // decay[i, j] = exp(G_i − G_j) for j ≤ i, else 0 (clamped at 0 first so the masked half cannot overflow)
  const decay = G ? tf.mul(tf.exp(tf.minimum(tf.sub(tf.expandDims(G, 2), tf.expandDims(G, 1)), 0)), lower) as tf.Tensor3D : null; // [H, P, P]
  const withDecay = (m: tf.Tensor3D, mask: tf.Tensor2D) => tf.mul(decay ? tf.mul(m, decay) : m, mask) as tf.Tensor3D;
  const kk = tf.matMul(k, k, false, true) as tf.Tensor3D; // k kᵀ [H, P, P]
  const betaCol = tf.expandDims(beta, 2) as tf.Tensor3D; // [H, P, 1]
  // off-diagonal blocks of A = β k kᵀ ⊙ decay below the diagonal, taken from k directly at each block size
  const offDiagonal = (s: number): tf.Tensor4D => {
    const m = P / (2 * s);
    const halves = (t: tf.Tensor, d: number) => tf.split(tf.reshape(t, [H, m, 2 * s, d]), 2, 2) as tf.Tensor4D[]; // [H, m, s, d] × 2
    const [k1, k2] = halves(k, dk);
    let A21 = tf.mul(tf.matMul(k2, k1, false, true), halves(beta, 1)[1]) as tf.Tensor4D; // β_i k_i·k_j [H, m, s, s]
    if (G) {
      const [G1, G2] = halves(G, 1); // [H, m, s, 1]
      A21 = tf.mul(A21, tf.exp(tf.sub(G2, tf.transpose(G1, [0, 1, 3, 2])))); // exp(G_i − G_j), i > j
    }
    return A21;
  };
  const Tinv = unitLowerInverse(H, P, offDiagonal); // (I + A)⁻¹ [H, P, P]
  const expG = G ? tf.expandDims(tf.exp(G), 2) as tf.Tensor3D : null; // [H, P, 1]
  const u = tf.matMul(Tinv, tf.mul(v, betaCol)); // [H, P, dv]
  const w = tf.matMul(Tinv, tf.mul(expG ? tf.mul(k, expG) : k, betaCol)); // [H, P, dk]
  const vNew = tf.sub(u, tf.matMul(w, S0)) as tf.Tensor3D; // β (v − (αS)ᵀk) per token [H, P, dv]
  const qS = tf.matMul(expG ? tf.mul(q, expG) : q, S0); // [H, P, dv]
  const oFull = tf.add(qS, tf.matMul(withDecay(tf.matMul(q, k, false, true) as tf.Tensor3D, lower), vNew)) as tf.Tensor3D; // [H, P, dv]
  let S: tf.Tensor3D;
  if (G) {
    const last = tf.slice(G, [0, P - 1], [H, 1]); // [H, 1]
    const kDecayed = tf.mul(k, tf.expandDims(tf.exp(tf.sub(last, G)), 2)); // k_j exp(G_last − G_j) [H, P, dk]
    S = tf.add(tf.mul(S0, tf.reshape(tf.exp(last), [H, 1, 1])), tf.matMul(kDecayed, vNew, true, false)) as tf.Tensor3D;
  } else {
    S = tf.add(S0, tf.matMul(k, vNew, true, false)) as tf.Tensor3D; // [H, dk, dv]
  }
  const trim = (t: tf.Tensor3D) => (P > n ? tf.slice(t, [0, 0, 0], [H, n, dv]) : t) as tf.Tensor3D; // [H, n, dv]
  let losses: tf.Tensor2D | undefined;
  if (stats) {
    // (αS_{i−1})ᵀk_i = exp(G_i) S0ᵀk_i + Σ_{j<i} exp(G_i − G_j)(k_i·k_j) vNew_j; after the update add (k_i·k_i) vNew_i
    const before = tf.add(tf.matMul(expG ? tf.mul(k, expG) : k, S0), tf.matMul(withDecay(kk, strict), vNew)) as tf.Tensor3D; // [H, P, dv]
    const kkDiag = tf.expandDims(tf.sum(tf.square(k), 2), 2); // [H, P, 1]
    const after = tf.add(before, tf.mul(kkDiag, vNew)) as tf.Tensor3D;
    losses = tokenLosses(x.v, trim(before), trim(after));
  }
  return { o: trim(oFull), S, losses };
}

/** fla's q/k feature maps. ref: fla/layers/delta_net.py DeltaNet.forward (elu_p1, sum_norm), fla/modules/l2norm.py */
function qkFeatures(x: tf.Tensor3D, c: DeltaConfig, convActivated: boolean): tf.Tensor3D {
  let y = x;
  if (!convActivated) {
    if (c.qkActivation === 'silu') y = silu(y);
    else if (c.qkActivation === 'relu') y = tf.relu(y);
    else if (c.qkActivation === 'elu') y = tf.add(tf.elu(y), 1);
  }
  if (c.qkNorm === 'sum') return tf.div(y, tf.sum(y, -1, true));
  return tf.mul(y, tf.rsqrt(tf.add(tf.sum(tf.square(y), -1, true), 1e-6))); // l2norm, eps 1e-6
}

/** What a layer is asked to report about its inner loop in this chunk. */
interface TraceRequest {
  readonly stats: boolean;
  readonly weights: boolean;
  readonly snapshots?: ReadonlySet<number>;
  readonly position: number;
  /** For `freezeInnerLoopFrom`. */
  readonly options: ForwardOptions;
}

interface LayerTrace {
  readonly stats?: tf.Tensor2D; // [n, 3]
  readonly metrics?: tf.Tensor2D; // [n, 4]
  readonly snapshots: { miniBatch: number; weights: Record<string, tf.Tensor3D> }[];
}

/** ‖S‖, ‖S − S₀‖, ‖S − S_prev‖, cos(S, S₀) with S₀ = 0 (taken as 0). [1, 4] */
function weightMetricsRow(S: tf.Tensor3D, previous: tf.Tensor3D): tf.Tensor2D {
  const frobenius = (t: tf.Tensor) => tf.sqrt(tf.sum(tf.square(t)));
  const norm = frobenius(S);
  return tf.reshape(tf.stack([norm, norm, frobenius(tf.sub(S, previous)), tf.scalar(0)]), [1, 4]) as tf.Tensor2D;
}

/**
 * Rows (init, before, after) per block of `innerLoopBlock` tokens finishing in this chunk: token losses [T, 3]
 * summed with the unfinished block carried in `sums` [1, 3], divided by the block size; returns the new carry.
 */
function blockRows(losses: tf.Tensor2D, sums: tf.Tensor2D, position: number): { rows: tf.Tensor2D; sums: tf.Tensor2D } {
  const K = innerLoopBlock, T = losses.shape[0], offset = position % K;
  const finished = Math.floor((offset + T) / K);
  const padded = offset > 0 ? tf.concat([tf.zeros([offset, 3]), losses], 0) as tf.Tensor2D : losses; // [offset + T, 3]
  const rest = offset + T - finished * K;
  // no empty slices: wasm's sum over zero rows is not reliably zero
  const restSum = rest > 0 ? tf.sum(tf.slice(padded, [finished * K, 0], [rest, 3]), 0, true) as tf.Tensor2D : tf.zeros([1, 3]) as tf.Tensor2D; // [1, 3]
  const tail = finished === 0 ? tf.add(restSum, sums) as tf.Tensor2D : restSum;
  if (finished === 0) return { rows: tf.zeros([0, 3]), sums: tail };
  let rows = tf.sum(tf.reshape(tf.slice(padded, [0, 0], [finished * K, 3]), [finished, K, 3]), 1) as tf.Tensor2D; // [n, 3]
  rows = tf.add(rows, tf.pad(sums, [[0, finished - 1], [0, 0]])); // the carried part belongs to the first block
  return { rows: tf.div(rows, K), sums: tail };
}

/** Where the chunk's pieces end: at multiples of `step` in document positions, and at the chunk's end. */
function pieceLengths(position: number, T: number, step: number): number[] {
  const lengths: number[] = [];
  for (let t = 0; t < T;) {
    const n = Math.min(step - ((position + t) % step), T - t);
    lengths.push(n);
    t += n;
  }
  return lengths;
}

// ---------------------------------------------------------------------------------------------------------
// The model

export class DeltaNetModel implements CausalLM<DeltaState> {
  readonly family = 'delta' as const;
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
  private readonly layers: DeltaLayerWeights[];
  private readonly masks: ChunkMasks;

  constructor(readonly config: DeltaConfig, tensors: WeightMap, source = 'model.safetensors', range?: LayerRange) {
    const L = config.numHiddenLayers;
    this.layerRange = checkLayerRange(range, L, source);
    const { start, end } = this.layerRange;
    const allSpecs = deltaWeightSpecs(config);
    const specs = stageWeightSpecs(allSpecs, this.layerRange, L, { embedding: embeddingName, tied: config.tieWordEmbeddings });
    tensors = tensorsForStage(tensors, allSpecs, specs);
    checkWeights(source, specs, tensors, { ignore: config.tieWordEmbeddings ? [/^lm_head\.weight$/] : [] });
    this.vocabSize = config.vocabSize;
    this.numLayers = L;
    this.hiddenSize = config.hiddenSize;
    this.parameterCount = stageParameterCount(specs, this.layerRange, embeddingName);
    const w = (name: string) => weightTensor(tensors, name);
    const proj = (name: string) => tf.tidy(() => transposeForDense(w(name)));
    const embed = start === 0 ? (w(embeddingName) as tf.Tensor2D) : null;
    this.embed = embed;
    // a tied head of a stage that does not embed reads the embedding once, here; tidy frees that copy
    this.lmHead = end === L ? tf.tidy(() => transposeForDense(config.tieWordEmbeddings ? embed ?? w(embeddingName) : w('lm_head.weight'))) : null; // [C, V]
    this.finalNorm = end === L ? (w('model.norm.weight') as tf.Tensor1D) : null;
    this.masks = makeChunkMasks(deltaChunk);
    const gated = config.modelType === 'gated_deltanet';
    this.layers = [];
    for (let l = start; l < end; l++) {
      const p = `model.layers.${l}.`, a = `${p}attn.`;
      this.layers.push({
        attnNorm: w(`${p}attn_norm.weight`) as tf.Tensor1D,
        qProj: proj(`${a}q_proj.weight`), kProj: proj(`${a}k_proj.weight`), vProj: proj(`${a}v_proj.weight`),
        bProj: config.useBeta ? proj(`${a}b_proj.weight`) : null,
        aProj: gated ? proj(`${a}a_proj.weight`) : null,
        A: gated ? tf.tidy(() => tf.exp(w(`${a}A_log`))) as tf.Tensor1D : null,
        dtBias: gated ? (w(`${a}dt_bias`) as tf.Tensor1D) : null,
        conv: config.useShortConv
          ? {
            q: tf.tidy(() => depthwiseFilterOf(w(`${a}q_conv1d.weight`))), // [1, k, Dk, 1]
            k: tf.tidy(() => depthwiseFilterOf(w(`${a}k_conv1d.weight`))),
            v: tf.tidy(() => depthwiseFilterOf(w(`${a}v_conv1d.weight`))), // [1, k, Dv, 1]
            zk: tf.zeros([config.keyDim]), zv: tf.zeros([config.valueDim]), // ShortConvolution has no bias (conv_bias=False)
          }
          : null,
        gProj: config.useGate ? proj(`${a}g_proj.weight`) : null,
        oNorm: w(`${a}o_norm.weight`) as tf.Tensor1D,
        oProj: proj(`${a}o_proj.weight`),
        mlpNorm: w(`${p}mlp_norm.weight`) as tf.Tensor1D,
        gate: proj(`${p}mlp.gate_proj.weight`), up: proj(`${p}mlp.up_proj.weight`), down: proj(`${p}mlp.down_proj.weight`),
      });
    }
  }

  initialState(): DeltaState {
    const { numHeads: H, headKDim: dk, headVDim: dv, convSize: k, keyDim, valueDim } = this.config;
    return {
      position: 0,
      layers: this.layers.map(() => ({
        S: tf.zeros([H, dk, dv]) as tf.Tensor3D,
        conv: this.config.useShortConv
          ? { q: tf.zeros([k - 1, keyDim]) as tf.Tensor2D, k: tf.zeros([k - 1, keyDim]) as tf.Tensor2D, v: tf.zeros([k - 1, valueDim]) as tf.Tensor2D }
          : null,
      })),
    };
  }

  forward(ids: Int32Array, state: DeltaState, options?: ForwardOptions): ForwardResult<DeltaState> {
    return forwardWhole(this, ids, state, options);
  }

  // ref: fla/models/gated_deltanet/modeling_gated_deltanet.py GatedDeltaNetModel.forward (DeltaNetModel the same), this stage's part
  forwardStage(input: StageInput, state: DeltaState, options: ForwardOptions = {}): StageResult<DeltaState> {
    const T = input instanceof Int32Array ? input.length : input.shape[0];
    let x = input instanceof Int32Array ? this.embedTokens(input, state.position) : input; // [T, C]
    const want: TraceRequest = {
      stats: options.innerLoopStats === true, weights: options.weightTrace === true,
      snapshots: options.weightTrace ? options.snapshotMiniBatches : undefined, position: state.position,
      options,
    };
    const recurrent = options.form === 'primal' || (options.form !== 'dual' && T < 4);
    const layers: DeltaLayerState[] = [];
    const traces: LayerTrace[] = [];
    for (let l = 0; l < this.layers.length; l++) {
      // ref: GatedDeltaNetBlock.forward: x + attn(attn_norm(x)), then x + mlp(mlp_norm(x)); a tidy per layer
      const lw = this.layers[l], ls = state.layers[l], h = x;
      const out = tf.tidy(() => {
        const mixer = this.mixer(lw, ls, rmsNorm(h, lw.attnNorm, this.config.normEps), recurrent, want);
        const mid = tf.add(h, mixer.y) as tf.Tensor2D;
        const y = tf.add(mid, swiGluDense(rmsNorm(mid, lw.mlpNorm, this.config.normEps), lw.gate, lw.up, lw.down)) as tf.Tensor2D;
        return { x: y, state: mixer.state, trace: mixer.trace } as unknown as tf.TensorContainer;
      }) as unknown as { x: tf.Tensor2D; state: DeltaLayerState; trace: LayerTrace };
      x = out.x;
      layers.push(out.state);
      traces.push(out.trace);
    }
    const output = this.lmHead && this.finalNorm ? dense(rmsNorm(x, this.finalNorm, this.config.normEps), this.lmHead) : x; // [T, V] or [T, C]
    const firstMiniBatch = Math.floor(state.position / innerLoopBlock);
    const weightTrace: WeightTrace | undefined = want.weights
      ? { firstMiniBatch, names: ['norm', 'dist_init', 'dist_prev', 'cos_init'].map((m) => `W1.${m}`), metrics: traces.map((t) => t.metrics!), snapshots: traces.map((t) => t.snapshots) }
      : undefined;
    return {
      output,
      state: { position: state.position + T, layers },
      ...(want.stats ? { innerLoop: { firstMiniBatch, perLayer: traces.map((t) => t.stats!) } } : {}),
      ...(weightTrace ? { weightTrace } : {}),
    };
  }

  /**
   * One delta-rule layer on normed x [T, C].
   * ref: fla/layers/gated_deltanet.py GatedDeltaNet.forward, fla/layers/delta_net.py DeltaNet.forward
   */
  private mixer(
    lw: DeltaLayerWeights, ls: DeltaLayerState, x: tf.Tensor2D, recurrent: boolean, want: TraceRequest,
  ): { y: tf.Tensor2D; state: DeltaLayerState; trace: LayerTrace } {
    const c = this.config, T = x.shape[0], H = c.numHeads, dk = c.headKDim, dv = c.headVDim;
    let q = dense(x, lw.qProj), k = dense(x, lw.kProj), v = dense(x, lw.vProj); // [T, Dk], [T, Dk], [T, Dv]
    let conv: DeltaLayerState['conv'] = null;
    // ShortConvolution's activation: SiLU for v always, for q and k when qk_activation is silu
    const convActivated = c.qkActivation === 'silu';
    if (lw.conv && ls.conv) {
      const cq = causalConv(q, ls.conv.q, lw.conv.q, lw.conv.zk), ck = causalConv(k, ls.conv.k, lw.conv.k, lw.conv.zk);
      const cv = causalConv(v, ls.conv.v, lw.conv.v, lw.conv.zv);
      [q, k, v] = [convActivated ? silu(cq.y) : cq.y, convActivated ? silu(ck.y) : ck.y, silu(cv.y)];
      conv = { q: cq.state, k: ck.state, v: cv.state };
    } else {
      v = silu(v);
    }
    const heads = (t: tf.Tensor2D, d: number) => tf.transpose(tf.reshape(t, [T, H, d]), [1, 0, 2]) as tf.Tensor3D; // [H, T, d]
    const qh = tf.mul(qkFeatures(heads(q, dk), c, lw.conv !== null && convActivated), dk ** -0.5) as tf.Tensor3D; // scale = dk^−½
    const kh = qkFeatures(heads(k, dk), c, lw.conv !== null && convActivated);
    let beta = lw.bProj ? tf.sigmoid(dense(x, lw.bProj)) : tf.ones([T, H]); // [T, H]
    if (c.allowNegEigval) beta = tf.mul(beta, 2);
    // ref: fla/ops/gated_delta_rule/gate.py naive_gdn_gate: g = −exp(A_log) · softplus(a_proj(x) + dt_bias)
    let g = lw.aProj && lw.A && lw.dtBias ? tf.neg(tf.mul(lw.A, tf.softplus(tf.add(dense(x, lw.aProj), lw.dtBias)))) : null; // [T, H]
    const frozen = innerLoopMask(T, want.position, want.options); // [T, 1]: 0 where the state is frozen (no write, no decay)
    if (frozen) [beta, g] = [tf.mul(beta, frozen), g && tf.mul(g, frozen)];
    const inputs: RuleInputs = { q: qh, k: kh, v: heads(v, dv), beta: tf.transpose(beta) as tf.Tensor2D, g: g ? tf.transpose(g) as tf.Tensor2D : null };
    const rule = this.rule(inputs, ls, recurrent, want);
    // ref: FusedRMSNormGated (rms_norm(o) · w · swish(g)) or RMSNorm over each head's dv
    let o = rmsNorm(tf.reshape(tf.transpose(rule.o, [1, 0, 2]), [T * H, dv]) as tf.Tensor2D, lw.oNorm, c.normEps); // [T·H, dv]
    if (lw.gProj) o = tf.mul(o, silu(tf.reshape(dense(x, lw.gProj), [T * H, dv])));
    const y = dense(tf.reshape(o, [T, c.valueDim]), lw.oProj); // [T, C]
    return { y, state: { S: rule.S, conv, ...rule.carry }, trace: rule.trace };
  }

  /** The delta rule over the chunk, piece by piece, with what the trace asks for at each block end. */
  private rule(x: RuleInputs, ls: DeltaLayerState, recurrent: boolean, want: TraceRequest) {
    const [H, T] = x.beta.shape, K = innerLoopBlock;
    const tracing = want.stats || want.weights;
    // pieces end at block ends while tracing (the state there is reported), else at multiples of the chunk size
    const lengths = recurrent ? [T] : pieceLengths(want.position, T, tracing ? K : deltaChunk);
    const outs: tf.Tensor3D[] = [], losses: tf.Tensor2D[] = [], metrics: tf.Tensor2D[] = [];
    const snapshots: LayerTrace['snapshots'] = [];
    let S = ls.S, blockS = tracing ? ls.blockS ?? tf.zerosLike(ls.S) : ls.S, at = 0;
    const piece = (t: tf.Tensor3D, from: number, n: number) => tf.slice(t, [0, from, 0], [H, n, t.shape[2]]) as tf.Tensor3D;
    const piece2 = (t: tf.Tensor2D, from: number, n: number) => tf.slice(t, [0, from], [H, n]) as tf.Tensor2D;
    for (const n of lengths) {
      const part: RuleInputs = lengths.length === 1 ? x : {
        q: piece(x.q, at, n), k: piece(x.k, at, n), v: piece(x.v, at, n), beta: piece2(x.beta, at, n), g: x.g ? piece2(x.g, at, n) : null,
      };
      if (recurrent && tracing) {
        // token by token, with the state kept at each block end
        for (let i = 0; i < n; i++) {
          const one: RuleInputs = { q: piece(part.q, i, 1), k: piece(part.k, i, 1), v: piece(part.v, i, 1), beta: piece2(part.beta, i, 1), g: part.g ? piece2(part.g, i, 1) : null };
          const r = deltaRuleRecurrent(one, S, want.stats);
          outs.push(r.o);
          if (r.losses) losses.push(r.losses);
          S = r.S;
          blockS = this.blockEnd(want, at + i + 1, S, blockS, metrics, snapshots);
        }
      } else {
        const r = recurrent ? deltaRuleRecurrent(part, S, want.stats) : deltaRuleChunk(part, S, this.masks, want.stats);
        outs.push(r.o);
        if (r.losses) losses.push(r.losses);
        S = r.S;
        if (tracing) blockS = this.blockEnd(want, at + n, S, blockS, metrics, snapshots);
      }
      at += n;
    }
    const o = outs.length === 1 ? outs[0] : tf.concat(outs, 1) as tf.Tensor3D; // [H, T, dv]
    let stats: tf.Tensor2D | undefined, blockSums: tf.Tensor2D | undefined;
    if (want.stats) {
      const b = blockRows(losses.length === 1 ? losses[0] : tf.concat(losses, 0) as tf.Tensor2D, ls.blockSums ?? tf.zeros([1, 3]), want.position);
      [stats, blockSums] = [b.rows, b.sums];
    }
    const trace: LayerTrace = {
      stats,
      metrics: want.weights ? (metrics.length ? tf.concat(metrics, 0) as tf.Tensor2D : tf.zeros([0, 4]) as tf.Tensor2D) : undefined,
      snapshots,
    };
    return { o, S, trace, carry: tracing ? { blockS, ...(blockSums ? { blockSums } : {}) } : {} };
  }

  /** At a block end (chunk offset `done`), the weight metrics and snapshot asked for; returns S as the new block start. */
  private blockEnd(
    want: TraceRequest, done: number, S: tf.Tensor3D, blockS: tf.Tensor3D, metrics: tf.Tensor2D[], snapshots: LayerTrace['snapshots'],
  ): tf.Tensor3D {
    const end = want.position + done;
    if (end % innerLoopBlock !== 0) return blockS;
    const block = end / innerLoopBlock - 1;
    if (want.weights) metrics.push(weightMetricsRow(S, blockS));
    // a clone: the caller disposes snapshots, while S lives on as the carried state
    if (want.snapshots?.has(block)) snapshots.push({ miniBatch: block, weights: { W1: tf.clone(S) } });
    return S;
  }

  /** [T, C] embeddings of token ids; only the first stage holds the table. */
  private embedTokens(ids: Int32Array, position: number): tf.Tensor2D {
    if (!this.embed) throw new Error(`DeltaNet stage [${this.layerRange.start}, ${this.layerRange.end}) takes hidden states, not token ids`);
    assertTokenIds(ids, this.vocabSize, position);
    return tf.gather(this.embed, ids) as tf.Tensor2D; // [T, C]
  }

  dispose(): void {
    const owned: tf.Tensor[] = [this.masks.lower, this.masks.strict];
    for (const t of [this.embed, this.lmHead, this.finalNorm]) if (t) owned.push(t);
    for (const lw of this.layers) owned.push(...tf.tensor_util.getTensorsInContainer(lw as unknown as tf.TensorContainer));
    tf.dispose(owned);
  }
}
