/**
 * `analyze --resume` after a kill -9, for each architecture (TTT-Linear, TTT-MLP, Transformer with a window,
 * Mamba; tiny models): the real CLI is started with chunks of 99 tokens (so checkpoints fall inside TTT
 * mini-batches of 16), checkpoints every 0.3 s and result files flushed every 0.1 s; it is SIGKILLed once a
 * checkpoint beyond 0 is recorded and rows beyond it are on disk, then resumed. The per-token NLL must equal an
 * uninterrupted run's (computed in-process with analyzeBook) within 1e-5, positions 1..N each exactly once. Also:
 * resume refuses changed settings, a changed model, a changed book and a finished run, each in one line.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeBook } from '../engine/analysis/analyze.js';
import { readArrowTable } from '../engine/analysis/arrow-writer.js';
import { type BackendInfo, selectBackend } from '../engine/core/backend.js';
import type { Architecture } from '../engine/models/init.js';
import { repoRoot } from './helpers/fixtures.js';
import { tempDir, writeTinyModel } from './helpers/tiny-models.js';

const work = tempDir('ttt-resume-');
const cli = join(repoRoot, 'bin', 'ttt-workbench.js');
const chunk = 99;
const miniBatch = 16;
const tokens = 1500;
let backend: BackendInfo;

beforeAll(async () => {
  backend = await selectBackend('cpu');
});
afterAll(() => work.cleanup());

const common = (window?: number) => ['--chunk', String(chunk), '--max-tokens', String(tokens), '--stages', '2', '--backend', 'cpu', ...(window ? ['--window', String(window)] : [])];

/** Runs the CLI to its end: exit code and stderr. */
function cliRun(args: readonly string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr.trim() };
}

async function tokenRows(runDir: string): Promise<{ position: Int32Array; nll: Float32Array }> {
  const table = await readArrowTable(join(runDir, 'models', '0-m', 'tokens.arrow'));
  return { position: table.getChild('position')!.toArray() as Int32Array, nll: table.getChild('nll')!.toArray() as Float32Array };
}

/** Starts `analyze`, SIGKILLs it once a checkpoint (not on a mini-batch boundary) is recorded and rows beyond it were flushed. */
async function startAndKill(book: string, model: string, out: string, window?: number): Promise<number> {
  const child = spawn(process.execPath, [cli, 'analyze', book, '--model', model, '--out', out, ...common(window), '--checkpoint-seconds', '0.3'], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TTT_WORKBENCH_FLUSH_MS: '100' },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let checkpoint = 0;
  while (child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { models: { checkpoint?: { position: number } | null }[] };
      const at = manifest.models[0].checkpoint?.position ?? 0;
      if (at === 0 || at % miniBatch === 0) continue;
      const rows = await tokenRows(out);
      if (rows.position.length > 0 && rows.position[rows.position.length - 1] > at) {
        child.kill('SIGKILL');
        checkpoint = at;
        break;
      }
    } catch {
      // not written yet, or being replaced: look again
    }
  }
  await exited;
  expect(child.signalCode, `analyze was not killed: ${stderr}`).toBe('SIGKILL');
  return checkpoint;
}

const cases: readonly { arch: Architecture; window?: number }[] = [{ arch: 'ttt-linear' }, { arch: 'ttt-mlp' }, { arch: 'transformer', window: 40 }, { arch: 'mamba' }];

describe('analyze --resume after kill -9', () => {
  for (const { arch, window } of cases) {
    it(`${arch}${window ? ` (window ${window})` : ''}: per-token NLL equals an uninterrupted run's, every position once`, async () => {
      const dir = join(work.dir, arch);
      const model = writeTinyModel(dir, arch, 'm');
      const book = join(dir, 'book.txt');
      writeFileSync(book, readFileSync(join(repoRoot, 'assets', 'corpus', 'kjv.txt')).subarray(0, tokens + 100));
      const baseline = join(dir, 'baseline');
      const straight = await analyzeBook({ book, models: [model], runDir: baseline, backend, chunkTokens: chunk, maxTokens: tokens, window, stages: 2 });
      expect(straight.manifest.status).toBe('finished');
      const expected = await tokenRows(baseline);

      const out = join(dir, 'run');
      const checkpoint = await startAndKill(book, model, out, window);
      expect(checkpoint % chunk).toBe(0);
      expect(checkpoint % miniBatch).not.toBe(0);
      const beforeResume = await tokenRows(out);
      expect(beforeResume.position[beforeResume.position.length - 1]).toBeGreaterThan(checkpoint);
      if (arch === 'mamba') cpSync(out, join(dir, 'copy'), { recursive: true }); // for the refusals below

      const resumed = cliRun(['analyze', '--resume', out, '--stages', '2', '--backend', 'cpu']);
      expect(resumed.stderr).toMatch(/run finished/);
      expect(resumed.status).toBe(0);
      const got = await tokenRows(out);
      expect(got.position.length).toBe(tokens - 1);
      for (let i = 0; i < got.position.length; i++) if (got.position[i] !== i + 1) expect.fail(`row ${i} has position ${got.position[i]}, expected ${i + 1}`);
      let worst = 0, at = -1;
      for (let i = 0; i < got.nll.length; i++) {
        const d = Math.abs(got.nll[i] - expected.nll[i]);
        if (!(d <= worst)) [worst, at] = [d, i + 1];
      }
      expect(worst, `max |ΔNLL| ${worst} at position ${at} (checkpoint ${checkpoint})`).toBeLessThanOrEqual(1e-5);
      const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { status: string; models: { tokensDone: number; predictedTokens: number; nllSum: number }[] };
      expect(manifest.status).toBe('finished');
      expect(manifest.models[0].predictedTokens).toBe(tokens - 1);
      expect(Math.abs(manifest.models[0].nllSum - straight.manifest.models[0].nllSum)).toBeLessThan(1e-2);

      if (arch !== 'mamba') return;
      const copy = join(dir, 'copy');
      const oneLine = (r: { status: number | null; stderr: string }, pattern: RegExp) => {
        expect(r.status).not.toBe(0);
        expect(r.stderr.split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(pattern);
      };
      oneLine(cliRun(['analyze', '--resume', baseline]), /is finished; there is nothing to resume/);
      oneLine(cliRun(['analyze', '--resume', copy, '--chunk', '50']), /was made with chunkTokens 99, not 50; settings cannot change on resume/);
      appendFileSync(join(model, 'config.json'), '\n');
      oneLine(cliRun(['analyze', '--resume', copy]), /the files of model .* changed since the run started \(config\.json\)/);
      appendFileSync(book, 'more');
      oneLine(cliRun(['analyze', '--resume', copy]), /its book .*book\.txt changed since the run started/);
    });
  }
});
