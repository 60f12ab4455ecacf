/**
 * The one contract between the UI and the engine (JSON-RPC 2.0 over stdio, WebSocket or Electron IPC).
 * Every type here comes from a zod schema (`z.infer`), so what the server validates and what clients compile
 * against cannot drift. Methods are `noun.verb`-like names, notifications `noun.event`-like names; both tables are
 * data, and the server and clients are generic over them.
 *
 * This file must stay importable by the renderer: zod only, no engine internals, no Node APIs.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------------
// Shared shapes

export const BackendName = z.enum(['tensorflow', 'webgpu', 'wasm', 'cpu']);
export type BackendName = z.infer<typeof BackendName>;

/** The GPU adapter behind the `webgpu` backend; `software` marks a CPU implementation (lavapipe, SwiftShader). */
export const AdapterInfo = z.object({
  vendor: z.string(),
  architecture: z.string(),
  description: z.string(),
  software: z.boolean(),
});
export type AdapterInfo = z.infer<typeof AdapterInfo>;

export const BackendInfo = z.object({
  name: BackendName,
  threads: z.number().int(),
  tfjsVersion: z.string(),
  detail: z.string(),
  adapter: AdapterInfo.optional(),
});
export type BackendInfo = z.infer<typeof BackendInfo>;

/** Whether a backend can start on the engine's machine (`listBackends`), without the engine starting it. */
export const BackendAvailability = z.object({
  name: BackendName,
  available: z.boolean(),
  /** Why it cannot start, in one line; null when it can. */
  reason: z.string().nullable(),
  /** The adapter `webgpu` would use. A software one is never chosen automatically, only when picked by name. */
  adapter: AdapterInfo.optional(),
  /** Pipeline stages a model runs as on it when none are asked for: one per core on CPU backends, one on a GPU. */
  defaultStages: z.number().int().positive(),
});
export type BackendAvailability = z.infer<typeof BackendAvailability>;

/** Layers [start, end) of one pipeline stage: one worker thread holding those layers. */
export const LayerRange = z.object({ start: z.number().int(), end: z.number().int() });
export type LayerRange = z.infer<typeof LayerRange>;

/** Most pipeline stages a run may ask for: each is a worker thread with its own TensorFlow.js. */
export const maxStages = 64;

export const ModelFamily = z.enum(['ttt', 'llama', 'mamba', 'delta']);
export type ModelFamily = z.infer<typeof ModelFamily>;

export const ModelInfo = z.object({
  dir: z.string(),
  name: z.string(),
  family: ModelFamily,
  architecture: z.string(),
  layers: z.number().int(),
  heads: z.number().int().nullable(),
  hiddenSize: z.number().int(),
  vocabSize: z.number().int(),
  tokenizer: z.string(),
  parameters: z.number().int().optional(),
  bytesOnDisk: z.number().int().optional(),
  /** Listed because the engine was started with it (a shipped demo model), not because the user added it. */
  builtin: z.boolean().optional(),
  details: z.record(z.union([z.string(), z.number(), z.boolean()])),
});
export type ModelInfo = z.infer<typeof ModelInfo>;

export const BookInfo = z.object({
  path: z.string(),
  name: z.string(),
  bytes: z.number().int(),
  sha256: z.string(),
  encoding: z.string(),
  /** Tokens under the given tokenizer (byte-level unless asked otherwise). */
  tokens: z.number().int(),
  tokenizer: z.string(),
  preview: z.string(),
  /** Listed because the engine was started with it (the shipped sample book). */
  builtin: z.boolean().optional(),
});
export type BookInfo = z.infer<typeof BookInfo>;

export const RunStatus = z.enum(['queued', 'running', 'finished', 'cancelled', 'failed', 'interrupted']);
export type RunStatus = z.infer<typeof RunStatus>;

/** Which model a run's part is: its key in the run, its folder, and what it is. */
export const RunModelIdentity = z.object({
  key: z.string(),
  dir: z.string(),
  name: z.string(),
  family: ModelFamily,
  architecture: z.string(),
  tokenizer: z.string(),
});

/** One model's part of a run: its files (relative to the run folder) and summary figures. */
export const RunModel = RunModelIdentity.extend({
  parameters: z.number().int(),
  status: RunStatus,
  tokensDone: z.number().int(),
  tokensTotal: z.number().int(),
  /** Sum of NLL (nats) over predicted tokens, and the UTF-8 bytes those tokens cover. */
  nllSum: z.number(),
  predictedTokens: z.number().int(),
  predictedBytes: z.number().int(),
  bitsPerByte: z.number().nullable(),
  wallSeconds: z.number(),
  tokensPerSecond: z.number().nullable(),
  /** Series name → Arrow IPC file, e.g. `nll` → `models/0-ttt-linear/tokens.arrow`. */
  files: z.record(z.string()),
  miniBatchSize: z.number().int().nullable(),
  layers: z.number().int(),
  window: z.number().int().nullable(),
  /** How the model attended, in words, for Transformers: "window 1,024, its trained context" or "full attention (asked for)". */
  attention: z.string().nullable().optional(),
  /** The layer ranges [start, end) of the pipeline stages that ran the model, one worker thread each. */
  stages: z.array(LayerRange).optional(),
  error: z.string().nullable(),
  /**
   * The last checkpoint of the model's carried state (analyze.ts): the tokens consumed before it and its file.
   * Recorded only once the model's result files hold every row up to `position`; `resume` continues from it.
   */
  checkpoint: z.object({ position: z.number().int().nonnegative(), file: z.string() }).nullable().optional(),
  /** sha256 of the model folder's files (config, weights, tokenizer) at the start, so resume refuses a changed model. */
  hashes: z.record(z.string()).optional(),
});
export type RunModel = z.infer<typeof RunModel>;

