/**
 * Randomly initialised checkpoints, initialised as each reference initialises its modules, in presets from a toy
 * size to the paper's 125M. Configs use the reference keys, so what `init` writes loads anywhere a real
 * checkpoint does.
 *
 * References: ttt.py TTTPreTrainedModel._init_weights and TTTBase.__init__ (normal(0, initializer_range) for
 * Linear and Embedding, ones/zeros for norms, normal(0, 0.02) for W, zeros for b); HF LlamaPreTrainedModel
 * (the same); mamba_simple.py Mamba.__init__ and mixer_seq_simple.py _init_weights (dt bias = softplus⁻¹ of a
 * log-uniform dt in [1e-3, 1e-1], A_log = log(1..N), D = 1, out_proj rescaled by 1/sqrt(n_layer)).
 * PyTorch's own default for Linear/Conv1d (kaiming_uniform with a = √5) is U(±1/√fan_in). fla's DeltaNet and Gated
 * DeltaNet (modeling_*.py _init_weights): normal(0, initializer_range) for every Linear, Conv1d and the embedding,
 * ones for norms, A_log = log U(0, 16), dt_bias = softplus⁻¹ of a log-uniform dt in [1e-3, 1e-1].
 */
import { workbenchError } from '../core/errors.js';
import { type Random, seededRandom } from '../core/random.js';
import type { FloatTensor } from '../core/safetensors.js';
import type { WeightSpec } from '../core/weights.js';
import { deltaWeightSpecs, parseDeltaConfig } from './delta-net.js';
import { mambaWeightSpecs, parseMambaConfig } from './mamba.js';
import { llamaWeightSpecs, parseLlamaConfig } from './transformer.js';
import { parseTTTConfig, tttWeightSpecs } from './ttt.js';

export const architectures = ['ttt-linear', 'ttt-mlp', 'transformer', 'mamba', 'delta-net', 'gated-deltanet'] as const;
export type Architecture = (typeof architectures)[number];

interface PresetSize {
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly intermediate: number;
  readonly vocab: number;
}

export const presets: Readonly<Record<string, PresetSize>> = {
  tiny: { hidden: 64, layers: 2, heads: 4, intermediate: 176, vocab: 256 },
  bench: { hidden: 256, layers: 4, heads: 4, intermediate: 704, vocab: 256 },
  small: { hidden: 384, layers: 6, heads: 6, intermediate: 1056, vocab: 256 },
  '125m': { hidden: 768, layers: 12, heads: 12, intermediate: 2048, vocab: 32000 },
};

export interface InitOptions {
  readonly backbone?: 'mamba' | 'transformer';
  readonly vocab?: number;
  readonly layers?: number;
  readonly miniBatchSize?: number;
  readonly tokenizer?: string;
}

/** config.json for an architecture at a preset size, in the reference's own keys. */
export function presetConfig(arch: Architecture, preset: string, options: InitOptions = {}): Record<string, unknown> {
  const size = presets[preset];
  if (!size) throw workbenchError('E_USAGE', `unknown preset "${preset}" (presets: ${Object.keys(presets).join(', ')})`);
  const vocab = options.vocab ?? size.vocab;
  const layers = options.layers ?? size.layers;
  const tokenizer = options.tokenizer ?? (vocab === 256 ? 'bytes' : vocab === 32000 ? 'llama2' : undefined);
  const common = tokenizer ? { tokenizer } : {};
  if (arch === 'mamba') {
    return { model_type: 'mamba', d_model: size.hidden, n_layer: layers, vocab_size: vocab, d_state: 16, expand: 2, d_conv: 4, dt_rank: 'auto', tie_embeddings: true, rms_norm_eps: 1e-5, ...common };
  }
  if (arch === 'delta-net' || arch === 'gated-deltanet') {
    // fla's keys and defaults; Gated DeltaNet sizes its heads as fla recommends (num_heads · head_dim = 0.75 · hidden_size)
    const shared = {
      hidden_size: size.hidden, num_heads: size.heads, num_hidden_layers: layers, vocab_size: vocab, intermediate_size: size.intermediate,
      hidden_ratio: 4, hidden_act: 'swish', use_short_conv: true, conv_size: 4, norm_eps: 1e-6, tie_word_embeddings: true,
      initializer_range: 0.02, max_position_embeddings: 2048, ...common,
    };
    if (arch === 'delta-net') {
      return { model_type: 'delta_net', ...shared, expand_k: 1, expand_v: 1, use_gate: false, use_beta: true, qk_activation: 'silu', qk_norm: 'l2' };
    }
    const headDim = (0.75 * size.hidden) % size.heads === 0 ? (0.75 * size.hidden) / size.heads : size.hidden / size.heads;
    return { model_type: 'gated_deltanet', ...shared, head_dim: headDim, expand_v: 2, use_gate: true };
  }
  if (arch === 'transformer') {
    return {
      model_type: 'llama', hidden_size: size.hidden, intermediate_size: size.intermediate, num_hidden_layers: layers,
      num_attention_heads: size.heads, num_key_value_heads: size.heads, vocab_size: vocab, rms_norm_eps: 1e-6, rope_theta: 10000.0,
      tie_word_embeddings: true, max_position_embeddings: 2048, ...common,
    };
  }
  const mambaBackbone = (options.backbone ?? 'mamba') === 'mamba';
  return {
    model_type: 'ttt', hidden_size: size.hidden, intermediate_size: size.intermediate, num_hidden_layers: layers,
    num_attention_heads: size.heads, vocab_size: vocab, rms_norm_eps: 1e-6, tie_word_embeddings: true, rope_theta: 10000.0,
    ttt_layer_type: arch === 'ttt-linear' ? 'linear' : 'mlp', ttt_base_lr: arch === 'ttt-linear' ? 1.0 : 0.1,
    mini_batch_size: options.miniBatchSize ?? 16, pre_conv: mambaBackbone, share_qk: mambaBackbone, use_gate: mambaBackbone,
    conv_kernel: 4, initializer_range: 0.02, max_position_embeddings: 2048, ...common,
  };
}

