/**
 * Reproduces the shipped demo checkpoints (assets/models/{ttt-linear,ttt-mlp,transformer,mamba}): byte-level
 * models of about a million parameters each, trained with the project's own `train` on the Old Testament of
 * ../shared/corpus/kjv.txt, the same token budget each, and measured in bits/byte on the held-out New Testament,
 * which is also written as the sample book assets/books/kjv-new-testament.txt.
 *
 *   npm run train:demo                       all four side by side, each in its own process (--parallel N)
 *   npm run train:demo -- --only mamba       one of them (a re-run resumes from its last checkpoint)
 *   npm run train:demo -- --skip-eval        train and export, without the New Testament measurement
 *   npm run train:demo -- --eval-tokens 0    measure on the whole New Testament (default: its first 100,000 bytes)
 *   npm run train:demo -- --steps 2 --work /tmp/demo-check   a quick check of the whole pipeline
 *
 * Runs (checkpoints every few minutes, logs) live in --work (default /tmp/ttt-demo): re-running the same command
 * after an interruption resumes each model exactly where it stopped.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { analyzeBook } from '../engine/analysis/analyze.js';
import { selectBackend } from '../engine/core/backend.js';
import { writeSafetensors } from '../engine/core/safetensors.js';
import { type Architecture, architectures, initWeights, presetConfig } from '../engine/models/init.js';
import { hasCheckpoint, runFiles } from '../engine/train/checkpoint.js';
import { type TrainSettings, trainModel } from '../engine/train/train.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpus = resolve(root, '../shared/corpus/kjv.txt');
const sampleBook = join(root, 'assets/books/kjv-new-testament.txt');

/** The New Testament starts at the book heading "MATTHEW" (after Malachi, the last book of the Old). */
const newTestamentHeading = '\nMATTHEW\n';

/**
 * About 1M parameters each. Training contexts: the Transformer's is the window it is evaluated with (1024);
 * TTT and Mamba run over any length at inference, so they train on shorter windows (Mamba's scan is the most
 * memory-hungry under autodiff). Every model sees 2048 tokens per step.
 */
const demos: Record<Architecture, { config: Record<string, unknown>; context: number; batch: number }> = {
  'ttt-linear': {
    config: { ...presetConfig('ttt-linear', 'tiny'), hidden_size: 192, num_attention_heads: 3, intermediate_size: 512, num_hidden_layers: 2 },
    context: 512, batch: 4,
  },
  'ttt-mlp': {
    config: { ...presetConfig('ttt-mlp', 'tiny'), hidden_size: 192, num_attention_heads: 6, intermediate_size: 512, num_hidden_layers: 2 },
    context: 512, batch: 4,
  },
  transformer: {
    config: {
      ...presetConfig('transformer', 'tiny'), hidden_size: 192, num_attention_heads: 3, num_key_value_heads: 3, intermediate_size: 512,
      num_hidden_layers: 2, max_position_embeddings: 1024,
    },
    context: 1024, batch: 2,
  },
  mamba: {
    config: { ...presetConfig('mamba', 'tiny'), d_model: 192, n_layer: 4, d_state: 8 },
    context: 128, batch: 16,
  },
};

/**
 * The same for every model: 180 steps × 2048 tokens = 368,640 training tokens, what fits ~1.5 hours on a shared
 * 2-core machine with the four running side by side.
 */
const shared: Partial<TrainSettings> = {
  steps: 180, lr: 3e-3, warmup: 24, valFraction: 0.02, valEvery: 24, valWindows: 4, saveEvery: 12, seed: 0,
};
/** The Transformer is evaluated with sliding-window attention of its training context. */
const evalWindow: Partial<Record<Architecture, number>> = { transformer: 1024 };

const { values } = parseArgs({
  options: {
    only: { type: 'string' }, work: { type: 'string', default: '/tmp/ttt-demo' }, parallel: { type: 'string', default: '4' },
    'skip-eval': { type: 'boolean' }, child: { type: 'boolean' }, steps: { type: 'string' },
    'eval-tokens': { type: 'string', default: '100000' },
  },
});
if (values.steps !== undefined) Object.assign(shared, { steps: Number(values.steps), warmup: 1, valEvery: 1, saveEvery: 1 });
const work = resolve(values.work!);
const log = (text: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);

/** Old Testament for training (in the work folder), New Testament as the sample book. */
async function splitCorpus(oldTestament: string): Promise<void> {
  const text = await readFile(corpus, 'utf8');
  const cut = text.indexOf(newTestamentHeading);
  if (cut < 0) throw new Error(`${corpus}: no line "MATTHEW" to split the testaments at`);
  await mkdir(work, { recursive: true });
  await mkdir(dirname(sampleBook), { recursive: true });
  await writeFile(oldTestament, text.slice(0, cut + 1));
  await writeFile(sampleBook, text.slice(cut + 1));
}

const exists = (path: string) => stat(path).then(() => true, () => false);

