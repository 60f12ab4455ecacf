/**
 * `npm run bench`: tokens/s and peak memory of `analyze` at a preset size, on one backend, with each model split
 * into pipeline stages (one worker thread each) as the engine does by default, and the PyTorch reference measured
 * in the same sitting when asked for. Run `npm run bench -- --help` for the options.
 *
 * Each measurement runs in its own process (scripts/bench-run.ts), so peak RSS is that run's alone, its workers
 * included. Speed claims are ratios against the reference measured on the same machine in the same sitting
 * (bench/README.md).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeSafetensors } from '../engine/core/safetensors.js';
import { type Architecture, architectures, initWeights, presetConfig, presets } from '../engine/models/init.js';
import { defaultStageCount } from '../engine/runtime/stage-plan.js';
import { benchCorpus } from './bench-corpus.js';

const help = `Usage: npm run bench -- [options]

Analyses a stretch of the KJV with randomly initialised models at a preset size and prints tokens/s, peak RSS
(the whole process, stage workers included), the backend and its adapter, and the pipeline stages.

  npm run bench                                      every architecture, bench preset, 65,536 tokens, wasm
  npm run bench -- --arch ttt-linear --reference /tmp/ttt.py
                                                     TTT-Linear, and the PyTorch reference in the same sitting
  npm run bench -- --preset 125m --arch ttt-linear --stages 2 --reference /tmp/ttt.py
  npm run bench -- --memory                          peak RSS at 65,536 vs 1,048,576 tokens (within 1.3×)
  npm run bench -- --long                            TTT-Linear over the whole KJV (4.15M tokens)
  npm run bench -- --preset demo                     the shipped demo models (assets/models) over the sample book,
                                                     as analyze runs them (--tokens N: its first N tokens)
  npm run bench -- --corpus                          corpus eval: documents/s and tokens/s with 1 and 2 local
                                                     jobs and the cluster path (Redis + 2 workers) here

Options:
  --backend B        tensorflow | webgpu | wasm | cpu (default wasm)
  --preset P         ${Object.keys(presets).join(' | ')} | demo (default bench; 125m: the paper's 125M sizes, Llama
                     vocabulary; demo: the shipped models, inner-loop statistics on, the Transformer in its
                     trained context as its window)
  --arch A           ${architectures.join(' | ')} (repeatable; default: all)
  --stages N         pipeline stages per model, one worker thread each (default: one per core on wasm and
                     cpu, 1 on GPU backends)
                     On webgpu each model is measured with the fused kernels and op by op
                     (TTT_WORKBENCH_FUSED=0), with the dispatches per 1,000 tokens of each
  --tokens N         tokens to analyse (default 65,536; 16,384 for 125m)
  --chunk N          tokens per chunk (default 2,048 for TTT models, the reference's sequence length: the same
                     work as its prefill; analyze's 512 for the others)
  --no-inner-loop    only the figure without TTT inner-loop statistics (by default TTT models are measured both
                     without them, the work the reference does, and with them, as analyze runs by default)
  --reference FILE   the reference's ttt.py (bench/fetch-reference.sh gets it; bench/README.md): when /usr/bin/python3 has torch, run
                     bench/reference_ttt.py for each TTT architecture (2,048 tokens, prefill, the same
                     preset) and print its tokens/s and our ratio to it
  --reference-runs N reference runs per architecture, the best one counts (default 2)
  --book FILE        the text (default assets/corpus/kjv.txt)
  -h, --help         show this help`;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    long: { type: 'boolean' }, memory: { type: 'boolean' }, corpus: { type: 'boolean' }, arch: { type: 'string', multiple: true }, preset: { type: 'string' },
    tokens: { type: 'string' }, backend: { type: 'string' }, book: { type: 'string' }, 'no-inner-loop': { type: 'boolean' },
    stages: { type: 'string' }, chunk: { type: 'string' }, reference: { type: 'string' }, 'reference-runs': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(`${help}\n`);
  process.exit(0);
}

const fail = (message: string): never => {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
};
const preset = values.preset ?? 'bench';
const demo = preset === 'demo';
const book = values.book ?? (demo ? join(root, 'assets', 'books', 'kjv-new-testament.txt') : join(root, 'assets', 'corpus', 'kjv.txt'));
if (!existsSync(book)) fail(`${book} not found (give --book FILE)`);
const backend = values.backend ?? 'wasm';
if (!presets[preset] && !demo) fail(`unknown preset "${preset}" (presets: ${Object.keys(presets).join(', ')}, demo)`);
const archs = (values.arch ?? [...architectures]) as Architecture[];
for (const arch of archs) if (!architectures.includes(arch)) fail(`unknown architecture "${arch}" (${architectures.join(', ')})`);
const positive = (flag: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? n : fail(`${flag} must be a whole number ≥ 1, got "${value}"`);
};
const stages = positive('--stages', values.stages);
const chunk = positive('--chunk', values.chunk);
const referenceRuns = positive('--reference-runs', values['reference-runs']) ?? 2;
const work = mkdtempSync(join(tmpdir(), 'ttt-bench-models-'));

function modelDir(arch: Architecture, size: string): string {
  const dir = join(work, `${arch}-${size}`);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    const config = presetConfig(arch, size);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(initWeights(config, 0)));
  }
  return dir;
}

interface Measurement {
  model: string; tokens: number; seconds: number; tokensPerSecond: number; overallTokensPerSecond: number; peakRssMiB: number;
  backend: { name: string; detail?: string; adapter?: { vendor: string; architecture: string; description: string } };
  stages: { start: number; end: number }[]; chunkTokens: number; innerLoop: boolean;
  /** webgpu: whether the fused kernels ran, and the dispatches per 1,000 tokens of one chunk. */
  fused?: boolean; dispatchesPer1000?: number;
}

