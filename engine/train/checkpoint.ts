/**
 * A training run's folder, which is also a model folder any command loads:
 *   config.json              the model's config (as the starting model's)
 *   model.safetensors        the weights under the reference names, F32
 *   optimizer.safetensors    AdamW moments, `exp_avg.<name>` / `exp_avg_sq.<name>`
 *   trainer_state.json       step, settings, data identity, sampler seed, timings
 *   train_log.arrow          one row per step (written by train.ts)
 *   tokenizer files          copied from the starting model, when it has them
 *
 * Each file is written to a temporary name and renamed, so a crash leaves the previous version whole. The state
 * file goes last and both safetensors files carry the step in their metadata, so a crash between the renames is
 * detected on resume rather than silently mixing two steps.
 */
import { copyFile, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import { type FloatTensor, readSafetensors, writeSafetensors } from '../core/safetensors.js';
import { readConfig, readJsonFile } from '../io/checkpoint.js';
import type { TrainSettings } from './train.js';

export const runFiles = {
  config: 'config.json',
  model: 'model.safetensors',
  optimizer: 'optimizer.safetensors',
  state: 'trainer_state.json',
  log: 'train_log.arrow',
} as const;

/** Files a model folder may carry for its tokenizer (Hugging Face names), copied into the run folder. */
const tokenizerFiles = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model'];

export interface DataIdentity {
  readonly path: string;
  readonly sha256: string;
  readonly tokens: number;
}

export interface TrainerState {
  readonly format: 'ttt-workbench-train/1';
  /** Optimizer updates done; the weights in the folder are those after update `step`. */
  readonly step: number;
  readonly tokensSeen: number;
  /** Training time over all sessions of the run (validation and saving included). */
  readonly elapsedSeconds: number;
  readonly backend: string;
  readonly parameters: number;
  readonly settings: TrainSettings;
  readonly data: readonly DataIdentity[];
  readonly lastLoss: number | null;
  readonly lastValLoss: number | null;
}

export interface Checkpoint {
  readonly config: Record<string, unknown>;
  readonly weights: Map<string, FloatTensor>;
  readonly optimizer: Map<string, FloatTensor>;
  readonly state: TrainerState;
}

const isFile = (path: string) => stat(path).then((s) => s.isFile(), () => false);

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  try {
    await writeFile(`${path}.tmp`, data);
    await rename(`${path}.tmp`, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw workbenchError('E_FILE_WRITE', path, code === 'ENOSPC' ? 'the disk is full' : code ?? (error as Error).message);
  }
}

export async function hasCheckpoint(dir: string): Promise<boolean> {
  return isFile(join(dir, runFiles.state));
}

/** Writes the whole checkpoint; `sourceDir` is the starting model, whose tokenizer files are copied once. */
export async function saveCheckpoint(
  dir: string,
  c: { config: Record<string, unknown>; weights: FloatTensor[]; optimizer: FloatTensor[]; state: TrainerState },
  sourceDir?: string,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const metadata = { format: 'pt', step: String(c.state.step) };
  await writeAtomic(join(dir, runFiles.config), `${JSON.stringify(c.config, null, 2)}\n`);
  await writeAtomic(join(dir, runFiles.model), writeSafetensors(c.weights, 'F32', metadata));
  await writeAtomic(join(dir, runFiles.optimizer), writeSafetensors(c.optimizer, 'F32', metadata));
  if (sourceDir !== undefined) {
    for (const name of tokenizerFiles) {
      if ((await isFile(join(sourceDir, name))) && !(await isFile(join(dir, name)))) await copyFile(join(sourceDir, name), join(dir, name));
    }
  }
  await writeAtomic(join(dir, runFiles.state), `${JSON.stringify(c.state, null, 2)}\n`);
}

async function readTensors(path: string): Promise<{ tensors: Map<string, FloatTensor>; step: string | undefined }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw code === 'ENOENT' ? workbenchError('E_FILE_NOT_FOUND', path) : workbenchError('E_FILE_READ', path, code ?? String(error));
  }
  const { header, tensors } = readSafetensors(bytes, path);
  return { tensors, step: header.metadata.step };
}

/** Reads a run folder back; a folder whose files disagree on the step is refused with the reason. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const statePath = join(dir, runFiles.state);
  if (!(await isFile(statePath))) throw workbenchError('E_INPUT', dir, `no training run to resume (${runFiles.state} is missing)`);
  const state = (await readJsonFile(statePath)) as TrainerState;
  if (state?.format !== 'ttt-workbench-train/1' || !Number.isInteger(state.step)) {
    throw workbenchError('E_CONFIG', statePath, 'is not a ttt-workbench training state');
  }
  const { config } = await readConfig(dir);
  const model = await readTensors(join(dir, runFiles.model));
  const optimizer = await readTensors(join(dir, runFiles.optimizer));
  for (const [file, step] of [[runFiles.model, model.step], [runFiles.optimizer, optimizer.step]] as const) {
    if (step !== String(state.step)) {
      throw workbenchError('E_INPUT', join(dir, file), `holds step ${step ?? '(none)'} but ${runFiles.state} says ${state.step} (interrupted while saving); start the run over`);
    }
  }
  return { config, weights: model.tensors, optimizer: optimizer.tensors, state };
}
