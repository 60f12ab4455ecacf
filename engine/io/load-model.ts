/** Loading a model folder into a ready CausalLM: checkpoint files → registry → model. */
import type { CausalLM } from '../models/model.js';
import { type ModelDescription, type ModelOptions, registryEntry } from '../models/registry.js';
import { readCheckpoint, readConfig } from './checkpoint.js';

export interface LoadedModel {
  readonly model: CausalLM;
  readonly description: ModelDescription;
  readonly dir: string;
  readonly bytesOnDisk: number;
}

/** `options` are load-time choices (e.g. `{ window: 512 }` for sliding-window attention in a Llama model). */
export async function loadModel(dir: string, options: ModelOptions = {}): Promise<LoadedModel> {
  const { configPath, config } = await readConfig(dir);
  const entry = registryEntry(config, configPath);
  const description = entry.describe(config, configPath, options);
  const checkpoint = await readCheckpoint(dir);
  const weightSource = checkpoint.weightFiles.length === 1 ? checkpoint.weightFiles[0] : `${dir} (${checkpoint.weightFiles.length} shards)`;
  const model = entry.create(config, checkpoint.tensors, configPath, weightSource, options);
  return { model, description, dir, bytesOnDisk: checkpoint.bytesOnDisk };
}

export async function describeModel(dir: string, options: ModelOptions = {}): Promise<ModelDescription> {
  const { configPath, config } = await readConfig(dir);
  return registryEntry(config, configPath).describe(config, configPath, options);
}