export const RunManifest = z.object({
  format: z.literal('ttt-workbench-run/1'),
  id: z.string(),
  status: RunStatus,
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  book: z.object({ path: z.string(), name: z.string(), sha256: z.string(), bytes: z.number().int(), tokens: z.number().int() }),
  settings: z.object({
    maxTokens: z.number().int().nullable(),
    chunkTokens: z.number().int(),
    /** What was asked for: a window in tokens, `full`, or null (each Transformer's trained context). */
    window: z.union([z.number().int(), z.literal('full')]).nullable(),
    innerLoop: z.boolean(),
  }),
  backend: BackendInfo,
  versions: z.record(z.string()),
  models: z.array(RunModel),
  error: z.string().nullable(),
});
export type RunManifest = z.infer<typeof RunManifest>;

export const RunSummary = z.object({
  id: z.string(),
  dir: z.string(),
  status: RunStatus,
  createdAt: z.string(),
  book: z.string(),
  tokens: z.number().int(),
  /** Where the run's models ran (absent in runs listed before this was recorded). */
  backend: BackendInfo.optional(),
  models: z.array(z.object({
    name: z.string(), family: ModelFamily, status: RunStatus, tokensDone: z.number().int(), bitsPerByte: z.number().nullable(),
    stages: z.array(LayerRange).optional(),
  })),
});
export type RunSummary = z.infer<typeof RunSummary>;

/** Series a run can hold; not every model has every series (inner-loop and weights are TTT only). */
export const SeriesName = z.enum(['nll', 'innerLoop', 'hiddenState', 'modelState', 'throughput']);
export type SeriesName = z.infer<typeof SeriesName>;

export const Series = z.object({
  /** x values (token positions) and one y array per column, after downsampling. */
  x: z.array(z.number()),
  columns: z.record(z.array(z.number())),
  /** Rows in the stored series within [start, end) and whether min/max downsampling was applied. */
  rows: z.number().int(),
  downsampled: z.boolean(),
});
export type Series = z.infer<typeof Series>;

/** The TTT hidden state over a book, from a layer's full-W snapshots (see engine/analysis/snapshots.ts). */
export const Snapshots = z.object({
  miniBatchSize: z.number().int(),
  layers: z.number().int(),
  /** Which inner-model matrices were kept: W1 (TTT-Linear), W1 and W2 (TTT-MLP). */
  matrices: z.array(z.string()),
  /** Token position of every snapshot of this layer (the last token of its mini-batch). */
  positions: z.array(z.number().int()),
  /** The snapshots' first two principal components: one point per snapshot, in `positions` order. */
  pca: z.object({ x: z.array(z.number()), y: z.array(z.number()), explained: z.tuple([z.number(), z.number()]) }),
  /** Singular values (largest first) of the layer's W at the snapshots nearest the asked positions. */
  spectra: z.array(z.object({ position: z.number().int(), values: z.array(z.number()) })),
});
export type Snapshots = z.infer<typeof Snapshots>;

export const TokenWindow = z.object({
  start: z.number().int(),
  /** Tokens in the model's part of the run (positions 0 … total − 1). */
  total: z.number().int(),
  /** Each token as it reads in running text (through the run's tokenizer). */
  tokens: z.array(z.string()),
  /** NLL in nats of each token given everything before it; null for position 0, which nothing predicts. */
  nll: z.array(z.number().nullable()),
  /** NLL minus the compared model's NLL over the same text (negative: this model did better), or null. */
  diff: z.array(z.number().nullable()).nullable(),
  /** True when the two models' tokenizers differ and the difference was taken over the same bytes. */
  byteAligned: z.boolean(),
});
export type TokenWindow = z.infer<typeof TokenWindow>;

/** The Comparison table's byte-offset ranges, the TTT paper's picture of context use: early, short, medium, long. */
export const comparisonRanges = [
  { label: '0–1k', start: 0, end: 1024 },
  { label: '1k–8k', start: 1024, end: 8192 },
  { label: '8k–64k', start: 8192, end: 65_536 },
  { label: '64k+', start: 65_536, end: null },
] as const;

export const Comparison = z.object({
  book: z.object({ name: z.string(), sha256: z.string(), bytes: z.number().int() }),
  /** Byte-offset ranges of the table, e.g. 0–1k = bytes [0, 1024); `end` null for the open last range. */
  ranges: z.array(z.object({ label: z.string(), start: z.number().int(), end: z.number().int().nullable() })),
  rows: z.array(z.object({
    runId: z.string(), model: z.string(), name: z.string(), architecture: z.string(), tokenizer: z.string(), status: RunStatus,
    /** UTF-8 bytes the predicted tokens cover. */
    bytes: z.number().int(),
    bitsPerByte: z.number().nullable(),
    /** Bits per byte within each of `ranges` (null where the run has no tokens there). */
    ranges: z.array(z.number().nullable()),
  })),
  /** Bits per byte in log-spaced byte-offset bins, one curve per row. */
  curves: z.array(z.object({ runId: z.string(), model: z.string(), name: z.string(), x: z.array(z.number()), y: z.array(z.number()) })),
});
export type Comparison = z.infer<typeof Comparison>;

