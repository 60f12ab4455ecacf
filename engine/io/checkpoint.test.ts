import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeBook } from '../analysis/analyze.js';
import { type BackendInfo, selectBackend } from '../core/backend.js';
import { computeLogits } from '../cli/logits.js';
import { initWeights, presetConfig } from '../models/init.js';
import { describeDiff, fixtureDir, maxAbsDiff, readGolden } from '../../test/helpers/fixtures.js';
import { hfTTTConfig, writeHfShards, writeHfTTTModel } from '../../test/helpers/hf-checkpoint.js';
import { fixtureConfig, fixtureTensors } from '../../test/helpers/temp-model.js';
import { sampleText, tempDir } from '../../test/helpers/tiny-models.js';
import { checkpointSize, openCheckpoint, readCheckpoint } from './checkpoint.js';
import { inspectModel, loadModel } from './load-model.js';
import { tokenizerSpecFor } from './model-dir.js';

const name = 'ttt-linear-mamba-backbone';
const work = tempDir('ttt-checkpoint-');
let sharded: string;
let backend: BackendInfo;

beforeAll(async () => {
  backend = await selectBackend('wasm');
  sharded = join(work.dir, 'sharded');
  // the fixture as Hugging Face would publish it: HF-form config, three shards, tied head absent
  const config = fixtureConfig(name);
  delete config.architecture; // HF's form names the type in model_type only
  mkdirSync(sharded);
  writeHfTTTModel(sharded, config, [...fixtureTensors(name).values()], 'F32', 3);
});
afterAll(() => work.cleanup());

describe('Hugging Face model folders', () => {
  it('load from shards with an HF-form config and give the reference logits', async () => {
    const config = JSON.parse(readFileSync(join(sharded, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ model_type: 'ttt', architectures: ['TTTForCausalLM'], torch_dtype: 'float32', use_cache: false });
    expect(config).not.toHaveProperty('architecture');
    const golden = readGolden(name);
    const { model } = await loadModel(sharded);
    const logits = await computeLogits(model, Int32Array.from(golden.input_ids));
    model.dispose();
    const d = maxAbsDiff(logits, golden.logits, golden.logits_shape[1]);
    expect(d.max, describeDiff(d)).toBeLessThanOrEqual(1e-4);
  });

  it('read the same tensors as the single file, one at a time', async () => {
    const single = await readCheckpoint(fixtureDir(name));
    const fromShards = await readCheckpoint(sharded);
    expect(fromShards.weightFiles).toHaveLength(3);
    expect([...fromShards.tensors.keys()].sort()).toEqual([...single.tensors.keys()].sort());
    for (const [key, t] of single.tensors) expect(fromShards.tensors.get(key)!.data).toEqual(t.data);
    // lazily: nothing is read until a tensor's data is touched, and then just that tensor
    const open = await openCheckpoint(sharded);
    try {
      const W1 = 'model.layers.1.seq_modeling_block.W1';
      expect(open.stored.get(W1)).toMatchObject({ dtype: 'F32', shape: [4, 16, 16] });
      expect(open.tensors.get(W1)!.data).toEqual(single.tensors.get(W1)!.data);
    } finally {
      open.close();
    }
  });

  it('read only the tensors `include` passes, without opening shards that hold none of them', async () => {
    const dir = join(work.dir, 'partial');
    mkdirSync(dir);
    for (const f of ['config.json', 'model.safetensors.index.json', 'model-00001-of-00003.safetensors']) copyFileSync(join(sharded, f), join(dir, f));
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const inFirst = new Set(Object.entries(index.weight_map).filter(([, f]) => f === 'model-00001-of-00003.safetensors').map(([n]) => n));
    // the other shards are garbage: reading them would fail
    writeFileSync(join(dir, 'model-00002-of-00003.safetensors'), 'not a safetensors file');
    writeFileSync(join(dir, 'model-00003-of-00003.safetensors'), 'not a safetensors file');
    const partial = await readCheckpoint(dir, { include: (n) => inFirst.has(n) });
    expect(new Set(partial.tensors.keys())).toEqual(inFirst);
    await expect(readCheckpoint(dir)).rejects.toThrow(/model-00002-of-00003\.safetensors: not a valid safetensors file/);
  });

  it('accept a tied head stored in the file anyway, and reject an untied head left out', async () => {
    const tensors = fixtureTensors(name);
    const embed = tensors.get('model.embed_tokens.weight')!;
    const withHead = join(work.dir, 'with-head');
    mkdirSync(withHead);
    writeFileSync(join(withHead, 'config.json'), JSON.stringify(hfTTTConfig(fixtureConfig(name), 'F32')));
    writeHfShards(withHead, [...tensors.values(), { ...embed, name: 'lm_head.weight' }], 'F32', 2);
    const { model } = await loadModel(withHead);
    expect(model.parameterCount).toBe((await checkpointSize(sharded, true)).parameters);
    model.dispose();
    const untied = join(work.dir, 'untied');
    mkdirSync(untied);
    writeHfTTTModel(untied, { ...fixtureConfig(name), tie_word_embeddings: false }, [...tensors.values()], 'BF16', 2);
    await expect(loadModel(untied)).rejects.toThrow(/untied \(2 shards\): missing tensor lm_head\.weight$/);
  });

  it('name a folder of PyTorch .bin weights', async () => {
    const dir = join(work.dir, 'pickle');
    mkdirSync(dir);
    copyFileSync(join(sharded, 'config.json'), join(dir, 'config.json'));
    writeFileSync(join(dir, 'pytorch_model.bin'), '');
    await expect(loadModel(dir)).rejects.toThrow(/pickle: has pytorch_model\.bin but no model\.safetensors \(or index\): PyTorch pickles are not read/);
  });

  it('use the Llama-2 tokenizer for a 32000 vocabulary, and the folder\'s tokenizer.json when it has one', async () => {
    const dir = join(work.dir, 'llama-vocab');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(hfTTTConfig({ ...fixtureConfig(name), vocab_size: 32000 }, 'F32')));
    expect(await tokenizerSpecFor(dir)).toBe('llama2');
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [] } }));
    expect(await tokenizerSpecFor(dir)).toMatchObject({ kind: 'hf', source: join(dir, 'tokenizer.json') });
  });

  it('analyse a book through the analyze path: sharded BF16, HF-form config, tokenizer implied by the vocabulary', async () => {
    const dir = join(work.dir, 'tiny-hf');
    mkdirSync(dir);
    const config = presetConfig('ttt-linear', 'tiny');
    writeHfTTTModel(dir, config, initWeights(config, 3), 'BF16', 2);
    const book = join(work.dir, 'genesis.txt');
    writeFileSync(book, sampleText);
    const { manifest } = await analyzeBook({ book, models: [dir], runDir: join(work.dir, 'run'), backend, maxTokens: 100, chunkTokens: 32 });
    expect(manifest.models[0]).toMatchObject({ status: 'finished', tokenizer: 'bytes', tokensDone: 100, error: null });
  });

  it('are described from their headers, with a memory estimate per backend', async () => {
    const info = await inspectModel(sharded);
    expect(info.parameters).toBe((await checkpointSize(fixtureDir(name))).parameters);
    expect(info.dtypes).toEqual({ F32: Object.keys(JSON.parse(readFileSync(join(sharded, 'model.safetensors.index.json'), 'utf8')).weight_map as object).length });
    expect(info.backends.map((b) => [b.backend, b.fits])).toEqual([['tensorflow', true], ['webgpu', null], ['wasm', true], ['cpu', true]]);
  });
});
