/**
 * The CLI refuses what would destroy a user's work or start something absurd, in one line each, and stops cleanly
 * on SIGTERM and SIGHUP; a full disk fails the run with one line and keeps a readable partial run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrowFilesIn, readArrowTable } from '../engine/analysis/arrow-writer.js';
import { selectBackend } from '../engine/core/backend.js';
import { main } from '../engine/cli.js';
import { EngineService } from '../engine/server/engine-service.js';
import { repoRoot } from './helpers/fixtures.js';
import { sampleText, tempDir, writeTinyModel } from './helpers/tiny-models.js';

const work = tempDir('ttt-guards-');
afterAll(() => work.cleanup());
let model: string;
let book: string;

beforeAll(() => {
  model = writeTinyModel(work.dir, 'ttt-linear', 'model');
  book = join(work.dir, 'book.txt');
  writeFileSync(book, sampleText.repeat(4));
});

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

/** Exits non-zero with exactly one line on stderr matching `pattern`. */
async function refuses(argv: string[], pattern: RegExp): Promise<void> {
  const r = await run(argv);
  expect(r.code, argv.join(' ')).not.toBe(0);
  expect(r.stderr.split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/internal error/);
}

const analyze = (out: string, ...extra: string[]) => ['analyze', book, '--model', model, '--out', out, '--max-tokens', '200', '--chunk', '64', '--backend', 'cpu', '--stages', '1', ...extra];

