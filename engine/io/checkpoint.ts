/**
 * Reading a model folder from disk: `config.json` plus safetensors weights, in one file or as Hugging Face
 * shards (`model-0000N-of-0000M.safetensors` listed in `model.safetensors.index.json`). All file access for
 * checkpoints lives here and in safetensors-file.ts.
 *
 * Tensors are read one at a time at their header offsets, never a whole file: `openCheckpoint` gives a weight map
 * whose tensors read themselves from disk when a model copies them into TensorFlow.js (so a 500 MB checkpoint
 * needs its tensors' memory once, not the file's bytes, their float32 copies and the model's tensors at once);
 * `readCheckpoint` reads every tensor into memory for callers that keep plain data (training, tests).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import type { FloatTensor, TensorEntry } from '../core/safetensors.js';
import { openSafetensors, type SafetensorsFile } from './safetensors-file.js';

export interface CheckpointOptions {
  /**
   * Only tensors whose name passes are read (e.g. one pipeline stage's layers); shards holding none of them
   * are not opened. Default: every tensor.
   */
  readonly include?: (name: string) => boolean;
}

export interface Checkpoint {
  readonly dir: string;
  readonly configPath: string;
  readonly config: Record<string, unknown>;
  readonly tensors: Map<string, FloatTensor>;
  /** The weight files read, for error messages and manifests. */
  readonly weightFiles: readonly string[];
  readonly bytesOnDisk: number;
}

/** A tensor as its header describes it, and the file holding it. */
export interface StoredTensor extends TensorEntry {
  readonly file: string;
}

export interface OpenCheckpoint extends Omit<Checkpoint, 'tensors'> {
  /** Headers of the included tensors: names, dtypes, shapes, files. Nothing read yet. */
  readonly stored: ReadonlyMap<string, StoredTensor>;
  /**
   * The included tensors; each one's `data` is read from disk (synchronously) every time it is touched, so a
   * model copying it into a tf.Tensor holds it once. Valid until `close()`.
   */
  readonly tensors: ReadonlyMap<string, FloatTensor>;
  /** One included tensor as float32, read without blocking the event loop. */
  readTensor(name: string): Promise<Float32Array>;
  close(): void;
}

export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw workbenchError('E_FILE_NOT_FOUND', path);
    throw workbenchError('E_FILE_READ', path, code ?? (error as Error).message);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw workbenchError('E_JSON', path, (error as Error).message);
  }
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

/** Where the weights are: one file, or shards with the index's tensor → shard map. */
interface WeightLayout {
  readonly files: readonly string[];
  readonly index?: { readonly path: string; readonly shardOf: ReadonlyMap<string, string> };
}

/** Parses `model.safetensors.index.json`: every shard a plain file name in the folder. */
async function readIndex(dir: string, indexPath: string): Promise<WeightLayout> {
  const json = await readJsonFile(indexPath);
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw workbenchError('E_CONFIG', indexPath, 'has no "weight_map" object');
  const shardOf = new Map<string, string>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    // a shard outside the folder would let a downloaded index read any file on the machine
    if (typeof file !== 'string' || file === '' || basename(file) !== file || file === '..') {
      throw workbenchError('E_CONFIG', indexPath, `tensor ${name} is mapped to ${JSON.stringify(file)}, not a file name in the folder`);
    }
    shardOf.set(name, join(dir, file));
  }
  return { files: [...new Set(shardOf.values())].sort(), index: { path: indexPath, shardOf } };
}

async function weightLayoutOf(dir: string): Promise<WeightLayout> {
  const single = join(dir, 'model.safetensors');
  if ((await sizeOf(single)) !== null) return { files: [single] };
  const indexPath = join(dir, 'model.safetensors.index.json');
  if ((await sizeOf(indexPath)) !== null) return readIndex(dir, indexPath);
  if ((await sizeOf(join(dir, 'pytorch_model.bin'))) !== null) {
    throw workbenchError('E_INPUT', dir, 'has pytorch_model.bin but no model.safetensors (or index): PyTorch pickles are not read; save the model with safe_serialization=True');
  }
  throw workbenchError('E_FILE_NOT_FOUND', `${single} (or model.safetensors.index.json)`);
}

export async function readConfig(dir: string): Promise<{ configPath: string; config: Record<string, unknown> }> {
  const configPath = join(dir, 'config.json');
  const config = await readJsonFile(configPath);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw workbenchError('E_CONFIG', configPath, 'is not a JSON object');
  }
  return { configPath, config: config as Record<string, unknown> };
}

