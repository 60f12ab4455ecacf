/** Running a model over ids in chunks, and small deterministic test data, shared by the model tests. */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, ForwardOptions, ModelState } from '../../engine/models/model.js';
import { runChunk } from '../../engine/models/model.js';

/** Logits for `ids` fed in chunks of the given sizes (cycled), from `state` (default: the model's initial state). */
export async function logitsInChunks<S extends ModelState>(
  model: CausalLM<S>, ids: Int32Array, sizes: readonly number[], options: ForwardOptions = {}, state: S = model.initialState(),
): Promise<Float32Array> {
  const out = new Float32Array(ids.length * model.vocabSize);
  let s = state;
  for (let at = 0, i = 0; at < ids.length; i++) {
    const n = Math.min(sizes[i % sizes.length], ids.length - at);
    const r = runChunk(model, ids.subarray(at, at + n), s, options);
    s = r.state;
    out.set(await r.logits.data(), at * model.vocabSize);
    r.logits.dispose();
    at += n;
  }
  tf.dispose(s as unknown as tf.TensorContainer);
  return out;
}

/** Bytes held by a state's tensors (float32). */
export const stateBytes = (s: ModelState) => tf.tensor_util.getTensorsInContainer(s as unknown as tf.TensorContainer).reduce((n, t) => n + t.size * 4, 0);

/** Deterministic pseudo-random numbers in [-0.5, 0.5) (a linear congruential generator). */
export function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32 - 0.5;
  };
}

export function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const next = random(seed);
  return Int32Array.from({ length: n }, () => Math.floor((next() + 0.5) * vocab));
}
