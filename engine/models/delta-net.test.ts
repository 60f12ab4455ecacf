import * as tf from '@tensorflow/tfjs-core';
import { logitsInChunks, randomIds } from '../../test/helpers/chunks.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDiff, fixtureDir, maxAbsDiff, readGolden } from '../../test/helpers/fixtures.js';
import { fixtureConfig } from '../../test/helpers/temp-model.js';
import { selectBackend } from '../core/backend.js';
import { webgpuTestsRun } from '../../test/helpers/webgpu.js';
import { computeLogits } from '../cli/logits.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { loadModel } from '../io/load-model.js';
import { type DeltaState, innerLoopBlock, parseDeltaConfig } from './delta-net.js';
import { type CausalLM, type ModelState, runChunk } from './model.js';
import { registryEntry } from './registry.js';

const tolerance = 1e-4;

/** Made by scripts/make-delta-fixtures.py from fla's reference code: both families, gate and expand_v variants. */
const deltaFixtures = ['gated-deltanet', 'gated-deltanet-nogate', 'delta-net', 'delta-net-gate-expand-v', 'delta-net-noconv'] as const;

/** Per layer, one row per finished block: (init, before, after), the four weight metrics, and ΣS after block 1. */
async function innerLoopRows(model: CausalLM, ids: Int32Array, sizes: readonly number[], form?: 'dual' | 'primal'): Promise<number[][][]> {
  const perLayer: number[][][] = Array.from({ length: model.numLayers }, () => []);
  let state: ModelState = model.initialState();
  for (let t = 0, i = 0; t < ids.length; i++) {
    const n = Math.min(sizes[i % sizes.length], ids.length - t);
    const r = runChunk(model, ids.subarray(t, t + n), state, { form, innerLoopStats: true, weightTrace: true, snapshotMiniBatches: new Set([1]) });
    state = r.state;
    expect(r.innerLoop!.firstMiniBatch).toBe(Math.floor(t / innerLoopBlock));
    for (let l = 0; l < model.numLayers; l++) {
      const losses = (await r.innerLoop!.perLayer[l].array()) as number[][];
      const metrics = (await r.weightTrace!.metrics[l].array()) as number[][];
      expect(metrics.length).toBe(losses.length);
      const snapshot = r.weightTrace!.snapshots[l].find((x) => x.miniBatch === 1);
      const snapshotSum = snapshot ? (await tf.sum(snapshot.weights.W1).data())[0] : null;
      const first = r.innerLoop!.firstMiniBatch;
      losses.forEach((row, j) => perLayer[l].push([...row, ...metrics[j], ...(first + j === 1 ? [snapshotSum!] : [])]));
    }
    tf.dispose([r.logits, ...r.innerLoop!.perLayer, ...r.weightTrace!.metrics, ...r.weightTrace!.snapshots.flat().flatMap((x) => Object.values(x.weights))]);
    t += n;
  }
  tf.dispose(state as unknown as tf.TensorContainer);
  return perLayer;
}

/** Inner-loop checks on one fixture per family (the math is shared; the no-conv one has β up to 2). */
const innerLoopFixtures = new Set(['gated-deltanet', 'delta-net-noconv']);