/** One measurement in its own process; null when it failed (bench-run printed why, in one line). */
function measure(dir: string, tokens: number, innerLoop: boolean, chunkTokens = chunk, window?: number, opByOp = false): Measurement | null {
  const args = [join(root, 'scripts', 'bench-run.ts'), book, dir, String(tokens), backend, String(innerLoop), String(stages ?? ''), String(chunkTokens ?? ''), String(window ?? '')];
  // TTT_WORKBENCH_FUSED=0: webgpu runs op by op, without the fused kernels (runtime/kernel-switch.ts)
  const env = opByOp ? { ...process.env, TTT_WORKBENCH_FUSED: '0' } : process.env;
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', ...args], { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
    return JSON.parse(out.trim().split('\n').pop()!) as Measurement;
  } catch {
    process.exitCode = 1;
    return null;
  }
}

const thousands = (n: number) => Math.round(n).toLocaleString('en-US');
const stageList = (m: Measurement) => `${m.stages.length} stage${m.stages.length === 1 ? '' : 's'} [${m.stages.map((s) => (s.end - s.start === 1 ? `${s.start}` : `${s.start}–${s.end - 1}`)).join(' | ')}]`;
const adapterOf = (m: Measurement) => (m.backend.adapter ? `, adapter ${[m.backend.adapter.vendor, m.backend.adapter.architecture, m.backend.adapter.description].filter(Boolean).join(' ')}` : '');
const dispatchNote = (m: Measurement) => (m.dispatchesPer1000 === undefined ? '' : `  ${thousands(m.dispatchesPer1000)} dispatches / 1,000 tokens${m.fused ? ' (fused kernels)' : ' (op by op)'}`);
const line = (m: Measurement, what: string) =>
  `  ${thousands(m.tokensPerSecond).padStart(7)} tokens/s (${thousands(m.overallTokensPerSecond)} with warm-up)  peak RSS ${thousands(m.peakRssMiB).padStart(5)} MiB  ${thousands(m.tokens)} tokens, chunks of ${m.chunkTokens}, ${stageList(m)}${dispatchNote(m)}  (${what})`;
/** The fused kernels against op by op, from two measurements of the same work. */
const versus = (fused: Measurement, ops: Measurement) =>
  `  fused vs op by op: ${(ops.dispatchesPer1000! / fused.dispatchesPer1000!).toFixed(1)}× fewer dispatches, ${(fused.tokensPerSecond / ops.tokensPerSecond).toFixed(2)}× the tokens/s`;
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

/** The reference's tokens/s for `arch` at the preset (best of `referenceRuns`), or why it was not measured. */
function reference(arch: Architecture): { tokensPerSecond: number; detail: string } | string {
  if (!values.reference) return 'not measured (give --reference /path/to/ttt.py)';
  if (arch !== 'ttt-linear' && arch !== 'ttt-mlp') return 'the reference is TTT only';
  if (preset !== 'bench' && preset !== '125m') return `the reference has no "${preset}" preset (bench, 125m)`;
  if (!existsSync(values.reference)) return `${values.reference} not found`;
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    return '/usr/bin/python3 has no torch (bench/README.md)';
  }
  const script = join(root, 'bench', 'reference_ttt.py');
  let best: { tokens_per_s: number; torch: string; blas: string; threads: number } | null = null;
  for (let i = 0; i < referenceRuns; i++) {
    const out = execFileSync('/usr/bin/python3', [script, values.reference, arch === 'ttt-linear' ? 'linear' : 'mlp', '2048', book, preset], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
    });
    const result = JSON.parse(out.trim().split('\n').pop()!) as { tokens_per_s: number; torch: string; blas: string; threads: number };
    if (!best || result.tokens_per_s > best.tokens_per_s) best = result;
  }
  return { tokensPerSecond: best!.tokens_per_s, detail: `torch ${best!.torch}, ${best!.blas.split('/').slice(-2).join('/')}, ${best!.threads} threads, 2,048 tokens, best of ${referenceRuns}` };
}

