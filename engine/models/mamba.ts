/**
 * The Mamba baseline: Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces", arXiv
 * 2312.00752. Reference: johnma2006/mamba-minimal `model.py` (itself following state-spaces/mamba
 * `mamba_ssm/modules/mamba_simple.py` and `selective_scan_ref`), whose tensor names this file loads unchanged;
 * Hugging Face's `backbone.embeddings.weight` spelling and MambaConfig keys are accepted too.
 *
 * Unlike mamba-minimal, which builds the whole (b, l, d_in, n) tensor and starts every call from zero, the state
 * (the conv's last d_conv−1 inputs and the SSM state h) is carried between chunks, so a book is one sequence.
 *
 * Glossary (mamba-minimal's letters):
 *   T   tokens in the chunk               C   d_model (hidden size)          V   vocabulary
 *   Di  d_inner = expand · d_model        N   d_state (SSM state per channel)
 *   R   dt_rank                           k   d_conv (conv kernel width)
 *   L   tokens in one scan block (≤ scanBlockSize)
 *   Δ (delta) per-token step size [T, Di]; A = −exp(A_log) [Di, N]; B, C(ssm) input/output maps [T, N]
 *
 * The selective scan h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t, y_t = h_t C_t + D u_t is computed per block of L
 * tokens with a Hillis–Steele scan over the associative pairs (a, b) ∘ (a', b') = (a a', a' b + b'): log2(L)
 * steps of whole-block tensor ops, then h_t = b_t + a_t h_{block start}. Only the blocks are looped over (never
 * the tokens), and every factor a ∈ (0, 1] is multiplied, never divided, so nothing overflows whatever Δ and A
 * are (the cumsum factorisation exp(A S_t)·exp(−A S_s) would overflow when |A|·ΣΔ in a block exceeds ~88).
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from '../core/errors.js';
import { nativeSgemm } from '../core/native-matmul.js';
import { checkWeights, type WeightMap, type WeightSpec, weightTensor } from '../core/weights.js';
import { causalConv, dense, depthwiseFilterOf, rmsNorm, silu, transposeForDense } from './blocks.js';
import { type KernelPath, kernelPath } from './loop-math.js';
import { selectiveScanLoop } from './mamba-scan.js';
import { selectiveScanFused } from './mamba-scan-webgpu.js';
import { assertTokenIds, type CausalLM, type ForwardOptions, type ForwardResult, forwardWhole, type ModelState, type StageInput, type StageResult } from './model.js';
import {
  checkLayerRange, denseMacMicros, type LayerRange, logitMicros, type StageCosts, stageParameterCount, stageWeightSpecs, tensorsForStage,
} from './stage.js';
import { readNow } from './cpu-arrays.js';

// ---------------------------------------------------------------------------------------------------------
// Config

export interface MambaConfig {
  readonly vocabSize: number;
  readonly dModel: number;
  readonly nLayer: number;
  readonly dState: number;
  readonly expand: number;
  readonly dInner: number;
  readonly dConv: number;
  readonly dtRank: number;
  readonly tieEmbeddings: boolean;
  readonly rmsNormEps: number;
  /** in_proj and out_proj biases (mamba-minimal `bias`, HF `use_bias`; off in released checkpoints). */
  readonly bias: boolean;
  /** conv1d bias (mamba-minimal `conv_bias`, HF `use_conv_bias`). */
  readonly convBias: boolean;
  readonly tokenizer?: string;
}

/**
 * Each setting under its fixture / mamba-minimal name, then HF MambaConfig's name, with the default both use.
 * A config may use either spelling; if it uses both, they must agree.
 */
const mambaKeys = {
  dModel: [['d_model', 'hidden_size'], 768],
  nLayer: [['n_layer', 'num_hidden_layers'], 32],
  vocabSize: [['vocab_size'], 50280],
  dState: [['d_state', 'state_size'], 16],
  expand: [['expand'], 2],
  dConv: [['d_conv', 'conv_kernel'], 4],
  tieEmbeddings: [['tie_embeddings', 'tie_word_embeddings'], true],
  rmsNormEps: [['rms_norm_eps', 'layer_norm_epsilon'], 1e-5],
  bias: [['bias', 'use_bias'], false],
  convBias: [['conv_bias', 'use_conv_bias'], true],
  padVocabSizeMultiple: [['pad_vocab_size_multiple'], 1],
} as const;

