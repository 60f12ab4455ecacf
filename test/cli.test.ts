import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../engine/cli.js';
import { describeDiff, fixtureDir, maxAbsDiff, readGolden, repoRoot } from './helpers/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'ttt-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('ttt-workbench logits', () => {
  const name = 'ttt-mlp-transformer-backbone';
  const golden = readGolden(name);

  it('writes reference-matching logits for a fixture, full and --decode-from 32', async () => {
    for (const extra of [[], ['--decode-from', '32'], ['--chunk', '7']]) {
      const outPath = join(work, `out-${extra.join('')}.json`);
      const r = await run(['logits', '--model', fixtureDir(name), '--input', `${fixtureDir(name)}/golden.json`, '--backend', 'wasm', '--out', outPath, ...extra]);
      expect(r.code, r.stderr).toBe(0);
      const written = JSON.parse(readFileSync(outPath, 'utf8')) as { shape: number[]; logits: number[]; backend: string };
      expect(written.shape).toEqual([53, 96]);
      expect(written.backend).toBe('wasm');
      const d = maxAbsDiff(written.logits, golden.logits, 96);
      expect(d.max, describeDiff(d)).toBeLessThanOrEqual(1e-4);
    }
  });

  it('runs the baselines: Llama with --window 16 and Mamba token by token', async () => {
    const llama = readGolden('llama');
    const windowed = join(work, 'llama-window.json');
    expect((await run(['logits', '--model', fixtureDir('llama'), '--input', `${fixtureDir('llama')}/golden.json`, '--window', '16', '--chunk', '5', '--out', windowed])).code).toBe(0);
    const w = maxAbsDiff((JSON.parse(readFileSync(windowed, 'utf8')) as { logits: number[] }).logits, llama.window_logits!, 96);
    expect(w.max, describeDiff(w)).toBeLessThanOrEqual(1e-4);
    const mamba = readGolden('mamba');
    const decoded = join(work, 'mamba-decode.json');
    expect((await run(['logits', '--model', fixtureDir('mamba'), '--input', `${fixtureDir('mamba')}/golden.json`, '--decode-from', '10', '--out', decoded])).code).toBe(0);
    const m = maxAbsDiff((JSON.parse(readFileSync(decoded, 'utf8')) as { logits: number[] }).logits, mamba.logits, 96);
    expect(m.max, describeDiff(m)).toBeLessThanOrEqual(1e-4);
  });

  it('fails with one line naming the problem', async () => {
    const noIds = join(work, 'no-ids.json');
    writeFileSync(noIds, JSON.stringify({ tokens: [1, 2] }));
    const outOfVocab = join(work, 'oov.json');
    writeFileSync(outOfVocab, JSON.stringify({ input_ids: [1, 2, 300] }));
    const cases: [string[], RegExp][] = [
      [['logits', '--input', noIds, '--out', 'x.json'], /^ttt-workbench logits: logits: --model is required/],
      [['logits', '--model', join(work, 'nope'), '--input', `${fixtureDir(name)}/golden.json`, '--out', 'x.json'], /nope\/config\.json: no such file$/],
      [['logits', '--model', fixtureDir(name), '--input', noIds, '--out', 'x.json'], /no-ids\.json: needs a non-empty "input_ids" array$/],
      [['logits', '--model', fixtureDir(name), '--input', outOfVocab, '--out', 'x.json'], /oov\.json: token 300 at position 2 is outside the model's vocabulary \(0\.\.95\)$/],
      [['logits', '--model', fixtureDir(name), '--input', noIds, '--out', 'x.json', '--backend', 'tpu'], /backend "tpu" is not available \(unknown backend name\)/],
      [['logits', '--bogus'], /Unknown option '--bogus'/],
      [['frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [argv, pattern] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.stderr.split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
  });
});

describe('ttt-workbench init, analyze and export', () => {
  it('makes a model, analyses a book into a run folder, and exports it as CSV', async () => {
    const model = join(work, 'tiny-ttt');
    const made = await run(['init', '--arch', 'ttt-mlp', '--preset', 'tiny', '--seed', '3', '--out', model]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toMatch(/wrote ttt-mlp \(tiny, [\d,]+ parameters\)/);
    const book = join(work, 'book.txt');
    writeFileSync(book, 'In the beginning God created the heaven and the earth. '.repeat(20));
    const runDir = join(work, 'run');
    const analysed = await run(['analyze', book, '--model', model, '--out', runDir, '--max-tokens', '500', '--chunk', '96', '--backend', 'wasm']);
    expect(analysed.code, analysed.stderr).toBe(0);
    expect(analysed.stdout).toMatch(/tiny-ttt\s+finished\s+500 tokens\s+\d\.\d{4} bits\/byte/);
    const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as { status: string; models: { files: Record<string, string> }[] };
    expect(manifest.status).toBe('finished');
    expect(Object.keys(manifest.models[0].files).sort()).toEqual(['hiddenState', 'innerLoop', 'nll', 'snapshots', 'throughput']);
    const csv = join(work, 'csv');
    expect((await run(['export', runDir, '--csv', csv])).code).toBe(0);
    const nll = readFileSync(join(csv, '0-tiny-ttt', 'nll.csv'), 'utf8').trim().split('\n');
    expect(nll[0]).toBe('position,token,nll,bytes');
    expect(nll).toHaveLength(500); // header + 499 predicted tokens
    expect(readFileSync(join(csv, 'summary.csv'), 'utf8')).toMatch(/^model,architecture,status,tokens,bits_per_byte,tokens_per_s\n0-tiny-ttt,"TTT-MLP \(Mamba backbone\)",finished,500,/);
  });

  it('refuses bad books and options in one line', async () => {
    const model = join(work, 'tiny-lin');
    await run(['init', '--arch', 'ttt-linear', '--preset', 'tiny', '--out', model]);
    const utf16 = join(work, 'bad.txt');
    writeFileSync(utf16, Buffer.from([0x48, 0x69, 0xc3, 0x28, 0x0a]));
    const cases: [string[], RegExp][] = [
      [['analyze', utf16, '--model', model, '--out', join(work, 'r1')], /bad\.txt: not valid UTF-8: the first bad byte sequence is at byte offset 2$/],
      [['analyze', join(work, 'missing.txt'), '--model', model, '--out', join(work, 'r2')], /missing\.txt: no such file/],
      [['analyze', utf16, '--out', join(work, 'r3')], /--model is required/],
      [['init', '--arch', 'rnn', '--preset', 'tiny', '--out', join(work, 'x')], /unknown --arch "rnn"/],
      [['init', '--arch', 'mamba', '--preset', 'huge', '--out', join(work, 'x')], /unknown preset "huge"/],
    ];
    for (const [argv, pattern] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.stderr.split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
  });
});

describe('ttt-workbench info', () => {
  it('describes a model', async () => {
    const r = await run(['info', '--model', fixtureDir('ttt-linear-mamba-backbone'), '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/architecture\s+TTT-Linear \(Mamba backbone\)/);
    expect(r.stdout).toMatch(/parameters\s+\d{3},\d{3}/);
    expect(r.stdout).toMatch(/heads\s+4/);
    expect(r.stdout).toMatch(/backend\s+cpu/);
    const j = await run(['info', '--model', fixtureDir('ttt-mlp-mamba-backbone'), '--json']);
    const info = JSON.parse(j.stdout) as { layers: number; parameters: number; backend: { name: string } };
    expect(info.layers).toBe(2);
    expect(info.parameters).toBeGreaterThan(100_000);
    expect(['tensorflow', 'wasm']).toContain(info.backend.name);
  });
});

describe('the ttt-workbench binary', () => {
  it('runs from the package bin with --help and exits non-zero on bad input', async () => {
    const bin = join(repoRoot, 'bin/ttt-workbench.js');
    const help = await promisify(execFile)(process.execPath, [bin, 'logits', '--help']);
    expect(help.stdout).toMatch(/Usage: ttt-workbench logits --model DIR --input FILE\.json --out OUT\.json/);
    // the automatic choice of backend probes WebGPU in a child process: Dawn's warnings must not reach stderr
    const failed = await promisify(execFile)(process.execPath, [bin, 'info', '--model', join(work, 'missing')]).catch((e: { code: number; stderr: string }) => e);
    expect((failed as { code: number }).code).toBe(1);
    expect((failed as { stderr: string }).stderr.trim()).toMatch(/^ttt-workbench info: .*missing\/config\.json: no such file$/);
  });
});
