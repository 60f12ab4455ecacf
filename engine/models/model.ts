/**
 * The interface every language model in the engine implements (TTT, Transformer, Mamba), and the one helper
 * that runs a chunk with the memory discipline of STYLE.md rule 8.
 *
 * A model is stateless apart from its weights; everything carried along a document lives in an explicit state
 * object, so a book is one sequence fed as any series of chunks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from '../core/errors.js';
import type { LayerRange } from './stage.js';

export type ModelFamily = 'ttt' | 'llama' | 'mamba' | 'delta';

/** Carried state: tensors (owned by whoever holds the state) plus the number of tokens consumed so far. */
export interface ModelState {
  readonly position: number;
}

export interface ForwardOptions {
  /** Compute `ttt_loss_init/before/after` (TTT models only; costs extra work). */
  readonly innerLoopStats?: boolean;
  /**
   * `dual` processes a chunk mini-batch by mini-batch with matmuls only; `primal` steps token by token with
   * explicit weight gradients (the decoding path). `auto` uses primal for single tokens, dual otherwise, and on
   * CPU backends runs whole mini-batches of TTT-Linear through a faster layout that reads tensors back
   * mid-step — exact, but not differentiable: training passes `dual`. Likewise, under `auto` on CPU backends,
   * Mamba runs its selective scan (mamba-scan.ts) and the Transformer its attention (attention-loop.ts) as loops;
   * `dual` keeps every model on differentiable tensor ops.
   */
  readonly form?: 'auto' | 'dual' | 'primal';
  /** TTT only: metrics of the hidden state W after every finished mini-batch. */
  readonly weightTrace?: boolean;
  /** TTT only: return the full W after these mini-batches (absolute indices), for spectra and trajectories. */
  readonly snapshotMiniBatches?: ReadonlySet<number>;
  /**
   * TTT and delta-rule models (probes/intervene.ts): the inner loop is frozen from this absolute position on. The
   * tokens at and after it get inner learning rate 0 (TTT: ttt_lr_eta, as with `ttt_base_lr` 0; DeltaNet: β 0 and,
   * gated, no decay), so the hidden state stops changing and the outputs use the weights it had. For TTT a
   * mini-batch begun before it still applies the gradients of its earlier tokens at its end (as `ttt_base_lr` 0
   * from there would): at a multiple of the mini-batch size the weights are frozen exactly. Absent: never frozen.
   */
  readonly freezeInnerLoopFrom?: number;
}

/** TTT hidden-state evolution over the mini-batches that finished in a chunk. */
export interface WeightTrace {
  readonly firstMiniBatch: number;
  /** Column names of `metrics`, e.g. `W1.norm`, `W1.dist_init`, `W1.dist_prev`, `W1.cos_init`. */
  readonly names: readonly string[];
  /** Per layer, [n, names.length]. */
  readonly metrics: tf.Tensor2D[];
  /** Per layer, W after the mini-batches asked for in `snapshotMiniBatches`: name (W1, W2) → [H, a, b]. */
  readonly snapshots: { readonly miniBatch: number; readonly weights: Record<string, tf.Tensor3D> }[][];
}

export interface ForwardResult<S extends ModelState> {
  /** [T, vocab] */
  readonly logits: tf.Tensor2D;
  readonly state: S;
  /**
   * TTT only, when asked: per layer, [n, 3] rows of (init, before, after) for each mini-batch that completed in
   * this chunk, the first of which has index `firstMiniBatch`.
   */
  readonly innerLoop?: { readonly firstMiniBatch: number; readonly perLayer: tf.Tensor2D[] };
  readonly weightTrace?: WeightTrace;
}

/**
 * What one stage of a pipeline takes (models/stage.ts): token ids when it holds the embedding (the first stage),
 * otherwise the previous stage's hidden states [T, C].
 */
export type StageInput = Int32Array | tf.Tensor2D;

/** A stage's outputs: `forward`'s, with per-layer fields covering the stage's own layers only. */
export interface StageResult<S extends ModelState> extends Omit<ForwardResult<S>, 'logits'> {
  /** The last stage: [T, vocab] logits; any other: [T, C] hidden states for the next stage. */
  readonly output: tf.Tensor2D;
}