/** Every included tensor's header entry, checked against the index: each listed tensor is in its shard, once. */
function collectStored(files: readonly SafetensorsFile[], layout: WeightLayout, include: (name: string) => boolean): Map<string, StoredTensor> {
  const stored = new Map<string, StoredTensor>();
  for (const file of files) {
    for (const entry of file.header.entries.values()) {
      if (!include(entry.name)) continue;
      const previous = stored.get(entry.name);
      if (previous) throw workbenchError('E_SAFETENSORS', file.path, `tensor ${entry.name} also appears in ${basename(previous.file)}`);
      stored.set(entry.name, { ...entry, file: file.path });
    }
  }
  const index = layout.index;
  if (index) {
    for (const [name, shard] of index.shardOf) {
      if (include(name) && stored.get(name)?.file !== shard) {
        throw workbenchError('E_CONFIG', index.path, `lists tensor ${name} in ${basename(shard)}, which does not hold it`);
      }
    }
  }
  return stored;
}

/** Opens the folder's weight files and reads their headers; tensors are read later, one at a time. */
export async function openCheckpoint(dir: string, options: CheckpointOptions = {}): Promise<OpenCheckpoint> {
  const include = options.include ?? (() => true);
  const { configPath, config } = await readConfig(dir);
  const layout = await weightLayoutOf(dir);
  let bytesOnDisk = 0;
  for (const path of layout.files) {
    const size = await sizeOf(path);
    if (size === null) throw workbenchError('E_FILE_NOT_FOUND', layout.index ? `${path} (a shard named in ${basename(layout.index.path)})` : path);
    bytesOnDisk += size;
  }
  // with an index, a shard none of whose tensors are wanted is never opened
  const wanted = layout.index ? new Set([...layout.index.shardOf].filter(([name]) => include(name)).map(([, f]) => f)) : null;
  const files: SafetensorsFile[] = [];
  try {
    for (const path of layout.files) if (!wanted || wanted.has(path)) files.push(openSafetensors(path));
    const stored = collectStored(files, layout, include);
    const byPath = new Map(files.map((f) => [f.path, f]));
    const fileOf = (t: StoredTensor) => byPath.get(t.file)!;
    const tensors = new Map<string, FloatTensor>();
    for (const t of stored.values()) tensors.set(t.name, { name: t.name, shape: t.shape, get data() { return fileOf(t).readTensorSync(t); } });
    const readTensor = async (name: string) => {
      const t = stored.get(name);
      if (!t) throw new Error(`readTensor: ${name} is not an included tensor of ${dir}`);
      return fileOf(t).readTensor(t);
    };
    const close = () => files.forEach((f) => f.close());
    return { dir, configPath, config, weightFiles: layout.files, bytesOnDisk, stored, tensors, readTensor, close };
  } catch (error) {
    files.forEach((f) => f.close());
    throw error;
  }
}

/** Every (included) tensor read into memory as float32, one tensor at a time. */
export async function readCheckpoint(dir: string, options: CheckpointOptions = {}): Promise<Checkpoint> {
  const open = await openCheckpoint(dir, options);
  try {
    const tensors = new Map<string, FloatTensor>();
    for (const t of open.stored.values()) tensors.set(t.name, { name: t.name, shape: t.shape, data: await open.readTensor(t.name) });
    return { dir, configPath: open.configPath, config: open.config, weightFiles: open.weightFiles, bytesOnDisk: open.bytesOnDisk, tensors };
  } finally {
    open.close();
  }
}

/**
 * Whether the head shares the embedding's weights: then a checkpoint may leave `lm_head.weight` out (Hugging Face
 * does) and a copy in the file is ignored. `tie_word_embeddings` (TTT, Llama) or `tie_embeddings` (Mamba).
 */
export function tiedHeadOf(details: Readonly<Record<string, unknown>>): boolean {
  return details.tie_word_embeddings === true || details.tie_embeddings === true;
}

/** Values in the stored tensors the model uses: all but a tied head's redundant copy. */
export function parameterCountOf(stored: ReadonlyMap<string, StoredTensor>, tiedHead: boolean): number {
  let n = 0;
  for (const t of stored.values()) if (!(tiedHead && t.name === 'lm_head.weight')) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Parameter count and bytes on disk from the safetensors headers alone, without reading any tensor data.
 * `tiedHead` (see `tiedHeadOf`) leaves a stored copy of a tied head out of the count, as the models do.
 */
export async function checkpointSize(dir: string, tiedHead = false): Promise<{ parameters: number; bytesOnDisk: number }> {
  const open = await openCheckpoint(dir);
  open.close();
  return { parameters: parameterCountOf(open.stored, tiedHead), bytesOnDisk: open.bytesOnDisk };
}
