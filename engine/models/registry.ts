/**
 * Which model class serves a checkpoint is data (after transformers.js `models/registry.js`): one table from the
 * config's model type to its config parser and constructor. A new family is one file and one line here.
 */
import { workbenchError } from '../core/errors.js';
import type { WeightMap } from '../core/weights.js';
import { DeltaNetModel, deltaStageCosts, innerLoopBlock, parseDeltaConfig } from './delta-net.js';
import { MambaModel, mambaStageCosts, parseMambaConfig } from './mamba.js';
import type { CausalLM, ModelFamily } from './model.js';
import type { LayerRange, StageCosts } from './stage.js';
import { checkWindow, LlamaModel, llamaStageCosts, parseLlamaConfig } from './transformer.js';
import { parseTTTConfig, TTTModel, tttStageCosts } from './ttt.js';

export interface ModelDescription {
  readonly family: ModelFamily;
  readonly architecture: string;
  readonly layers: number;
  readonly heads: number | null;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly tokenizer: string;
  /**
   * Tokens of context the model was trained on, where attending past it leaves what it learned (a Transformer's
   * `trained_context`, else `max_position_embeddings`): analyses slide a window of this size by default. Null for
   * recurrent models, which carry fixed-size state.
   */
  readonly trainedContext: number | null;
  /** Its layers learn at test time and report the inner loop (losses before/after each update, weight metrics). */
  readonly innerLoop: boolean;
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

/** Choices made when a model is loaded rather than stored in its checkpoint. */
export interface ModelOptions {
  /** Sliding-window attention of this many tokens (Llama only); absent: full causal attention. */
  readonly window?: number;
  /** Build only layers [start, end), as one stage of a pipeline (models/stage.ts); absent: the whole model. */
  readonly layers?: LayerRange;
}

interface RegistryEntry {
  readonly family: ModelFamily;
  /** Reads the config (throws on bad keys or options) and says what the model is, without touching weights. */
  describe(config: Record<string, unknown>, source: string, options?: ModelOptions): ModelDescription;
  /** Estimated per-token cost of each layer and of the head, for balancing pipeline stages (models/stage.ts). */
  stageCosts(config: Record<string, unknown>, source: string, options?: ModelOptions): StageCosts;
  /** `tensors`: checkpoint data, or live tensors (training's variables) that the model borrows without copying. */
  create(
    config: Record<string, unknown>, tensors: WeightMap, configSource: string, weightSource: string,
    options?: ModelOptions,
  ): CausalLM;
}

/** Families without attention have no window to slide: asking for one is an error, not silently ignored. */
function rejectWindow(family: ModelFamily, options: ModelOptions | undefined, source: string): void {
  if (options?.window !== undefined) {
    throw workbenchError('E_OPTION', 'window', String(options.window), `sliding-window attention applies to llama models only; ${source} is a ${family} model`);
  }
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

/** A config's own `trained_context` (a whole number of tokens) where it states one, else its position limit. */
function trainedContextOf(json: Record<string, unknown>, maxPositionEmbeddings: number): number {
  const stated = json.trained_context;
  return typeof stated === 'number' && Number.isInteger(stated) && stated > 0 ? stated : maxPositionEmbeddings;
}

const ttt: RegistryEntry = {
  family: 'ttt',
  describe(json, source, options) {
    rejectWindow('ttt', options, source);
    const c = parseTTTConfig(json, source);
    return {
      family: 'ttt',
      architecture: `TTT-${c.tttLayerType === 'linear' ? 'Linear' : 'MLP'} (${c.preConv || c.shareQk || c.useGate ? 'Mamba' : 'Transformer'} backbone)`,
      layers: c.numHiddenLayers,
      heads: c.numAttentionHeads,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      tokenizer: defaultTokenizer(json, c.vocabSize),
      trainedContext: null,
      innerLoop: true,
      details: {
        ttt_layer_type: c.tttLayerType, mini_batch_size: c.miniBatchSize, ttt_base_lr: c.tttBaseLr, pre_conv: c.preConv,
        share_qk: c.shareQk, use_gate: c.useGate, intermediate_size: c.intermediateSize, conv_kernel: c.convKernel,
        tie_word_embeddings: c.tieWordEmbeddings,
      },
    };
  },
  stageCosts: (json, source) => tttStageCosts(parseTTTConfig(json, source)),
  create(json, tensors, configSource, weightSource, options) {
    rejectWindow('ttt', options, configSource);
    return new TTTModel(parseTTTConfig(json, configSource), tensors, weightSource, options?.layers);
  },
};

const llama: RegistryEntry = {
  family: 'llama',
  describe(json, source, options) {
    const c = parseLlamaConfig(json, source);
    const window = checkWindow(options?.window);
    return {
      family: 'llama',
      architecture: `Transformer (Llama), ${window === null ? 'full causal attention' : `sliding-window attention of ${window} tokens`}`,
      layers: c.numHiddenLayers,
      heads: c.numAttentionHeads,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      tokenizer: defaultTokenizer(json, c.vocabSize),
      trainedContext: trainedContextOf(json, c.maxPositionEmbeddings),
      innerLoop: false,
      details: {
        attention: window === null ? 'full' : `window ${window}`, num_key_value_heads: c.numKeyValueHeads, head_dim: c.headDim,
        intermediate_size: c.intermediateSize, rope_theta: c.ropeTheta, tie_word_embeddings: c.tieWordEmbeddings,
        max_position_embeddings: c.maxPositionEmbeddings,
      },
    };
  },
  stageCosts: (json, source, options) => llamaStageCosts(parseLlamaConfig(json, source), checkWindow(options?.window)),
  create: (json, tensors, configSource, weightSource, options) =>
    new LlamaModel(parseLlamaConfig(json, configSource), tensors, weightSource, { window: options?.window, layers: options?.layers }),
};

const mamba: RegistryEntry = {
  family: 'mamba',
  describe(json, source, options) {
    rejectWindow('mamba', options, source);
    const c = parseMambaConfig(json, source);
    return {
      family: 'mamba',
      architecture: 'Mamba (selective state space)',
      layers: c.nLayer,
      heads: null,
      hiddenSize: c.dModel,
      vocabSize: c.vocabSize,
      // released Mamba checkpoints use GPT-NeoX-20B's tokenizer (no built-in one): their folders carry tokenizer.json
      tokenizer: defaultTokenizer(json, c.vocabSize),
      trainedContext: null,
      innerLoop: false,
      details: {
        d_inner: c.dInner, d_state: c.dState, d_conv: c.dConv, dt_rank: c.dtRank, expand: c.expand, tie_embeddings: c.tieEmbeddings,
      },
    };
  },
  stageCosts: (json, source) => mambaStageCosts(parseMambaConfig(json, source)),
  create(json, tensors, configSource, weightSource, options) {
    rejectWindow('mamba', options, configSource);
    return new MambaModel(parseMambaConfig(json, configSource), tensors, weightSource, options?.layers);
  },
};

/** fla's DeltaNet and Gated DeltaNet (models/delta-net.ts): one entry per `model_type`, the same model class. */
function deltaEntry(type: 'delta_net' | 'gated_deltanet'): RegistryEntry {
  return {
    family: 'delta',
    describe(json, source, options) {
      rejectWindow('delta', options, source);
      const c = parseDeltaConfig({ ...json, model_type: type }, source);
      return {
        family: 'delta',
        architecture: type === 'delta_net' ? 'DeltaNet (delta rule)' : 'Gated DeltaNet (gated delta rule)',
        layers: c.numHiddenLayers,
        heads: c.numHeads,
        hiddenSize: c.hiddenSize,
        vocabSize: c.vocabSize,
        tokenizer: defaultTokenizer(json, c.vocabSize),
        trainedContext: null,
        innerLoop: true,
        details: {
          // the inner-loop series report one row per block of this many tokens (see delta-net.ts "Inner loop")
          mini_batch_size: innerLoopBlock,
          head_k_dim: c.headKDim, head_v_dim: c.headVDim, use_gate: c.useGate, use_short_conv: c.useShortConv, conv_size: c.convSize,
          use_beta: c.useBeta, allow_neg_eigval: c.allowNegEigval, qk_activation: c.qkActivation, qk_norm: c.qkNorm,
          intermediate_size: c.intermediateSize, tie_word_embeddings: c.tieWordEmbeddings,
        },
      };
    },
    stageCosts: (json, source) => deltaStageCosts(parseDeltaConfig({ ...json, model_type: type }, source)),
    create(json, tensors, configSource, weightSource, options) {
      rejectWindow('delta', options, configSource);
      return new DeltaNetModel(parseDeltaConfig({ ...json, model_type: type }, configSource), tensors, weightSource, options?.layers);
    },
  };
}

const registry: ReadonlyMap<string, RegistryEntry> = new Map([
  ['ttt', ttt],
  ['llama', llama],
  ['mamba', mamba],
  ['delta_net', deltaEntry('delta_net')],
  ['gated_deltanet', deltaEntry('gated_deltanet')],
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
    if (cls.startsWith('GatedDeltaNet')) return 'gated_deltanet';
    if (cls.startsWith('DeltaNet')) return 'delta_net';
  }
  return undefined;
}

export function registryEntry(config: Record<string, unknown>, source: string): RegistryEntry {
  const type = modelTypeOf(config);
  const entry = type === undefined ? undefined : registry.get(type);
  if (!entry) throw workbenchError('E_UNSUPPORTED_MODEL', source, type ?? '(none: no "model_type" or "architecture")', knownModelTypes());
  return entry;
}