export interface CausalLM<S extends ModelState = ModelState> {
  readonly family: ModelFamily;
  readonly vocabSize: number;
  /** Layers of the whole model (a stage holds `layerRange` of them). */
  readonly numLayers: number;
  /** Width C of the hidden states passed between stages. */
  readonly hiddenSize: number;
  /** Parameters this instance holds (all of them, unless it was built as one stage of a pipeline). */
  readonly parameterCount: number;
  /** The layers this instance holds and runs: [0, numLayers) unless it was built as one stage of a pipeline. */
  readonly layerRange: LayerRange;
  /** The carried state of this instance's layers, at the start of a document. */
  initialState(): S;
  /** Pure tensor math, synchronous: call inside `tf.tidy` (or through `runChunk`). Whole models only. */
  forward(ids: Int32Array, state: S, options?: ForwardOptions): ForwardResult<S>;
  /** `forward` for the layers this instance holds (its stage of a pipeline); the whole model's is `forward`. */
  forwardStage(input: StageInput, state: S, options?: ForwardOptions): StageResult<S>;
  /**
   * Per-layer size of the carried state for the hidden-state views (Mamba: SSM-state norm; Transformer: KV-cache
   * bytes). TTT models report their state through `weightTrace` instead. The caller owns `perLayer`.
   */
  stateSummary?(state: S): StateSummary;
  dispose(): void;
}

export interface StateSummary {
  readonly quantity: string;
  /** [layers] */
  readonly perLayer: tf.Tensor1D;
}

/**
 * `freezeInnerLoopFrom` as a [T, 1] factor on a chunk's inner learning rates: 1 for the tokens before it, 0 from it
 * on; null when it freezes none of the chunk's tokens. `position` is the absolute index of the chunk's first token.
 */
export function innerLoopMask(T: number, position: number, options: ForwardOptions): tf.Tensor2D | null {
  const from = options.freezeInnerLoopFrom;
  if (from === undefined || from >= position + T) return null;
  const learning = Math.max(0, Math.min(T, from - position));
  return tf.concat([tf.ones([learning, 1]), tf.zeros([T - learning, 1])]) as tf.Tensor2D; // [T, 1]
}

/** Disposes the tensors of `previous` that `next` does not carry over (a step may pass some through unchanged). */
export function releaseState(previous: ModelState, next: ModelState | null): void {
  const keep = new Set<number>();
  if (next) for (const t of tf.tensor_util.getTensorsInContainer(next as unknown as tf.TensorContainer)) keep.add(t.id);
  for (const t of tf.tensor_util.getTensorsInContainer(previous as unknown as tf.TensorContainer)) if (!keep.has(t.id)) t.dispose();
}

/** `forward` of a whole model through its one stage; the error names the misuse of a stage as a whole model. */
export function forwardWhole<S extends ModelState>(model: CausalLM<S>, ids: Int32Array, state: S, options?: ForwardOptions): ForwardResult<S> {
  if (model.layerRange.start !== 0 || model.layerRange.end !== model.numLayers) {
    throw new Error(`forward: this ${model.family} model holds only layers [${model.layerRange.start}, ${model.layerRange.end}); run it with forwardStage`);
  }
  const { output, ...rest } = model.forwardStage(ids, state, options);
  return { ...rest, logits: output };
}

/**
 * Runs one chunk: the model math in one `tf.tidy`, then hands the carried state over exactly once.
 * The caller owns the returned tensors (logits, state, inner-loop stats) and must dispose them.
 */
export function runChunk<S extends ModelState>(model: CausalLM<S>, ids: Int32Array, state: S, options?: ForwardOptions): ForwardResult<S> {
  const out = tf.tidy(() => model.forward(ids, state, options) as unknown as tf.TensorContainer) as unknown as ForwardResult<S>;
  releaseState(state, out.state);
  return out;
}

/**
 * Checks token ids against the vocabulary before they reach `tf.gather`, which would read garbage silently.
 * `position` is the absolute index of `ids[0]` in the document, so the error points at the culprit.
 */
export function assertTokenIds(ids: Int32Array, vocabSize: number, position: number, source = 'input_ids'): void {
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < vocabSize)) throw workbenchError('E_TOKEN_OUT_OF_VOCAB', source, position + i, ids[i], vocabSize);
  }
}
