/**
 * How much memory a model needs on each backend, estimated from its config and safetensors headers before any
 * weight is read, and the one-line refusal of a model that cannot fit the chosen backend.
 *
 * What is counted, in bytes (every tensor is float32 once loaded, whatever the file's dtype):
 * - weights: every parameter, plus the transposed [C, V] head a tied head keeps beside the embedding;
 * - packed weights, wasm only: XNNPACK packs each matrix the first time it multiplies by it and keeps the packed
 *   copy, about the weights again (the 125m preset's wasm heap grew by ~0.5 GB on its first 16-token chunk);
 * - activations of one chunk: a chunk runs in one `tf.tidy`, so every layer's intermediates live until it ends:
 *   about 40·C + 6·I floats per token and layer, plus 3·V per token for the logits (fitted to the 125m preset's
 *   wasm heap, which 512 tokens grow by ~1.25 GB); Mamba adds its scan's [T, Di, N] tensors (4·Di·N per token
 *   and layer), Llama its attention scores (H·(T + cached) per token and layer), and the delta-rule family its
 *   chunked form's [H, 64, 64] piece matrices and per-head q, k, v copies (10·H·64 + 8·(Dk + Dv));
 * - carried state, twice (a step's input and output exist together): TTT's W and b per head plus the conv tails,
 *   Mamba's SSM and conv state, DeltaNet's S per head (kept twice while tracing) and conv tails, Llama's KV cache (the window, or max_position_embeddings under full attention,
 *   where the cache grows with the document);
 * - runtime: a flat 256 MiB for Node, TensorFlow.js and the tokenized book, outside the wasm heap.
 * It is an estimate: allocator slack and the wasm heap's high-water mark (it never shrinks) are not modelled.
 *
 * Limits: one wasm heap is at most 65535 pages of 64 KiB (tfjs-backend-wasm 4.22's `getHeapMax()`: 4294901760
 * bytes), per TF.js instance, so per pipeline worker; `cpu` and `tensorflow` share the machine's memory
 * (`os.totalmem()`); WebGPU does not report its memory size, so a fit there is unknown.
 */
import { totalmem } from 'node:os';
import { backendOrder, type BackendName } from '../core/backend.js';
import { workbenchError } from '../core/errors.js';
import type { ModelFamily } from '../models/model.js';
import type { ModelDescription } from '../models/registry.js';

export const wasmHeapMax = 4294901760;
const runtimeBytes = 256 * 2 ** 20;
const float = 4;
export const defaultChunkTokens = 512;

export interface MemoryInput {
  readonly description: ModelDescription;
  /** Parameters this instance holds (the whole model, or one pipeline stage's share). */
  readonly parameters: number;
  /** The head is tied to the embedding (see checkpoint.ts `tiedHeadOf`). */
  readonly tiedHead: boolean;
  /** Tokens per chunk (default 512, the analysis default). */
  readonly chunkTokens?: number;
  /** Llama sliding-window attention, in tokens. */
  readonly window?: number;
  /** Layers this instance runs (a pipeline stage's); default all. */
  readonly layers?: number;
  /** This instance computes the logits (the whole model, or the last stage); default true. */
  readonly head?: boolean;
}

export interface MemoryEstimate {
  readonly chunkTokens: number;
  readonly weights: number;
  /** wasm only. */
  readonly packedWeights: number;
  readonly activations: number;
  readonly state: number;
  /** Outside the wasm heap. */
  readonly runtime: number;
}

const num = (value: unknown, fallback: number) => (typeof value === 'number' ? value : fallback);

/** Tokens a Llama model keeps in its KV cache. */
const cachedTokens = (d: ModelDescription, window: number | undefined) => window ?? num(d.details.max_position_embeddings, 2048);

interface FamilyMemory {
  /** Extra floats per token and layer inside a chunk's tidy, beyond the shared 40·C + 6·I. */
  activationFloats(d: ModelDescription, chunkTokens: number, window: number | undefined): number;
  /** Floats of carried state per layer. */
  stateFloats(d: ModelDescription, window: number | undefined): number;
}