/**
 * Chart aggregates of a run, kept by the engine as tokens are processed (engine/analysis/aggregates.ts) and pushed
 * to the views while it runs: the same numbers whether a run is live or read back from disk. Bins are fixed when a
 * model starts (by its token count), so an update only ever touches the bins it names.
 */
export const LogBins = z.object({
  /** The bins given, by index (an update gives only the bins that changed). */
  index: z.array(z.number().int()),
  /** Each bin's x: the geometric centre of the first and last position it holds so far. */
  x: z.array(z.number()),
  /** Per column, the values summed into each bin and how many there were (NaN values are not counted). */
  sum: z.record(z.array(z.number())),
  count: z.record(z.array(z.number())),
});
export type LogBins = z.infer<typeof LogBins>;

export const MinMaxBins = z.object({
  index: z.array(z.number().int()),
  /** First and last position in each bin. */
  x0: z.array(z.number()),
  x1: z.array(z.number()),
  /** Per column, the bin's two extremes in the order they occurred (min then max, or max then min); null: not a number. */
  first: z.record(z.array(z.number().nullable())),
  second: z.record(z.array(z.number().nullable())),
});
export type MinMaxBins = z.infer<typeof MinMaxBins>;

/** Bins of the per-token curves: a few wide ones (no early bin rests on a handful of tokens), or many narrow ones. */
export const TokenBinning = z.enum(['smoothed', 'raw']);
export type TokenBinning = z.infer<typeof TokenBinning>;

/** A model's bits per byte by byte offset into the book (the Comparison tab): curve bins and position-range sums. */
export const ByteAggregates = z.object({
  /** NLL (nats, column `nll`) and bytes (column `bytes`) in log-spaced bins of byte offset over the whole book. */
  curve: LogBins,
  totalNll: z.number(),
  totalBytes: z.number(),
  /** Per range of `Comparison.ranges`: summed NLL and bytes. */
  rangeNll: z.array(z.number()),
  rangeBytes: z.array(z.number()),
});
export type ByteAggregates = z.infer<typeof ByteAggregates>;

export const ModelAggregates = z.object({
  model: z.string(),
  /** Per-token NLL (nats, column `nll`) and UTF-8 bytes (column `bytes`) in log-spaced position bins. */
  tokens: z.object({ smoothed: LogBins, raw: LogBins }),
  /** Per layer: inner-loop losses (init, before, after, reduction, ratio) in log-spaced bins. */
  innerLoop: z.array(LogBins),
  /** Per layer: weight metrics (W1_norm, W1_dist_init, …) as min/max in equal position bins. */
  hiddenState: z.array(MinMaxBins),
  /** Per layer: the state summary (column `value`: Mamba SSM norm, KV-cache bytes) as min/max. */
  modelState: z.array(MinMaxBins),
  /** Bits per byte by byte offset; absent for a model whose book size was not known. */
  byteOffsets: ByteAggregates.optional(),
});
export type ModelAggregates = z.infer<typeof ModelAggregates>;

export const RunAggregates = z.object({
  runId: z.string(),
  /** true: every bin of every model (an answer to `watchRun`); false: only what changed since the last update. */
  complete: z.boolean(),
  models: z.array(ModelAggregates),
});
export type RunAggregates = z.infer<typeof RunAggregates>;

/** One model's live progress in a run: where it is, how fast it goes and when it will be done. */
export const ModelProgress = z.object({
  model: z.string(),
  status: RunStatus,
  tokensDone: z.number().int(),
  tokensTotal: z.number().int(),
  tokensPerSecond: z.number().nullable(),
  etaSeconds: z.number().nullable(),
  /** Bits per byte over the tokens done so far. */
  bitsPerByte: z.number().nullable(),
});
export type ModelProgress = z.infer<typeof ModelProgress>;

/** A corpus evaluation's record (engine/corpus/eval.ts `CorpusManifest`): the corpus, models, settings and totals. */
export const CorpusManifest = z.object({
  format: z.literal('ttt-workbench-corpus/1'),
  id: z.string(),
  /** `interrupted`: the engine stopped while it ran (the same evaluation again resumes it). */
  status: RunStatus,
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  corpus: z.object({
    path: z.string(), format: z.string(), documents: z.number().int(), bytes: z.number(),
    skipped: z.array(z.object({ name: z.string(), reason: z.string() })),
  }),
  settings: z.object({
    chunkTokens: z.number().int(), maxTokens: z.number().int().nullable(), window: z.union([z.number().int(), z.literal('full')]).nullable(),
    executor: z.string(), store: z.string().nullable(),
  }),
  backend: BackendInfo,
  versions: z.record(z.string()),
  bins: z.object({ ladder: z.string(), note: z.string() }),
  models: z.array(z.object({
    key: z.string(), dir: z.string(), name: z.string(), family: z.string(), architecture: z.string(), hash: z.string(),
    window: z.number().int().nullable(), documentsDone: z.number().int(), documentsFailed: z.number().int(),
    tokens: z.number(), bytes: z.number(), nllSum: z.number(), bitsPerByte: z.number().nullable(), files: z.record(z.string()),
  })),
  failures: z.array(z.object({ model: z.string(), document: z.number().int(), name: z.string(), error: z.string() })),
});
export type CorpusManifest = z.infer<typeof CorpusManifest>;

export const CorpusRunSummary = z.object({
  id: z.string(),
  status: RunStatus,
  createdAt: z.string(),
  /** The corpus's file or folder name, its format and usable documents. */
  corpus: z.string(),
  format: z.string(),
  documents: z.number().int(),
  models: z.array(z.object({ name: z.string(), documentsDone: z.number().int(), bitsPerByte: z.number().nullable() })),
});
export type CorpusRunSummary = z.infer<typeof CorpusRunSummary>;

