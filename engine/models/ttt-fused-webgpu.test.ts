/**
 * The fused TTT kernel against the op-by-op tensor form on webgpu (lavapipe in CI): the same logits and inner-loop
 * statistics over a chunk of 16 mini-batches, with at least ten times fewer dispatches. Parity with the reference
 * fixtures, decoding and chunking on webgpu are in ttt.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDiff, fixtureDir, maxAbsDiff } from '../../test/helpers/fixtures.js';
import { webgpuTestsRun } from '../../test/helpers/webgpu.js';
import { selectBackend } from '../core/backend.js';
import { allowFusedKernels, countDispatches } from '../core/webgpu-program.js';
import { loadModel } from '../io/load-model.js';
import { type CausalLM, runChunk } from './model.js';

/** Logits and per-layer inner-loop rows of one 256-token chunk, and the dispatches it took; `fused` off: op by op. */
async function chunkOnce(model: CausalLM, fused: boolean): Promise<{ logits: Float32Array; stats: number[]; dispatches: number }> {
  const ids = Int32Array.from({ length: 256 }, (_, i) => (i * 7919 + 13) % model.vocabSize);
  allowFusedKernels(fused);
  try {
    const state = model.initialState();
    const { result: r, dispatches } = await countDispatches(async () => runChunk(model, ids, state, { innerLoopStats: true, weightTrace: true }));
    const logits = (await r.logits.data()) as Float32Array;
    const stats = await Promise.all([...r.innerLoop!.perLayer, ...r.weightTrace!.metrics].map(async (t) => Array.from(await t.data())));
    tf.dispose([r.logits, ...r.innerLoop!.perLayer, ...r.weightTrace!.metrics, state as unknown as tf.TensorContainer, r.state as unknown as tf.TensorContainer]);
    return { logits, stats: stats.flat(), dispatches };
  } finally {
    allowFusedKernels(true);
  }
}

describe.skipIf(!webgpuTestsRun)('the fused TTT kernel on webgpu', () => {
  let model: CausalLM;
  beforeAll(async () => {
    await selectBackend('webgpu');
    model = (await loadModel(fixtureDir('ttt-linear-transformer-backbone'))).model;
  });
  afterAll(() => model?.dispose());

  it('equals the op-by-op form over 16 mini-batches, statistics included, in a tenth of the dispatches or fewer', async () => {
    const fused = await chunkOnce(model, true);
    const ops = await chunkOnce(model, false);
    const d = maxAbsDiff(fused.logits, ops.logits, model.vocabSize);
    expect(d.max, describeDiff(d)).toBeLessThanOrEqual(1e-4);
    expect(fused.stats.length).toBe(ops.stats.length);
    const s = maxAbsDiff(fused.stats.map((v, i) => v / Math.max(1, Math.abs(ops.stats[i]))), ops.stats.map((v) => v / Math.max(1, Math.abs(v))), 1);
    expect(s.max, describeDiff(s)).toBeLessThanOrEqual(1e-5);
    console.log(`256 tokens, 2 layers, statistics on: ${fused.dispatches} dispatches fused, ${ops.dispatches} op by op (${(ops.dispatches / fused.dispatches).toFixed(1)}×)`);
    expect(ops.dispatches / fused.dispatches).toBeGreaterThanOrEqual(10);
  });
});
