/**
 * The probes on tiny models: the interventions against what they mean (a frozen inner loop is a learning rate of
 * zero, a reset is a fresh start, a transplant is the donor read first), the needle grid's forks against contexts
 * built whole, copy distance on a model that copies and on one that does not, and the CLI's run folder.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readArrowTable } from '../engine/analysis/arrow-writer.js';
import { selectBackend } from '../engine/core/backend.js';
import { byteTokenizer, encodeDocument } from '../engine/core/tokenizers/index.js';
import { main } from '../engine/cli.js';
import { loadModel } from '../engine/io/load-model.js';
import type { CausalLM } from '../engine/models/model.js';
import { architectures } from '../engine/models/init.js';
import { seededRandom } from '../engine/core/random.js';
import { copyPlan, runCopyDistance } from '../engine/probes/copy.js';
import { runInterventions } from '../engine/probes/intervene.js';
import { trainModel } from '../engine/train/train.js';
import { encodeNeedles, fixedTokensOf, needleCells, needleKeys, runNeedleGrid } from '../engine/probes/needle.js';
import { runProbe } from '../engine/probes/run.js';
import { TokenStream } from '../engine/probes/stream.js';
import { ProbeManifest } from '../engine/protocol.js';
import { sampleText, tempDir, type TempDir, writeTinyModel } from './helpers/tiny-models.js';

let tmp: TempDir;
const text = encodeDocument(byteTokenizer, sampleText);
const book = text.subarray(0, 160);
const donor = text.subarray(300, 364); // 64 tokens: the donor's chunking is the back-to-back run's
const feed = { chunkTokens: 64 };

beforeAll(async () => {
  await selectBackend('wasm');
  tmp = tempDir('ttt-probes-');
});

afterAll(() => tmp.cleanup());

async function load(arch: (typeof architectures)[number], overrides: Record<string, unknown> = {}, name: string = arch): Promise<CausalLM> {
  const dir = join(tmp.dir, name);
  writeTinyModel(tmp.dir, arch, name, overrides);
  return (await loadModel(dir)).model;
}

/** NLL of a fresh run over `ids`. */
async function freshNll(model: CausalLM, ids: Int32Array): Promise<Float32Array> {
  const stream = TokenStream.fresh(model);
  try {
    return (await stream.feed(ids, feed)).nll;
  } finally {
    stream.dispose();
  }
}

/** Largest |a[i] − b[i]| over i, and where. */
function worst(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; at: number } {
  expect(a.length).toBe(b.length);
  let diff = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) [diff, at] = [d, i];
  }
  return { diff, at };
}