const families: Readonly<Record<ModelFamily, FamilyMemory>> = {
  ttt: {
    activationFloats: () => 0,
    stateFloats(d) {
      const C = d.hiddenSize, H = d.heads ?? 1, f = C / H;
      const inner = d.details.ttt_layer_type === 'mlp' ? H * (2 * 4 * f * f + 4 * f + f) : H * (f * f + f); // W1, b1 (, W2, b2)
      const tails = (num(d.details.conv_kernel, 4) - 1) * C * (Number(d.details.pre_conv === true) + Number(d.details.share_qk === true));
      return inner + tails;
    },
  },
  mamba: {
    activationFloats: (d) => 4 * num(d.details.d_inner, 2 * d.hiddenSize) * num(d.details.d_state, 16),
    stateFloats: (d) => num(d.details.d_inner, 2 * d.hiddenSize) * (num(d.details.d_state, 16) + num(d.details.d_conv, 4) - 1),
  },
  delta: {
    // the chunked form's [H, 64, 64] piece matrices (~10 live at once), and q, k, v, gate and output copies per head
    activationFloats: (d) => {
      const H = d.heads ?? 1, Dk = H * num(d.details.head_k_dim, d.hiddenSize / H), Dv = H * num(d.details.head_v_dim, d.hiddenSize / H);
      return 10 * H * 64 + 8 * (Dk + Dv);
    },
    // S per head (twice while the inner loop is traced: the last block's S too) and the q, k, v conv tails
    stateFloats(d) {
      const H = d.heads ?? 1, dk = num(d.details.head_k_dim, d.hiddenSize / H), dv = num(d.details.head_v_dim, d.hiddenSize / H);
      const tails = d.details.use_short_conv === false ? 0 : (num(d.details.conv_size, 4) - 1) * H * (2 * dk + dv);
      return 2 * H * dk * dv + tails;
    },
  },
  llama: {
    activationFloats: (d, T, window) => (d.heads ?? 1) * (T + cachedTokens(d, window)),
    stateFloats: (d, window) => 2 * num(d.details.num_key_value_heads, d.heads ?? 1) * num(d.details.head_dim, d.hiddenSize / (d.heads ?? 1)) * cachedTokens(d, window),
  },
};

export function estimateMemory(input: MemoryInput): MemoryEstimate {
  const d = input.description;
  const T = input.chunkTokens ?? defaultChunkTokens;
  const layers = input.layers ?? d.layers;
  const head = input.head ?? true;
  const family = families[d.family];
  const C = d.hiddenSize, V = d.vocabSize;
  const I = num(d.details.intermediate_size, num(d.details.d_inner, 4 * C));
  const weights = float * (input.parameters + (input.tiedHead && head ? V * C : 0));
  const perToken = layers * (40 * C + 6 * I + family.activationFloats(d, T, input.window)) + (head ? 3 * V : 0);
  return {
    chunkTokens: T,
    weights,
    packedWeights: weights,
    activations: float * T * perToken,
    state: float * 2 * layers * family.stateFloats(d, input.window),
    runtime: runtimeBytes,
  };
}

/** Bytes a backend must hold: wasm's limit is its heap, which holds tensors and packed weights only. */
export function bytesNeeded(e: MemoryEstimate, backend: BackendName): number {
  const tensors = e.weights + e.activations + e.state;
  return backend === 'wasm' ? tensors + e.packedWeights : tensors + e.runtime;
}

export interface BackendLimit {
  /** Bytes, or null where the backend does not say. */
  readonly limit: number | null;
  readonly what: string;
}

export function backendLimits(machineBytes: number = totalmem()): Readonly<Record<BackendName, BackendLimit>> {
  const machine = { limit: machineBytes, what: "the machine's memory" };
  return {
    tensorflow: machine,
    webgpu: { limit: null, what: 'WebGPU does not report its memory size' },
    wasm: { limit: wasmHeapMax, what: 'one WebAssembly heap' },
    cpu: machine,
  };
}

export interface BackendFit extends BackendLimit {
  readonly backend: BackendName;
  readonly needs: number;
  /** null: unknown. */
  readonly fits: boolean | null;
}

export function backendFits(e: MemoryEstimate, limits = backendLimits()): BackendFit[] {
  return backendOrder.map((backend) => {
    const needs = bytesNeeded(e, backend);
    const { limit, what } = limits[backend];
    return { backend, needs, limit, what, fits: limit === null ? null : needs <= limit };
  });
}

export const formatBytes = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

export interface FitOptions {
  readonly limits?: Readonly<Record<BackendName, BackendLimit>>;
  /** Backends that can start here, to name in the advice; default: any. */
  readonly available?: readonly BackendName[];
}

/**
 * Throws one line if the model cannot fit `backend`, naming an available backend that would fit it and, where one
 * does, a smaller chunk that would fit this backend. A backend that reports no limit (webgpu) is never refused.
 */
export function assertFitsBackend(source: string, input: MemoryInput, backend: BackendName, options: FitOptions = {}): void {
  const limits = options.limits ?? backendLimits();
  const fits = backendFits(estimateMemory(input), limits);
  const chosen = fits.find((f) => f.backend === backend)!;
  if (chosen.fits !== false) return;
  const usable = (name: BackendName) => name !== backend && (options.available ?? backendOrder).includes(name);
  const other = fits.find((f) => usable(f.backend) && f.fits === true);
  const advice = [other ? `backend "${other.backend}" would fit it (${formatBytes(other.limit!)}: ${other.what})` : 'no other backend here has room for it'];
  for (let T = Math.floor((input.chunkTokens ?? defaultChunkTokens) / 2); T >= 16; T = Math.floor(T / 2)) {
    if (bytesNeeded(estimateMemory({ ...input, chunkTokens: T }), backend) <= chosen.limit!) {
      advice.push(`chunks of ${T} tokens would fit "${backend}"`);
      break;
    }
  }
  throw workbenchError('E_MEMORY', source, backend, formatBytes(chosen.needs), `at most ${formatBytes(chosen.limit!)} (${chosen.what})`, advice.join('; or '));
}
