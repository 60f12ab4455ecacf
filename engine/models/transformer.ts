/**
 * The Transformer baseline: a Llama decoder (Touvron et al., "LLaMA: Open and Efficient Foundation Language
 * Models", arXiv 2302.13971). Reference: Hugging Face transformers `models/llama/modeling_llama.py`
 * (LlamaForCausalLM), whose tensor names this file loads unchanged. RoPE in HF's rotate_half convention (feature
 * i pairs with i + D/2, unlike TTT's interleaved pairs), SwiGLU, RMSNorm, tied or untied head, grouped-query
 * attention.
 *
 * Two attention modes, chosen per state (`initialState(window)`, defaulting to the model's `window` option):
 * - full causal attention: the KV cache grows by every token (memory grows with the document);
 * - sliding window of W tokens: the query at position i attends to the keys at positions i−W+1 … i, the last W
 *   tokens including itself (as the fixture's `window_logits`: with W = 16, row 16 is the first to differ from
 *   full attention). The cache then keeps only the last W−1 keys and values, so a book runs in memory bounded
 *   by W. Keys are cached after RoPE at their absolute positions, as HF's cache holds them.
 *
 * Glossary:
 *   T   tokens in the chunk            C   hidden size            I   intermediate size (MLP)
 *   H   query heads                    G   key/value heads (num_key_value_heads); H = G·R
 *   R   query heads per K/V head       D   head_dim
 *   P   tokens in the KV cache         S   keys the chunk sees = P + T
 *   W   sliding window (tokens a query attends to, itself included)
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from '../core/errors.js';
import { checkWeights, type WeightMap, type WeightSpec, weightTensor } from '../core/weights.js';
import { applyHalfRope, dense, halfRopeTables, rmsNorm, ropeInverseFrequencies, swiGluDense, transposeForDense } from './blocks.js';
import { causalAttentionLoop } from './attention-loop.js';
import { causalAttentionFused } from './attention-webgpu.js';
import { llamaChunkAux, llamaLayerFused, type LlamaShape, llamaTokensPerGroup, packLlamaLayer } from './llama-fused-webgpu.js';
import { fusedKernelsOn, workgroupStorageBytes } from '../core/webgpu-program.js';
import { type KernelPath, kernelPath } from './loop-math.js';
import { assertTokenIds, type CausalLM, type ForwardOptions, type ForwardResult, forwardWhole, type ModelState, type StageInput, type StageResult } from './model.js';
import {
  checkLayerRange, denseMacMicros, type LayerRange, logitMicros, type StageCosts, stageParameterCount, stageWeightSpecs, tensorsForStage,
} from './stage.js';

// ---------------------------------------------------------------------------------------------------------
// Config

export interface LlamaConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly tieWordEmbeddings: boolean;
  /** Informational: RoPE has no table to outgrow, so longer documents still run. */
  readonly maxPositionEmbeddings: number;
  readonly tokenizer?: string;
}

/** HF LlamaConfig's defaults, for keys a config.json leaves out. */
const llamaDefaults = {
  vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
  rms_norm_eps: 1e-6, rope_theta: 10000.0, tie_word_embeddings: false, max_position_embeddings: 2048,
  hidden_act: 'silu', attention_bias: false, mlp_bias: false,
} as const;