/** The pid of a process that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

describe('CLI guards', () => {
  it('refuses bad numbers in one line', async () => {
    await refuses(analyze(join(work.dir, 'n1'), '--chunk', '-5'), /--chunk must be an integer ≥ 1, got "-5"$/);
    await refuses([...analyze(join(work.dir, 'n2')).slice(0, -2), '--stages', '0'], /--stages must be an integer ≥ 1, got "0"$/);
    await refuses(analyze(join(work.dir, 'n3'), '--max-tokens', '2.5'), /--max-tokens must be an integer ≥ 1, got "2\.5"$/);
    await refuses(['init', '--arch', 'ttt-linear', '--preset', 'tiny', '--seed', '-1', '--out', join(work.dir, 'n4')], /--seed must be an integer ≥ 0, got "-1"$/);
  });

  it('analyze --out: refuses a file, a path through a file, a run or any non-empty folder without --force', async () => {
    const file = join(work.dir, 'a-file');
    writeFileSync(file, 'x');
    await refuses(analyze(file), /a-file: cannot write \(it is a file, not a folder\)$/);
    await refuses(analyze(join(file, 'sub')), /a-file\/sub: cannot write \(a part of the path is a file\)$/);
    const other = join(work.dir, 'notes');
    mkdirSync(other);
    writeFileSync(join(other, 'mine.txt'), 'keep me');
    await refuses(analyze(other), /notes: cannot write \(it is not empty \(1 entries\); pass --force/);
    expect(readFileSync(join(other, 'mine.txt'), 'utf8')).toBe('keep me');

    const runDir = join(work.dir, 'run');
    const first = await run(analyze(runDir));
    expect(first.code, first.stderr).toBe(0);
    await refuses(analyze(runDir), /run: cannot write \(it holds a run; pass --force to replace it, or choose a new folder\)$/);
    // --force replaces the run: the old model's files do not stay orphaned beside the new ones
    const mamba = writeTinyModel(work.dir, 'mamba', 'other-model');
    const forced = await run(['analyze', book, '--model', mamba, '--out', runDir, '--max-tokens', '100', '--backend', 'cpu', '--stages', '1', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readdirSync(join(runDir, 'models'))).toEqual(['0-other-model']);
    expect(existsSync(join(runDir, '.lock'))).toBe(false);
  });

  it('refuses a second writer of a run folder; a stale lock of a dead process is taken over', async () => {
    const runDir = join(work.dir, 'locked');
    mkdirSync(runDir);
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      writeFileSync(join(runDir, '.lock'), `${holder.pid}\n`);
      await refuses(analyze(runDir), new RegExp(`locked: is being written by process ${holder.pid} `));
    } finally {
      holder.kill();
    }
    writeFileSync(join(runDir, '.lock'), `${deadPid()}\n`);
    const r = await run(analyze(runDir));
    expect(r.code, r.stderr).toBe(0);
  });

  it('clamps --stages to the layer count with a note', async () => {
    const r = await run([...analyze(join(work.dir, 'stages')).slice(0, -2), '--stages', '99']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^analyze: --stages 99 is more than the 2 layers of the model; using 2$/m);
    const manifest = JSON.parse(readFileSync(join(work.dir, 'stages', 'manifest.json'), 'utf8')) as { models: { stages: unknown[] }[] };
    expect(manifest.models[0].stages).toHaveLength(2);
  });

  it('init and train do not overwrite a model without --force', async () => {
    const dir = join(work.dir, 'made');
    expect((await run(['init', '--arch', 'ttt-linear', '--preset', 'tiny', '--out', dir])).code).toBe(0);
    const weights = readFileSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'trainer_state.json'), '{}');
    await refuses(['init', '--arch', 'ttt-linear', '--preset', 'tiny', '--seed', '5', '--out', dir], /made: cannot write \(it holds a model; pass --force/);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weights)).toBe(true);
    const forced = await run(['init', '--arch', 'ttt-linear', '--preset', 'tiny', '--seed', '5', '--out', dir, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weights)).toBe(false);
    expect(existsSync(join(dir, 'trainer_state.json'))).toBe(false);
    await refuses(['train', '--model', dir, '--data', book, '--out', `${dir}/`, '--context', '16', '--batch', '1', '--steps', '1'], /--out .*made\/ is the --model folder/);
  });

  it('info refuses what loading refuses, with the loader\'s one-line error', async () => {
    const header = (dir: string) => {
      const bytes = readFileSync(join(dir, 'model.safetensors'));
      const n = Number(bytes.readBigUInt64LE(0));
      return { json: JSON.parse(bytes.subarray(8, 8 + n).toString()) as Record<string, { dtype: string; shape: number[] }>, data: bytes.subarray(8 + n) };
    };
    const rewrite = (name: string, edit: (h: Record<string, { dtype: string; shape: number[] }>) => void) => {
      const dir = join(work.dir, name);
      cpSync(model, dir, { recursive: true });
      const { json, data } = header(dir);
      edit(json);
      let text = JSON.stringify(json);
      text += ' '.repeat((8 - (text.length % 8)) % 8);
      const size = Buffer.alloc(8);
      size.writeBigUInt64LE(BigInt(text.length));
      writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([size, Buffer.from(text), data]));
      return dir;
    };
    const embed = 'model.embed_tokens.weight';
    const vocab = join(work.dir, 'vocab300');
    cpSync(model, vocab, { recursive: true });
    const config = JSON.parse(readFileSync(join(vocab, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(vocab, 'config.json'), JSON.stringify({ ...config, vocab_size: 300 }));
    expect((await run(['info', model, '--backend', 'cpu'])).code).toBe(0);
    await refuses(['info', vocab, '--backend', 'cpu'], /wrong shape: model\.embed_tokens\.weight is \[256, 64\], config\.json implies \[300, 64\]/);
    await refuses(['info', rewrite('transposed', (h) => void h[embed].shape.reverse()), '--backend', 'cpu'], /wrong shape: model\.embed_tokens\.weight is \[64, 256\]/);
    await refuses(['info', rewrite('missing', (h) => delete h[embed]), '--backend', 'cpu'], /missing tensor model\.embed_tokens\.weight$/);
    await refuses(['info', rewrite('int32', (h) => void (h[embed].dtype = 'I32')), '--backend', 'cpu'], /tensor model\.embed_tokens\.weight has dtype I32; supported: F32, F16, BF16$/);
  });

  it('opens a run folder copied into the runs folder under another name', async () => {
    const service = new EngineService({ dataDir: join(work.dir, 'data'), backend: await selectBackend('cpu') });
    mkdirSync(service.runsDir, { recursive: true });
    cpSync(join(work.dir, 'stages'), join(service.runsDir, 'my-copy'), { recursive: true });
    const { runs } = await service.handlers.listRuns({}, { signal: new AbortController().signal, notify: () => undefined });
    expect(runs.map((r) => r.id)).toEqual(['my-copy']);
    const context = { signal: new AbortController().signal, notify: () => undefined };
    const { manifest } = await service.handlers.getRun({ runId: 'my-copy' }, context);
    expect(manifest.id).toBe('my-copy');
    const series = await service.handlers.getSeries({ runId: 'my-copy', model: manifest.models[0].key, series: 'nll' }, context);
    expect(series.rows).toBe(199);
  });
});

describe('analyze stopped by signals or a full disk', () => {
  const cli = join(repoRoot, 'bin', 'ttt-workbench.js');
  const bigBook = () => {
    const path = join(work.dir, 'big.txt');
    if (!existsSync(path)) writeFileSync(path, readFileSync(join(repoRoot, 'assets', 'corpus', 'kjv.txt')).subarray(0, 1_000_000));
    return path;
  };

  /** Starts analyze on a long book; `onRunning` is called once its manifest says running with tokens done. */
  async function start(out: string, env: Record<string, string> = {}, onRunning?: (pid: number) => void) {
    const child = spawn(process.execPath, [cli, 'analyze', bigBook(), '--model', model, '--out', out, '--backend', 'cpu', '--stages', '1'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = setInterval(() => {
      try {
        const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { models: { tokensDone: number }[] };
        if (m.models[0].tokensDone > 0 && onRunning) {
          onRunning(child.pid!);
          onRunning = undefined;
        }
      } catch {
        // not yet
      }
    }, 100);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearInterval(poll);
    return { code, stderr };
  }

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} leaves a cancelled run with its rows`, async () => {
      const out = join(work.dir, `signal-${signal}`);
      const r = await start(out, {}, (pid) => process.kill(pid, signal));
      expect(r.code, r.stderr).toBe(130);
      const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { status: string; models: { status: string; tokensDone: number }[] };
      expect(manifest.status).toBe('cancelled');
      expect(manifest.models[0].status).toBe('cancelled');
      expect((await readArrowTable(join(out, 'models', '0-model', 'tokens.arrow'))).numRows).toBeGreaterThan(0);
      expect(r.stderr).toMatch(/run cancelled: /);
    });
  }

  it('a full disk fails the run with one line naming the file, and keeps a readable partial run', async () => {
    const out = join(work.dir, 'full-disk');
    const r = await start(out, { TTT_WORKBENCH_DISK_LIMIT: '150000' });
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^run failed: .*full-disk: no space left on the device for .*full-disk\/models\/0-model\/\w+\.arrow$/);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { status: string };
    expect(manifest.status).toBe('failed');
    for (const file of arrowFilesIn(out)) expect(() => tableFromIPC(readFileSync(file)), file).not.toThrow();
    expect((await readArrowTable(join(out, 'models', '0-model', 'tokens.arrow'))).numRows).toBeGreaterThan(0);
  });
});
