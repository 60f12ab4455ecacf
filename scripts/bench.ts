/**
 * `npm run bench`: tokens/s and peak memory of `analyze` for each architecture at a preset, on one backend.
 *
 *   npm run bench                         every architecture, `bench` preset, 65,536 tokens of the KJV, wasm
 *   npm run bench -- --long               TTT-Linear over the whole KJV (4.15M tokens)
 *   npm run bench -- --memory             peak RSS at 65,536 vs 1,048,576 tokens (must stay within 1.3×)
 *   npm run bench -- --arch ttt-linear --preset bench --tokens 16384 --backend wasm --no-inner-loop
 *
 * Each measurement runs in its own process. Compare with the PyTorch reference measured as
 * ../shared/bench/README.md says, on the same machine in the same sitting.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeSafetensors } from '../engine/core/safetensors.js';
import { architectures, initWeights, presetConfig } from '../engine/models/init.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    long: { type: 'boolean' }, memory: { type: 'boolean' }, arch: { type: 'string', multiple: true }, preset: { type: 'string' },
    tokens: { type: 'string' }, backend: { type: 'string' }, book: { type: 'string' }, 'no-inner-loop': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(`${readHelp()}\n`);
  process.exit(0);
}
function readHelp(): string {
  return 'Usage: npm run bench -- [--long | --memory] [--arch A ...] [--preset P] [--tokens N] [--backend B] [--book FILE] [--no-inner-loop]';
}

const book = values.book ?? join(root, '..', 'shared', 'corpus', 'kjv.txt');
if (!existsSync(book)) throw new Error(`bench: ${book} not found (give --book FILE)`);
const backend = values.backend ?? 'wasm';
const work = mkdtempSync(join(tmpdir(), 'ttt-bench-models-'));

function modelDir(arch: (typeof architectures)[number], preset: string): string {
  const dir = join(work, `${arch}-${preset}`);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    const config = presetConfig(arch, preset);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(initWeights(config, 0)));
  }
  return dir;
}

interface Measurement { model: string; tokens: number; seconds: number; tokensPerSecond: number; peakRssMiB: number; backend: string; threads: number; innerLoop: boolean }

function measure(dir: string, tokens: number, innerLoop = !values['no-inner-loop']): Measurement {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'bench-run.ts'), book, dir, String(tokens), backend, String(innerLoop)], {
    cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Measurement;
}

const line = (m: Measurement) =>
  `${m.model.padEnd(36)} ${String(m.tokens).padStart(9)} tokens ${String(m.tokensPerSecond).padStart(7)} tokens/s  peak RSS ${String(m.peakRssMiB).padStart(5)} MiB  (${m.backend}, ${m.threads} thread, inner loop ${m.innerLoop ? 'on' : 'off'})`;

try {
  if (values.memory) {
    const dir = modelDir('ttt-linear', values.preset ?? 'tiny');
    const short = measure(dir, 65_536);
    const long = measure(dir, 1_048_576);
    process.stdout.write(`${line(short)}\n${line(long)}\n`);
    const ratio = long.peakRssMiB / short.peakRssMiB;
    process.stdout.write(`peak RSS ratio 1M / 64k tokens: ${ratio.toFixed(2)} (limit 1.30)\n`);
    if (ratio > 1.3) process.exitCode = 1;
  } else if (values.long) {
    process.stdout.write(`${line(measure(modelDir('ttt-linear', values.preset ?? 'bench'), Number(values.tokens ?? 5_000_000)))}\n`);
  } else {
    const archs = (values.arch ?? [...architectures]) as (typeof architectures)[number][];
    for (const arch of archs) process.stdout.write(`${line(measure(modelDir(arch, values.preset ?? 'bench'), Number(values.tokens ?? 65_536)))}\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
