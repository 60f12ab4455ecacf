/**
 * TF.js gradients of the next-token loss against central finite differences, for really tiny TTT models (one layer,
 * two heads of 8, mini-batches of 4, a sequence of 8: two mini-batches, so the second is read with weights the
 * first one's inner update produced). Compared as directional derivatives along the gradient and along a random
 * mix of it, so float32 rounding stays far below the signal.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../core/backend.js';
import { seededRandom } from '../core/random.js';
import { initWeights, presetConfig } from '../models/init.js';
import { installTrainingGradients } from './gradients.js';
import { nextTokenLoss, TrainableModel } from './trainable.js';
import { installWasmTrainingKernels } from './wasm-kernels.js';

const eps = 1e-2;
const relativeTolerance = 5e-2;

for (const backend of ['wasm', 'cpu'] as const) for (const arch of ['ttt-linear', 'ttt-mlp'] as const) {
  describe(`${arch} gradients on ${backend}`, () => {
    const config = {
      ...presetConfig(arch, 'tiny'), hidden_size: 16, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 32,
      vocab_size: 32, mini_batch_size: 4, ttt_base_lr: 1.0, initializer_range: 0.3,
    };
    const window = Int32Array.from([3, 17, 5, 29, 11, 3, 17, 8, 21]);
    let model: TrainableModel;
    const loss = () => tf.tidy(() => nextTokenLoss(model.build(), window).arraySync()) as number;

    beforeAll(async () => {
      await selectBackend(backend);
      installTrainingGradients();
      installWasmTrainingKernels();
      // biases and token_idx start at zero in the reference; nudge them so every term of the inner loop is live
      const tensors = initWeights(config, 1).map((t) => (/(\.b[12]|learnable_token_idx|lr_bias)$/.test(t.name)
        ? { ...t, data: Float32Array.from(t.data, (_, i) => 0.1 * Math.sin(i + 1)) } : t));
      model = new TrainableModel(config, new Map(tensors.map((t) => [t.name, t])), arch);
    });
    afterAll(() => model.dispose());

    const s = 'model.layers.0.seq_modeling_block.';
    for (const name of [`${s}W1`, `${s}learnable_ttt_lr_weight`, `${s}q_proj.weight`, `${s}learnable_token_idx`, `${s}conv_q.weight`, 'model.embed_tokens.weight']) {
      it(`d loss / d ${name.replace(s, '')} matches central differences`, () => {
        const v = model.variables.get(name)!;
        const { grads } = tf.variableGrads(() => nextTokenLoss(model.build(), window), [v]);
        const g = grads[v.name];
        const rng = seededRandom(name.length);
        const random = tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal()), v.shape);
        const unit = (t: tf.Tensor) => tf.div(t, tf.norm(t));
        const directions = tf.tidy(() => [unit(g), unit(tf.add(unit(g), unit(random)))]);
        const original = tf.clone(v);
        for (const d of directions) {
          const analytic = tf.tidy(() => tf.sum(tf.mul(g, d)).arraySync()) as number;
          const at = (step: number) => {
            const moved = tf.tidy(() => tf.add(original, tf.mul(d, step)));
            v.assign(moved);
            moved.dispose();
            return loss();
          };
          const plus = at(eps), minus = at(-eps);
          v.assign(original);
          const numeric = (plus - minus) / (2 * eps);
          expect(Math.abs(analytic), 'gradient too small to test').toBeGreaterThan(1e-3);
          expect(Math.abs(numeric - analytic)).toBeLessThan(relativeTolerance * Math.abs(analytic));
        }
        tf.dispose([g, random, original, ...directions]);
      });
    }
  });
}