type MambaKey = keyof typeof mambaKeys;
type Widen<T> = T extends number ? number : T extends boolean ? boolean : T;

export function parseMambaConfig(json: Record<string, unknown>, source = 'config.json'): MambaConfig {
  const bad = (reason: string) => workbenchError('E_CONFIG', source, reason);
  /** The value under whichever of the key's names is present (null counts as absent, as HF writes it). */
  const lookup = (names: readonly string[]): { name: string; value: unknown } | undefined => {
    const present = names.filter((n) => json[n] !== undefined && json[n] !== null);
    if (present.length > 1 && json[present[0]] !== json[present[1]]) {
      throw bad(`"${present[0]}" (${JSON.stringify(json[present[0]])}) and "${present[1]}" (${JSON.stringify(json[present[1]])}) disagree`);
    }
    return present.length ? { name: present[0], value: json[present[0]] } : undefined;
  };
  const get = <K extends MambaKey>(key: K): Widen<(typeof mambaKeys)[K][1]> => {
    const [names, fallback] = mambaKeys[key];
    const found = lookup(names);
    if (found && typeof found.value !== typeof fallback) throw bad(`"${found.name}" should be a ${typeof fallback}, got ${JSON.stringify(found.value)}`);
    return (found ? found.value : fallback) as Widen<(typeof mambaKeys)[K][1]>;
  };
  const positiveInt = (key: MambaKey): number => {
    const v = get(key);
    const name = lookup(mambaKeys[key][0])?.name ?? mambaKeys[key][0][0];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw bad(`"${name}" must be a positive integer, got ${v}`);
    return v;
  };

  const dModel = positiveInt('dModel');
  const expand = positiveInt('expand');
  const dInner = expand * dModel;
  const intermediate = lookup(['intermediate_size', 'd_inner']);
  if (intermediate && intermediate.value !== dInner) {
    throw bad(`"${intermediate.name}" ${JSON.stringify(intermediate.value)} disagrees with expand·d_model = ${expand}·${dModel} = ${dInner}`);
  }
  // dt_rank "auto" = ceil(d_model / 16). ref: mamba-minimal ModelArgs.__post_init__
  const rank = lookup(['dt_rank', 'time_step_rank']) ?? { name: 'dt_rank', value: 'auto' };
  let dtRank: number;
  if (rank.value === 'auto') dtRank = Math.ceil(dModel / 16);
  else if (typeof rank.value === 'number' && Number.isInteger(rank.value) && rank.value > 0) dtRank = rank.value;
  else throw bad(`"${rank.name}" must be a positive integer or "auto", got ${JSON.stringify(rank.value)}`);
  if (json.hidden_act !== undefined && json.hidden_act !== 'silu') throw bad(`hidden_act ${JSON.stringify(json.hidden_act)} is not supported (only "silu")`);
  if (json.rms_norm === false) throw bad('"rms_norm": false (LayerNorm blocks) is not supported');
  // mamba-minimal pads the vocabulary to a multiple of pad_vocab_size_multiple; HF configs store it padded
  const multiple = positiveInt('padVocabSizeMultiple');
  const vocabSize = Math.ceil(positiveInt('vocabSize') / multiple) * multiple;
  return {
    vocabSize, dModel, nLayer: positiveInt('nLayer'), dState: positiveInt('dState'), expand, dInner,
    dConv: positiveInt('dConv'), dtRank, tieEmbeddings: get('tieEmbeddings'), rmsNormEps: get('rmsNormEps'),
    bias: get('bias'), convBias: get('convBias'),
    tokenizer: typeof json.tokenizer === 'string' ? json.tokenizer : undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Weights

const embeddingNames = ['backbone.embedding.weight', 'backbone.embeddings.weight'] as const;

/** mamba-minimal's embedding name, or HF's when that is the one the checkpoint holds. */
function embeddingNameOf(tensors: WeightMap): string {
  return !tensors.has(embeddingNames[0]) && tensors.has(embeddingNames[1]) ? embeddingNames[1] : embeddingNames[0];
}

/** The tensors a Mamba checkpoint must hold, with shapes implied by the config (reference names). */
export function mambaWeightSpecs(c: MambaConfig, embeddingName: string = embeddingNames[0]): WeightSpec[] {
  const C = c.dModel, Di = c.dInner, N = c.dState, R = c.dtRank;
  const specs: WeightSpec[] = [
    { name: embeddingName, shape: [c.vocabSize, C], because: 'vocab_size × d_model' },
    { name: 'backbone.norm_f.weight', shape: [C], because: 'd_model' },
  ];
  if (!c.tieEmbeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocabSize, C], because: 'vocab_size × d_model' });
  for (let l = 0; l < c.nLayer; l++) {
    const p = `backbone.layers.${l}.`, m = `${p}mixer.`;
    specs.push(
      { name: `${p}norm.weight`, shape: [C], because: 'd_model' },
      { name: `${m}in_proj.weight`, shape: [2 * Di, C], because: '2·expand·d_model × d_model' },
      { name: `${m}conv1d.weight`, shape: [Di, 1, c.dConv], because: 'expand·d_model × 1 × d_conv' },
      { name: `${m}x_proj.weight`, shape: [R + 2 * N, Di], because: 'dt_rank + 2·d_state × expand·d_model' },
      { name: `${m}dt_proj.weight`, shape: [Di, R], because: 'expand·d_model × dt_rank' },
      { name: `${m}dt_proj.bias`, shape: [Di], because: 'expand·d_model' },
      { name: `${m}A_log`, shape: [Di, N], because: 'expand·d_model × d_state' },
      { name: `${m}D`, shape: [Di], because: 'expand·d_model' },
      { name: `${m}out_proj.weight`, shape: [C, Di], because: 'd_model × expand·d_model' },
    );
    if (c.convBias) specs.push({ name: `${m}conv1d.bias`, shape: [Di], because: 'expand·d_model' });
    if (c.bias) specs.push({ name: `${m}in_proj.bias`, shape: [2 * Di], because: 'bias: 2·expand·d_model' }, { name: `${m}out_proj.bias`, shape: [C], because: 'bias: d_model' });
  }
  return specs;
}