// parity on every backend (webgpu: lavapipe in CI, op by op); the rest (chunkings, forms, inner loop, leaks) on wasm,
// the default backend
for (const backend of ['wasm', 'cpu', ...(webgpuTestsRun ? ['webgpu'] as const : [])] as const) {
  const full = backend === 'wasm';
  describe(`DeltaNet and Gated DeltaNet on ${backend}`, () => {
    beforeAll(async () => {
      await selectBackend(backend);
    });

    for (const name of deltaFixtures) {
      describe(name, () => {
        const golden = readGolden(name);
        const ids = Int32Array.from(golden.input_ids);
        const V = golden.logits_shape[1];
        let model: CausalLM;
        beforeAll(async () => {
          model = (await loadModel(fixtureDir(name))).model;
        });
        afterAll(() => model.dispose());

        it('matches the reference logits (full forward, chunked form)', async () => {
          const d = maxAbsDiff(await computeLogits(model, ids), golden.logits, V);
          expect(d.max, describeDiff(d)).toBeLessThanOrEqual(tolerance);
        });

        it('matches the reference decoding logits (prefill 32, then token by token)', async () => {
          const P = golden.decode_prefill!;
          const logits = await computeLogits(model, ids, P);
          const rows = golden.decode_logits_shape![0]; // positions P−1 … P−1+rows−1
          const d = maxAbsDiff(logits, golden.decode_logits!, V, P - 1, 0, rows);
          expect(d.max, describeDiff(d)).toBeLessThanOrEqual(tolerance);
        });

        it.runIf(full)('gives the same logits for any chunking (1, 7, 16, 64 and a mix)', async () => {
          const whole = await computeLogits(model, ids);
          for (const sizes of [[1], [7], [16], [64], [5, 11, 16, 21]]) {
            const d = maxAbsDiff(await logitsInChunks(model, ids, sizes), whole, V);
            expect(d.max, `chunks ${sizes}: ${describeDiff(d)}`).toBeLessThanOrEqual(tolerance);
          }
        });

        it.runIf(full)('recurrent form equals chunked form', async () => {
          const chunked = await logitsInChunks(model, ids, [ids.length], { form: 'dual' });
          const recurrent = await logitsInChunks(model, ids, [ids.length], { form: 'primal' });
          const d = maxAbsDiff(recurrent, chunked, V);
          // float32 rounding of two orders of summation over 80 tokens (β up to 2 in the allow_neg_eigval fixtures)
          expect(d.max, describeDiff(d)).toBeLessThanOrEqual(5e-5);
        });

        it.runIf(full && innerLoopFixtures.has(name))('reports the inner loop (losses, state metrics, snapshots) the same across forms and chunkings', async () => {
          const reference = await innerLoopRows(model, ids, [ids.length]);
          expect(reference.length).toBe(2);
          for (const layer of reference) {
            expect(layer.length).toBe(Math.floor(ids.length / innerLoopBlock)); // finished blocks only
            for (const [init, before, after, norm, distInit, distPrev, cosInit] of layer) {
              for (const v of [init, before, norm, distPrev]) expect(Number.isFinite(v) && v > 0).toBe(true);
              // one step of size β ≤ 2 on ‖Sᵀk − v‖² with ‖k‖ ≤ 1 never increases that token's loss
              expect(after).toBeLessThanOrEqual(before * (1 + 1e-5));
              expect(distInit).toBeCloseTo(norm, 5);
              expect(cosInit).toBe(0);
            }
            expect(layer[1].length).toBe(8); // the snapshot of block 1 came back
          }
          for (const [sizes, form] of [[[7], 'dual'], [[1], 'primal'], [[5, 1, 30], undefined]] as const) {
            const other = await innerLoopRows(model, ids, sizes, form);
            for (let l = 0; l < reference.length; l++) {
              expect(other[l].flat().length).toBe(reference[l].flat().length);
              const d = maxAbsDiff(other[l].flat(), reference[l].flat(), 1);
              expect(d.max, `chunks ${sizes} ${form}, layer ${l}: ${describeDiff(d)}`).toBeLessThanOrEqual(1e-4);
            }
          }
        });

        it.runIf(full)('leaks no tensors: steps and their disposal leave only the carried state', async () => {
          const before = tf.memory().numTensors;
          let state = model.initialState() as DeltaState;
          for (const n of [5, 16, 1, 31, 70]) {
            const r = runChunk(model, ids.subarray(0, n), state, { innerLoopStats: n !== 1 });
            state = r.state as DeltaState;
            tf.dispose([r.logits, ...(r.innerLoop?.perLayer ?? [])]);
          }
          const held = tf.memory().numTensors - before;
          tf.dispose(state as unknown as tf.TensorContainer);
          expect(tf.memory().numTensors).toBe(before);
          // per layer: S, three conv tails, and while traced the block's loss sums and S at the last block end
          expect(held).toBeLessThanOrEqual(2 * 6);
        });
      });
    }

    it.runIf(full)('runs as two pipeline stages with the same logits as the whole model', async () => {
      const name = 'gated-deltanet';
      const { tensors, config } = await readCheckpoint(fixtureDir(name));
      const entry = registryEntry(config, name);
      const [first, second] = [{ start: 0, end: 1 }, { start: 1, end: 2 }].map((layers) => entry.create(config, tensors, name, name, { layers }));
      const whole = entry.create(config, tensors, name, name);
      const ids = Int32Array.from(readGolden(name).input_ids);
      try {
        const staged = tf.tidy(() => {
          const a = first.forwardStage(ids, first.initialState(), { innerLoopStats: true });
          const b = second.forwardStage(a.output, second.initialState(), { innerLoopStats: true });
          expect([a.innerLoop!.perLayer.length, b.innerLoop!.perLayer.length]).toEqual([1, 1]);
          return b.output;
        });
        const d = maxAbsDiff(await staged.data(), await computeLogits(whole, ids), 64);
        staged.dispose();
        // the stages trace the inner loop (16-token pieces), the whole model not (64): the tolerance of the two forms
        expect(d.max, describeDiff(d)).toBeLessThanOrEqual(5e-5);
        expect(first.parameterCount + second.parameterCount).toBe(whole.parameterCount);
      } finally {
        for (const m of [first, second, whole]) m.dispose();
      }
    });

    it.runIf(full)('frees every tensor on dispose()', async () => {
      const baseline = tf.memory().numTensors;
      const { model } = await loadModel(fixtureDir('gated-deltanet'));
      await computeLogits(model, randomIds(70, 64, 4), 40, 17);
      model.dispose();
      expect(tf.memory().numTensors).toBe(baseline);
    });

    it.runIf(full)('chunked form equals recurrent form on a long repetitive input (near-identical keys)', async () => {
      const { model } = await loadModel(fixtureDir('delta-net-noconv'));
      try {
        const ids = Int32Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 7 : 7 + (i % 2)));
        const whole = await logitsInChunks(model, ids, [ids.length], { form: 'dual' });
        expect(whole.every(Number.isFinite)).toBe(true);
        const d = maxAbsDiff(await logitsInChunks(model, ids, [ids.length], { form: 'primal' }), whole, 64);
        expect(d.max, describeDiff(d)).toBeLessThanOrEqual(tolerance);
      } finally {
        model.dispose();
      }
    });
  });
}

