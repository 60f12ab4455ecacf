/**
 * Reading a model folder from disk: `config.json` plus safetensors weights, in one file or as Hugging Face
 * shards (`model.safetensors.index.json`). All file access for checkpoints lives here.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import { type FloatTensor, parseHeader, readHeaderLength, readSafetensors } from '../core/safetensors.js';

export interface Checkpoint {
  readonly dir: string;
  readonly configPath: string;
  readonly config: Record<string, unknown>;
  readonly tensors: Map<string, FloatTensor>;
  /** The weight files read, for error messages and manifests. */
  readonly weightFiles: readonly string[];
  readonly bytesOnDisk: number;
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

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The weight files of a folder, in load order. */
export async function weightFilesOf(dir: string): Promise<string[]> {
  const single = join(dir, 'model.safetensors');
  if (await exists(single)) return [single];
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (await exists(indexPath)) {
    const index = (await readJsonFile(indexPath)) as { weight_map?: Record<string, string> };
    if (!index || typeof index.weight_map !== 'object') throw workbenchError('E_CONFIG', indexPath, 'has no "weight_map"');
    return [...new Set(Object.values(index.weight_map))].sort().map((f) => join(dir, f));
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

export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const { configPath, config } = await readConfig(dir);
  const weightFiles = await weightFilesOf(dir);
  const tensors = new Map<string, FloatTensor>();
  let bytesOnDisk = 0;
  for (const file of weightFiles) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw code === 'ENOENT' ? workbenchError('E_FILE_NOT_FOUND', file) : workbenchError('E_FILE_READ', file, code ?? String(error));
    }
    bytesOnDisk += bytes.byteLength;
    for (const [name, t] of readSafetensors(bytes, file).tensors) {
      if (tensors.has(name)) throw workbenchError('E_SAFETENSORS', file, `tensor ${name} also appears in another shard`);
      tensors.set(name, t);
    }
  }
  return { dir, configPath, config, tensors, weightFiles, bytesOnDisk };
}

/** Parameter count and bytes on disk from the safetensors headers alone, without reading any tensor data. */
export async function checkpointSize(dir: string): Promise<{ parameters: number; bytesOnDisk: number }> {
  let parameters = 0;
  let bytesOnDisk = 0;
  for (const file of await weightFilesOf(dir)) {
    const handle = await open(file, 'r');
    try {
      const size = (await handle.stat()).size;
      bytesOnDisk += size;
      const prefix = new Uint8Array(8);
      await handle.read(prefix, 0, 8, 0);
      const length = readHeaderLength(prefix, file, size);
      const headerBytes = new Uint8Array(length);
      await handle.read(headerBytes, 0, length, 8);
      for (const entry of parseHeader(headerBytes, file).entries.values()) parameters += entry.shape.reduce((a, b) => a * b, 1);
    } finally {
      await handle.close();
    }
  }
  return { parameters, bytesOnDisk };
}