/** A model's NLL by position over the corpus: one entry per quarter-octave bin of positions [start, end). */
export const CorpusCurve = z.object({
  /** Where each bin is drawn: the geometric centre of its first and last position. */
  position: z.array(z.number()),
  start: z.array(z.number().int()),
  end: z.array(z.number().int()),
  tokens: z.array(z.number()),
  /** Documents reaching the bin. */
  documents: z.array(z.number().int()),
  /** Mean NLL (nats), its standard error and 95% interval; null where the bin has no tokens. */
  meanNll: z.array(z.number().nullable()),
  standardError: z.array(z.number().nullable()),
  ciLow: z.array(z.number().nullable()),
  ciHigh: z.array(z.number().nullable()),
});
export type CorpusCurve = z.infer<typeof CorpusCurve>;

export const CorpusDocumentRow = z.object({
  document: z.number().int(),
  name: z.string(),
  tokens: z.number(),
  bytes: z.number(),
  nllSum: z.number(),
  bitsPerByte: z.number().nullable(),
  seconds: z.number(),
  /** Who computed it: `local` or a cluster worker's `host:pid`. */
  worker: z.string(),
});
export type CorpusDocumentRow = z.infer<typeof CorpusDocumentRow>;

export const CorpusRun = z.object({
  manifest: CorpusManifest,
  /** Per model of the manifest, in its order: the curve so far and its finished documents in document order. */
  models: z.array(z.object({ key: z.string(), curve: CorpusCurve, documents: z.array(CorpusDocumentRow) })),
});
export type CorpusRun = z.infer<typeof CorpusRun>;

/** A worker of a corpus evaluation now: the document it reads (null: between documents) and what it has done. */
export const CorpusWorkerProgress = z.object({
  worker: z.string(),
  model: z.string().nullable(),
  document: z.number().int().nullable(),
  name: z.string().nullable(),
  tokensDone: z.number().int(),
  tokensTotal: z.number().int(),
  documentsDone: z.number().int(),
});
export type CorpusWorkerProgress = z.infer<typeof CorpusWorkerProgress>;

// ---------------------------------------------------------------------------------------------------------
// Probes (engine/probes, docs/probes.md): retrieval, copy distance and interventions, each a run folder with a
// `manifest.json` of format `ttt-workbench-probe/1` and one Arrow file per model.

export const ProbeKind = z.enum(['needle', 'copy', 'intervene']);
export type ProbeKind = z.infer<typeof ProbeKind>;

/** Settings every probe takes: the book, the models, and where the run folder goes. */
const ProbeCommon = {
  book: z.string().min(1),
  models: z.array(z.string().min(1)).min(1),
  /** Transformer attention: a sliding window of N tokens, or `full`; absent: each model's trained context. */
  window: z.union([z.number().int().positive(), z.literal('full')]).optional(),
  /** Tokens per model call (default 512); chunks are also split where a probe forks or intervenes. */
  chunkTokens: z.number().int().positive().optional(),
  seed: z.number().int().nonnegative().optional(),
};

/** Needle / passkey: contexts of `lengths` tokens, the needle at each of `depths` (0 = start, 1 = just before the question). */
export const NeedleParams = z.object({
  kind: z.literal('needle'),
  ...ProbeCommon,
  /** Context lengths in tokens (needle and question included); default: powers of two from 1,024 to `maxLength`. */
  lengths: z.array(z.number().int().positive()).min(1).optional(),
  maxLength: z.number().int().positive().optional(),
  /** Needle depths in [0, 1]; default 6: 0, 0.2, …, 1. */
  depths: z.array(z.number().min(0).max(1)).min(1).optional(),
  /** Random keys per cell (default 3); the same keys in every cell. */
  keys: z.number().int().positive().optional(),
  /** `digits`: a 5-digit number (default); `words`: three random words of the book. */
  keyKind: z.enum(['digits', 'words']).optional(),
}).strict();
export type NeedleParams = z.infer<typeof NeedleParams>;

/** Copy distance: a span of `spanTokens` book tokens read again `distances` tokens after it first appeared. */
export const CopyParams = z.object({
  kind: z.literal('copy'),
  ...ProbeCommon,
  spanTokens: z.number().int().positive().optional(),
  /** Distances D between the end of the first occurrence and the start of the second; default log-spaced up to `maxDistance`. */
  distances: z.array(z.number().int().nonnegative()).min(1).optional(),
  /** Default: the book's length less the spans. */
  maxDistance: z.number().int().positive().optional(),
  /** Spans (first occurrences at random places) per distance (default 4). */
  spans: z.number().int().positive().optional(),
  /** Only the book's first N tokens (default: all); the spans start where the longest distance still fits. */
  maxTokens: z.number().int().positive().optional(),
}).strict();
export type CopyParams = z.infer<typeof CopyParams>;

export const InterventionKind = z.enum(['frozen', 'reset', 'transplant']);
export type InterventionKind = z.infer<typeof InterventionKind>;

/** Interventions at position `at` along the first `maxTokens` tokens of the book, each against the unmodified run. */
export const InterveneParams = z.object({
  kind: z.literal('intervene'),
  ...ProbeCommon,
  maxTokens: z.number().int().positive().optional(),
  /** The position t (0: from the start; `frozen` at 0 is a TTT model that never learns at test time). */
  at: z.number().int().nonnegative(),
  /** Default: `frozen` and `reset`, and `transplant` when `donor` is given. */
  interventions: z.array(InterventionKind).min(1).optional(),
  /** Transplant: the text whose final state the model takes at t. */
  donor: z.string().min(1).optional(),
  /** Transplant: tokens of the donor read (default: all of it). */
  donorTokens: z.number().int().positive().optional(),
}).strict();
export type InterveneParams = z.infer<typeof InterveneParams>;