describe('delta-rule configs', () => {
  const gdn = fixtureConfig('gated-deltanet');
  const dn = fixtureConfig('delta-net');

  it('maps fla keys and defaults once (intermediate_size from hidden_ratio, head dims from expand_k/expand_v/head_dim)', () => {
    const g = parseDeltaConfig({ model_type: 'gated_deltanet', hidden_size: 1024, num_heads: 6, head_dim: 128, hidden_ratio: 4, intermediate_size: null });
    expect([g.headKDim, g.headVDim, g.keyDim, g.valueDim, g.intermediateSize, g.useGate, g.numHiddenLayers]).toEqual([128, 256, 768, 1536, 2816, true, 21]);
    const d = parseDeltaConfig({ model_type: 'delta_net', hidden_size: 2048, num_heads: 16, rms_norm_eps: 1e-6 });
    expect([d.headKDim, d.headVDim, d.intermediateSize, d.useGate, d.useBeta, d.qkActivation, d.qkNorm, d.normEps]).toEqual([128, 128, 5632, false, true, 'silu', 'l2', 1e-6]);
  });

  it('accepts unknown keys and refuses unimplemented options in one line naming the option', () => {
    expect(() => registryEntry({ ...gdn, fuse_cross_entropy: true, some_future_key: [1, 2] }, 'c.json').describe({ ...gdn, some_future_key: 1 }, 'c.json')).not.toThrow();
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ ...gdn, attn: { layers: [1], num_heads: 4 } }, /c\.json: "attn": .* is not supported \(hybrid attention layers\)/],
      [{ ...gdn, num_v_heads: 4 }, /"num_v_heads": 4 is not supported/],
      [{ ...dn, hidden_act: 'powlu' }, /"hidden_act": "powlu" is not supported/],
      [{ ...dn, qk_norm: 'none' }, /"qk_norm": "none" is not supported/],
      [{ ...dn, attnres_block_size: 2 }, /"attnres_block_size": 2 is not supported/],
    ];
    for (const [config, message] of refused) {
      expect(() => registryEntry(config, 'c.json').describe(config, 'c.json')).toThrow(message);
    }
    expect(() => registryEntry({ ...gdn, num_v_heads: gdn.num_heads }, 'c.json').describe({ ...gdn, num_v_heads: gdn.num_heads }, 'c.json')).not.toThrow();
  });

  it('describes the models as test-time learners reporting per-block inner loops', () => {
    for (const config of [gdn, dn]) {
      const d = registryEntry(config, 'c.json').describe(config, 'c.json');
      expect([d.family, d.innerLoop, d.trainedContext, d.details.mini_batch_size]).toEqual(['delta', true, null, innerLoopBlock]);
    }
  });
});
