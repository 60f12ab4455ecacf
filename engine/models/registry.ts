/**
 * Which model class serves a checkpoint is data (after transformers.js `models/registry.js`): one table from the
 * config's model type to its config parser and constructor. A new family is one file and one line here.
 */
import { workbenchError } from '../core/errors.js';
import type { FloatTensor } from '../core/safetensors.js';
import type { CausalLM, ModelFamily } from './model.js';
import { parseTTTConfig, TTTModel } from './ttt.js';

export interface ModelDescription {
  readonly family: ModelFamily;
  readonly architecture: string;
  readonly layers: number;
  readonly heads: number | null;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly tokenizer: string;
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

interface RegistryEntry {
  readonly family: ModelFamily;
  /** Reads the config (throws on bad keys) and says what the model is, without touching weights. */
  describe(config: Record<string, unknown>, source: string): ModelDescription;
  create(config: Record<string, unknown>, tensors: ReadonlyMap<string, FloatTensor>, configSource: string, weightSource: string): CausalLM;
}

/**
 * Tokenizer a model expects when its config names none: byte-level for a 256-entry vocabulary (possibly padded),
 * Llama-2's for 32000 (the paper's models); otherwise none is implied and callers must pass token ids.
 */
export function defaultTokenizer(config: Record<string, unknown>, vocabSize: number): string {
  if (typeof config.tokenizer === 'string') return config.tokenizer;
  if (vocabSize >= 256 && vocabSize < 512) return 'bytes';
  if (vocabSize === 32000) return 'llama2';
  return 'none';
}

const ttt: RegistryEntry = {
  family: 'ttt',
  describe(json, source) {
    const c = parseTTTConfig(json, source);
    return {
      family: 'ttt',
      architecture: `TTT-${c.tttLayerType === 'linear' ? 'Linear' : 'MLP'} (${c.preConv || c.shareQk || c.useGate ? 'Mamba' : 'Transformer'} backbone)`,
      layers: c.numHiddenLayers,
      heads: c.numAttentionHeads,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      tokenizer: defaultTokenizer(json, c.vocabSize),
      details: {
        ttt_layer_type: c.tttLayerType, mini_batch_size: c.miniBatchSize, ttt_base_lr: c.tttBaseLr, pre_conv: c.preConv,
        share_qk: c.shareQk, use_gate: c.useGate, intermediate_size: c.intermediateSize,
      },
    };
  },
  create: (json, tensors, configSource, weightSource) => new TTTModel(parseTTTConfig(json, configSource), tensors, weightSource),
};

const registry: ReadonlyMap<string, RegistryEntry> = new Map([
  ['ttt', ttt],
]);

export const knownModelTypes = (): string[] => [...registry.keys()];

/** The model type of a config: HF `model_type`, the fixtures' `architecture`, or an `architectures` class name. */
export function modelTypeOf(config: Record<string, unknown>): string | undefined {
  if (typeof config.model_type === 'string') return config.model_type;
  if (typeof config.architecture === 'string') return config.architecture;
  if (Array.isArray(config.architectures) && typeof config.architectures[0] === 'string') {
    const cls = config.architectures[0] as string;
    if (cls.startsWith('TTT')) return 'ttt';
    if (cls.startsWith('Llama')) return 'llama';
    if (cls.startsWith('Mamba')) return 'mamba';
  }
  return undefined;
}

export function registryEntry(config: Record<string, unknown>, source: string): RegistryEntry {
  const type = modelTypeOf(config);
  const entry = type === undefined ? undefined : registry.get(type);
  if (!entry) throw workbenchError('E_UNSUPPORTED_MODEL', source, type ?? '(none: no "model_type" or "architecture")', knownModelTypes());
  return entry;
}
