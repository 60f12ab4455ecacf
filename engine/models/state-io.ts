/**
 * A model's carried state (model.ts `ModelState`) as plain data and back, for any family: TTT (W, b and the
 * unfinished mini-batch's gradient sums, convolution tails), Llama (the KV window), Mamba (convolution tail, SSM
 * state), DeltaNet (S, convolution tails). Nothing here knows a family: the state object is walked, each tensor
 * becomes a `StateTensor` (its path, shape and values) and everything else (numbers, strings, booleans, nulls,
 * arrays, plain objects) stays in a JSON skeleton where `{ "$tensor": i }` marks tensor i.
 *
 * Used for checkpoints (analysis/analyze.ts writes every stage's part into `state.safetensors`, resume reads them
 * back) and meant for the probes that reset, transplant or freeze a state: `serializeState` reads back without
 * touching the state, `deserializeState` builds fresh tensors the caller owns.
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from '../core/errors.js';
import type { ModelState } from './model.js';

/** One tensor of a state: where it sits (`layers.0.params.W1`), its shape, dtype and values (row-major). */
export interface StateTensor {
  readonly path: string;
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int32';
  readonly data: Float32Array | Int32Array;
}

/** JSON values, with `{ $tensor: i }` standing for `tensors[i]`. */
export type StateSkeleton = null | boolean | number | string | readonly StateSkeleton[] | { readonly [key: string]: StateSkeleton };

export interface SerializedState {
  readonly skeleton: StateSkeleton;
  readonly tensors: readonly StateTensor[];
}

const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null);

/**
 * The state as a skeleton and its tensors, read back (`await t.data()`, one per tensor). The state is left as it
 * is. Keys whose value is `undefined` are left out (they read back as absent); anything that is neither JSON nor a
 * tensor (a Map, a class instance, a function) is an error naming its path.
 */
export async function serializeState(state: ModelState): Promise<SerializedState> {
  const found: { path: string; tensor: tf.Tensor }[] = [];
  const walk = (value: unknown, path: string): StateSkeleton => {
    if (value instanceof tf.Tensor) {
      found.push({ path, tensor: value });
      return { $tensor: found.length - 1 };
    }
    if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw workbenchError('E_INPUT', 'model state', `${path || 'state'} is ${value}, which JSON cannot hold`);
      return value;
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, join(path, String(i))));
    if (isPlainObject(value)) {
      if ('$tensor' in value) throw workbenchError('E_INPUT', 'model state', `${path || 'state'} has a key named $tensor, which marks tensors`);
      const out: Record<string, StateSkeleton> = {};
      for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = walk(v, join(path, key));
      return out;
    }
    throw workbenchError('E_INPUT', 'model state', `${path || 'state'} is a ${describe(value)}, neither a tensor nor JSON`);
  };
  const skeleton = walk(state, '');
  const tensors: StateTensor[] = [];
  for (const { path, tensor } of found) {
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') throw workbenchError('E_INPUT', 'model state', `${path} is a ${tensor.dtype} tensor; only float32 and int32 are kept`);
    const data = await tensor.data();
    // a copy: on the cpu backend `data()` may hand out the tensor's own storage
    tensors.push({ path, shape: [...tensor.shape], dtype: tensor.dtype, data: tensor.dtype === 'int32' ? Int32Array.from(data as Int32Array) : Float32Array.from(data as Float32Array) });
  }
  return { skeleton, tensors };
}

/**
 * The state back from `serializeState`'s output, with new tensors (owned by the caller, who disposes them as any
 * carried state). `source` names where it came from in errors (a checkpoint file).
 */
export function deserializeState<S extends ModelState = ModelState>(serialized: SerializedState, source = 'model state'): S {
  const { tensors } = serialized;
  const made: tf.Tensor[] = [];
  const build = (value: StateSkeleton): unknown => {
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map(build);
    const record = value as Record<string, StateSkeleton>;
    if ('$tensor' in record) {
      const t = tensors[record.$tensor as number];
      if (!t) throw workbenchError('E_INPUT', source, `the state names tensor ${String(record.$tensor)}, which is not there`);
      const size = t.shape.reduce((a, b) => a * b, 1);
      if (size !== t.data.length) throw workbenchError('E_INPUT', source, `${t.path} has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
      const tensor = tf.tensor(t.data, [...t.shape], t.dtype);
      made.push(tensor);
      return tensor;
    }
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, build(v)]));
  };
  try {
    return build(serialized.skeleton) as S;
  } catch (error) {
    tf.dispose(made);
    throw error;
  }
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

const describe = (value: unknown) => (typeof value === 'object' && value !== null ? (value.constructor?.name ?? 'object') : typeof value);