/**
 * Estimated per-token cost of each layer and of the head (models/stage.ts), for balancing pipeline stages:
 * projections by their multiply-adds, the selective scan by its elementwise work on [Di, N] per token (~log2 of the
 * scan block's passes, a few ns each).
 */
export function mambaStageCosts(c: MambaConfig): StageCosts {
  const C = c.dModel, Di = c.dInner, N = c.dState, R = c.dtRank, V = c.vocabSize;
  const dense = (C * 2 * Di + Di * (R + 2 * N) + R * Di + Di * C) * denseMacMicros;
  const scan = Di * N * 0.02;
  return { layers: new Array<number>(c.nLayer).fill(dense + scan), head: C * V * denseMacMicros + V * logitMicros };
}

interface MambaLayerWeights {
  readonly norm: tf.Tensor1D;
  readonly inProj: tf.Tensor2D; // [C, 2Di] (projections stored [in, out] for `dense`)
  readonly inProjBias?: tf.Tensor1D; // [2Di]
  readonly convFilter: tf.Tensor4D; // [1, k, Di, 1]
  readonly convBias: tf.Tensor1D; // [Di] (zeros without conv_bias)
  readonly xProj: tf.Tensor2D; // [Di, R + 2N]
  readonly dtProj: tf.Tensor2D; // [R, Di]
  readonly dtBias: tf.Tensor1D; // [Di]
  readonly A: tf.Tensor2D; // −exp(A_log) [Di, N]
  readonly D: tf.Tensor1D; // [Di]
  readonly outProj: tf.Tensor2D; // [Di, C]
  readonly outProjBias?: tf.Tensor1D; // [C]
}

// ---------------------------------------------------------------------------------------------------------
// State

export interface MambaLayerState {
  readonly conv: tf.Tensor2D; // [k−1, Di] the conv's last inputs (zeros at the start of a document)
  readonly ssm: tf.Tensor2D; // [Di, N] h after the last token consumed
}

export interface MambaState extends ModelState {
  readonly layers: readonly MambaLayerState[];
}

