/**
 * A model's weights as `tf.Variable`s under their reference names, and the next-token loss of a window.
 *
 * The model families fuse and re-lay weights at load (q/k/v into one projection, conv weights into depthwise
 * filters, token_eta from learnable_token_idx). Built from live tensors they do that with tensor ops, so a model
 * built from these variables inside a gradient function differentiates back to every reference-named tensor.
 * Building is cheap next to a forward pass, so it happens per window, inside the tape.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FloatTensor } from '../core/safetensors.js';
import { oneHotFloat } from './gradients.js';
import type { CausalLM } from '../models/model.js';
import { modelTypeOf, registryEntry } from '../models/registry.js';

export interface BuildOptions {
  /** TTT: the inner-loop base learning rate for this step (the TTT-MLP warm-up); default: the config's. */
  readonly tttBaseLr?: number;
}

export class TrainableModel {
  /** Reference name → variable, in the checkpoint's order. */
  readonly variables: ReadonlyMap<string, tf.Variable>;
  readonly parameterCount: number;
  readonly vocabSize: number;

  constructor(
    readonly config: Readonly<Record<string, unknown>>,
    tensors: ReadonlyMap<string, FloatTensor>,
    readonly source: string,
  ) {
    const variables = new Map<string, tf.Variable>();
    for (const [name, t] of tensors) variables.set(name, variableOf(tf.tensor(t.data, [...t.shape], 'float32'), true));
    this.variables = variables;
    try {
      const { parameterCount, vocabSize } = tf.tidy(() => {
        const model = this.build(); // building checks every name and shape
        return { parameterCount: model.parameterCount, vocabSize: model.vocabSize };
      });
      this.parameterCount = parameterCount;
      this.vocabSize = vocabSize;
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  get isTTT(): boolean {
    return modelTypeOf({ ...this.config }) === 'ttt';
  }

  /** A model reading the variables. Call inside `tf.tidy` or a gradient function and never dispose it. */
  build(options: BuildOptions = {}): CausalLM {
    const config = options.tttBaseLr === undefined ? { ...this.config } : { ...this.config, ttt_base_lr: options.tttBaseLr };
    return registryEntry(config, this.source).create(config, this.variables, this.source, this.source);
  }

  /** Current values under the reference names, for writing a checkpoint. */
  async snapshot(): Promise<FloatTensor[]> {
    const out: FloatTensor[] = [];
    for (const [name, v] of this.variables) out.push({ name, shape: v.shape, data: (await v.data()) as Float32Array });
    return out;
  }

  /** Sets every variable from checkpoint data (same names and shapes, as `snapshot` wrote them). */
  assign(tensors: ReadonlyMap<string, FloatTensor>): void {
    for (const [name, v] of this.variables) {
      const t = tensors.get(name);
      if (!t) throw new Error(`TrainableModel.assign: ${name} is missing`);
      tf.tidy(() => v.assign(tf.tensor(t.data, v.shape, 'float32')));
    }
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
  }
}

/**
 * Gradients (by reference name) of the batch's mean loss: one tape per window, the window's loss scaled by 1/B,
 * summed window by window in order (deterministic). Null when `signal` aborts between windows. The caller owns
 * the returned tensors.
 */
export function batchGradients(
  model: TrainableModel, windows: readonly Int32Array[], build: BuildOptions, signal?: AbortSignal,
): { loss: tf.Scalar; grads: Map<string, tf.Tensor> } | null {
  const variables = [...model.variables.values()];
  const refName = new Map([...model.variables].map(([name, v]) => [v.name, name]));
  let sum: Map<string, tf.Tensor> | null = null;
  let lossSum: tf.Scalar = tf.scalar(0);
  for (const w of windows) {
    if (signal?.aborted) break;
    const { value, grads } = tf.variableGrads(() => tf.mul(nextTokenLoss(model.build(build), w), 1 / windows.length) as tf.Scalar, variables);
    const next = new Map(Object.entries(grads).map(([k, g]) => [refName.get(k)!, g]));
    if (sum) {
      const previous: Map<string, tf.Tensor> = sum;
      sum = new Map([...next].map(([k, g]) => [k, previous.has(k) ? tf.add(previous.get(k)!, g) : tf.clone(g)]));
      tf.dispose([...previous.values(), ...next.values()]);
    } else {
      sum = next;
    }
    const total = tf.add(lossSum, value) as tf.Scalar;
    tf.dispose([lossSum, value]);
    lossSum = total;
  }
  if (signal?.aborted || !sum) {
    tf.dispose([lossSum, ...(sum?.values() ?? [])]);
    return null;
  }
  return { loss: lossSum, grads: sum };
}

/** A variable holding `initial`'s values; `initial` is freed (a variable shares its data but not its handle). */
export function variableOf(initial: tf.Tensor, trainable: boolean): tf.Variable {
  const v = tf.variable(initial, trainable);
  initial.dispose();
  return v;
}

/** Mean next-token cross-entropy (nats) of a window: predict ids[1..n] from ids[0..n−1]. */
export function nextTokenLoss(model: CausalLM, window: Int32Array): tf.Scalar {
  const inputs = window.subarray(0, window.length - 1);
  const targets = tf.tensor1d(window.subarray(1), 'int32');
  // `dual` is the differentiable TTT path (matmuls only); families without forms ignore it
  const { logits } = model.forward(inputs, model.initialState(), { form: 'dual' }); // [n, V]
  const picked = tf.sum(tf.mul(logits, oneHotFloat(targets, model.vocabSize)), 1); // [n]
  return tf.mean(tf.sub(tf.logSumExp(logits, 1), picked));
}
