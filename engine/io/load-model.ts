/** Loading a model folder into a ready CausalLM: checkpoint files → registry → model. */
import type { CausalLM } from '../models/model.js';
import { type ModelDescription, registryEntry } from '../models/registry.js';
import { readCheckpoint, readConfig } from './checkpoint.js';

export interface LoadedModel {
  readonly model: CausalLM;
  readonly description: ModelDescription;
  readonly dir: string;
  readonly bytesOnDisk: number;
}

export async function loadModel(dir: string): Promise<LoadedModel> {
  const { configPath, config } = await readConfig(dir);
  const entry = registryEntry(config, configPath);
  const description = entry.describe(config, configPath);
  const checkpoint = await readCheckpoint(dir);
  const weightSource = checkpoint.weightFiles.length === 1 ? checkpoint.weightFiles[0] : `${dir} (${checkpoint.weightFiles.length} shards)`;
  const model = entry.create(config, checkpoint.tensors, configPath, weightSource);
  return { model, description, dir, bytesOnDisk: checkpoint.bytesOnDisk };
}

export async function describeModel(dir: string): Promise<ModelDescription> {
  const { configPath, config } = await readConfig(dir);
  return registryEntry(config, configPath).describe(config, configPath);
}