/** Per-layer numbers for the hidden-state views; the caller owns (and disposes) `perLayer`. */
export interface MambaStateSummary {
  readonly quantity: 'ssm_state_norm';
  /** [layers] Frobenius norm of each layer's SSM state h [Di, N]. */
  readonly perLayer: tf.Tensor1D;
}

// ---------------------------------------------------------------------------------------------------------
// Blocks

/**
 * Tokens per scan block. Larger blocks spread the per-op overhead (~9 µs on wasm) over more tokens but add a
 * scan step per doubling; 32 was fastest on wasm both for d_inner 128 and for d_inner 1536 (mamba-130m).
 */
export const scanBlockSize = 32;

/**
 * Identity rows of the scan, (a, b) = (1, 0), for each shift s = 1, 2, 4, … < scanBlockSize: [s, Di, N] each.
 * Made once at load: shifting by concatenating them is several times faster than tf.pad on wasm and cpu, and
 * far faster than tf.slice on wasm, whose Slice copies its whole input out of the heap first.
 */
export interface ScanIdentity {
  readonly ones: ReadonlyMap<number, tf.Tensor3D>;
  readonly zeros: ReadonlyMap<number, tf.Tensor3D>;
}

export function makeScanIdentity(dInner: number, dState: number): ScanIdentity {
  const ones = new Map<number, tf.Tensor3D>(), zeros = new Map<number, tf.Tensor3D>();
  for (let s = 1; s < scanBlockSize; s *= 2) {
    ones.set(s, tf.ones([s, dInner, dState]));
    zeros.set(s, tf.zeros([s, dInner, dState]));
  }
  return { ones, zeros };
}

/**
 * The selective scan over one block of L ≤ scanBlockSize tokens from state h0, in one `tf.tidy` so the block's
 * [L, Di, N] intermediates are freed before the next block. Returns y_t = h_t C_t (without the D skip) and h_L.
 * ref: mamba-minimal model.py MambaBlock.selective_scan (the same recurrence, as a scan instead of a loop)
 *
 * Each Hillis–Steele step lines row t up with row t−s by putting s identity rows in front of one copy and
 * behind the other, so the rows grow to M = 2L−1 instead of being sliced back; rows from L on are scratch.
 */
export function selectiveScanBlock(
  u: tf.Tensor2D, delta: tf.Tensor2D, A: tf.Tensor2D, B: tf.Tensor2D, C: tf.Tensor2D, h0: tf.Tensor2D, identity: ScanIdentity,
): { y: tf.Tensor2D; h: tf.Tensor2D } {
  return tf.tidy(() => {
    const [L, Di] = u.shape;
    let a = tf.exp(tf.mul(tf.expandDims(delta, 2), A)) as tf.Tensor3D; // deltaA [L, Di, N]
    let b = tf.mul(tf.expandDims(tf.mul(delta, u), 2), tf.expandDims(B, 1)) as tf.Tensor3D; // deltaB_u [L, Di, N]
    // inclusive scan: after the step with offset s, row t combines rows t−2s+1 … t
    for (let s = 1; s < L; s *= 2) {
      const ones = identity.ones.get(s)!, zeros = identity.zeros.get(s)!;
      const aNow = tf.concat([a, ones], 0); // [M+s, Di, N] a_t
      const bBefore = tf.concat([zeros, b], 0); // [M+s, Di, N] b_{t−s}
      b = tf.add(tf.mul(aNow, bBefore), tf.concat([b, zeros], 0)); // a_t b_{t−s} + b_t
      a = tf.mul(aNow, tf.concat([ones, a], 0)); // a_t a_{t−s}
    }
    const M = a.shape[0];
    const h = tf.add(b, tf.mul(a, tf.expandDims(h0, 0))); // h_t for every token (rows ≥ L scratch) [M, Di, N]
    const Cm = tf.expandDims(M > L ? tf.pad(C, [[0, M - L], [0, 0]]) : C, 2); // [M, N, 1]
    const y = tf.reshape(tf.matMul(h, Cm), [M, Di]); // Σ_n h_t[d, n] C_t[n]: [M, Di]
    return {
      y: (M > L ? tf.slice(y, [0, 0], [L, Di]) : y) as tf.Tensor2D, // [L, Di]
      h: tf.reshape(tf.gather(h, [L - 1]), [Di, A.shape[1]]) as tf.Tensor2D, // [Di, N]
    };
  });
}

