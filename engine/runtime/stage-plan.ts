/**
 * How many stages a model runs as, and which layers each holds. On CPU backends the stages fill the cores (TF.js
 * `wasm` computes on one thread under Node, so a second core is only reached through a second worker); a GPU
 * backend runs the whole model as one stage, since splitting it would only add transfers.
 */
import { availableParallelism } from 'node:os';
import { readConfig } from '../io/checkpoint.js';
import { type ModelOptions, registryEntry } from '../models/registry.js';
import { balanceStages, type LayerRange } from '../models/stage.js';

const cpuBackends: ReadonlySet<string> = new Set(['wasm', 'cpu']);

/** Stages per model when none are asked for: one per core on CPU backends, one on GPU backends. */
export function defaultStageCount(backend: string, cores = availableParallelism()): number {
  return cpuBackends.has(backend) ? Math.max(1, cores) : 1;
}

/** The layer ranges of a model folder split into at most `stages` stages of about equal cost. */
export async function planStages(dir: string, stages: number, options: ModelOptions = {}): Promise<LayerRange[]> {
  const { configPath, config } = await readConfig(dir);
  return balanceStages(registryEntry(config, configPath).stageCosts(config, configPath, options), stages);
}
