import * as tf from '@tensorflow/tfjs-core';
import { logitsInChunks } from '../../test/helpers/chunks.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDiff, fixtureDir, maxAbsDiff, readGolden, tttFixtures } from '../../test/helpers/fixtures.js';
import { selectBackend } from '../core/backend.js';
import { computeLogits } from '../cli/logits.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { loadModel } from '../io/load-model.js';
import { type CausalLM, type ModelState, runChunk } from './model.js';
import type { TTTState } from './ttt.js';
import { webgpuTestsRun } from '../../test/helpers/webgpu.js';

const tolerance = 1e-4;


/** Inner-loop stats rows [(init, before, after) per mini-batch] per layer, from a run in the given chunks. */
async function innerLoopStats(model: CausalLM, ids: Int32Array, sizes: number[], form?: 'dual' | 'primal'): Promise<number[][][]> {
  const perLayer: number[][][] = Array.from({ length: model.numLayers }, () => []);
  let state: ModelState = model.initialState();
  for (let t = 0, i = 0; t < ids.length; i++) {
    const n = Math.min(sizes[i % sizes.length], ids.length - t);
    const r = runChunk(model, ids.subarray(t, t + n), state, { form, innerLoopStats: true, weightTrace: true, snapshotMiniBatches: new Set([1]) });
    state = r.state;
    for (let l = 0; l < model.numLayers; l++) {
      // one row per finished mini-batch: the three losses, then the weight metrics, then W after mini-batch 1 (summed)
      const losses = (await r.innerLoop!.perLayer[l].array()) as number[][];
      const metrics = (await r.weightTrace!.metrics[l].array()) as number[][];
      const snapshot = r.weightTrace!.snapshots[l].find((x) => x.miniBatch === 1);
      const snapshotSum = snapshot ? (await tf.sum(snapshot.weights.W1).data())[0] : null;
      const first = r.innerLoop!.firstMiniBatch;
      losses.forEach((row, i) => perLayer[l].push([...row, ...metrics[i], ...(first + i === 1 ? [snapshotSum!] : [])]));
    }
    tf.dispose([r.logits, ...r.innerLoop!.perLayer, ...r.weightTrace!.metrics, ...r.weightTrace!.snapshots.flat().flatMap((x) => Object.values(x.weights))]);
    t += n;
  }
  tf.dispose(state as unknown as tf.TensorContainer);
  return perLayer;
}

