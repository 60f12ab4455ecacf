/**
 * Model folders written the way Hugging Face's `save_pretrained` writes a `TTTForCausalLM`: `config.json` in
 * `TTTConfig`'s form, weights split into `model-0000N-of-0000M.safetensors` shards listed in
 * `model.safetensors.index.json`, and a tied `lm_head.weight` left out (safetensors stores no shared tensors).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type FloatTensor, type SafetensorsDtype, writeSafetensors } from '../../engine/core/safetensors.js';
import { seededRandom } from '../../engine/core/random.js';
import { parseTTTConfig, tttWeightSpecs } from '../../engine/models/ttt.js';

const torchDtype: Record<SafetensorsDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/**
 * `config` (our keys, as `init` writes them) in the form HF's `TTTConfig.to_json_string` gives it: keys sorted,
 * `architectures`, `torch_dtype`, `transformers_version`, the token ids, and values equal to the defaults of
 * `PretrainedConfig` and `TTTConfig` left out (so `tie_word_embeddings: true` is absent); no `tokenizer` key.
 */
export function hfTTTConfig(config: Record<string, unknown>, dtype: SafetensorsDtype): Record<string, unknown> {
  const json: Record<string, unknown> = {
    ...config,
    architectures: ['TTTForCausalLM'], model_type: 'ttt', torch_dtype: torchDtype[dtype], transformers_version: '4.41.2',
    bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', pretraining_tp: 1, use_cache: false, scan_checkpoint_group_size: 0,
  };
  delete json.tokenizer;
  if (json.tie_word_embeddings === true) delete json.tie_word_embeddings;
  return Object.fromEntries(Object.entries(json).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * Writes `tensors` as `shards` safetensors files plus the index, filling shards in order up to an equal share of
 * the bytes, as `split_torch_state_dict_into_shards` does with a max shard size. The tied head must already be
 * absent from `tensors` (as HF drops it).
 */
export function writeHfShards(dir: string, tensors: readonly FloatTensor[], dtype: SafetensorsDtype, shards: number): void {
  const bytesPer = dtype === 'F32' ? 4 : 2;
  const sizeOf = (t: FloatTensor) => t.data.length * bytesPer;
  const total = tensors.reduce((n, t) => n + sizeOf(t), 0);
  const groups: FloatTensor[][] = [[]];
  let filled = 0;
  for (const t of tensors) {
    if (groups.length < shards && filled + sizeOf(t) > total / shards && groups[groups.length - 1].length > 0) {
      groups.push([]);
      filled = 0;
    }
    groups[groups.length - 1].push(t);
    filled += sizeOf(t);
  }
  const name = (i: number) => `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    writeFileSync(join(dir, name(i)), writeSafetensors(group, dtype, { format: 'pt' }));
    for (const t of group) weightMap[t.name] = name(i);
  });
  const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: sortedMap }, null, 2));
}

/** A whole HF-style TTT folder: config.json and sharded weights. */
export function writeHfTTTModel(dir: string, config: Record<string, unknown>, tensors: readonly FloatTensor[], dtype: SafetensorsDtype, shards = 2): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfTTTConfig(config, dtype), null, 2));
  const tied = config.tie_word_embeddings !== false;
  writeHfShards(dir, tied ? tensors.filter((t) => t.name !== 'lm_head.weight') : tensors, dtype, shards);
}

/**
 * Random weights for a TTT config, fast enough for a 125M model in a test (engine/models/init.ts draws every value
 * with Box–Muller, ~10 s at that size here): norms 1, biases and offsets 0, every other tensor N(0, 0.02) values
 * cut from one shared block of ~10^6 draws at a random start each (a prime length, so no two embedding rows repeat). Fine for loading and parity, where only the
 * numbers' scale matters, not their independence.
 */
export function quickTTTWeights(config: Record<string, unknown>, seed: number): FloatTensor[] {
  const rng = seededRandom(seed);
  const block = new Float32Array(1_000_003);
  for (let i = 0; i < block.length; i++) block[i] = 0.02 * rng.normal();
  return tttWeightSpecs(parseTTTConfig(config)).map((spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (/norm\.weight$|ttt_norm_weight$/.test(spec.name)) data.fill(1);
    else if (!/(post_norm\.bias|ttt_norm_bias|\.b1|\.b2|learnable_token_idx|learnable_ttt_lr_bias)$/.test(spec.name)) {
      for (let at = 0, from = Math.floor(rng.uniform() * block.length); at < n; from = 0) {
        const piece = block.subarray(from, from + Math.min(n - at, block.length - from));
        data.set(piece, at);
        at += piece.length;
      }
    }
    return { name: spec.name, shape: [...spec.shape], data };
  });
}