/** The selective scan of a chunk (D skip included) by scan blocks of tensor ops: the definition, differentiable. */
function selectiveScan(
  u: tf.Tensor2D, delta: tf.Tensor2D, A: tf.Tensor2D, B: tf.Tensor2D, C: tf.Tensor2D, D: tf.Tensor1D, h0: tf.Tensor2D, identity: ScanIdentity,
): { y: tf.Tensor2D; h: tf.Tensor2D } {
  const T = u.shape[0];
  const ys: tf.Tensor2D[] = [];
  let h = h0;
  for (let t0 = 0; t0 < T; t0 += scanBlockSize) {
    // gather, not split: tfjs-wasm's SplitV slices, and each slice copies the whole input
    const rows = T > scanBlockSize ? tf.range(t0, Math.min(t0 + scanBlockSize, T), 1, 'int32') : null;
    const block = (x: tf.Tensor2D) => (rows ? (tf.gather(x, rows) as tf.Tensor2D) : x); // [L, ·]
    const out = selectiveScanBlock(block(u), block(delta), A, block(B), block(C), h, identity);
    ys.push(out.y);
    h = out.h;
  }
  const y = ys.length > 1 ? tf.concat(ys, 0) : ys[0]; // [T, Di]
  return { y: tf.add(y, tf.mul(u, D)) as tf.Tensor2D, h };
}

// ref: mamba-minimal model.py MambaBlock.ssm
function ssm(lw: MambaLayerWeights, u: tf.Tensor2D, h0: tf.Tensor2D, c: MambaConfig, identity: ScanIdentity, path: KernelPath): { y: tf.Tensor2D; h: tf.Tensor2D } {
  const xdbl = dense(u, lw.xProj); // [T, R + 2N]
  if (path === 'loop') return selectiveScanLoop(u, xdbl, lw.dtProj, lw.dtBias, lw.A, lw.D, h0);
  if (path === 'fused') return selectiveScanFused(u, xdbl, lw.dtProj, lw.dtBias, lw.A, lw.D, h0);
  const [dtIn, B, C] = tf.split(xdbl, [c.dtRank, c.dState, c.dState], 1) as tf.Tensor2D[]; // [T, R], [T, N], [T, N]
  const delta = tf.softplus(tf.add(dense(dtIn, lw.dtProj), lw.dtBias)) as tf.Tensor2D; // [T, Di]
  return selectiveScan(u, delta, lw.A, B, C, lw.D, h0, identity);
}

/**
 * in_proj's two halves [T, Di] each: x for the conv and res for the gate. On CPU backends as two products with the
 * weight's halves read in place through the native BLAS where it loads (else with copies of them), since on wasm
 * splitting the [T, 2Di] product copies all of it once per piece.
 */
function inProjection(lw: MambaLayerWeights, x: tf.Tensor2D, loop: boolean): tf.Tensor2D[] {
  if (!loop) {
    let xz = dense(x, lw.inProj); // [T, 2Di]
    if (lw.inProjBias) xz = tf.add(xz, lw.inProjBias);
    return tf.split(xz, 2, 1) as tf.Tensor2D[];
  }
  const [T, C] = x.shape, Di = lw.inProj.shape[1] / 2;
  const sgemm = nativeSgemm();
  let halves: tf.Tensor2D[];
  if (sgemm) {
    const xData = readNow(x), w = readNow(lw.inProj); // read at once: no TF.js call until both products are done
    const [xIn, res] = [new Float32Array(T * Di), new Float32Array(T * Di)];
    sgemm(false, false, T, Di, C, xData, C, w, 2 * Di, xIn, Di); // columns 0 … Di−1 of the weight
    sgemm(false, false, T, Di, C, xData, C, w.subarray(Di), 2 * Di, res, Di); // columns Di … 2Di−1
    halves = [tf.tensor2d(xIn, [T, Di]), tf.tensor2d(res, [T, Di])];
  } else {
    halves = (tf.split(lw.inProj, 2, 1) as tf.Tensor2D[]).map((w) => dense(x, w)); // [C, Di] each
  }
  if (!lw.inProjBias) return halves;
  const biases = tf.split(lw.inProjBias, 2) as tf.Tensor1D[];
  return halves.map((h, i) => tf.add(h, biases[i]) as tf.Tensor2D);
}

