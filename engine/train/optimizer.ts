/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", arXiv 1711.05101) with PyTorch's
 * `torch.optim.AdamW` update order and bias correction, and global-norm gradient clipping
 * (`torch.nn.utils.clip_grad_norm_`). Moments are kept per parameter name so they save and load with the
 * checkpoint as `exp_avg.<name>` / `exp_avg_sq.<name>`, PyTorch's names for them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from '../core/errors.js';
import type { FloatTensor } from '../core/safetensors.js';
import { variableOf } from './trainable.js';

export interface AdamWOptions {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
}

export const adamWDefaults: AdamWOptions = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/**
 * Which parameters decay: matrices, as nanoGPT's `configure_optimizers` decides (dim ≥ 2), except those that are
 * norms, biases or SSM constants whatever their rank (ttt_norm_weight [H, f], b1 [H, 1, f], Mamba's A_log, which
 * the reference marks `_no_weight_decay`).
 */
export function decays(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && !/norm|bias|\.b[12]$|A_log$/.test(name);
}

interface Moments {
  readonly m: tf.Variable;
  readonly v: tf.Variable;
}

export class AdamW {
  /** Updates applied so far (PyTorch's `step`, the exponent of the bias corrections). */
  step = 0;
  private readonly moments = new Map<string, Moments>();

  constructor(private readonly params: ReadonlyMap<string, tf.Variable>, readonly options: AdamWOptions = adamWDefaults) {
    for (const [name, p] of params) {
      this.moments.set(name, { m: variableOf(tf.zerosLike(p), false), v: variableOf(tf.zerosLike(p), false) });
    }
  }

  /** One update with learning rate `lr`; parameters without a gradient (unused by the model) are left alone. */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.options;
    const stepSize = lr / (1 - beta1 ** this.step);
    const sqrtBias2 = Math.sqrt(1 - beta2 ** this.step);
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g) continue;
      const { m, v } = this.moments.get(name)!;
      tf.tidy(() => {
        const decayed = decays(name, p.shape) && weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBias2), eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
      });
    }
  }

  /** The moments under PyTorch's names, for the checkpoint. */
  async snapshot(): Promise<FloatTensor[]> {
    const out: FloatTensor[] = [];
    for (const [name, { m, v }] of this.moments) {
      out.push({ name: `exp_avg.${name}`, shape: m.shape, data: (await m.data()) as Float32Array });
      out.push({ name: `exp_avg_sq.${name}`, shape: v.shape, data: (await v.data()) as Float32Array });
    }
    return out;
  }

  /** Restores moments and step count as `snapshot` wrote them; a missing or mis-shaped moment is an error. */
  load(tensors: ReadonlyMap<string, FloatTensor>, step: number, source: string): void {
    for (const [name, { m, v }] of this.moments) {
      for (const [key, target] of [[`exp_avg.${name}`, m], [`exp_avg_sq.${name}`, v]] as const) {
        const t = tensors.get(key);
        if (!t || t.data.length !== target.size) throw workbenchError('E_INPUT', source, `optimizer moment ${key} is ${t ? 'mis-shaped' : 'missing'}`);
        tf.tidy(() => target.assign(tf.tensor(t.data, target.shape, 'float32')));
      }
    }
    this.step = step;
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
  }
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (no-op when `maxNorm` is not finite or ≤ 0).
 * Returns the new gradients (the caller disposes both sets) and the norm before clipping, as a scalar tensor.
 */
export function clipByGlobalNorm(grads: ReadonlyMap<string, tf.Tensor>, maxNorm: number): { grads: Map<string, tf.Tensor>; norm: tf.Scalar } {
  const names = [...grads.keys()];
  // tidy keeps what it returns only in arrays and plain objects, not in a Map
  const out = tf.tidy(() => {
    const squares = names.map((k) => tf.sum(tf.square(grads.get(k)!)));
    const norm = tf.sqrt(squares.length ? tf.addN(squares) : tf.scalar(0)) as tf.Scalar;
    // torch: clip_coef = max_norm / (total_norm + 1e-6), applied when it is below 1
    const scale = maxNorm > 0 && Number.isFinite(maxNorm) ? tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1) : tf.scalar(1);
    return { clipped: names.map((k) => tf.mul(grads.get(k)!, scale)), norm };
  });
  return { grads: new Map(names.map((k, i) => [k, out.clipped[i]])), norm: out.norm };
}
