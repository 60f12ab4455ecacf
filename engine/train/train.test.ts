import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readArrowTable } from '../analysis/arrow-writer.js';
import { selectBackend } from '../core/backend.js';
import { byteTokenizer, encodeDocument } from '../core/tokenizers/index.js';
import { main } from '../cli.js';
import { loadModel } from '../io/load-model.js';
import { architectures, presetConfig } from '../models/init.js';
import { sampleText, tempDir, type TempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { runFiles } from './checkpoint.js';
import { splitSources, validationWindows, WindowSampler } from './data.js';
import { nextTokenLoss } from './trainable.js';
import { resolveSettings, type TrainOptions, type TrainProgress, trainModel } from './train.js';

let tmp: TempDir;
let book: string;

beforeAll(async () => {
  await selectBackend('wasm');
  tmp = tempDir('ttt-train-');
  book = join(tmp.dir, 'genesis.txt');
  writeFileSync(book, sampleText.repeat(6));
});

afterAll(() => tmp.cleanup());

/** Training losses per step, from the progress events. */
async function lossCurve(options: TrainOptions, stopAfter?: number): Promise<number[]> {
  const losses: number[] = [];
  const controller = new AbortController();
  await trainModel(options, {
    signal: controller.signal,
    onProgress: (p: TrainProgress) => {
      if (p.type !== 'step') return;
      losses.push(p.loss);
      if (p.step === stopAfter) controller.abort();
    },
  });
  return losses;
}

describe('training lowers the loss', () => {
  // the delta-rule family is analysed, not trained (train refuses it in one line)
  for (const arch of architectures.filter((a) => !a.includes('delta'))) {
    it(`${arch} (tiny)`, async () => {
      const model = writeTinyModel(tmp.dir, arch);
      const losses = await lossCurve({ model, data: [book], out: join(tmp.dir, `run-${arch}`), context: 32, batch: 2, steps: 12, lr: 3e-3, warmup: 2, valFraction: 0 });
      expect(losses).toHaveLength(12);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(mean(losses.slice(-3))).toBeLessThan(mean(losses.slice(0, 3)) - 0.3);
    });
  }
});

describe('checkpoints and resume', () => {
  it('resuming an interrupted run continues the same loss curve, and the run folder loads as a model', async () => {
    const model = writeTinyModel(tmp.dir, 'ttt-mlp', 'resume-model');
    const settings = { model, data: [book], context: 32, batch: 2, steps: 6, warmup: 3, valEvery: 3, valWindows: 2, saveEvery: 100 } as const;
    const straight = await lossCurve({ ...settings, out: join(tmp.dir, 'straight') });
    const out = join(tmp.dir, 'interrupted');
    const first = await lossCurve({ ...settings, out }, 3);
    const rest = await lossCurve({ out, resume: true });
    expect(first).toHaveLength(3);
    expect(rest).toHaveLength(3);
    [...first, ...rest].forEach((loss, i) => expect(Math.abs(loss - straight[i])).toBeLessThan(1e-5));

    // the log holds every step once; its last validation loss is what the saved model gives when loaded
    const log = await readArrowTable(join(out, runFiles.log));
    expect(Array.from(log.getChild('step')!.toArray() as Int32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    const logged = (log.getChild('val_loss')!.toArray() as Float64Array)[5];
    const ids = encodeDocument(byteTokenizer, readFileSync(book, 'utf8'));
    const windows = validationWindows(splitSources([{ name: book, ids }], 0.05).validation, 33, 2);
    const { model: loaded } = await loadModel(out);
    let sum = 0;
    for (const w of windows) sum += tf.tidy(() => nextTokenLoss(loaded, w).arraySync());
    loaded.dispose();
    expect(Math.abs(sum / windows.length - logged)).toBeLessThan(1e-5);
  });

  it('leaks no tensors', async () => {
    const model = writeTinyModel(tmp.dir, 'mamba', 'leak-model');
    const before = tf.memory().numTensors;
    await trainModel({ model, data: [book], out: join(tmp.dir, 'leak'), context: 16, batch: 2, steps: 2, valEvery: 1, valWindows: 1 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('ttt-workbench train', () => {
  const run = async (...argv: string[]) => {
    const out: string[] = [], err: string[] = [];
    const code = await main(['train', ...argv], { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };

  it('trains from the command line and refuses to start over a run without --resume', async () => {
    const model = writeTinyModel(tmp.dir, 'transformer', 'cli-model');
    const out = join(tmp.dir, 'cli-run');
    const args = ['--model', model, '--data', book, '--context', '16', '--batch', '1', '--steps', '2', '--out', out, '--backend', 'wasm'];
    const first = await run(...args);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/^finished at step 2\/2/);
    const again = await run(...args);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already holds a training run; pass --resume/);
    expect(again.err.split('\n')).toHaveLength(1);
  });

  it('gives one-line errors for bad input', async () => {
    const model = writeTinyModel(tmp.dir, 'ttt-linear', 'bad-input-model');
    const cases: [string[], RegExp][] = [
      [['--model', model, '--data', book, '--context', '16', '--batch', '1', '--steps', '2'], /--out is required/],
      [['--out', join(tmp.dir, 'nothing-here'), '--resume'], /no training run to resume/],
      [['--model', model, '--data', join(tmp.dir, 'missing.txt'), '--context', '16', '--batch', '1', '--steps', '2', '--out', join(tmp.dir, 'x1')], /missing\.txt: no such file/],
      [['--model', model, '--data', book, '--context', '100000', '--batch', '1', '--steps', '2', '--out', join(tmp.dir, 'x2')], /shorter than one window/],
      [['--model', model, '--data', book, '--context', '16', '--batch', '1', '--steps', '2', '--lr', 'fast', '--out', join(tmp.dir, 'x3')], /--lr must be a number > 0/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(...argv);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(message);
      expect(r.err.split('\n')).toHaveLength(1);
    }
  });
});

describe('window sampler', () => {
  it('draws the same windows for a step whatever came before, inside the training text', () => {
    const ids = Int32Array.from({ length: 1000 }, (_, i) => i);
    const sampler = new WindowSampler([{ name: 'a', ids: ids.subarray(0, 600) }, { name: 'b', ids: ids.subarray(600) }], 50, 7);
    const again = new WindowSampler([{ name: 'a', ids: ids.subarray(0, 600) }, { name: 'b', ids: ids.subarray(600) }], 50, 7);
    const windows = sampler.batch(41, 16);
    again.batch(3, 5);
    expect(again.batch(41, 16).map((w) => w[0])).toEqual(windows.map((w) => w[0]));
    for (const w of windows) {
      expect(w).toHaveLength(50);
      expect(w[49] - w[0]).toBe(49); // consecutive tokens of one source
      expect(w[0] < 600 ? w[49] < 600 : true).toBe(true);
    }
    expect(new Set(sampler.batch(42, 16).map((w) => w[0]))).not.toEqual(new Set(windows.map((w) => w[0])));
  });
});

describe('TTT-MLP base-lr warm-up setting', () => {
  const mlp = presetConfig('ttt-mlp', 'tiny');
  const base = { out: 'unused', context: 16, batch: 2, steps: 10 };

  it('is on by default for TTT-MLP only, and off when asked (a run that continues a trained model)', () => {
    expect(resolveSettings(base, mlp).tttBaseLrWarmup).toBe(true);
    expect(resolveSettings(base, presetConfig('ttt-linear', 'tiny')).tttBaseLrWarmup).toBe(false);
    expect(resolveSettings({ ...base, tttBaseLrWarmup: false }, mlp).tttBaseLrWarmup).toBe(false);
  });
});
