/**
 * A 125M TTT-Linear checkpoint as Hugging Face publishes the paper's models (ISSUE 10, "Done when"): two shards plus
 * model.safetensors.index.json, F32 and BF16, the tied head left out, config.json in TTTConfig's form, the Llama-2
 * tokenizer. Random weights at the real size: ~500 MB of F32, so the folders live under os.tmpdir() and go after.
 * Two 125M loads and forwards are most of a minute on two cores, so the analyze path itself is tested on small
 * HF folders (engine/io/checkpoint.test.ts). The same checkpoint against the PyTorch reference agrees within
 * 2e-5 (max |Δlogit|, F32 and BF16); that comparison needs torch and runs locally, not in CI.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../engine/core/backend.js';
import { createTokenizer, encodeDocument } from '../engine/core/tokenizers/index.js';
import { computeLogits } from '../engine/cli/logits.js';
import { inspectModel, loadModel } from '../engine/io/load-model.js';
import { presetConfig } from '../engine/models/init.js';
import { describeDiff, kjvPath, maxAbsDiff } from './helpers/fixtures.js';
import { quickTTTWeights, writeHfTTTModel } from './helpers/hf-checkpoint.js';

const T = 512;
const V = 32000;
const work = mkdtempSync(join(tmpdir(), 'ttt-hf-125m-'));
const f32Dir = join(work, 'ttt-linear-125m-f32');
const bf16Dir = join(work, 'ttt-linear-125m-bf16');
const config = presetConfig('ttt-linear', '125m');
let ids: Int32Array;

beforeAll(async () => {
  await selectBackend('wasm');
  mkdirSync(f32Dir);
  mkdirSync(bf16Dir);
  const weights = quickTTTWeights(config, 125);
  writeHfTTTModel(f32Dir, config, weights, 'F32');
  writeHfTTTModel(bf16Dir, config, weights, 'BF16');
  // the start of Genesis in Llama-2 tokens, BOS first, as `analyze` reads a book: comfortably more than 512
  ids = encodeDocument(await createTokenizer('llama2'), readFileSync(kjvPath, 'utf8').slice(0, 4000)).slice(0, T);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('a 125M TTTForCausalLM as Hugging Face saves it', () => {
  it('is two shards and an index, without the tied head, described from its headers alone', async () => {
    expect(readdirSync(f32Dir).sort()).toEqual(['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    const hfConfig = JSON.parse(readFileSync(join(bf16Dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(hfConfig).toMatchObject({ architectures: ['TTTForCausalLM'], model_type: 'ttt', torch_dtype: 'bfloat16' });
    expect(hfConfig).not.toHaveProperty('tie_word_embeddings');
    const index = JSON.parse(readFileSync(join(f32Dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    expect(index.weight_map).not.toHaveProperty('lm_head.weight');
    const f32 = await inspectModel(f32Dir);
    const bf16 = await inspectModel(bf16Dir);
    expect(f32.description).toMatchObject({ architecture: 'TTT-Linear (Mamba backbone)', layers: 12, heads: 12, hiddenSize: 768, vocabSize: V, tokenizer: 'llama2' });
    expect(f32.parameters).toBe(bf16.parameters);
    expect(f32.parameters).toBeGreaterThan(110e6);
    expect(bf16.dtypes).toEqual({ BF16: Object.keys(index.weight_map).length });
    expect(bf16.bytesOnDisk).toBeLessThan(0.51 * f32.bytesOnDisk);
    expect(f32.backends.find((b) => b.backend === 'wasm')!.fits).toBe(true);
  });

  it('loads from F32 and from BF16 shards, and the logits of 512 tokens agree', async () => {
    const before = tf.memory().numTensors;
    const f32 = await loadModel(f32Dir);
    const f32Logits = await computeLogits(f32.model, ids);
    f32.model.dispose();
    const bf16 = await loadModel(bf16Dir);
    const bf16Logits = await computeLogits(bf16.model, ids);
    bf16.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(f32Logits.length).toBe(T * V);
    expect(f32Logits.every(Number.isFinite)).toBe(true);
    // BF16 keeps 8 bits of mantissa: weights move by up to 2^-9 of themselves, logits (|x| up to ~3) by a few 0.01
    const d = maxAbsDiff(bf16Logits, f32Logits, V);
    expect(d.max, describeDiff(d)).toBeLessThan(0.1);
    expect(d.max).toBeGreaterThan(0); // the BF16 weights really were rounded
  });

  it('reports a broken sharded checkpoint in one line naming the culprit', async () => {
    // variants share the shards through links; only the small JSON files differ
    const variant = (name: string, edit: { config?: (c: Record<string, unknown>) => void; index?: (i: { weight_map: Record<string, string> }) => void }) => {
      const dir = join(work, name);
      mkdirSync(dir);
      for (const file of readdirSync(f32Dir)) if (file.endsWith('.safetensors')) symlinkSync(join(f32Dir, file), join(dir, file));
      const c = JSON.parse(readFileSync(join(f32Dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      edit.config?.(c);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
      const i = JSON.parse(readFileSync(join(f32Dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
      edit.index?.(i);
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(i));
      return dir;
    };
    const otherShard = (file: string) => (file.startsWith('model-00001') ? file.replace('model-00001', 'model-00002') : file.replace('model-00002', 'model-00001'));
    const cases: [string, RegExp][] = [
      [variant('untied', { config: (c) => { c.tie_word_embeddings = false; } }), /\(2 shards\): missing tensor lm_head\.weight$/],
      [variant('wider', { config: (c) => { c.intermediate_size = 2304; } }),
        /wrong shape: model\.layers\.0\.mlp\.gate_proj\.weight is \[2048, 768\], config\.json implies \[2304, 768\] \(intermediate_size × hidden_size\).* and \d+ more$/],
      [variant('misindexed', { index: (i) => { i.weight_map['model.norm.weight'] = otherShard(i.weight_map['model.norm.weight']); } }),
        /model\.safetensors\.index\.json: lists tensor model\.norm\.weight in model-0000\d-of-00002\.safetensors, which does not hold it$/],
      [variant('escaping', { index: (i) => { i.weight_map['model.norm.weight'] = '../model-00001-of-00002.safetensors'; } }),
        /model\.safetensors\.index\.json: tensor model\.norm\.weight is mapped to "\.\.\/model-00001-of-00002\.safetensors", not a file name in the folder$/],
    ];
    for (const [dir, pattern] of cases) {
      const error = await loadModel(dir).catch((e: Error) => e);
      expect(error, dir).toBeInstanceOf(Error);
      expect((error as Error).message.split('\n'), dir).toHaveLength(1);
      expect((error as Error).message).toMatch(pattern);
    }
    const lost = join(work, 'lost-shard');
    mkdirSync(lost);
    for (const file of ['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors']) copyFileSync(join(bf16Dir, file), join(lost, file));
    await expect(loadModel(lost)).rejects.toThrow(/model-00002-of-00002\.safetensors \(a shard named in model\.safetensors\.index\.json\): no such file$/);
    // a chunk too large for one wasm heap is refused before any weight is read, naming what would fit
    await expect(loadModel(f32Dir, { backend: 'wasm', chunkTokens: 4096 })).rejects.toThrow(
      /: needs about [\d.]+ GiB on backend "wasm", which has at most 4\.00 GiB \(one WebAssembly heap\); .*chunks of \d+ tokens would fit "wasm"$/,
    );
  });
});