export const ProbeParams = z.discriminatedUnion('kind', [NeedleParams, CopyParams, InterveneParams]);
export type ProbeParams = z.infer<typeof ProbeParams>;

/** Headline figures of one model's probe, for lists and captions (the Arrow file holds every number). */
export const ProbeFigures = z.object({
  /** needle: share of cells × keys where greedy decoding reproduced the key; per length (key = L as a string). */
  accuracy: z.number().nullable().optional(),
  accuracyByLength: z.record(z.number()).optional(),
  /** needle: mean bits of the key's tokens. */
  keyBits: z.number().nullable().optional(),
  /** copy: mean NLL (nats/token) of the first occurrences, and of the second per distance (key = D). */
  nllFirst: z.number().nullable().optional(),
  nllSecondByDistance: z.record(z.number()).optional(),
  /** intervene: mean ΔNLL (nats/token) over the tokens after t, per intervention. */
  meanDeltaNll: z.record(z.number()).optional(),
});
export type ProbeFigures = z.infer<typeof ProbeFigures>;

export const ProbeModel = RunModelIdentity.extend({
  status: RunStatus,
  /** Model tokens run so far and in all (forks and interventions included). */
  tokensDone: z.number().int(),
  tokensTotal: z.number().int(),
  wallSeconds: z.number(),
  /** Transformers: how the model attended, in words. */
  attention: z.string().nullable(),
  /** Interventions this model could not take, with why (e.g. `frozen`: "mamba has no inner loop"). */
  skipped: z.record(z.string()).optional(),
  /** Table name → Arrow IPC file relative to the run folder, e.g. `needle` → `models/0-ttt-linear/needle.arrow`. */
  files: z.record(z.string()),
  figures: ProbeFigures,
  error: z.string().nullable(),
});
export type ProbeModel = z.infer<typeof ProbeModel>;

export const ProbeManifest = z.object({
  format: z.literal('ttt-workbench-probe/1'),
  id: z.string(),
  kind: ProbeKind,
  status: RunStatus,
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  book: z.object({ path: z.string(), name: z.string(), sha256: z.string(), bytes: z.number().int() }),
  /** The params as run, defaults filled in (`book`/`models` as given). */
  settings: ProbeParams,
  /** needle: the needle and question texts with `{key}` where the key goes, and the keys used. */
  needle: z.object({ needle: z.string(), question: z.string(), keys: z.array(z.string()) }).optional(),
  backend: BackendInfo,
  versions: z.record(z.string()),
  models: z.array(ProbeModel),
  error: z.string().nullable(),
});
export type ProbeManifest = z.infer<typeof ProbeManifest>;

/** A probe's progress (at most a few a second): the model running and its tokens so far. */
export const ProbeProgress = z.object({
  runId: z.string(),
  kind: ProbeKind,
  model: z.string(),
  status: RunStatus,
  tokensDone: z.number().int(),
  tokensTotal: z.number().int(),
  /** What it is doing, in words ("L 4,096, depth 0.4, key 2/3"). */
  stage: z.string(),
});
export type ProbeProgress = z.infer<typeof ProbeProgress>;

// ---------------------------------------------------------------------------------------------------------
// Methods

/** A probe run in the Probes page's list: what ran, how far it got, and its settings in a few words. */
export const ProbeSummary = z.object({
  id: z.string(),
  kind: ProbeKind,
  status: RunStatus,
  createdAt: z.string(),
  book: z.string(),
  models: z.array(z.object({ name: z.string(), status: RunStatus })),
  /** The settings in words: "contexts 1,024–16,384 · 6 depths · 3 keys", "t = 4,096: frozen, reset". */
  detail: z.string(),
  error: z.string().nullable(),
});
export type ProbeSummary = z.infer<typeof ProbeSummary>;

/** Needle retrieval per model, as the heatmaps draw it: cells [length][depth], each the mean over its keys (null: none). */
export const NeedleView = z.object({
  kind: z.literal('needle'),
  lengths: z.array(z.number().int()),
  /** Needle depths in [0, 1] (0: the start of the context, 1: just before the question). */
  depths: z.array(z.number()),
  models: z.array(z.object({
    model: z.string(), name: z.string(),
    /** Mean over the keys of the bits of the key's tokens given everything before them. */
    bits: z.array(z.array(z.number().nullable())),
    /** Share (0..1) of the keys greedy decoding reproduced whole. */
    retrieved: z.array(z.array(z.number().nullable())),
    keys: z.number().int(),
  })),
});
export type NeedleView = z.infer<typeof NeedleView>;

/** Copy distance per model: mean NLL (nats per token) of a span read again D tokens after its first occurrence. */
export const CopyView = z.object({
  kind: z.literal('copy'),
  spanTokens: z.number().int(),
  models: z.array(z.object({
    model: z.string(), name: z.string(),
    distances: z.array(z.number().int()),
    /** The second occurrence's NLL, and the same spans' NLL at their first occurrence, per distance. */
    second: z.array(z.number().nullable()),
    first: z.array(z.number().nullable()),
  })),
});
export type CopyView = z.infer<typeof CopyView>;