// webgpu (lavapipe in CI) runs whole mini-batches through the fused kernel of ttt-fused-webgpu.ts
for (const backend of ['wasm', 'cpu', ...(webgpuTestsRun ? ['webgpu'] as const : [])] as const) {
  describe(`TTT models on ${backend}`, () => {
    beforeAll(async () => {
      await selectBackend(backend);
    });

    for (const name of tttFixtures) {
      describe(name, () => {
        const golden = readGolden(name);
        const ids = Int32Array.from(golden.input_ids);
        const V = golden.logits_shape[1];
        let model: CausalLM;
        beforeAll(async () => {
          model = (await loadModel(fixtureDir(name))).model;
        });
        afterAll(() => model.dispose());

        it('matches the reference logits (full forward, dual form)', async () => {
          const d = maxAbsDiff(await computeLogits(model, ids), golden.logits, V);
          expect(d.max, describeDiff(d)).toBeLessThanOrEqual(tolerance);
        });

        it('matches the reference decoding logits (prefill 32, then token by token)', async () => {
          const P = golden.decode_prefill!;
          const logits = await computeLogits(model, ids, P);
          // decode_logits rows are positions P-1 (last prefill row) .. P-1+rows-1
          const rows = golden.decode_logits_shape![0];
          const d = maxAbsDiff(logits, golden.decode_logits!, V, P - 1, 0, rows);
          expect(d.max, describeDiff(d)).toBeLessThanOrEqual(tolerance);
        });

        it('gives the same logits for any chunking (1, 7, 16, 64 and a mix)', async () => {
          const whole = await computeLogits(model, ids);
          for (const sizes of [[1], [7], [16], [64], [5, 11, 16, 21]]) {
            const d = maxAbsDiff(await logitsInChunks(model, ids, sizes), whole, V);
            expect(d.max, `chunks ${sizes}: ${describeDiff(d)}`).toBeLessThanOrEqual(tolerance);
          }
        });

        it('primal form equals dual form', async () => {
          const dual = await logitsInChunks(model, ids, [ids.length], { form: 'dual' });
          const primal = await logitsInChunks(model, ids, [ids.length], { form: 'primal' });
          const d = maxAbsDiff(primal, dual, V);
          expect(d.max, describeDiff(d)).toBeLessThanOrEqual(1e-5);
        });

        it('reports inner-loop losses, weight metrics and snapshots consistently across forms and chunkings', async () => {
          const reference = await innerLoopStats(model, ids, [ids.length]);
          expect(reference.length).toBe(2);
          expect(reference[0].length).toBe(Math.floor(ids.length / 16)); // only finished mini-batches
          const { tensors } = await readCheckpoint(fixtureDir(name));
          reference.forEach((layer, l) => {
            // the first mini-batch starts from W_0, so its "before" is its "init"
            expect(layer[0][1]).toBeCloseTo(layer[0][0], 6);
            for (const [init, before, after] of layer) for (const v of [init, before, after]) expect(Number.isFinite(v) && v > 0).toBe(true);
            // the end-of-mini-batch update is scaled by the last token's token_eta = max(1/16 + learnable_token_idx[15], 0):
            // where that is 0 (it is in some random fixtures) the weights never move, otherwise the loss must change
            const lastTokenEta = Math.max(1 / 16 + tensors.get(`model.layers.${l}.seq_modeling_block.learnable_token_idx`)!.data[15], 0);
            const moved = layer.some(([, before, after]) => Math.abs(before - after) > 1e-5);
            expect(moved, `layer ${l}: token_eta[15] = ${lastTokenEta}`).toBe(lastTokenEta > 0);
          });
          for (const [sizes, form] of [[[7], 'dual'], [[1], 'primal'], [[16], 'dual']] as const) {
            const other = await innerLoopStats(model, ids, [...sizes], form);
            for (let l = 0; l < reference.length; l++) {
              expect(other[l].flat().length).toBe(reference[l].flat().length);
              // relative to max(1, |value|): the weight norms (tens, summed in float32 by the tensor form) round at ~1e-6 of themselves
              const ref = reference[l].flat(), scale = (xs: number[]) => xs.map((x, i) => x / Math.max(1, Math.abs(ref[i])));
              const d = maxAbsDiff(scale(other[l].flat()), scale(ref), 1);
              expect(d.max, `chunks ${sizes} ${form}, layer ${l}: ${describeDiff(d)} (relative)`).toBeLessThanOrEqual(1e-5);
            }
          }
        });

        it('leaks no tensors: a step and its disposal leave the count unchanged', async () => {
          const before = tf.memory().numTensors;
          let state = model.initialState() as TTTState;
          for (const n of [5, 16, 1, 31]) {
            const r = runChunk(model, ids.subarray(0, n), state, { innerLoopStats: true });
            state = r.state as TTTState;
            tf.dispose([r.logits, ...(r.innerLoop?.perLayer ?? [])]);
          }
          const held = tf.memory().numTensors - before;
          tf.dispose(state as unknown as tf.TensorContainer);
          expect(tf.memory().numTensors).toBe(before);
          // state: per layer W1, b1 (, W2, b2), gradient sums for the unfinished mini-batch, conv tails
          expect(held).toBeLessThanOrEqual(2 * 10);
        });
      });
    }

    it('frees every tensor on dispose()', async () => {
      const baseline = tf.memory().numTensors;
      const { model } = await loadModel(fixtureDir('ttt-mlp-mamba-backbone'));
      await computeLogits(model, Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]), 17, 5);
      model.dispose();
      expect(tf.memory().numTensors).toBe(baseline);
    });
  });
}