/** Trains one model (resuming its run when there is one), exports it to assets/models/<arch>, measures it. */
async function demo(arch: Architecture, oldTestament: string): Promise<void> {
  const backend = await selectBackend('wasm');
  const { config, context, batch } = demos[arch];
  const initDir = join(work, 'init', arch);
  const runDir = join(work, 'runs', arch);
  if (!(await exists(join(initDir, 'model.safetensors')))) {
    await mkdir(initDir, { recursive: true });
    await writeFile(join(initDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    await writeFile(join(initDir, 'model.safetensors'), writeSafetensors(initWeights(config, 0)));
  }
  const resume = await hasCheckpoint(runDir);
  log(`${arch}: ${resume ? 'resuming' : 'starting'} ${runDir}`);
  const result = await trainModel(
    // on resume the step count here is authoritative (a run may be lengthened or shortened; its other settings stay)
    resume ? { out: runDir, resume: true, steps: shared.steps } : { model: initDir, data: [oldTestament], out: runDir, context, batch, ...shared },
    {
      onProgress: (p) => {
        if (p.type === 'start') log(`${arch}: ${p.parameters} parameters, steps ${p.step}→${p.steps}, ${p.trainTokens} training tokens`);
        if (p.type === 'step' && (p.step % 6 === 0 || p.step === p.steps)) {
          log(`${arch}: step ${p.step}/${p.steps} loss ${(p.loss / Math.LN2).toFixed(3)} bits ${Math.round(p.tokensPerSecond)} tok/s ETA ${Math.round((p.etaSeconds ?? 0) / 60)} min`);
        }
        if (p.type === 'validation') log(`${arch}: step ${p.step} validation ${(p.valLoss / Math.LN2).toFixed(3)} bits/byte`);
      },
    },
  );
  const out = join(root, 'assets/models', arch);
  await mkdir(out, { recursive: true });
  for (const file of [runFiles.config, runFiles.model, runFiles.log]) await copyFile(join(runDir, file), join(out, file));
  const state = JSON.parse(await readFile(join(runDir, runFiles.state), 'utf8')) as Record<string, unknown>;
  const summary: Record<string, unknown> = {
    architecture: arch, parameters: result.parameters, context, batch, settings: state.settings, tokens: result.tokensSeen,
    training_seconds: Math.round(result.elapsedSeconds), backend: state.backend, final_train_loss_bits: result.loss === null ? null : result.loss / Math.LN2,
    final_validation_bits_per_byte: result.valLoss === null ? null : result.valLoss / Math.LN2,
  };
  if (!values['skip-eval']) {
    const evalDir = join(work, 'eval', arch);
    const window = evalWindow[arch];
    const limit = Number(values['eval-tokens']);
    await rm(evalDir, { recursive: true, force: true });
    // what `ttt-workbench analyze <book> --model <out> --out <evalDir> --no-inner-loop [--window W] [--max-tokens N]` does
    const { manifest } = await analyzeBook({
      book: sampleBook, models: [out], runDir: evalDir, backend, innerLoop: false, window, maxTokens: limit > 0 ? limit : undefined,
    });
    const evaluated = manifest.models[0].tokensDone;
    const text = await readFile(sampleBook);
    summary.new_testament_bits_per_byte = manifest.models[0].bitsPerByte;
    summary.new_testament_bytes_evaluated = evaluated;
    summary.new_testament_gzip9_bits_per_byte = (8 * gzipSync(text.subarray(0, evaluated), { level: 9 }).byteLength) / evaluated;
    summary.new_testament_eval_attention = window ? `sliding window of ${window} tokens` : 'whole text, state carried';
    log(`${arch}: New Testament ${manifest.models[0].bitsPerByte?.toFixed(4)} bits/byte`);
  }
  await writeFile(join(out, 'training.json'), `${JSON.stringify(summary, null, 2)}\n`);
  log(`${arch}: exported to ${out}`);
}

/** Runs `--only arch` children, `parallel` at a time, each logging to <work>/logs/<arch>.log. */
async function orchestrate(archs: readonly Architecture[], parallel: number): Promise<void> {
  await mkdir(join(work, 'logs'), { recursive: true });
  const queue = [...archs];
  const worker = async () => {
    for (let arch = queue.shift(); arch; arch = queue.shift()) {
      const logPath = join(work, 'logs', `${arch}.log`);
      const file = await open(logPath, 'a');
      log(`${arch}: training (log: ${logPath})`);
      const argv = [
        ...process.execArgv, fileURLToPath(import.meta.url), '--child', '--only', arch, '--work', work,
        ...(values['skip-eval'] ? ['--skip-eval'] : []), ...(values.steps !== undefined ? ['--steps', values.steps] : []),
        '--eval-tokens', values['eval-tokens']!,
      ];
      const code = await new Promise<number | null>((done) => spawn(process.execPath, argv, { stdio: ['ignore', file.fd, file.fd] }).on('exit', done));
      await file.close();
      log(`${arch}: ${code === 0 ? 'done' : `failed (exit ${code}; see ${logPath})`}`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
}

/** Slowest first, so that two at a time finish close together. */
const order: readonly Architecture[] = ['ttt-mlp', 'mamba', 'transformer', 'ttt-linear'];
const only = (values.only?.split(',') ?? [...order]) as Architecture[];
for (const arch of only) if (!architectures.includes(arch)) throw new Error(`--only: unknown architecture "${arch}" (${architectures.join(', ')})`);
const oldTestament = join(work, 'kjv-old-testament.txt');
if (values.child) {
  // the parent wrote the texts before starting the children, which only read them
  for (const arch of only) await demo(arch, oldTestament);
} else {
  await splitCorpus(oldTestament);
  await orchestrate(only, Number(values.parallel));
}
