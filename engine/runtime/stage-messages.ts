/**
 * The messages between the engine's main thread and its stage workers (runtime/pipeline.ts, stage-worker.ts), and
 * between neighbouring stages. Small unions tagged by `type`; bulk data travels as typed arrays whose buffers are
 * transferred, never copied: token ids into the first stage, [T, C] hidden states from stage to stage over a
 * direct MessagePort (not through the main thread), per-token results and per-layer series out of the last.
 */
import type { MessagePort } from 'node:worker_threads';
import type { BackendInfo } from '../core/backend.js';
import type { ErrorCode } from '../core/errors.js';
import type { LayerRange } from '../models/stage.js';
import type { SerializedState } from '../models/state-io.js';

/** What a chunk should produce: what the document settings ask for, fixed from `begin` to the next `begin`. */
export interface DocumentSettings {
  /** TTT: inner-loop losses and weight metrics per layer and finished mini-batch. */
  readonly innerLoop: boolean;
  /** TTT: full W after these (absolute) mini-batches. */
  readonly snapshotMiniBatches: readonly number[];
  /** Per-layer state summary (Mamba SSM norm, Transformer KV-cache bytes) after every chunk. */
  readonly stateSummary: boolean;
  /** `nll`: per-token loss of the chunk's targets (analysis); `logits`: the full [T, V] rows (parity checks). */
  readonly emit: 'nll' | 'logits';
}

/** Per-layer results of one stage for one chunk; `layerStart` turns its local layer indices into the model's. */
export interface StageSeries {
  readonly layerStart: number;
  /** TTT with `innerLoop`: per layer, [n, 3] (init, before, after) rows, row-major. */
  readonly innerLoop?: readonly Float32Array[];
  /** TTT with `innerLoop`: per layer, [n, columns] weight-metric rows. */
  readonly weightMetrics?: readonly Float32Array[];
  readonly weightMetricNames?: readonly string[];
  /** TTT: W after the requested mini-batches. */
  readonly snapshots: readonly { readonly layer: number; readonly miniBatch: number; readonly name: string; readonly shape: readonly number[]; readonly data: Float32Array }[];
  /** One value per layer of the stage. */
  readonly stateSummary?: Float32Array;
  /** Milliseconds the stage computed this chunk for (excluding waiting), for balancing and benchmarks. */
  readonly computeMs: number;
}

/** A chunk on its way through the stages: ids into the first, hidden states between the others. */
export interface ChunkMessage {
  readonly type: 'chunk';
  readonly seq: number;
  /** Tokens in the chunk. */
  readonly T: number;
  /** The first stage's input. */
  readonly ids: Int32Array | null;
  /** [T, C] row-major, from the previous stage. */
  readonly hidden: Float32Array | null;
  /** Next-token ids for the first `targets.length` rows (emit `nll`). */
  readonly targets: Int32Array;
  /** The per-layer series of the stages the chunk has been through, gathered on the way to the main thread. */
  readonly series: readonly StageSeries[];
}

/** One stage's carried state (models/state-io.ts), for checkpoints. */
export interface StatePart extends SerializedState {
  readonly layerStart: number;
}

/**
 * A request for every stage's carried state, travelling the pipeline as a chunk does (main → first stage → … →
 * last → main), so each stage answers with its state right after the chunks submitted before it.
 */
export interface SaveStateMessage {
  readonly type: 'saveState';
  readonly seq: number;
  /** The parts of the stages it has been through. */
  readonly parts: readonly StatePart[];
}

/** main → worker */
export type ToStage =
  | { readonly type: 'init'; readonly backend: string; readonly index: number }
  /** The port to the next stage (absent for the last). */
  | { readonly type: 'link'; readonly next: MessagePort | null; readonly previous: MessagePort | null }
  | { readonly type: 'load'; readonly dir: string; readonly window?: number; readonly range: LayerRange }
  /** Start a document: the carried state back to the model's initial state. */
  | { readonly type: 'begin'; readonly settings: DocumentSettings }
  | ChunkMessage
  | SaveStateMessage
  /** Replaces the stage's carried state (after `begin`, before the first chunk): what `saveState` gave for it. */
  | { readonly type: 'loadState'; readonly part: StatePart }
  | { readonly type: 'unload' }
  /** Tests only: end the worker as a crash would (`exit`: process.exit inside it; `throw`: an uncaught exception). */
  | { readonly type: 'fault'; readonly kind: 'exit' | 'throw' };

/** The last stage's answer for a chunk. */
export interface ChunkResult {
  readonly type: 'result';
  readonly seq: number;
  /** emit `nll`: [targets.length] nats. */
  readonly nll: Float32Array | null;
  /** emit `logits`: [T, V] row-major. */
  readonly logits: Float32Array | null;
  /** Every stage's series, first stage first. */
  readonly series: readonly StageSeries[];
}

/** worker → main */
export type FromStage =
  | { readonly type: 'ready'; readonly backend: BackendInfo }
  | {
    readonly type: 'loaded'; readonly parameterCount: number; readonly family: string; readonly vocabSize: number;
    /** The model reports a per-layer state summary (Mamba, Transformer). */
    readonly stateSummary: boolean;
  }
  | { readonly type: 'done' }
  | ChunkResult
  /** The last stage's answer to `saveState`: every stage's part, first stage first. */
  | { readonly type: 'state'; readonly seq: number; readonly parts: readonly StatePart[] }
  /** A failure the worker survived (bad model folder, token out of vocabulary): the run fails with this line. */
  | { readonly type: 'error'; readonly code: ErrorCode | null; readonly message: string };