/** Per-token ΔNLL (intervened − unmodified, nats) along the book, per intervention and model, downsampled to a few thousand points. */
export const InterventionView = z.object({
  kind: z.literal('intervene'),
  /** The position t the interventions took effect at. */
  at: z.number().int(),
  interventions: z.array(z.object({
    intervention: InterventionKind,
    models: z.array(z.object({ model: z.string(), name: z.string(), x: z.array(z.number()), delta: z.array(z.number().nullable()), rows: z.number().int() })),
    /** Models that could not take it, with why ("mamba has no inner loop"). */
    skipped: z.array(z.object({ name: z.string(), reason: z.string() })),
  })),
});
export type InterventionView = z.infer<typeof InterventionView>;

export const ProbeView = z.discriminatedUnion('kind', [NeedleView, CopyView, InterventionView]);
export type ProbeView = z.infer<typeof ProbeView>;

export const methods = {
  info: {
    params: z.object({}).strict(),
    result: z.object({ engine: z.string(), backend: BackendInfo, modelsDir: z.string(), runsDir: z.string(), booksDir: z.string() }),
  },
  /** Every backend in the engine's order of preference, and the one runs use when none is picked (the engine's own). */
  listBackends: {
    params: z.object({}).strict(),
    result: z.object({ default: BackendName, backends: z.array(BackendAvailability) }),
  },
  listModels: {
    params: z.object({}).strict(),
    result: z.object({ models: z.array(ModelInfo) }),
  },
  addModel: {
    params: z.object({ dir: z.string().min(1) }).strict(),
    result: z.object({ model: ModelInfo }),
  },
  openBook: {
    params: z.object({ path: z.string().min(1), tokenizer: z.string().optional() }).strict(),
    result: z.object({ book: BookInfo }),
  },
  listBooks: {
    params: z.object({}).strict(),
    result: z.object({ books: z.array(BookInfo) }),
  },
  startAnalysis: {
    params: z.object({
      book: z.string().min(1),
      models: z.array(z.string().min(1)).min(1),
      maxTokens: z.number().int().positive().optional(),
      /** Transformer attention: a sliding window of N tokens, or `full`; absent: each model's trained context. */
      window: z.union([z.number().int().positive(), z.literal('full')]).optional(),
      innerLoop: z.boolean().optional(),
      /** The backend the run's workers start (default: the engine's own); one that cannot start fails the request. */
      backend: BackendName.optional(),
      /** Pipeline stages per model (default: `defaultStages` of the backend); the numbers do not depend on it. */
      stages: z.number().int().positive().max(maxStages).optional(),
    }).strict(),
    result: z.object({ runId: z.string() }),
  },
  /**
   * Continues an interrupted, cancelled or failed run in its own folder under the same id: finished models stay as
   * they are, the others go on from their last checkpoint (README "Runs"). Progress and data arrive as for
   * `startAnalysis`. Refused in one line when the run is finished or running, or its book or models changed.
   */
  resumeRun: {
    params: z.object({ runId: z.string().min(1) }).strict(),
    result: z.object({ runId: z.string() }),
  },
  /** Trains a model (outer loop) in a run folder; progress arrives as `trainProgress`, the end as `runFinished`. */
  train: {
    params: z.object({
      model: z.string().min(1).optional(),
      data: z.array(z.string().min(1)).optional(),
      out: z.string().min(1),
      resume: z.boolean().optional(),
      context: z.number().int().positive().optional(),
      batch: z.number().int().positive().optional(),
      steps: z.number().int().positive().optional(),
      lr: z.number().positive().optional(),
      seed: z.number().int().nonnegative().optional(),
    }).strict(),
    result: z.object({ runId: z.string() }),
  },
  cancel: {
    params: z.object({ runId: z.string() }).strict(),
    result: z.object({ cancelled: z.boolean() }),
  },
  listRuns: {
    params: z.object({}).strict(),
    result: z.object({ runs: z.array(RunSummary) }),
  },
  getRun: {
    params: z.object({ runId: z.string() }).strict(),
    result: z.object({ manifest: RunManifest }),
  },
  getSeries: {
    params: z.object({
      runId: z.string(),
      model: z.string(),
      series: SeriesName,
      /** Restrict to layer N for per-layer series. */
      layer: z.number().int().nonnegative().optional(),
      start: z.number().int().nonnegative().optional(),
      end: z.number().int().positive().optional(),
      /** At most this many points per column. */
      points: z.number().int().min(2).max(100_000).optional(),
      /** `minmax` keeps each bin's min and max (default); `logmean` averages in log-spaced position bins. */
      reduce: z.enum(['minmax', 'logmean']).optional(),
    }).strict(),
    result: Series,
  },
  /**
   * A run's chart aggregates now (live or finished); while it runs, `runData` notifications then carry what changes.
   */
  watchRun: {
    params: z.object({ runId: z.string() }).strict(),
    result: RunAggregates,
  },
  /** What a run would need: per model, the memory its attention and state take and a rough time, before it starts. */
  estimateAnalysis: {
    params: z.object({
      book: z.string().min(1),
      models: z.array(z.string().min(1)).min(1),
      maxTokens: z.number().int().positive().optional(),
      window: z.union([z.number().int().positive(), z.literal('full')]).optional(),
    }).strict(),
    result: z.object({
      models: z.array(z.object({
        dir: z.string(), name: z.string(), tokens: z.number().int(),
        /** What the model's attention will be, in words ("window 1,024, its trained context"); null for recurrent models. */
        attention: z.string().nullable(),
        memoryBytes: z.number(),
        /** Multiply-adds of attention over the book, beyond the rest of the model (0 for recurrent models). */
        attentionFlops: z.number(),
      })),
    }),
  },
  getSnapshots: {
    params: z.object({
      runId: z.string(),
      model: z.string(),
      layer: z.number().int().nonnegative(),
      matrix: z.enum(['W1', 'W2']).optional(),
      /** Positions to give singular-value spectra for (default: the first, middle and last snapshots). */
      spectra: z.array(z.number().int().nonnegative()).max(32).optional(),
    }).strict(),
    result: Snapshots,
  },
  getTokens: {
    params: z.object({
      runId: z.string(),
      model: z.string(),
      start: z.number().int().nonnegative(),
      count: z.number().int().min(1).max(4096),
      /** Another model on the same book (in this run unless `runId` says otherwise) to take the NLL difference to. */
      compare: z.object({ runId: z.string().optional(), model: z.string() }).strict().optional(),
    }).strict(),
    result: TokenWindow,
  },
  getComparison: {
    params: z.object({
      runIds: z.array(z.string()).min(1).max(16),
      /** Byte-offset range of the curves (the table always covers the whole runs). */
      start: z.number().int().nonnegative().optional(),
      end: z.number().int().positive().optional(),
      points: z.number().int().min(2).max(2000).optional(),
    }).strict(),
    result: Comparison,
  },
  /**
   * Web mode's file upload: a browser cannot give the engine a path, so a book (or a model folder's files) is
   * sent in pieces of base64 at increasing `offset`s and kept in the app's library folder (`<dataDir>/books`,
   * `<dataDir>/models/<folder>`); the last piece answers `done` with the file's path, which `openBook` or
   * `addModel` then takes. A file over the engine's upload limit fails at the first piece.
   */
  uploadFile: {
    params: z.object({
      kind: z.enum(['book', 'model']),
      /** The file's own name, no folders. */
      name: z.string().min(1).max(255),
      /** For a model's files: the model folder's name. */
      folder: z.string().min(1).max(255).optional(),
      /** The whole file's size in bytes. */
      size: z.number().int().nonnegative(),
      offset: z.number().int().nonnegative(),
      /** Base64 of bytes [offset, offset + n): at most `uploadPieceBytes` of them. */
      data: z.string(),
    }).strict(),
    result: z.object({ path: z.string(), received: z.number().int(), done: z.boolean() }),
  },
  /**
   * Evaluates a corpus (a folder of .txt files, .jsonl, .parquet or .arrow) with each model, as `ttt-workbench eval`
   * does, in `<dataDir>/corpus/<runId>`: queued behind other runs, cancelled with `cancel`, progress as
   * `corpusProgress`, the end as `runFinished` (or `runFailed`).
   */
  startCorpusEval: {
    params: z.object({
      corpus: z.string().min(1),
      models: z.array(z.string().min(1)).min(1),
      /** The text field or column of JSONL, Parquet and Arrow corpora (default `text`). */
      textField: z.string().min(1).optional(),
      /** Only the first N usable documents. */
      documents: z.number().int().positive().optional(),
      /** Only the first L tokens of each document (default: whole documents). */
      maxTokens: z.number().int().min(2).optional(),
      window: z.union([z.number().int().positive(), z.literal('full')]).optional(),
      /** Documents at once, one worker thread each (default: one per core). */
      jobs: z.number().int().positive().max(maxStages).optional(),
      backend: BackendName.optional(),
    }).strict(),
    result: z.object({ runId: z.string() }),
  },
  /**
   * Continues a corpus run that was cancelled, failed or interrupted (the engine stopped), in its folder: the
   * documents it finished are read back, never computed again.
   */
  resumeCorpusEval: {
    params: z.object({
      runId: z.string(),
      jobs: z.number().int().positive().max(maxStages).optional(),
      backend: BackendName.optional(),
    }).strict(),
    result: z.object({ runId: z.string() }),
  },
  listCorpusRuns: {
    params: z.object({}).strict(),
    result: z.object({ runs: z.array(CorpusRunSummary) }),
  },
  /** A corpus run now (live or finished): its manifest, each model's binned curve with 95% intervals and its documents. */
  getCorpusRun: {
    params: z.object({ runId: z.string() }).strict(),
    result: CorpusRun,
  },
  /** Starts a probe (needle, copy or intervene) as a queued job; progress arrives as `probe.progress`; `cancel` stops it. */
  'probe.start': {
    params: ProbeParams,
    result: z.object({ runId: z.string() }),
  },
  /** Probe runs, newest first. */
  'probe.list': {
    params: z.object({}).strict(),
    result: z.object({ probes: z.array(ProbeSummary) }),
  },
  /** One probe run's results as its charts draw them, and its settings as label/value pairs. */
  'probe.get': {
    params: z.object({ runId: z.string(), points: z.number().int().min(2).max(20_000).optional() }).strict(),
    result: z.object({ summary: ProbeSummary, settings: z.array(z.tuple([z.string(), z.string()])), view: ProbeView.nullable() }),
  },
} as const;

