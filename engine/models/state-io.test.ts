/**
 * state-io: for every family, a state serialized after a few chunks (ending inside a TTT mini-batch) and rebuilt
 * continues exactly as the original: the same logits, bit for bit, and no tensor leaked.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../core/backend.js';
import { loadModel } from '../io/load-model.js';
import { tempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { type Architecture, architectures } from './init.js';
import { type CausalLM, type ModelState, runChunk } from './model.js';
import { deserializeState, serializeState } from './state-io.js';

const work = tempDir('ttt-state-io-');
beforeAll(async () => {
  await selectBackend('cpu');
});
afterAll(() => work.cleanup());

const ids = Int32Array.from({ length: 60 }, (_, i) => (i * 37 + 11) % 200);

/** Feeds ids[from, to) in chunks of `size`, returning the state and the logits of the last chunk. */
async function feed(model: CausalLM, state: ModelState, from: number, to: number, size: number): Promise<{ state: ModelState; logits: Float32Array[] }> {
  const logits: Float32Array[] = [];
  for (let at = from; at < to; at += size) {
    const r = runChunk(model, ids.subarray(at, Math.min(at + size, to)), state);
    const { state: next, ...rest } = r;
    state = next;
    logits.push((await r.logits.data()).slice() as Float32Array);
    tf.dispose(rest as unknown as tf.TensorContainer);
  }
  return { state, logits };
}

const cases: readonly { arch: Architecture; window?: number }[] = [...architectures.map((arch) => ({ arch })), { arch: 'transformer', window: 8 }];

describe('state-io', () => {
  for (const { arch, window } of cases) {
    it(`${arch}${window ? ` (window ${window})` : ''}: serialize after 21 tokens, rebuild, continue = continuing the original`, async () => {
      const dir = writeTinyModel(work.dir, arch, `${arch}-${window ?? 'x'}`);
      const { model } = await loadModel(dir, window ? { window } : {});
      const before = tf.memory().numTensors;
      // 21 tokens in chunks of 7: the TTT state sits inside a mini-batch (grads not null)
      const start = await feed(model, model.initialState(), 0, 21, 7);
      const saved = await serializeState(start.state);
      expect(saved.tensors.length).toBeGreaterThan(0);
      // through JSON, as a checkpoint file keeps it
      const skeleton = JSON.parse(JSON.stringify(saved.skeleton));
      const restored = deserializeState({ skeleton, tensors: saved.tensors.map((t) => ({ ...t, data: t.data.slice() })) });
      expect(restored.position).toBe(start.state.position);
      const a = await feed(model, start.state, 21, 60, 13);
      const b = await feed(model, restored, 21, 60, 13);
      expect(b.logits.length).toBe(a.logits.length);
      let worst = 0;
      a.logits.forEach((l, i) => l.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b.logits[i][j])))));
      expect(worst).toBeLessThanOrEqual(1e-6);
      tf.dispose([a.state, b.state] as unknown as tf.TensorContainer);
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });
  }

  it('names what it cannot keep', async () => {
    await expect(serializeState({ position: 0, cache: new Map() } as unknown as ModelState)).rejects.toThrow(/cache is a Map, neither a tensor nor JSON/);
  });
});