// ref: mamba-minimal model.py MambaBlock.forward
function mambaMixer(
  lw: MambaLayerWeights, ls: MambaLayerState, x: tf.Tensor2D, c: MambaConfig, identity: ScanIdentity, path: KernelPath,
): { y: tf.Tensor2D; state: MambaLayerState } {
  const [xIn, res] = inProjection(lw, x, path === 'loop'); // [T, Di] each
  const conv = causalConv(xIn, ls.conv, lw.convFilter, lw.convBias); // [T, Di]
  const u = silu(conv.y);
  const scan = ssm(lw, u, ls.ssm, c, identity, path);
  let y = dense(tf.mul(scan.y, silu(res)) as tf.Tensor2D, lw.outProj); // [T, C]
  if (lw.outProjBias) y = tf.add(y, lw.outProjBias);
  return { y, state: { conv: conv.state, ssm: scan.h } };
}

// ---------------------------------------------------------------------------------------------------------
// The model

export class MambaModel implements CausalLM<MambaState> {
  readonly family = 'mamba' as const;
  readonly vocabSize: number;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly parameterCount: number;
  readonly layerRange: LayerRange;
  /** Held by the first stage (it embeds tokens); null elsewhere. */
  private readonly embed: tf.Tensor2D | null;
  /** Held by the last stage; null elsewhere. */
  private readonly lmHead: tf.Tensor2D | null;
  private readonly normF: tf.Tensor1D | null;
  /** This stage's layers, `layers[i]` being layer `layerRange.start + i` of the model. */
  private readonly layers: MambaLayerWeights[];
  private readonly scanIdentity: ScanIdentity;

  /**
   * `tensors`: checkpoint data, or live tensors (training variables) borrowed as they are; see core/weights.ts.
   * `range`: build only layers [start, end) as one stage of a pipeline (models/stage.ts).
   */
  constructor(readonly config: MambaConfig, tensors: WeightMap, source = 'model.safetensors', range?: LayerRange) {
    const L = config.nLayer;
    this.layerRange = checkLayerRange(range, L, source);
    const { start, end } = this.layerRange;
    const embeddingName = embeddingNameOf(tensors);
    const ignore = config.tieEmbeddings ? [/^lm_head\.weight$/] : [];
    const allSpecs = mambaWeightSpecs(config, embeddingName);
    const specs = stageWeightSpecs(allSpecs, this.layerRange, L, { embedding: embeddingName, tied: config.tieEmbeddings });
    tensors = tensorsForStage(tensors, allSpecs, specs);
    checkWeights(source, specs, tensors, { ignore });
    this.vocabSize = config.vocabSize;
    this.numLayers = L;
    this.hiddenSize = config.dModel;
    this.parameterCount = stageParameterCount(specs, this.layerRange, embeddingName);
    const w = (name: string) => weightTensor(tensors, name);
    // projections are stored [in, out] (transposed once here) for `dense`, wasm's fast matMul
    const proj = (name: string) => tf.tidy(() => transposeForDense(w(name)));
    const Di = config.dInner;
    const embed = start === 0 ? (w(embeddingName) as tf.Tensor2D) : null;
    this.embed = embed;
    // a tied head of a stage that does not embed reads the embedding once, here; tidy frees that copy
    this.lmHead = end === L ? tf.tidy(() => transposeForDense(config.tieEmbeddings ? embed ?? w(embeddingName) : w('lm_head.weight'))) : null; // [C, V]
    this.normF = end === L ? (w('backbone.norm_f.weight') as tf.Tensor1D) : null;
    this.scanIdentity = makeScanIdentity(Di, config.dState);
    this.layers = [];
    for (let l = start; l < end; l++) {
      const p = `backbone.layers.${l}.`, m = `${p}mixer.`;
      this.layers.push({
        norm: w(`${p}norm.weight`) as tf.Tensor1D,
        inProj: proj(`${m}in_proj.weight`), // [C, 2Di]
        inProjBias: config.bias ? (w(`${m}in_proj.bias`) as tf.Tensor1D) : undefined,
        // tensor ops (not data copies) so training's gradients reach conv1d.weight and A_log; tidy frees the copies
        convFilter: tf.tidy(() => depthwiseFilterOf(w(`${m}conv1d.weight`))), // [1, k, Di, 1]
        convBias: config.convBias ? (w(`${m}conv1d.bias`) as tf.Tensor1D) : tf.zeros([Di]),
        xProj: proj(`${m}x_proj.weight`), // [Di, R + 2N]
        dtProj: proj(`${m}dt_proj.weight`), // [R, Di]
        dtBias: w(`${m}dt_proj.bias`) as tf.Tensor1D,
        // ref: mamba-minimal MambaBlock.ssm: A = -torch.exp(self.A_log.float())
        A: tf.tidy(() => tf.neg(tf.exp(w(`${m}A_log`)))) as tf.Tensor2D, // [Di, N]
        D: w(`${m}D`) as tf.Tensor1D,
        outProj: proj(`${m}out_proj.weight`), // [Di, C]
        outProjBias: config.bias ? (w(`${m}out_proj.bias`) as tf.Tensor1D) : undefined,
      });
    }
  }