describe('frozen inner loop', () => {
  for (const arch of ['ttt-linear', 'ttt-mlp'] as const) {
    // t = 40 falls inside a mini-batch (K = 16): both sides still apply the gradients of tokens 32..39 at 48
    it(`${arch}: frozen from t equals the same weights with ttt_base_lr 0 from t, token for token`, async () => {
      const t = 40;
      // weights ten times the usual initial scale, so that the inner loop moves the outputs: one token's update shows
      const model = await load(arch, { initializer_range: 0.2 }, `${arch}-strong`);
      const { intervened, nll } = await runInterventions(model, { book, at: t, interventions: ['frozen'] }, feed);
      // reference: the model reads to t, then a copy of it whose config says ttt_base_lr 0 reads on from that state
      const zeroDir = join(tmp.dir, `${arch}-lr0`);
      mkdirSync(zeroDir, { recursive: true });
      const config = JSON.parse(readFileSync(join(tmp.dir, `${arch}-strong`, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(zeroDir, 'config.json'), JSON.stringify({ ...config, ttt_base_lr: 0 }));
      copyFileSync(join(tmp.dir, `${arch}-strong`, 'model.safetensors'), join(zeroDir, 'model.safetensors'));
      const zero = (await loadModel(zeroDir)).model;
      const head = TokenStream.fresh(model);
      await head.feed(book.subarray(0, t), feed);
      const tail = new TokenStream(zero, head.takeState());
      const reference = (await tail.feed(book.subarray(t), feed)).nll;
      tail.dispose();
      const { diff, at } = worst(intervened.frozen!.subarray(t + 1), reference.subarray(1));
      expect(diff, `worst difference ${diff} at token ${t + 1 + at}`).toBeLessThanOrEqual(1e-5);
      // and freezing changes something: the probe can tell a learning inner loop from a frozen one
      expect(worst(intervened.frozen!.subarray(t + 1), nll.subarray(t + 1)).diff).toBeGreaterThan(1e-2);
      model.dispose();
      zero.dispose();
    });
  }

  it('mamba and the Transformer have no inner loop to freeze: skipped, with why', async () => {
    const model = await load('mamba');
    const result = await runInterventions(model, { book: book.subarray(0, 48), at: 16, interventions: ['frozen', 'reset'] }, feed);
    expect(result.skipped.frozen).toMatch(/no inner loop/);
    expect(result.intervened.reset).toBeDefined();
    model.dispose();
  });
});

describe('state reset and transplant', () => {
  for (const arch of architectures) {
    // TTT at t = 32, a multiple of the mini-batch size (16); the Transformer's RoPE is relative, so the same up to rounding
    it(`${arch}: a reset at t equals a fresh run on the text after t; a transplant equals the donor read first`, async () => {
      const t = 32;
      const model = await load(arch);
      const before = tf.memory().numTensors;
      const { intervened, nll } = await runInterventions(model, { book, at: t, interventions: ['reset', 'transplant'], donor }, feed);
      expect(tf.memory().numTensors).toBe(before);
      const fresh = await freshNll(model, book.subarray(t));
      const reset = worst(intervened.reset!.subarray(t + 1), fresh.subarray(1));
      expect(reset.diff, `reset: worst difference ${reset.diff} at token ${t + 1 + reset.at}`).toBeLessThanOrEqual(1e-4);
      const joined = new Int32Array([...donor, ...book.subarray(t)]);
      const backToBack = await freshNll(model, joined);
      const transplant = worst(intervened.transplant!.subarray(t + 1), backToBack.subarray(donor.length + 1));
      expect(transplant.diff, `transplant: worst difference ${transplant.diff} at token ${t + 1 + transplant.at}`).toBeLessThanOrEqual(1e-4);
      // the context before t matters to these models, so neither check could pass with the state left alone
      expect(worst(nll.subarray(t + 1), fresh.subarray(1)).diff).toBeGreaterThan(1e-3);
      expect(worst(nll.subarray(t + 1), backToBack.subarray(donor.length + 1)).diff).toBeGreaterThan(1e-3);
      model.dispose();
    });
  }

  it('ttt-linear: a reset inside a mini-batch keeps its phase, so it is not a fresh run (what holds elsewhere)', async () => {
    // at t = 40 the reset state starts with 8 tokens of mini-batch 2 left: token_eta and RoPE continue from offset 8
    // and the first update lands at 48, where a fresh run on the text after t updates after 16 tokens
    const t = 40;
    const model = await load('ttt-linear', {}, 'ttt-linear-phase');
    const { intervened } = await runInterventions(model, { book, at: t, interventions: ['reset'] }, feed);
    const fresh = await freshNll(model, book.subarray(t));
    expect(worst(intervened.reset!.subarray(t + 1), fresh.subarray(1)).diff).toBeGreaterThan(1e-4);
    model.dispose();
  });
});

describe('needle grid', () => {
  it('each fork scores the key as the whole context read from scratch does', async () => {
    const model = await load('ttt-linear', {}, 'ttt-needle');
    const keys = needleKeys('digits', 2, 3);
    const tokens = encodeNeedles(byteTokenizer, keys);
    const cells = needleCells([160, 200], [0, 0.5, 1], fixedTokensOf(tokens), () => false);
    const rows = await runNeedleGrid(model, text, cells, tokens, feed);
    expect(rows).toHaveLength(cells.length * keys.length);
    for (const row of [rows[3], rows[rows.length - 1]]) {
      const c = row.cell, k = row.keyIndex;
      const whole = new Int32Array([...text.subarray(0, c.insertAt), ...tokens.needle[k], ...text.subarray(c.insertAt, c.haystack), ...tokens.question, ...tokens.key[k]]);
      expect(whole.length).toBeLessThanOrEqual(c.length);
      const nll = await freshNll(model, whole);
      let bits = 0;
      for (let j = whole.length - tokens.key[k].length; j < whole.length; j++) bits += nll[j] / Math.LN2;
      expect(Math.abs(row.bits - bits)).toBeLessThan(1e-3);
      expect(row.matched).toBeLessThanOrEqual(row.keyTokens);
    }
    model.dispose();
  });
});

describe('copy distance', () => {
  // 8-letter random words; training repeats each one three times ("abcdefgh abcdefgh abcdefgh"), the probe's book
  // has each word once, so only a model that copies from 9 tokens back predicts a span read again right after itself
  const random = seededRandom(5);
  const word = () => Array.from({ length: 8 }, () => String.fromCharCode(97 + Math.floor(random.uniform() * 26))).join('');
  const distances = [0, 32, 256];
  const curve = async (dir: string) => {
    const model = (await loadModel(dir)).model;
    const ids = encodeDocument(byteTokenizer, Array.from({ length: 300 }, word).join(' '));
    const rows = await runCopyDistance(model, ids, copyPlan(ids.length, 9, distances, 4, 1), 9, { chunkTokens: 256 });
    model.dispose();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return distances.map((D) => rows.filter((r) => r.distance === D)).map((rs) => ({ first: mean(rs.map((r) => r.nllFirst)), second: mean(rs.map((r) => r.nllSecond)) }));
  };

  it('a Transformer trained a little on repeated words copies a span read again at once; a random one copies nothing', async () => {
    const data = join(tmp.dir, 'repeats.txt');
    writeFileSync(data, Array.from({ length: 3000 }, () => {
      const w = word();
      return `${w} ${w} ${w}\n`;
    }).join(''));
    const untrained = writeTinyModel(tmp.dir, 'transformer', 'copy-random');
    const trained = join(tmp.dir, 'copy-trained');
    await trainModel({ model: untrained, data: [data], out: trained, context: 64, batch: 4, steps: 120, lr: 1e-2, warmup: 2, valFraction: 0 });
    const before = await curve(untrained), after = await curve(trained);
    for (const p of before) expect(Math.abs(p.second - p.first)).toBeLessThan(0.05);
    expect(after[0].second).toBeLessThan(after[0].first - 0.3); // D = 0: the drop
    expect(Math.abs(after[2].second - after[2].first)).toBeLessThan(0.2); // D = 256: past what it learned to copy
  }, 240_000);
});

describe('probe CLI', () => {
  it('writes a run folder: a valid manifest and an Arrow table per model', async () => {
    const bookFile = join(tmp.dir, 'book.txt');
    writeFileSync(bookFile, sampleText);
    const ttt = writeTinyModel(tmp.dir, 'ttt-linear', 'cli-ttt'), mamba = writeTinyModel(tmp.dir, 'mamba', 'cli-mamba');
    const out = join(tmp.dir, 'run-intervene');
    const lines: string[] = [];
    const io = { stdout: (s: string) => lines.push(s), stderr: (s: string) => lines.push(s) };
    const code = await main(['probe', 'intervene', bookFile, '--model', ttt, '--model', mamba, '--out', out, '--at', '32', '--max-tokens', '96', '--chunk', '32'], io);
    expect(code, lines.join('\n')).toBe(0);
    const manifest = ProbeManifest.parse(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')));
    expect(manifest.status).toBe('finished');
    expect(manifest.models.map((m) => m.status)).toEqual(['finished', 'finished']);
    expect(manifest.models[1].skipped?.frozen).toMatch(/no inner loop/);
    const table = await readArrowTable(join(out, manifest.models[0].files.intervene));
    expect(table.numRows).toBe(96);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['position', 'token', 'nll', 'nll_frozen', 'dnll_frozen', 'nll_reset', 'dnll_reset']);
    // cancelled between chunks: the run is kept, marked cancelled, its manifest valid
    const controller = new AbortController();
    const { manifest: stopped } = await runProbe({
      params: { kind: 'copy', book: bookFile, models: [ttt, mamba], spanTokens: 8, distances: [0, 64], chunkTokens: 16 },
      runDir: join(tmp.dir, 'run-cancelled'), backend: await selectBackend('wasm'), signal: controller.signal, progressIntervalMs: 0,
      onProgress: (p) => {
        if (p.tokensDone > 0) controller.abort();
      },
    });
    expect(stopped.status).toBe('cancelled');
    expect(stopped.models.map((m) => m.status)).toEqual(['cancelled', 'cancelled']);
    expect(ProbeManifest.parse(JSON.parse(readFileSync(join(tmp.dir, 'run-cancelled', 'manifest.json'), 'utf8'))).status).toBe('cancelled');
    const usage = await main(['probe', 'sideways', bookFile], io);
    expect(usage).toBe(1);
    expect(lines[lines.length - 1]).toMatch(/unknown probe "sideways"/);
  });
});
