/**
 * Checking a checkpoint's tensors against what a model expects, in one pass: one error lists every missing,
 * unexpected and mis-shaped tensor (STYLE.md rule 5), so a user fixes a conversion script once, not N times.
 *
 * Models are built from a `WeightMap`: either plain data read from a checkpoint (copied into new tensors the model
 * owns) or live tensors, such as the training variables (used as they are, so gradients flow back to them).
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from './errors.js';
import type { FloatTensor } from './safetensors.js';

export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  /** Why this shape: the config keys it comes from, named in the error when a tensor disagrees. */
  readonly because?: string;
}

/** Checkpoint data, or live tensors (e.g. `tf.Variable`s) a model borrows without copying. */
export type WeightMap = ReadonlyMap<string, FloatTensor | tf.Tensor>;

/**
 * Number of values in a weight of either kind, from its shape: checkpoint data may be read lazily from disk
 * (engine/io/checkpoint.ts), so touching `data` just to count would read the tensor.
 */
export const weightSize = (t: FloatTensor | tf.Tensor): number => (t instanceof tf.Tensor ? t.size : t.shape.reduce((a, b) => a * b, 1));

export interface CheckOptions {
  /** Tensors a checkpoint may carry that the model does not use (e.g. an untied `lm_head.weight` copy). */
  readonly ignore?: readonly RegExp[];
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export function checkWeights(
  source: string,
  specs: readonly WeightSpec[],
  tensors: WeightMap,
  options: CheckOptions = {},
): void {
  const expected = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !tensors.has(s.name)).map((s) => s.name);
  const unexpected = [...tensors.keys()].filter((n) => !expected.has(n) && !(options.ignore ?? []).some((r) => r.test(n)));
  const misShaped = specs
    .filter((s) => tensors.has(s.name) && !sameShape(tensors.get(s.name)!.shape, s.shape))
    .map((s) => `${s.name} is [${tensors.get(s.name)!.shape.join(', ')}], config.json implies [${s.shape.join(', ')}]${s.because ? ` (${s.because})` : ''}`);
  const problems: string[] = [];
  if (missing.length) problems.push(`missing tensor${missing.length > 1 ? 's' : ''} ${abbreviate(missing)}`);
  if (misShaped.length) problems.push(`wrong shape: ${abbreviate(misShaped)}`);
  if (unexpected.length) problems.push(`unexpected tensor${unexpected.length > 1 ? 's' : ''} ${abbreviate(unexpected)}`);
  if (problems.length) throw workbenchError('E_WEIGHTS', source, problems);
}

function abbreviate(items: readonly string[], max = 6): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

/**
 * A checked tensor as a tf.Tensor of the spec's shape (or `shape` when given: a free reshape). Checkpoint data is
 * copied into a new tensor, touching `data` once (a lazily opened checkpoint reads the tensor from disk there);
 * a live tensor is returned itself (or reshaped), so a model built from training variables borrows them: such a
 * model is built inside `tf.tidy` and never disposed.
 */
export function weightTensor(tensors: WeightMap, name: string, shape?: readonly number[]): tf.Tensor {
  const t = tensors.get(name);
  if (!t) throw new Error(`weightTensor: ${name} was not checked`);
  if (t instanceof tf.Tensor) return shape ? tf.reshape(t, shape as number[]) : t;
  return tf.tensor(t.data, (shape ?? t.shape) as number[], 'float32');
}