  initialState(): MambaState {
    const { dConv, dInner, dState } = this.config;
    return {
      position: 0,
      layers: this.layers.map(() => ({ conv: tf.zeros([dConv - 1, dInner]) as tf.Tensor2D, ssm: tf.zeros([dInner, dState]) as tf.Tensor2D })),
    };
  }

  forward(ids: Int32Array, state: MambaState, options: ForwardOptions = {}): ForwardResult<MambaState> {
    return forwardWhole(this, ids, state, options);
  }

  /**
   * `options.form`: `dual` keeps the differentiable tensor scan (training); otherwise CPU backends run the loop and
   * webgpu the fused kernel.
   */
  // ref: mamba-minimal model.py Mamba.forward, for this stage's part of it
  forwardStage(input: StageInput, state: MambaState, options: ForwardOptions = {}): StageResult<MambaState> {
    const path = kernelPath(options.form);
    const T = input instanceof Int32Array ? input.length : input.shape[0];
    let x = input instanceof Int32Array ? this.embedTokens(input, state.position) : input; // [T, C]
    const layers: MambaLayerState[] = [];
    for (let l = 0; l < this.layers.length; l++) {
      // ref: mamba-minimal model.py ResidualBlock.forward: x + mixer(norm(x)); a tidy per layer bounds a long chunk's memory
      const lw = this.layers[l], h = x;
      const out = tf.tidy(() => {
        const mixer = mambaMixer(lw, state.layers[l], rmsNorm(h, lw.norm, this.config.rmsNormEps), this.config, this.scanIdentity, path);
        return { x: tf.add(h, mixer.y) as tf.Tensor2D, conv: mixer.state.conv, ssm: mixer.state.ssm };
      });
      x = out.x;
      layers.push({ conv: out.conv, ssm: out.ssm });
    }
    const output = this.lmHead && this.normF ? dense(rmsNorm(x, this.normF, this.config.rmsNormEps), this.lmHead) : x; // [T, V] or [T, C]
    return { output, state: { position: state.position + T, layers } };
  }

  /** [T, C] embeddings of token ids; only the first stage holds the table. */
  private embedTokens(ids: Int32Array, position: number): tf.Tensor2D {
    if (!this.embed) throw new Error(`Mamba stage [${this.layerRange.start}, ${this.layerRange.end}) takes hidden states, not token ids`);
    assertTokenIds(ids, this.vocabSize, position);
    return tf.gather(this.embed, ids) as tf.Tensor2D; // [T, C]
  }

  /** Frobenius norm of each layer's SSM state; the state's size is fixed, whatever the position. */
  stateSummary(state: MambaState): MambaStateSummary {
    return { quantity: 'ssm_state_norm', perLayer: tf.tidy(() => tf.stack(state.layers.map((ls) => tf.norm(ls.ssm))) as tf.Tensor1D) };
  }

  dispose(): void {
    const owned: tf.Tensor[] = [...this.scanIdentity.ones.values(), ...this.scanIdentity.zeros.values()];
    for (const t of [this.embed, this.lmHead, this.normF]) if (t) owned.push(t);
    for (const lw of this.layers) owned.push(...tf.tensor_util.getTensorsInContainer(lw as unknown as tf.TensorContainer));
    tf.dispose(owned);
  }
}