/** Reads HF `LlamaConfig` keys (or the fixtures' form with `"architecture": "llama"`); other keys are ignored. */
export function parseLlamaConfig(json: Record<string, unknown>, source = 'config.json'): LlamaConfig {
  const bad = (reason: string) => workbenchError('E_CONFIG', source, reason);
  const get = <K extends keyof typeof llamaDefaults>(key: K): (typeof llamaDefaults)[K] => {
    const value = json[key] ?? llamaDefaults[key];
    if (typeof value !== typeof llamaDefaults[key]) throw bad(`"${key}" should be a ${typeof llamaDefaults[key]}, got ${JSON.stringify(value)}`);
    return value as (typeof llamaDefaults)[K];
  };
  const positiveInt = (key: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw bad(`"${key}" must be a positive integer, got ${JSON.stringify(value)}`);
    return value;
  };
  /** Keys HF allows to be null, meaning "derive it". */
  const optionalInt = (key: string): number | undefined => (json[key] === undefined || json[key] === null ? undefined : positiveInt(key, json[key]));

  const hiddenSize = positiveInt('hidden_size', get('hidden_size'));
  const heads = positiveInt('num_attention_heads', get('num_attention_heads'));
  const kvHeads = optionalInt('num_key_value_heads') ?? heads;
  if (heads % kvHeads !== 0) throw bad(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const explicitHeadDim = optionalInt('head_dim');
  if (explicitHeadDim === undefined && hiddenSize % heads !== 0) throw bad(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${heads}`);
  const headDim = explicitHeadDim ?? hiddenSize / heads;
  if (headDim % 2 !== 0) throw bad(`head_dim ${headDim} must be even for rotary embeddings`);
  if (get('hidden_act') !== 'silu') throw bad(`hidden_act "${get('hidden_act')}" is not supported (only "silu")`);
  if (get('attention_bias') || get('mlp_bias')) throw bad('attention_bias and mlp_bias are not supported (Llama projections have no biases)');
  const scaling = json.rope_scaling as { rope_type?: unknown; type?: unknown } | null | undefined;
  if (scaling !== undefined && scaling !== null && (scaling.rope_type ?? scaling.type) !== 'default') {
    throw bad(`rope_scaling ${JSON.stringify(scaling)} is not supported (only plain RoPE with rope_theta)`);
  }
  return {
    vocabSize: positiveInt('vocab_size', get('vocab_size')),
    hiddenSize,
    intermediateSize: positiveInt('intermediate_size', get('intermediate_size')),
    numHiddenLayers: positiveInt('num_hidden_layers', get('num_hidden_layers')),
    numAttentionHeads: heads,
    numKeyValueHeads: kvHeads,
    headDim,
    rmsNormEps: get('rms_norm_eps'),
    ropeTheta: get('rope_theta'),
    tieWordEmbeddings: get('tie_word_embeddings'),
    maxPositionEmbeddings: positiveInt('max_position_embeddings', get('max_position_embeddings')),
    tokenizer: typeof json.tokenizer === 'string' ? json.tokenizer : undefined,
  };
}

/** A sliding window must be a whole number of tokens ≥ 1; `undefined`/`null` means full causal attention. */
export function checkWindow(window: number | null | undefined): number | null {
  if (window === undefined || window === null) return null;
  if (!Number.isInteger(window) || window < 1) throw workbenchError('E_OPTION', 'window', String(window), 'must be a positive integer (tokens)');
  return window;
}

// ---------------------------------------------------------------------------------------------------------
// Weights

/** The tensors a LlamaForCausalLM checkpoint must hold, with shapes implied by the config. */
export function llamaWeightSpecs(c: LlamaConfig): WeightSpec[] {
  const C = c.hiddenSize, I = c.intermediateSize, HD = c.numAttentionHeads * c.headDim, GD = c.numKeyValueHeads * c.headDim;
  const specs: WeightSpec[] = [
    { name: 'model.embed_tokens.weight', shape: [c.vocabSize, C], because: 'vocab_size × hidden_size' },
    { name: 'model.norm.weight', shape: [C], because: 'hidden_size' },
  ];
  if (!c.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocabSize, C], because: 'vocab_size × hidden_size' });
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    specs.push(
      { name: `${p}input_layernorm.weight`, shape: [C], because: 'hidden_size' },
      { name: `${p}post_attention_layernorm.weight`, shape: [C], because: 'hidden_size' },
      { name: `${p}self_attn.q_proj.weight`, shape: [HD, C], because: 'num_attention_heads·head_dim × hidden_size' },
      { name: `${p}self_attn.k_proj.weight`, shape: [GD, C], because: 'num_key_value_heads·head_dim × hidden_size' },
      { name: `${p}self_attn.v_proj.weight`, shape: [GD, C], because: 'num_key_value_heads·head_dim × hidden_size' },
      { name: `${p}self_attn.o_proj.weight`, shape: [C, HD], because: 'hidden_size × num_attention_heads·head_dim' },
      { name: `${p}mlp.gate_proj.weight`, shape: [I, C], because: 'intermediate_size × hidden_size' },
      { name: `${p}mlp.up_proj.weight`, shape: [I, C], because: 'intermediate_size × hidden_size' },
      { name: `${p}mlp.down_proj.weight`, shape: [C, I], because: 'hidden_size × intermediate_size' },
    );
  }
  return specs;
}

/**
 * Estimated per-token cost of each layer and of the head (models/stage.ts), for balancing pipeline stages:
 * projections and MLP by their multiply-adds, attention as if over 1,024 keys (full attention grows with the
 * document; a window bounds it).
 */
export function llamaStageCosts(c: LlamaConfig, window: number | null = null): StageCosts {
  const C = c.hiddenSize, I = c.intermediateSize, D = c.headDim, H = c.numAttentionHeads, G = c.numKeyValueHeads, V = c.vocabSize;
  const keys = Math.min(window ?? 1024, 1024);
  const layer = (C * (H + 2 * G) * D + H * D * C + 3 * C * I + 2 * H * D * keys) * denseMacMicros;
  return { layers: new Array<number>(c.numHiddenLayers).fill(layer), head: C * V * denseMacMicros + V * logitMicros };
}

/**
 * Tensors a checkpoint may carry that we do not read: the head when tied (some exporters save the copy) and the
 * `rotary_emb.inv_freq` buffers older transformers versions saved (we recompute them from rope_theta).
 */
const ignoredTensors = (c: LlamaConfig): RegExp[] => [
  /\.rotary_emb\.inv_freq$/,
  ...(c.tieWordEmbeddings ? [/^lm_head\.weight$/] : []),
];

export interface LlamaLayerWeights {
  readonly inputNorm: tf.Tensor1D;
  readonly postAttentionNorm: tf.Tensor1D;
  /** q_proj, k_proj and v_proj fused into one projection: [(H + 2G)·D, C] */
  readonly qkv: tf.Tensor2D;
  readonly oProj: tf.Tensor2D; // [H·D, C]
  readonly mlpGate: tf.Tensor2D; // [C, I]
  readonly mlpUp: tf.Tensor2D; // [C, I]
  readonly mlpDown: tf.Tensor2D; // [I, C]
}

// ---------------------------------------------------------------------------------------------------------
// State

export interface LlamaLayerState {
  /** Keys after RoPE and values of the cached tokens, oldest first: [G, P, D]. */
  readonly k: tf.Tensor3D;
  readonly v: tf.Tensor3D;
}

export interface LlamaState extends ModelState {
  /** Sliding window W, or null for full causal attention. Fixed for the life of the state. */
  readonly window: number | null;
  readonly layers: readonly LlamaLayerState[];
}

/** Per-layer numbers for the hidden-state views; the caller owns (and disposes) `perLayer`. */
export interface LlamaStateSummary {
  readonly quantity: 'kv_cache_bytes';
  /** [layers] bytes held by each layer's K and V cache (float32). */
  readonly perLayer: tf.Tensor1D;
}

// ---------------------------------------------------------------------------------------------------------
// Blocks

interface AttentionShape {
  readonly H: number;
  readonly G: number;
  readonly D: number;
}

/**
 * Additive mask [b, K] for b queries over K keys of which the first `before` precede the first query: 0 where
 * the key is at most W−1 tokens before the query (or anywhere before it without a window), −1e9 elsewhere.
 * Built from index ranges with a few ops, since its shape changes with the cache length.
 */
function attentionBias(before: number, b: number, window: number | null): tf.Tensor2D {
  const query = tf.reshape(tf.range(before, before + b, 1, 'int32'), [b, 1]); // [b, 1] index of each query among the keys
  const key = tf.reshape(tf.range(0, before + b, 1, 'int32'), [1, before + b]); // [1, K]
  const back = tf.sub(query, key); // [b, K] how many tokens key j lies before query i
  let allowed = tf.greaterEqual(back, 0);
  if (window !== null) allowed = tf.logicalAnd(allowed, tf.less(back, window));
  return tf.mul(tf.sub(1, tf.cast(allowed, 'float32')), -1e9) as tf.Tensor2D; // [b, K]
}

/** Queries t0 … t0+b−1 of the chunk attend to keys kStart … kStart+kLen−1 of [cache, chunk]. */
interface QueryBlock {
  readonly t0: number;
  readonly b: number;
  readonly kStart: number;
  readonly kLen: number;
  readonly bias: tf.Tensor2D; // [b, kLen]
}

/** Queries per block under full attention: a 2,048-token chunk 65,536 tokens into a book would otherwise need 2 GB of scores. */
const fullAttentionBlock = 512;

/**
 * How a chunk's T queries meet the P cached and T new keys, the same for every layer. Full attention: blocks of up
 * to 512 queries, each over the keys before its last query. A window W: blocks of max(W, 64) queries, each over only the W−1 keys before it and itself, so
 * the scores are [b, b+W−1] rather than [T, P+T] (a 2048-token chunk with W = 256 does ~4× less work).
 */
function attentionPlan(P: number, T: number, window: number | null): QueryBlock[] {
  if (window === null) {
    // blocks of queries, each over the keys up to its last query: the scores stay [b, P + t0 + b], however long the chunk
    const blocks: QueryBlock[] = [];
    for (let t0 = 0; t0 < T; t0 += fullAttentionBlock) {
      const b = Math.min(fullAttentionBlock, T - t0);
      blocks.push({ t0, b, kStart: 0, kLen: P + t0 + b, bias: attentionBias(P + t0, b, null) });
    }
    return blocks;
  }
  const size = Math.max(window, 64);
  const biases = new Map<string, tf.Tensor2D>(); // full blocks after the first share one mask
  const blocks: QueryBlock[] = [];
  for (let t0 = 0; t0 < T; t0 += size) {
    const b = Math.min(size, T - t0);
    const kStart = Math.max(0, P + t0 - (window - 1));
    const before = P + t0 - kStart;
    const key = `${before}:${b}`;
    if (!biases.has(key)) biases.set(key, attentionBias(before, b, window));
    blocks.push({ t0, b, kStart, kLen: before + b, bias: biases.get(key)! });
  }
  return blocks;
}

/** softmax(q·Kᵀ/√D + mask)·V by the plan's query blocks: the definition, differentiable. y [T, H·D] */
// ref: modeling_llama.py eager_attention_forward, repeat_kv
function blockedAttention(q: tf.Tensor3D, K: tf.Tensor3D, V: tf.Tensor3D, plan: readonly QueryBlock[], shape: AttentionShape): tf.Tensor2D {
  const { H, G, D } = shape;
  const T = q.shape[1], R = H / G, S = K.shape[1];
  // query head h uses K/V head floor(h / R) (repeat_kv): the R query heads of a K/V head become its rows
  const qGroups = tf.reshape(q, [G, R, T, D]); // [G, R, T, D]
  // each block in its own tidy, so one block's scores are freed before the next block's are made
  const outs = plan.map(({ t0, b, kStart, kLen, bias }) => tf.tidy(() => {
    const qb = tf.reshape(plan.length > 1 ? tf.slice(qGroups, [0, 0, t0, 0], [G, R, b, D]) : qGroups, [G, R * b, D]); // [G, R·b, D]
    const Kb = kLen < S ? tf.slice(K, [0, kStart, 0], [G, kLen, D]) : K; // [G, kLen, D]
    const Vb = kLen < S ? tf.slice(V, [0, kStart, 0], [G, kLen, D]) : V; // [G, kLen, D]
    const scores = tf.mul(tf.matMul(qb, Kb, false, true), 1 / Math.sqrt(D)); // [G, R·b, kLen]
    const probs = tf.softmax(tf.add(tf.reshape(scores, [G, R, b, kLen]), bias)); // [G, R, b, kLen]
    return tf.reshape(tf.matMul(tf.reshape(probs, [G, R * b, kLen]), Vb), [G, R, b, D]); // [G, R, b, D]
  }));
  const out = outs.length > 1 ? tf.concat(outs, 2) : outs[0]; // [G, R, T, D]
  return tf.reshape(tf.transpose(tf.reshape(out, [H, T, D]), [1, 0, 2]), [T, H * D]) as tf.Tensor2D; // [T, H·D]
}

// ref: modeling_llama.py LlamaAttention.forward (eager_attention_forward, repeat_kv)
function llamaAttention(
  lw: LlamaLayerWeights, ls: LlamaLayerState, x: tf.Tensor2D, cos: tf.Tensor2D, sin: tf.Tensor2D,
  plan: readonly QueryBlock[], shape: AttentionShape, window: number | null, path: KernelPath,
): { y: tf.Tensor2D; state: LlamaLayerState } {
  const { H, G, D } = shape;
  const T = x.shape[0];
  const [qk, vFlat] = tf.split(dense(x, lw.qkv), [(H + G) * D, G * D], 1) as tf.Tensor2D[]; // [T, (H+G)D], [T, GD]
  const qkRot = applyHalfRope(tf.reshape(qk, [T, H + G, D]), cos, sin); // [T, H+G, D]
  const [q, k] = tf.split(tf.transpose(qkRot, [1, 0, 2]), [H, G], 0) as tf.Tensor3D[]; // [H, T, D], [G, T, D]
  const v = tf.transpose(tf.reshape(vFlat, [T, G, D]), [1, 0, 2]) as tf.Tensor3D; // [G, T, D]
  const K = tf.concat([ls.k, k], 1); // [G, S, D]
  const V = tf.concat([ls.v, v], 1); // [G, S, D]
  const S = K.shape[1];
  const y = path === 'loop' ? causalAttentionLoop(q, K, V, window) : path === 'fused' ? causalAttentionFused(q, K, V, window) : blockedAttention(q, K, V, plan, shape); // [T, H·D]
  const keep = window === null ? S : Math.min(S, window - 1);
  const state = keep === S ? { k: K, v: V } : {
    k: tf.slice(K, [0, S - keep, 0], [G, keep, D]), // [G, W−1, D]
    v: tf.slice(V, [0, S - keep, 0], [G, keep, D]), // [G, W−1, D]
  };
  return { y: dense(y, lw.oProj), state };
}

// ---------------------------------------------------------------------------------------------------------
// The model

export interface LlamaOptions {
  /** Default sliding window for `initialState()`; absent or null: full causal attention. */
  readonly window?: number | null;
  /** Build only these layers, as one stage of a pipeline (default: the whole model). */
  readonly layers?: LayerRange;
}

export class LlamaModel implements CausalLM<LlamaState> {
  readonly family = 'llama' as const;
  readonly vocabSize: number;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly parameterCount: number;
  readonly layerRange: LayerRange;
  readonly window: number | null;
  /** Held by the first stage (it embeds tokens); null elsewhere. */
  private readonly embed: tf.Tensor2D | null;
  /** Held by the last stage; null elsewhere. */
  private readonly lmHead: tf.Tensor2D | null;
  private readonly finalNorm: tf.Tensor1D | null;
  private readonly invFreq: tf.Tensor2D; // [1, D/2]
  private readonly invFreqData: Float32Array;
  /** On webgpu, when the layers' kernels fit: each layer's weights packed for llama-fused-webgpu.ts, made once. */
  private fusedLayers: tf.Tensor1D[] | null = null;
  private fusedPlaceholder: tf.Tensor3D | null = null;
  private tokensPerGroup = 0;
  private readonly fusedShape: LlamaShape;
  /** This stage's layers, `layers[i]` being layer `layerRange.start + i` of the model. */
  private readonly layers: LlamaLayerWeights[];

  /**
   * `tensors`: checkpoint data, or live tensors (training variables) borrowed as they are; see core/weights.ts.
   * `options.layers`: build only layers [start, end) as one stage of a pipeline (models/stage.ts).
   */
  constructor(readonly config: LlamaConfig, tensors: WeightMap, source = 'model.safetensors', options: LlamaOptions = {}) {
    this.window = checkWindow(options.window);
    const L = config.numHiddenLayers;
    this.layerRange = checkLayerRange(options.layers, L, source);
    const { start, end } = this.layerRange;
    const ignore = ignoredTensors(config);
    const allSpecs = llamaWeightSpecs(config);
    const embedding = 'model.embed_tokens.weight';
    const specs = stageWeightSpecs(allSpecs, this.layerRange, L, { embedding, tied: config.tieWordEmbeddings });
    tensors = tensorsForStage(tensors, allSpecs, specs);
    checkWeights(source, specs, tensors, { ignore });
    this.vocabSize = config.vocabSize;
    this.numLayers = L;
    this.hiddenSize = config.hiddenSize;
    this.parameterCount = stageParameterCount(specs, this.layerRange, embedding);
    const w = (name: string) => weightTensor(tensors, name);
    // fused with tensor ops so training's gradients reach q/k/v and gate/up; tidy frees copies of checkpoint data
    // projections are stored [in, out] (transposed once here) for `dense`, wasm's fast matMul
    const fused = (names: string[]) => tf.tidy(() => transposeForDense(tf.concat(names.map(w), 0)));
    const proj = (name: string) => tf.tidy(() => transposeForDense(w(name)));
    const D = config.headDim;
    const embed = start === 0 ? (w(embedding) as tf.Tensor2D) : null;
    this.embed = embed;
    // a tied head of a stage that does not embed reads the embedding once, here; tidy frees that copy
    this.lmHead = end === L ? tf.tidy(() => transposeForDense(config.tieWordEmbeddings ? embed ?? w(embedding) : w('lm_head.weight'))) : null; // [C, V]
    this.finalNorm = end === L ? (w('model.norm.weight') as tf.Tensor1D) : null;
    this.invFreqData = ropeInverseFrequencies(D, config.ropeTheta);
    this.invFreq = tf.tensor2d(this.invFreqData, [1, D / 2]);
    this.layers = [];
    for (let l = start; l < end; l++) {
      const p = `model.layers.${l}.`;
      this.layers.push({
        inputNorm: w(`${p}input_layernorm.weight`) as tf.Tensor1D,
        postAttentionNorm: w(`${p}post_attention_layernorm.weight`) as tf.Tensor1D,
        qkv: fused([`${p}self_attn.q_proj.weight`, `${p}self_attn.k_proj.weight`, `${p}self_attn.v_proj.weight`]), // [C, (H + 2G)·D]
        oProj: proj(`${p}self_attn.o_proj.weight`), // [H·D, C]
        mlpGate: proj(`${p}mlp.gate_proj.weight`), // [C, I]
        mlpUp: proj(`${p}mlp.up_proj.weight`), // [C, I]
        mlpDown: proj(`${p}mlp.down_proj.weight`), // [I, C]
      });
    }
    this.fusedShape = {
      C: config.hiddenSize, I: config.intermediateSize, H: config.numAttentionHeads, G: config.numKeyValueHeads, D, V: config.vocabSize, eps: config.rmsNormEps,
    };
    // packed at load, so a chunk's dispatches are the chunk's own
    if (fusedKernelsOn()) this.packedLayers();
  }

  /** The layers packed for the fused decoder kernels (null when they do not fit), made on first use and kept. */
  private packedLayers(): tf.Tensor1D[] | null {
    if (this.fusedLayers || this.layers.length === 0) return this.fusedLayers;
    this.tokensPerGroup = llamaTokensPerGroup(this.fusedShape, workgroupStorageBytes());
    if (this.tokensPerGroup < 1) return null;
    const last = this.layers.length - 1;
    const head = this.lmHead && this.finalNorm ? { norm: this.finalNorm, weight: this.lmHead } : undefined;
    this.fusedLayers = this.layers.map((lw, l) => tf.keep(packLlamaLayer(lw, l === last ? head : undefined)));
    this.fusedPlaceholder = tf.keep(tf.tensor3d([0, 0], [1, 1, 2]));
    return this.fusedLayers;
  }

  /** An empty KV cache; `window` (default: the model's) picks sliding-window or, when null, full attention. */
  initialState(window: number | null = this.window): LlamaState {
    const G = this.config.numKeyValueHeads, D = this.config.headDim;
    return {
      position: 0,
      window: checkWindow(window),
      layers: this.layers.map(() => ({ k: tf.zeros([G, 0, D]) as tf.Tensor3D, v: tf.zeros([G, 0, D]) as tf.Tensor3D })),
    };
  }

  forward(ids: Int32Array, state: LlamaState, options: ForwardOptions = {}): ForwardResult<LlamaState> {
    return forwardWhole(this, ids, state, options);
  }

  // ref: modeling_llama.py LlamaForCausalLM.forward / LlamaModel.forward, for this stage's part of it
  /**
   * `options.form`: `dual` keeps the differentiable tensor attention (training); otherwise CPU backends run the loop
   * attention, and webgpu the fused layers (llama-fused-webgpu.ts) or, where they do not fit, the fused attention.
   */
  forwardStage(input: StageInput, state: LlamaState, options: ForwardOptions = {}): StageResult<LlamaState> {
    const T = input instanceof Int32Array ? input.length : input.shape[0];
    const path = kernelPath(options.form);
    const packed = path === 'fused' && T > 0 && T <= 65_535 ? this.packedLayers() : null;
    if (packed) return this.forwardStageFused(input, state, packed);
    const { numAttentionHeads: H, numKeyValueHeads: G, headDim: D, rmsNormEps: eps } = this.config;
    let x = input instanceof Int32Array ? this.embedTokens(input, state.position) : input; // [T, C]
    const layers: LlamaLayerState[] = [];
    if (this.layers.length > 0) {
      const P = state.layers[0].k.shape[1];
      const { cos, sin } = halfRopeTables(this.invFreq, state.position, T); // [T, D] each
      const plan = path === 'tensor' ? attentionPlan(P, T, state.window) : [];
      for (let l = 0; l < this.layers.length; l++) {
        // ref: modeling_llama.py LlamaDecoderLayer.forward: two residual lines; a tidy per layer bounds a long chunk's memory
        const lw = this.layers[l], h = x;
        const out = tf.tidy(() => {
          const attn = llamaAttention(lw, state.layers[l], rmsNorm(h, lw.inputNorm, eps), cos, sin, plan, { H, G, D }, state.window, path);
          const mid = tf.add(h, attn.y) as tf.Tensor2D;
          return { x: tf.add(mid, swiGluDense(rmsNorm(mid, lw.postAttentionNorm, eps), lw.mlpGate, lw.mlpUp, lw.mlpDown)) as tf.Tensor2D, k: attn.state.k, v: attn.state.v };
        });
        x = out.x;
        layers.push({ k: out.k, v: out.v });
      }
    }
    const output = this.lmHead && this.finalNorm ? dense(rmsNorm(x, this.finalNorm, eps), this.lmHead) : x; // [T, V] or [T, C]
    return { output, state: { position: state.position + T, window: state.window, layers } };
  }

  /** `forwardStage` in three dispatches per layer (llama-fused-webgpu.ts): the same math, the same state. */
  private forwardStageFused(input: StageInput, state: LlamaState, packed: readonly tf.Tensor1D[]): StageResult<LlamaState> {
    const ids = input instanceof Int32Array ? input : null;
    const T = ids ? ids.length : (input as tf.Tensor2D).shape[0];
    const table = ids ? this.embedTable(ids, state.position) : null;
    const aux = llamaChunkAux(this.invFreqData, state.position, T, ids);
    let x = table ?? (input as tf.Tensor2D);
    const layers: LlamaLayerState[] = [];
    for (let l = 0; l < packed.length; l++) {
      const out = llamaLayerFused(this.fusedShape, {
        x, embed: l === 0 && table !== null, aux, layer: packed[l], head: l === packed.length - 1 && this.lmHead !== null,
        k: state.layers[l].k, v: state.layers[l].v, T, window: state.window, tokensPerGroup: this.tokensPerGroup, placeholder: this.fusedPlaceholder!,
      });
      x = out.y;
      layers.push({ k: out.k, v: out.v });
    }
    return { output: x, state: { position: state.position + T, window: state.window, layers } };
  }

  /** The embedding table, after checking the ids against it; only the first stage holds it. */
  private embedTable(ids: Int32Array, position: number): tf.Tensor2D {
    if (!this.embed) throw new Error(`Llama stage [${this.layerRange.start}, ${this.layerRange.end}) takes hidden states, not token ids`);
    assertTokenIds(ids, this.vocabSize, position);
    return this.embed;
  }

  /** [T, C] embeddings of token ids. */
  private embedTokens(ids: Int32Array, position: number): tf.Tensor2D {
    return tf.gather(this.embedTable(ids, position), ids) as tf.Tensor2D; // [T, C]
  }

  /** Bytes of each layer's KV cache: grows with position under full attention, at most 2·G·(W−1)·D·4 with a window. */
  stateSummary(state: LlamaState): LlamaStateSummary {
    const bytes = state.layers.map((ls) => (ls.k.size + ls.v.size) * 4);
    return { quantity: 'kv_cache_bytes', perLayer: tf.tensor1d(bytes) };
  }

  dispose(): void {
    const owned: tf.Tensor[] = [this.invFreq, ...(this.fusedLayers ?? []), ...(this.fusedPlaceholder ? [this.fusedPlaceholder] : [])];
    for (const t of [this.embed, this.lmHead, this.finalNorm]) if (t) owned.push(t);
    for (const lw of this.layers) owned.push(...tf.tensor_util.getTensorsInContainer(lw as unknown as tf.TensorContainer));
    tf.dispose(owned);
  }
}