try {
  if (values.memory) {
    const dir = modelDir('ttt-linear', values.preset ?? 'tiny');
    const short = measure(dir, 65_536, !values['no-inner-loop']);
    const long = measure(dir, 1_048_576, !values['no-inner-loop']);
    if (!short || !long) throw new Error('a measurement failed');
    process.stdout.write(`${line(short, 'short')}\n${line(long, 'long')}\n`);
    const ratio = long.peakRssMiB / short.peakRssMiB;
    process.stdout.write(`peak RSS ratio 1M / 64k tokens: ${ratio.toFixed(2)} (limit 1.30)\n`);
    if (ratio > 1.3) process.exitCode = 1;
  } else if (demo) {
    // the shipped models as analyze runs them: inner-loop statistics on, analyze's chunks, the Transformer in a
    // window of its trained context (max_position_embeddings)
    const tokens = positive('--tokens', values.tokens) ?? 1e9; // the whole book unless asked
    process.stdout.write(`demo models on ${book}, backend ${backend}, ${stages ?? `${defaultStageCount(backend)} (default)`} stage(s) per model, ${availableParallelism()} cores, load average ${load()}\n`);
    // --arch picks among them (mamba, transformer, ttt-linear, ttt-mlp: the names under assets/models)
    for (const name of ['mamba', 'transformer', 'ttt-linear', 'ttt-mlp'].filter((n) => !values.arch || values.arch.includes(n))) {
      const dir = join(root, 'assets', 'models', name);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model_type: string; max_position_embeddings?: number };
      const window = config.model_type === 'llama' ? config.max_position_embeddings : undefined;
      const m = measure(dir, tokens, !values['no-inner-loop'], chunk, window);
      if (m) process.stdout.write(`${name}: ${m.model}${window ? `, window ${thousands(window)} (its trained context)` : ''}\n${line(m, m.innerLoop ? 'inner-loop statistics on' : 'no inner-loop statistics')}\n`);
    }
    process.stdout.write(`load average at the end ${load()}\n`);
  } else if (values.corpus) {
    // the tiny preset unless told: corpus runs measure the parallel paths, not the model
    await benchCorpus({ book, backend, root, model: modelDir(archs[0] ?? 'ttt-linear', values.preset ?? 'tiny') });
  } else if (values.long) {
    const whole = measure(modelDir('ttt-linear', preset), positive('--tokens', values.tokens) ?? 5_000_000, !values['no-inner-loop']);
    if (whole) process.stdout.write(`${whole.model}\n${line(whole, 'the whole KJV')}\n`);
  } else {
    const tokens = positive('--tokens', values.tokens) ?? (preset === '125m' ? 16_384 : 65_536);
    const defaultStages = defaultStageCount(backend);
    process.stdout.write(`preset ${preset}, backend ${backend}, ${stages ?? `${defaultStages} (default)`} stage(s) per model, ${availableParallelism()} cores, load average ${load()}\n`);
    for (const arch of archs) {
      const dir = modelDir(arch, preset);
      const ttt = arch === 'ttt-linear' || arch === 'ttt-mlp';
      // TTT models are compared with the reference's 2,048-token prefill: the same work in chunks of that length
      const chunkTokens = chunk ?? (ttt ? 2048 : undefined);
      const plain = measure(dir, tokens, false, chunkTokens);
      if (!plain) continue;
      process.stdout.write(`${plain.model} (${plain.backend.name}${adapterOf(plain)}${plain.backend.name === 'wasm' && plain.backend.detail ? `; ${plain.backend.detail}` : ''})\n${line(plain, ttt ? 'no inner-loop statistics: the reference\'s work' : 'per-token loss')}\n`);
      const traced = ttt && !values['no-inner-loop'] ? measure(dir, tokens, true, chunkTokens) : null;
      if (traced) process.stdout.write(`${line(traced, 'with inner-loop statistics and weight metrics')}\n`);
      if (plain.fused) {
        // the same work op by op, for the fused kernels' gain
        for (const [fused, what] of [[plain, 'no inner-loop statistics'], [traced, 'with inner-loop statistics and weight metrics']] as const) {
          const ops = fused && measure(dir, tokens, fused.innerLoop, chunkTokens, undefined, true);
          if (fused && ops) process.stdout.write(`${line(ops, `op by op, ${ttt ? what : 'per-token loss'}`)}\n${versus(fused, ops)}\n`);
        }
      }
      if (!ttt) continue;
      const ref = reference(arch);
      if (typeof ref === 'string') {
        process.stdout.write(`  reference: ${ref}\n`);
      } else {
        process.stdout.write(`  ${thousands(ref.tokensPerSecond).padStart(7)} tokens/s  PyTorch reference (${ref.detail})  → ours ${(plain.tokensPerSecond / ref.tokensPerSecond).toFixed(2)}× the reference\n`);
      }
    }
    process.stdout.write(`load average at the end ${load()}\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