/** The largest piece of an `uploadFile` (bytes before base64): frames stay a few MiB on every transport. */
export const uploadPieceBytes = 4 * 1024 * 1024;

export type MethodName = keyof typeof methods;
export type MethodParams<M extends MethodName> = z.infer<(typeof methods)[M]['params']>;
export type MethodResult<M extends MethodName> = z.infer<(typeof methods)[M]['result']>;

// ---------------------------------------------------------------------------------------------------------
// Notifications

export const notifications = {
  trainProgress: z.object({
    runId: z.string(),
    step: z.number().int(),
    steps: z.number().int(),
    loss: z.number().nullable(),
    valLoss: z.number().nullable(),
    tokensPerSecond: z.number(),
    etaSeconds: z.number().nullable(),
  }),
  /** A run's models side by side: each one's progress, and the whole run's fraction done and time left. */
  runProgress: z.object({
    runId: z.string(),
    /** 0..1: the part of the book every model has covered on average. */
    fraction: z.number(),
    etaSeconds: z.number().nullable(),
    elapsedSeconds: z.number(),
    models: z.array(ModelProgress),
  }),
  /** What changed in a running run's chart aggregates (a few times a second at most). */
  runData: RunAggregates,
  runFinished: z.object({ runId: z.string(), status: RunStatus }),
  runFailed: z.object({ runId: z.string(), message: z.string() }),
  /**
   * A corpus evaluation's progress (a few times a second at most): tasks (document × model) done of all, each
   * worker's current document, and the documents finished or failed since the last one.
   */
  corpusProgress: z.object({
    runId: z.string(),
    status: RunStatus,
    done: z.number().int(),
    failed: z.number().int(),
    total: z.number().int(),
    tokensDone: z.number(),
    tokensPerSecond: z.number().nullable(),
    elapsedSeconds: z.number(),
    workers: z.array(CorpusWorkerProgress),
    finished: z.array(CorpusDocumentRow.extend({ model: z.string() })),
    failures: z.array(z.object({ model: z.string(), document: z.number().int(), name: z.string(), error: z.string() })),
  }),
  /**
   * The engine process as its supervisor sees it (web mode's server sends this; the desktop app's main sends the
   * same over IPC): `crashed` means it died and a restart is scheduled, `failed` that it kept dying and was left.
   */
  engineState: z.object({
    status: z.enum(['starting', 'ready', 'crashed', 'failed']),
    message: z.string().nullable(),
    restarts: z.number().int().nonnegative(),
  }),
  /** A probe run's model at work (a few a second at most). */
  'probe.progress': ProbeProgress,
  /** A probe run ended: finished, cancelled, or failed with the one-line `error`. */
  'probe.finished': z.object({ runId: z.string(), kind: ProbeKind, status: RunStatus, error: z.string().nullable() }),
} as const;