type Rule = (spec: WeightSpec, rng: Random) => Float32Array;

const fill = (spec: WeightSpec, f: (i: number) => number) => Float32Array.from({ length: spec.shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i));
const normal = (std: number): Rule => (spec, rng) => fill(spec, () => std * rng.normal());
const uniform = (bound: number): Rule => (spec, rng) => fill(spec, () => bound * (2 * rng.uniform() - 1));
const constant = (value: number): Rule => (spec) => fill(spec, () => value);
/** PyTorch's default Linear/Conv init, U(±1/√fan_in), fan_in = product of all but the first dimension. */
const torchDefault = (scale = 1): Rule => (spec, rng) => uniform(scale / Math.sqrt(spec.shape.slice(1).reduce((a, b) => a * b, 1)))(spec, rng);

function tttOrLlamaRule(name: string, std: number, convKernel: number): Rule {
  if (/(^|\.)(conv|conv_q|conv_k)\.(weight|bias)$|\.conv\.conv\.(weight|bias)$/.test(name)) return uniform(1 / Math.sqrt(convKernel));
  if (/norm\.weight$|ttt_norm_weight$/.test(name)) return constant(1);
  if (/(post_norm\.bias|ttt_norm_bias|\.b1|\.b2|learnable_token_idx|learnable_ttt_lr_bias)$/.test(name)) return constant(0);
  return normal(std); // embeddings, every Linear, W1/W2, learnable_ttt_lr_weight
}

function deltaRule(name: string, std: number): Rule {
  if (/norm\.weight$/.test(name)) return constant(1);
  if (name.endsWith('attn.A_log')) return (spec, rng) => fill(spec, () => Math.log(Math.max(16 * rng.uniform(), 1e-4)));
  if (name.endsWith('attn.dt_bias')) {
    return (spec, rng) => fill(spec, () => {
      const dt = Math.max(Math.exp(Math.log(1e-3) + rng.uniform() * (Math.log(1e-1) - Math.log(1e-3))), 1e-4);
      return dt + Math.log(-Math.expm1(-dt)); // softplus⁻¹
    });
  }
  return normal(std); // embeddings, every Linear and short convolution
}

function mambaRule(name: string, config: ReturnType<typeof parseMambaConfig>): Rule {
  if (/embedding(s)?\.weight$/.test(name)) return normal(0.02);
  if (/norm(_f)?\.weight$/.test(name)) return constant(1);
  if (name.endsWith('mixer.A_log')) return (spec) => fill(spec, (i) => Math.log((i % config.dState) + 1));
  if (name.endsWith('mixer.D')) return constant(1);
  if (name.endsWith('dt_proj.weight')) return uniform(config.dtRank ** -0.5);
  if (name.endsWith('dt_proj.bias')) {
    return (spec, rng) => fill(spec, () => {
      const dt = Math.max(Math.exp(Math.log(1e-3) + rng.uniform() * (Math.log(1e-1) - Math.log(1e-3))), 1e-4);
      return dt + Math.log(-Math.expm1(-dt)); // softplus⁻¹
    });
  }
  if (name.endsWith('out_proj.weight')) return torchDefault(1 / Math.sqrt(config.nLayer));
  if (/(in_proj|out_proj)\.bias$/.test(name)) return constant(0);
  return torchDefault(); // in_proj, x_proj, conv1d weight and bias
}

/** Weights for `config` (as `presetConfig` writes it, or any config of a known family), reproducible per seed. */
export function initWeights(config: Record<string, unknown>, seed: number): FloatTensor[] {
  const rng = seededRandom(seed);
  const std = typeof config.initializer_range === 'number' ? config.initializer_range : 0.02;
  let specs: WeightSpec[];
  let rule: (name: string) => Rule;
  if (config.model_type === 'mamba') {
    const c = parseMambaConfig(config);
    specs = mambaWeightSpecs(c);
    rule = (name) => mambaRule(name, c);
  } else if (config.model_type === 'delta_net' || config.model_type === 'gated_deltanet') {
    specs = deltaWeightSpecs(parseDeltaConfig(config));
    rule = (name) => deltaRule(name, std);
  } else if (config.model_type === 'llama') {
    specs = llamaWeightSpecs(parseLlamaConfig(config));
    rule = (name) => tttOrLlamaRule(name, std, 4);
  } else {
    const c = parseTTTConfig(config);
    specs = tttWeightSpecs(c);
    rule = (name) => tttOrLlamaRule(name, std, c.convKernel);
  }
  return specs.map((spec) => ({ name: spec.name, shape: [...spec.shape], data: rule(spec.name)(spec, rng) }));
}
