import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logitsInChunks } from '../../test/helpers/chunks.js';
import { describeDiff, fixtureDir, maxAbsDiff, readGolden, tttFixtures } from '../../test/helpers/fixtures.js';
import { sampleText, tempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { selectBackend } from '../core/backend.js';
import { loadModel } from '../io/load-model.js';
import { StagePipeline } from './pipeline.js';
import type { DocumentSettings } from './stage-messages.js';

const logitsOnly: DocumentSettings = { innerLoop: false, snapshotMiniBatches: [], stateSummary: false, emit: 'logits' };

/** Logits of `ids` through the pipeline in chunks of `sizes` (cycled), every chunk submitted before the first returns. */
async function pipelineLogits(pipeline: StagePipeline, ids: Int32Array, sizes: readonly number[], V: number): Promise<Float32Array> {
  const answers: { at: number; answer: ReturnType<StagePipeline['submit']> }[] = [];
  for (let at = 0, i = 0; at < ids.length; i++) {
    const n = Math.min(sizes[i % sizes.length], ids.length - at);
    answers.push({ at, answer: pipeline.submit(ids.subarray(at, at + n), new Int32Array(0)) });
    at += n;
  }
  const out = new Float32Array(ids.length * V);
  for (const { at, answer } of answers) out.set((await answer).logits!, at * V);
  return out;
}

describe('a model as a pipeline of two stages in worker threads', () => {
  let pipeline: StagePipeline;
  beforeAll(async () => {
    await selectBackend('wasm');
    pipeline = await StagePipeline.start({ backend: 'wasm', stages: 2 });
  });
  afterAll(() => pipeline.close());

  // one pair of workers serves every model in turn, as in a run that compares several
  const cases = [
    ...tttFixtures.flatMap((name) => [{ name, sizes: [16, 7, 64], window: undefined }, { name, sizes: [32, 1], window: undefined }]),
    { name: 'mamba', sizes: [16, 7, 64], window: undefined },
    { name: 'llama', sizes: [16, 7, 64], window: undefined },
    { name: 'llama', sizes: [5, 11], window: 16 },
  ];
  for (const { name, sizes, window } of cases) {
    it(`${name}${window ? ` (window ${window})` : ''}: the logits of one stage, chunks ${sizes}`, async () => {
      const golden = readGolden(name);
      const ids = Int32Array.from(golden.input_ids);
      const V = golden.logits_shape[1];
      const { model } = await loadModel(fixtureDir(name), { window });
      const one = await logitsInChunks(model, ids, sizes);
      model.dispose();
      const loaded = await pipeline.load(fixtureDir(name), { window });
      expect(loaded.ranges).toEqual([{ start: 0, end: 1 }, { start: 1, end: 2 }]);
      await pipeline.begin(logitsOnly);
      const two = await pipelineLogits(pipeline, ids, sizes, V);
      const d = maxAbsDiff(two, one, V);
      expect(d.max, describeDiff(d)).toBeLessThanOrEqual(1e-6);
      const reference = maxAbsDiff(two, window ? golden.window_logits! : golden.logits, V);
      expect(reference.max, describeDiff(reference)).toBeLessThanOrEqual(1e-4);
    });
  }

  it('reports a token outside the vocabulary as one line and fails the pipeline', async () => {
    await pipeline.load(fixtureDir('mamba'));
    await pipeline.begin(logitsOnly);
    await expect(pipeline.submit(Int32Array.of(1, 2, 1000), new Int32Array(0))).rejects.toThrow(/token 1000 at position 2 is outside the model's vocabulary/);
    await expect(pipeline.submit(Int32Array.of(1), new Int32Array(0))).rejects.toThrow(/outside the model's vocabulary/);
  });
});

describe('a stage worker that dies', () => {
  const work = tempDir();
  let model: string;
  beforeAll(() => {
    model = writeTinyModel(work.dir, 'ttt-linear');
  });
  afterAll(() => work.cleanup());
  const ids = Int32Array.from(new TextEncoder().encode(sampleText));

  for (const [kind, message] of [['exit', /^model stage 2 of 2 \(layers 1–1\): stopped \(its thread exited with code 3\)$/], ['throw', /^model stage 2 of 2 \(layers 1–1\): failed: injected fault/]] as const) {
    it(`fails every pending chunk with one line, without hanging (${kind})`, async () => {
      const pipeline = await StagePipeline.start({ backend: 'wasm', stages: 2 });
      try {
        await pipeline.load(model);
        await pipeline.begin(logitsOnly);
        const first = await pipeline.submit(ids.subarray(0, 32), new Int32Array(0));
        expect(first.logits!.length).toBe(32 * 256);
        pipeline.injectFault(1, kind);
        const pending = [pipeline.submit(ids.subarray(32, 64), new Int32Array(0)), pipeline.submit(ids.subarray(64, 96), new Int32Array(0))];
        for (const p of pending) await expect(p).rejects.toThrow(message);
        await expect(pipeline.submit(ids.subarray(96, 128), new Int32Array(0))).rejects.toThrow(message);
        await expect(pipeline.begin(logitsOnly)).rejects.toThrow(message);
      } finally {
        await pipeline.close();
      }
    });
  }
});

describe('saveState / loadState through the stages', () => {
  const work = tempDir();
  afterAll(() => work.cleanup());
  const ids = Int32Array.from(new TextEncoder().encode(sampleText)).subarray(0, 90);

  it('captures each stage right after the chunks before it, later chunks in flight; a reload continues the same', async () => {
    const model = writeTinyModel(work.dir, 'ttt-mlp');
    const pipeline = await StagePipeline.start({ backend: 'wasm', stages: 2 });
    try {
      await pipeline.load(model);
      await pipeline.begin(logitsOnly);
      // chunks of 10 (the mini-batch is 16): the state is saved inside a mini-batch, with three chunks behind it
      const answers = [0, 10, 20].map((at) => pipeline.submit(ids.subarray(at, at + 10), new Int32Array(0)));
      const saved = pipeline.saveState();
      answers.push(...[30, 40, 50, 60, 70, 80].map((at) => pipeline.submit(ids.subarray(at, at + 10), new Int32Array(0))));
      const straight = await Promise.all(answers);
      const parts = await saved;
      expect(parts.map((p) => p.layerStart)).toEqual([0, 1]);
      await pipeline.begin(logitsOnly);
      await pipeline.loadState(parts);
      const resumed = await Promise.all([30, 40, 50, 60, 70, 80].map((at) => pipeline.submit(ids.subarray(at, at + 10), new Int32Array(0))));
      let worst = 0;
      resumed.forEach((r, i) => r.logits!.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - straight[i + 3].logits![j])))));
      expect(worst).toBeLessThanOrEqual(1e-6);
    } finally {
      await pipeline.close();
    }
  });
});