export type NotificationName = keyof typeof notifications;
export type NotificationParams<N extends NotificationName> = z.infer<(typeof notifications)[N]>;

// ---------------------------------------------------------------------------------------------------------
// JSON-RPC 2.0 frames and error codes

export const errorCodes = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** The engine refused the request for a reason the user can fix (bad book, bad checkpoint, unknown run). */
  requestFailed: -32000,
  cancelled: -32001,
} as const;

export const RpcRequest = z.object({
  jsonrpc: z.literal('2.0'),
  id: z.union([z.string(), z.number()]).optional(),
  method: z.string(),
  params: z.unknown().optional(),
});
export type RpcRequest = z.infer<typeof RpcRequest>;

export interface RpcError {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

export type RpcResponse =
  | { readonly jsonrpc: '2.0'; readonly id: string | number | null; readonly result: unknown }
  | { readonly jsonrpc: '2.0'; readonly id: string | number | null; readonly error: RpcError };

export interface RpcNotification {
  readonly jsonrpc: '2.0';
  readonly method: NotificationName;
  readonly params: unknown;
}

// ---------------------------------------------------------------------------------------------------------
// A typed client over any transport (Electron IPC, WebSocket, an in-memory pair in tests)

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void; method: string };

/** An error the engine returned for a request: its message is the one line to show the user. */
export class EngineError extends Error {
  override readonly name = 'EngineError';
  constructor(readonly code: number, message: string, readonly data?: unknown) {
    super(message);
  }
}

export type NotificationHandler = <N extends NotificationName>(method: N, params: NotificationParams<N>) => void;

export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<NotificationHandler>();

  /** `send` delivers one JSON text frame to the engine; feed every frame from the engine to `receive`. */
  constructor(private readonly send: (frame: string) => void) {}

  call<M extends MethodName>(method: M, params: MethodParams<M>): Promise<MethodResult<M>> {
    const id = this.nextId++;
    return new Promise<MethodResult<M>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, method });
      try {
        this.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      } catch (error) {
        this.pending.delete(id);
        reject(error as Error);
      }
    });
  }

  /** Subscribes to engine notifications; returns the unsubscribe function. */
  onNotification(handler: NotificationHandler): () => void {
    this.listeners.add(handler);
    return () => this.listeners.delete(handler);
  }

  receive(frame: string): void {
    let message: { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: RpcError };
    try {
      message = JSON.parse(frame) as typeof message;
    } catch {
      return; // not ours to answer: the engine never sends malformed frames
    }
    if (typeof message.method === 'string' && message.method in notifications) {
      const parsed = notifications[message.method as NotificationName].safeParse(message.params);
      if (parsed.success) for (const l of this.listeners) l(message.method as NotificationName, parsed.data as never);
      return;
    }
    if (typeof message.id !== 'number') return;
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (message.error) pending.reject(new EngineError(message.error.code, message.error.message, message.error.data));
    else pending.resolve(message.result);
  }

  /** Fails every outstanding call, e.g. when the engine process died or the socket closed. */
  failAll(reason: string): void {
    for (const p of this.pending.values()) p.reject(new EngineError(errorCodes.internalError, reason));
    this.pending.clear();
  }
}
