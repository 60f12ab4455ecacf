/**
 * fla DeltaNet and Gated DeltaNet folders as `save_pretrained` writes them (config.json with fla's keys and HF's
 * additions, BF16 weights, one file or shards plus an index), at published widths with random weights. Used by
 * test/hf-delta-checkpoint.test.ts and by the local reference check (scripts/_delta-hf-check.*, not committed).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../../engine/core/random.js';
import { type FloatTensor, type SafetensorsDtype, writeSafetensors } from '../../engine/core/safetensors.js';
import { deltaWeightSpecs, parseDeltaConfig } from '../../engine/models/delta-net.js';
import { writeHfShards } from './hf-checkpoint.js';

/**
 * fla-hub/delta_net-1.3B-100B's layout (hidden 2048, 16 heads, Llama-2's 32,000 tokens, untied head) with `layers`
 * of its 24 layers, in the config.json form of that repository (fla's keys, HF's additions).
 */
export function deltaNet13bLayout(layers: number): Record<string, unknown> {
  return {
    architectures: ['DeltaNetForCausalLM'], attn_mode: 'chunk', bos_token_id: 1, conv_size: 4, eos_token_id: 2, expand_k: 1, expand_v: 1,
    fuse_cross_entropy: true, fuse_norm: true, hidden_act: 'swish', hidden_ratio: 4, hidden_size: 2048, initializer_range: 0.02,
    intermediate_size: null, max_position_embeddings: 2048, model_type: 'delta_net', norm_eps: 1e-6, num_heads: 16,
    num_hidden_layers: layers, qk_activation: 'silu', qk_norm: 'l2', tie_word_embeddings: false, torch_dtype: 'bfloat16',
    transformers_version: '4.45.0', use_beta: true, use_cache: true, use_gate: false, use_output_norm: true, use_short_conv: true, vocab_size: 32000,
  };
}

/** A 340M-size Gated DeltaNet as fla's training configs give it (hidden 1024, 4 heads of 256, expand_v 2, 24 layers). */
export function gatedDeltaNet340m(layers = 24): Record<string, unknown> {
  return {
    architectures: ['GatedDeltaNetForCausalLM'], attn_mode: 'chunk', bos_token_id: 1, conv_size: 4, eos_token_id: 2, expand_v: 2,
    fuse_cross_entropy: true, fuse_norm: true, fuse_swiglu: true, head_dim: 256, hidden_act: 'swish', hidden_ratio: 4, hidden_size: 1024,
    initializer_range: 0.006, intermediate_size: null, max_position_embeddings: 8192, model_type: 'gated_deltanet', norm_eps: 1e-6,
    num_heads: 4, num_hidden_layers: layers, num_v_heads: null, tie_word_embeddings: false, torch_dtype: 'bfloat16',
    transformers_version: '4.50.0', use_cache: true, use_gate: true, use_short_conv: true, vocab_size: 32000,
  };
}

/**
 * Random weights for an fla config, fast at real sizes: values cut from one shared block of standard normal draws
 * (as quickTTTWeights does), scaled per tensor so activations stay O(1): Linear N(0, 1/fan_in), embeddings N(0, 1),
 * short convolutions N(0, 0.25), norms 1 ± 0.1, A_log = log U(1, 16), dt_bias N(−2, 1).
 */
export function quickDeltaWeights(config: Record<string, unknown>, seed: number): FloatTensor[] {
  const rng = seededRandom(seed);
  const block = new Float32Array(1_000_003);
  for (let i = 0; i < block.length; i++) block[i] = rng.normal();
  return deltaWeightSpecs(parseDeltaConfig(config)).map((spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const fill = (f: (i: number) => number) => data.forEach((_, i) => (data[i] = f(i)));
    if (/norm\.weight$/.test(spec.name)) fill(() => 1 + 0.1 * (2 * rng.uniform() - 1));
    else if (spec.name.endsWith('A_log')) fill(() => Math.log(1 + 15 * rng.uniform()));
    else if (spec.name.endsWith('dt_bias')) fill(() => -2 + rng.normal());
    else {
      const std = spec.name.includes('embeddings') ? 1 : spec.name.includes('conv1d') ? 0.5 : spec.shape[1] ** -0.5;
      for (let at = 0, from = Math.floor(rng.uniform() * block.length); at < n; from = 0) {
        const piece = block.subarray(from, from + Math.min(n - at, block.length - from));
        for (let i = 0; i < piece.length; i++) data[at + i] = std * piece[i];
        at += piece.length;
      }
    }
    return { name: spec.name, shape: [...spec.shape], data };
  });
}

/** config.json and the weights: one `model.safetensors` (shards = 1, as delta_net-1.3B-100B) or shards plus an index. */
export function writeHfDeltaModel(dir: string, config: Record<string, unknown>, tensors: readonly FloatTensor[], dtype: SafetensorsDtype, shards = 1): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  if (shards === 1) writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors, dtype, { format: 'pt' }));
  else writeHfShards(dir, tensors, dtype, shards);
}
