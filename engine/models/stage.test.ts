import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeDiff, fixtureDir, maxAbsDiff, readGolden } from '../../test/helpers/fixtures.js';
import { selectBackend } from '../core/backend.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { loadModel } from '../io/load-model.js';
import { type CausalLM, type ModelState, releaseState, type StageInput } from './model.js';
import { registryEntry } from './registry.js';
import { balanceStages, layerOfTensor, stageWeightSpecs } from './stage.js';
import { tttWeightSpecs, parseTTTConfig } from './ttt.js';

const fixtures = ['ttt-linear-mamba-backbone', 'ttt-mlp-transformer-backbone', 'llama', 'mamba'] as const;

/** Logits of `ids` in chunks of `size`, each chunk through `stages` one after another (the state split per stage). */
async function stagedLogits(stages: CausalLM[], ids: Int32Array, size: number): Promise<Float32Array> {
  const V = stages[0].vocabSize;
  const out = new Float32Array(ids.length * V);
  const states: ModelState[] = stages.map((s) => s.initialState());
  for (let at = 0; at < ids.length; at += size) {
    let input: StageInput = ids.subarray(at, Math.min(at + size, ids.length));
    stages.forEach((stage, k) => {
      const r = tf.tidy(() => stage.forwardStage(input, states[k]) as unknown as tf.TensorContainer) as unknown as { output: tf.Tensor2D; state: ModelState };
      releaseState(states[k], r.state);
      states[k] = r.state;
      if (!(input instanceof Int32Array)) input.dispose();
      input = r.output;
    });
    const logits = input as unknown as tf.Tensor2D;
    out.set(await logits.data(), at * V);
    logits.dispose();
  }
  for (const s of states) tf.dispose(s as unknown as tf.TensorContainer);
  return out;
}

describe('models as stages', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  for (const name of fixtures) {
    it(`${name}: layer [0, 1) then [1, 2) gives the whole model's logits, bit for bit`, async () => {
      const ids = Int32Array.from(readGolden(name).input_ids);
      const whole = (await loadModel(fixtureDir(name))).model;
      const first = (await loadModel(fixtureDir(name), { layers: { start: 0, end: 1 } })).model;
      const second = (await loadModel(fixtureDir(name), { layers: { start: 1, end: 2 } })).model;
      try {
        expect(first.parameterCount + second.parameterCount).toBe(whole.parameterCount);
        const a = await stagedLogits([whole], ids, 16);
        const b = await stagedLogits([first, second], ids, 16);
        const d = maxAbsDiff(b, a, whole.vocabSize);
        expect(d.max, describeDiff(d)).toBe(0);
      } finally {
        for (const m of [whole, first, second]) m.dispose();
      }
    });
  }

  it('a stage holds only its own tensors and refuses inputs it cannot take', async () => {
    const baseline = tf.memory().numTensors;
    const dir = fixtureDir('ttt-linear-transformer-backbone');
    const { tensors, config } = await readCheckpoint(dir);
    // only layer 1's tensors and the (tied) embedding for the head: the others may be absent
    const mine = new Map([...tensors].filter(([n]) => layerOfTensor(n) === 1 || !n.includes('layers.')));
    const last = registryEntry(config, 'config.json').create(config, mine, 'config.json', 'model.safetensors', { layers: { start: 1, end: 2 } });
    expect(() => tf.tidy(() => void last.forwardStage(Int32Array.of(1, 2, 3), last.initialState()))).toThrow(/takes hidden states, not token ids/);
    expect(() => tf.tidy(() => void last.forward(Int32Array.of(1), last.initialState()))).toThrow(/holds only layers \[1, 2\)/);
    last.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
    mine.delete('model.layers.1.ffn_norm.weight');
    expect(() => registryEntry(config, 'config.json').create(config, mine, 'config.json', 'model.safetensors', { layers: { start: 1, end: 2 } }))
      .toThrow(/missing tensor model\.layers\.1\.ffn_norm\.weight$/);
    expect(() => registryEntry(config, 'config.json').create(config, tensors, 'config.json', 'model.safetensors', { layers: { start: 1, end: 1 } }))
      .toThrow(/layer range \[1, 1\) is not inside the model's 2 layers/);
  });

  it('splits layers by cost, the head going with the last layer', () => {
    const specs = tttWeightSpecs(parseTTTConfig({ num_hidden_layers: 3, hidden_size: 8, num_attention_heads: 2, vocab_size: 10, intermediate_size: 8 }));
    const names = (start: number, end: number) => stageWeightSpecs(specs, { start, end }, 3, { embedding: 'model.embed_tokens.weight', tied: true }).map((s) => s.name);
    expect(names(0, 1)).toContain('model.embed_tokens.weight');
    expect(names(1, 2).some((n) => !n.startsWith('model.layers.1.'))).toBe(false);
    expect(names(2, 3)).toEqual(expect.arrayContaining(['model.embed_tokens.weight', 'model.norm.weight']));
    expect(balanceStages({ layers: [1, 1, 1, 1], head: 0 }, 2)).toEqual([{ start: 0, end: 2 }, { start: 2, end: 4 }]);
    // a head worth four layers: the last stage takes fewer layers
    expect(balanceStages({ layers: new Array(12).fill(1), head: 4 }, 2)).toEqual([{ start: 0, end: 8 }, { start: 8, end: 12 }]);
    expect(balanceStages({ layers: [1, 1], head: 0 }, 4)).toEqual([{ start: 0, end: 1 }, { start: 1, end: 2 }]);
    expect(balanceStages({ layers: [1, 1, 1], head: 0 }, 1)).toEqual([{ start: 0, end: 3 }]);
  });
});
