/** Per-token measurements computed next to the model, as tensors (pure; call inside `tf.tidy`). */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Negative log-likelihood (nats) of `targets[i]` under the distribution of logits row i, for the first
 * targets.length rows: logsumexp(row) − row[target]. [T, V] → [targets.length]
 */
export function nllOfTargets(logits: tf.Tensor2D, targets: Int32Array): tf.Tensor1D {
  const n = targets.length;
  if (n === 0) return tf.zeros([0]);
  const [, V] = logits.shape;
  const rows = n === logits.shape[0] ? logits : tf.slice(logits, [0, 0], [n, V]); // [n, V]
  const flatIndex = Int32Array.from(targets, (t, i) => i * V + t);
  const picked = tf.gather(tf.reshape(rows, [-1]), flatIndex); // [n]
  return tf.sub(tf.logSumExp(rows, 1), picked) as tf.Tensor1D;
}

/** About `count` distinct integers in [0, n), spaced evenly in log(1 + i), always including 0 and n − 1. */
export function logSpacedIndices(n: number, count: number): number[] {
  if (n <= 0) return [];
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const out = new Set<number>();
  for (let k = 0; k < count; k++) out.add(Math.min(n - 1, Math.round(Math.expm1((Math.log(n) * k) / (count - 1)))));
  return [...out].sort((a, b) => a - b);
}
