/**
 * Loading a model folder into a ready CausalLM: config → registry → memory check → weights streamed from disk
 * into the model, one tensor at a time.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendOrder, type BackendName, isBackendName } from '../core/backend.js';
import type { CausalLM } from '../models/model.js';
import { type ModelDescription, type ModelOptions, registryEntry } from '../models/registry.js';
import { layerOfTensor, type LayerRange } from '../models/stage.js';
import { workbenchError } from '../core/errors.js';
import { supportedDtypes } from '../core/safetensors.js';
import { type CheckpointOptions, openCheckpoint, type OpenCheckpoint, parameterCountOf, readConfig, tiedHeadOf } from './checkpoint.js';
import { assertFitsBackend, backendFits, type BackendFit, estimateMemory, type MemoryEstimate, type MemoryInput } from './memory.js';

export interface LoadedModel {
  readonly model: CausalLM;
  readonly description: ModelDescription;
  readonly dir: string;
  readonly bytesOnDisk: number;
}

/**
 * `ModelOptions` are load-time model choices (`window` for sliding-window attention, `layers` for one pipeline
 * stage); the rest steer reading and the memory check.
 */
export interface LoadOptions extends ModelOptions, CheckpointOptions {
  /** The backend the model must fit (see io/memory.ts); default: TensorFlow.js's active backend. */
  readonly backend?: BackendName;
  /** Tokens per chunk the caller will run, for the activation estimate (default 512). */
  readonly chunkTokens?: number;
  /** false: skip the memory check. */
  readonly checkMemory?: boolean;
}

/** Tensors one pipeline stage may use: its own layers' and every non-layer tensor (embedding, norm, head). */
const stageTensors = (range: LayerRange) => (name: string) => {
  const layer = layerOfTensor(name);
  return layer === null || (layer >= range.start && layer < range.end);
};

/** Backends registered with TensorFlow.js so far, and `cpu`, a dependency that always starts: what advice may name. */
const startableBackends = (): BackendName[] => backendOrder.filter((name) => name === 'cpu' || tf.findBackendFactory(name) !== null);

function activeBackend(): BackendName | undefined {
  try {
    const name = tf.getBackend();
    return isBackendName(name) ? name : undefined;
  } catch {
    return undefined; // no backend registered: nothing to check against
  }
}

function memoryInput(open: OpenCheckpoint, description: ModelDescription, options: LoadOptions): MemoryInput {
  const tiedHead = tiedHeadOf(description.details);
  const range = options.layers;
  return {
    description,
    parameters: parameterCountOf(open.stored, tiedHead),
    tiedHead,
    chunkTokens: options.chunkTokens,
    window: options.window,
    layers: range ? range.end - range.start : undefined,
    head: range ? range.end === description.layers : undefined,
  };
}

/**
 * Loads `dir`. Refuses, in one line, a model that cannot fit the backend, before reading any weight. Tensors are
 * read from disk as the model copies them into TensorFlow.js, so peak memory is the model plus one tensor.
 * With `layers` (a pipeline stage) only that stage's tensors are read, unless `include` says otherwise.
 */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const { configPath, config } = await readConfig(dir);
  const entry = registryEntry(config, configPath);
  const description = entry.describe(config, configPath, options);
  const include = options.include ?? (options.layers ? stageTensors(options.layers) : undefined);
  const checkpoint = await openCheckpoint(dir, { include });
  try {
    const backend = options.backend ?? activeBackend();
    if (backend && options.checkMemory !== false) assertFitsBackend(dir, memoryInput(checkpoint, description, options), backend, { available: startableBackends() });
    const weightSource = checkpoint.weightFiles.length === 1 ? checkpoint.weightFiles[0] : `${dir} (${checkpoint.weightFiles.length} shards)`;
    const model = entry.create(config, checkpoint.tensors, configPath, weightSource, options);
    return { model, description, dir, bytesOnDisk: checkpoint.bytesOnDisk };
  } finally {
    checkpoint.close();
  }
}

/** Thrown by a header-only tensor's `data`: the model's checks passed and it began copying weights. */
const headersChecked = Symbol('headers checked');

/**
 * Whether `loadModel` would accept `dir`, from the config and the safetensors headers alone (what `info` shows
 * must also load): the registry's config checks, every tensor's dtype, and the model's own check of tensor names
 * and shapes (vocab_size against the embedding rows, a transposed or missing tensor). The model is constructed over
 * header-only tensors and stopped when it first reads one, so the checks are the loader's, not a copy of them.
 */
export async function checkModel(dir: string, options: ModelOptions = {}): Promise<void> {
  const { configPath, config } = await readConfig(dir);
  const entry = registryEntry(config, configPath);
  entry.describe(config, configPath, options);
  const checkpoint = await openCheckpoint(dir);
  try {
    for (const t of checkpoint.stored.values()) {
      if (!(supportedDtypes as readonly string[]).includes(t.dtype)) throw workbenchError('E_SAFETENSORS_DTYPE', t.file, t.name, t.dtype);
    }
    const headers = new Map([...checkpoint.stored.values()].map((t) => [t.name, { name: t.name, shape: t.shape, get data(): Float32Array { throw headersChecked; } }]));
    const weightSource = checkpoint.weightFiles.length === 1 ? checkpoint.weightFiles[0] : `${dir} (${checkpoint.weightFiles.length} shards)`;
    try {
      entry.create(config, headers, configPath, weightSource, options).dispose();
    } catch (error) {
      if (error !== headersChecked) throw error;
    }
  } finally {
    checkpoint.close();
  }
}

export async function describeModel(dir: string, options: ModelOptions = {}): Promise<ModelDescription> {
  const { configPath, config } = await readConfig(dir);
  return registryEntry(config, configPath).describe(config, configPath, options);
}

export interface ModelInspection {
  readonly description: ModelDescription;
  readonly parameters: number;
  readonly bytesOnDisk: number;
  readonly weightFiles: readonly string[];
  /** Stored dtypes and how many tensors of each, e.g. { BF16: 160, F32: 2 }. */
  readonly dtypes: Readonly<Record<string, number>>;
  readonly memory: MemoryEstimate;
  readonly backends: readonly BackendFit[];
}

/** What `info` prints: the description, sizes from the headers and the memory estimate per backend; reads no weight. */
export async function inspectModel(dir: string, options: LoadOptions = {}): Promise<ModelInspection> {
  const description = await describeModel(dir, options);
  const checkpoint = await openCheckpoint(dir, { include: options.include });
  checkpoint.close();
  const input = memoryInput(checkpoint, description, options);
  const memory = estimateMemory(input);
  const dtypes: Record<string, number> = {};
  for (const t of checkpoint.stored.values()) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
  return {
    description, parameters: input.parameters, bytesOnDisk: checkpoint.bytesOnDisk, weightFiles: checkpoint.weightFiles, dtypes,
    memory, backends: backendFits(memory),
  };
}
