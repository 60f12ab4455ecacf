/**
 * Outer-loop training of a whole network on next-token cross-entropy, differentiated by TensorFlow.js
 * (`tf.variableGrads`). For TTT models the gradient runs through the inner loop's dual form, as the paper trains
 * them, so θ_K, θ_Q, θ_V, the learning-rate gate, token_idx and W_0 all learn.
 *
 * A step: B windows of `context + 1` tokens, each run from the model's initial state (the models take one
 * sequence, so a batch is B forward/backward passes whose gradients are summed), global-norm clipping, then AdamW
 * with linear warm-up and cosine decay. The run folder is a checkpoint (checkpoint.ts) and a model folder; a
 * resumed run continues the same loss curve, because the sampler is counter-based and everything else is saved.
 */
import { mkdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ArrowAppender, readArrowTable } from '../analysis/arrow-writer.js';
import { workbenchError } from '../core/errors.js';
import { assertTokenizerFitsModel, createTokenizer, encodeDocument } from '../core/tokenizers/index.js';
import { readBook } from '../io/book.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { tokenizerSpecFor } from '../io/model-dir.js';
import { modelTypeOf } from '../models/registry.js';
import { parseTTTConfig } from '../models/ttt.js';
import { type Checkpoint, type DataIdentity, hasCheckpoint, loadCheckpoint, runFiles, saveCheckpoint, type TrainerState } from './checkpoint.js';
import { splitSources, type TokenSource, validationWindows, WindowSampler } from './data.js';
import { installTrainingGradients } from './gradients.js';
import { AdamW, adamWDefaults, clipByGlobalNorm } from './optimizer.js';
import { learningRate, tttBaseLrAt } from './schedule.js';
import { batchGradients, nextTokenLoss, TrainableModel } from './trainable.js';
import { installWasmTrainingKernels } from './wasm-kernels.js';

/** Everything that decides a run's loss curve (stored with the run; a resume must keep it). */
export interface TrainSettings {
  /** Tokens a window predicts (each window holds context + 1 tokens). */
  readonly context: number;
  /** Windows per step. */
  readonly batch: number;
  readonly steps: number;
  /** Peak learning rate. */
  readonly lr: number;
  readonly minLrRatio: number;
  readonly warmup: number;
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Global gradient-norm limit (0: no clipping). */
  readonly clipNorm: number;
  readonly valFraction: number;
  readonly valEvery: number;
  readonly valWindows: number;
  readonly saveEvery: number;
  readonly seed: number;
  /** TTT-MLP: warm the inner base learning rate up from a tenth of the config's value (the paper's 0.01 → 0.1). */
  readonly tttBaseLrWarmup: boolean;
}

export interface TrainOptions extends Partial<TrainSettings> {
  /** Starting model folder (config.json + weights, e.g. from `init`); needed unless resuming. */
  readonly model?: string;
  /** Book files; needed unless resuming (then: the run's own, which must be unchanged). */
  readonly data?: readonly string[];
  /** Run folder: checkpoints, log, and the trained model. */
  readonly out: string;
  /** Continue the run in `out` from its last checkpoint. */
  readonly resume?: boolean;
}

export type TrainProgress =
  | {
    readonly type: 'start'; readonly step: number; readonly steps: number; readonly parameters: number;
    readonly trainTokens: number; readonly validationTokens: number; readonly backend: string;
  }
  | {
    readonly type: 'step'; readonly step: number; readonly steps: number; readonly loss: number; readonly lr: number;
    readonly gradNorm: number; readonly tokensPerSecond: number; readonly tokensSeen: number; readonly etaSeconds: number | null;
  }
  | { readonly type: 'validation'; readonly step: number; readonly valLoss: number }
  | { readonly type: 'checkpoint'; readonly step: number; readonly dir: string };

export interface TrainHooks {
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: TrainProgress) => void;
}

export interface TrainResult {
  readonly status: 'finished' | 'cancelled';
  readonly out: string;
  /** Updates done (the weights in `out` are those after this step). */
  readonly step: number;
  readonly steps: number;
  /** Last training and validation losses, in nats per token. */
  readonly loss: number | null;
  readonly valLoss: number | null;
  readonly tokensSeen: number;
  readonly elapsedSeconds: number;
  /** Training tokens per second in this session. */
  readonly tokensPerSecond: number;
  readonly parameters: number;
}

const defaults = {
  lr: 1e-3, minLrRatio: 0.1, weightDecay: adamWDefaults.weightDecay, beta1: adamWDefaults.beta1, beta2: adamWDefaults.beta2,
  eps: adamWDefaults.eps, clipNorm: 1, valFraction: 0.05, valEvery: 50, valWindows: 8, saveEvery: 100, seed: 0,
} as const;

/** Settings a resumed run may change: they move no point of the loss curve already drawn. */
const changeableOnResume: readonly (keyof TrainSettings)[] = ['steps', 'valEvery', 'valWindows', 'saveEvery'];

/** Model types whose forward pass is differentiated here (the delta-rule family's chunked form is not yet). */
export const trainableModelTypes: readonly string[] = ['ttt', 'llama', 'mamba'];

function isTTTMlp(config: Record<string, unknown>): boolean {
  return modelTypeOf(config) === 'ttt' && parseTTTConfig(config).tttLayerType === 'mlp';
}

/** Settings of a new run from options and defaults, or of a resumed one from its saved settings. */
export function resolveSettings(options: TrainOptions, config: Record<string, unknown>, saved?: TrainSettings): TrainSettings {
  const bad = (key: string, value: unknown, reason: string) => workbenchError('E_OPTION', key, String(value), reason);
  let s: TrainSettings;
  if (saved) {
    for (const key of Object.keys(saved) as (keyof TrainSettings)[]) {
      const given = options[key];
      if (given !== undefined && given !== saved[key] && !changeableOnResume.includes(key)) {
        throw bad(key, given, `differs from the run being resumed (${saved[key]}); a resumed run keeps its settings`);
      }
    }
    s = { ...saved, ...Object.fromEntries(changeableOnResume.filter((k) => options[k] !== undefined).map((k) => [k, options[k]])) };
  } else {
    const need = (key: 'context' | 'batch' | 'steps') => {
      const v = options[key];
      if (v === undefined) throw workbenchError('E_USAGE', `train: --${key} is required (see ttt-workbench train --help)`);
      return v;
    };
    const steps = need('steps');
    s = {
      ...defaults,
      context: need('context'), batch: need('batch'), steps, warmup: Math.min(100, Math.ceil(steps / 10)), tttBaseLrWarmup: isTTTMlp(config),
      ...Object.fromEntries(Object.entries(options).filter(([k, v]) => v !== undefined && (k in defaults || k === 'warmup' || k === 'tttBaseLrWarmup'))),
    };
  }
  const positiveInt = (key: keyof TrainSettings) => {
    if (!Number.isInteger(s[key]) || (s[key] as number) < 1) throw bad(key, s[key], 'must be a positive integer');
  };
  (['context', 'batch', 'steps', 'valEvery', 'valWindows', 'saveEvery'] as const).forEach(positiveInt);
  if (!Number.isInteger(s.warmup) || s.warmup < 0) throw bad('warmup', s.warmup, 'must be an integer ≥ 0');
  if (!(s.lr > 0)) throw bad('lr', s.lr, 'must be > 0');
  if (!(s.valFraction >= 0 && s.valFraction < 1)) throw bad('val-fraction', s.valFraction, 'must be in [0, 1)');
  if (!Number.isInteger(s.seed) || s.seed < 0) throw bad('seed', s.seed, 'must be an integer ≥ 0');
  return s;
}

interface LogRow {
  readonly step: number;
  readonly loss: number;
  readonly valLoss: number;
  readonly lr: number;
  readonly tokensPerSecond: number;
  readonly gradNorm: number;
}

/**
 * train_log.arrow. Rows are kept in memory and the file is rewritten whole (temporary name, then rename) at every
 * checkpoint, so it is always a complete Arrow file that agrees with the checkpoint: a killed run leaves no
 * half-written log, and a resume keeps exactly the rows up to its step.
 */
class TrainLog {
  private constructor(private readonly path: string, private readonly rows: LogRow[]) {}

  static async open(path: string, keepUpTo: number | null): Promise<TrainLog> {
    const rows: LogRow[] = [];
    // a deleted log restarts empty; a damaged one is an error rather than silently lost history
    if (keepUpTo !== null && keepUpTo > 0 && (await stat(path).then(() => true, () => false))) {
      const table = await readArrowTable(path);
      const col = (name: string) => table.getChild(name)?.toArray() as ArrayLike<number> | undefined;
      const step = col('step'), loss = col('loss'), val = col('val_loss'), lr = col('lr'), tps = col('tokens_per_s'), norm = col('grad_norm');
      if (!step || !loss || !val || !lr || !tps || !norm) throw workbenchError('E_INPUT', path, 'is not a training log (columns are missing)');
      for (let i = 0; i < step.length; i++) {
        if (step[i] <= keepUpTo) rows.push({ step: step[i], loss: loss[i], valLoss: val[i], lr: lr[i], tokensPerSecond: tps[i], gradNorm: norm[i] });
      }
    }
    return new TrainLog(path, rows);
  }

  add(row: LogRow): void {
    this.rows.push(row);
  }

  async write(): Promise<void> {
    const rows = this.rows;
    const appender = new ArrowAppender(`${this.path}.tmp`);
    appender.append({
      step: Int32Array.from(rows, (r) => r.step),
      loss: Float64Array.from(rows, (r) => r.loss),
      val_loss: Float64Array.from(rows, (r) => r.valLoss),
      lr: Float64Array.from(rows, (r) => r.lr),
      tokens_per_s: Float64Array.from(rows, (r) => r.tokensPerSecond),
      grad_norm: Float64Array.from(rows, (r) => r.gradNorm),
    });
    await appender.close();
    await rename(`${this.path}.tmp`, this.path);
  }
}

/** Books → token arrays with the model's tokenizer, and what identifies them for a resume. */
async function readData(paths: readonly string[], modelDir: string, vocabSize: number): Promise<{ sources: TokenSource[]; identity: DataIdentity[] }> {
  const tokenizer = await createTokenizer(await tokenizerSpecFor(modelDir));
  assertTokenizerFitsModel(tokenizer, vocabSize, join(modelDir, runFiles.config));
  const sources: TokenSource[] = [];
  const identity: DataIdentity[] = [];
  for (const path of paths) {
    const book = await readBook(path);
    const ids = encodeDocument(tokenizer, book.text);
    sources.push({ name: path, ids });
    identity.push({ path, sha256: book.sha256, tokens: ids.length });
  }
  return { sources, identity };
}

/** Mean loss of the windows, forward only (no tape). */
async function meanLoss(model: TrainableModel, windows: readonly Int32Array[]): Promise<number> {
  let sum = 0;
  for (const w of windows) {
    const loss = tf.tidy(() => nextTokenLoss(model.build(), w));
    sum += (await loss.data())[0];
    loss.dispose();
  }
  return sum / windows.length;
}

/** Trains as `options` say; see the file header. Rejects with a WorkbenchError on bad input. */
export async function trainModel(options: TrainOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  installTrainingGradients();
  installWasmTrainingKernels();
  const out = options.out;
  const exists = await hasCheckpoint(out);
  if (!options.resume && exists) throw workbenchError('E_USAGE', `train: ${out} already holds a training run; pass --resume to continue it, or choose another --out`);
  const start: Checkpoint | null = options.resume ? await loadCheckpoint(out) : null;
  const modelDir = start ? out : options.model;
  if (modelDir === undefined) throw workbenchError('E_USAGE', 'train: --model is required (see ttt-workbench train --help)');
  const source = start ? null : await readCheckpoint(modelDir);
  const config = start ? start.config : source!.config;
  const type = modelTypeOf(config);
  if (type !== undefined && !trainableModelTypes.includes(type)) {
    throw workbenchError('E_USAGE', `train: ${modelDir} is a ${type} model; the outer loop trains ${trainableModelTypes.join(', ')} models (delta-rule training is not built yet)`);
  }
  const settings = resolveSettings(options, config, start?.state.settings);

  const dataPaths = options.data ?? start?.state.data.map((d) => d.path);
  if (!dataPaths || dataPaths.length === 0) throw workbenchError('E_USAGE', 'train: --data is required (see ttt-workbench train --help)');
  const model = new TrainableModel(config, start ? start.weights : source!.tensors, join(modelDir, runFiles.model));
  const optimizer = new AdamW(model.variables, { beta1: settings.beta1, beta2: settings.beta2, eps: settings.eps, weightDecay: settings.weightDecay });
  try {
    const { sources, identity } = await readData(dataPaths, modelDir, model.vocabSize);
    if (start) {
      const changed = identity.findIndex((d, i) => d.sha256 !== start.state.data[i]?.sha256);
      if (changed >= 0 || identity.length !== start.state.data.length) {
        throw workbenchError('E_INPUT', dataPaths[Math.max(0, changed)], 'is not the data the run being resumed was trained on (its contents differ)');
      }
      optimizer.load(start.optimizer, start.state.step, join(out, runFiles.optimizer));
    }
    const split = splitSources(sources, settings.valFraction);
    const windowTokens = settings.context + 1;
    const sampler = new WindowSampler(split.train, windowTokens, settings.seed);
    const valWindows = settings.valFraction > 0 ? validationWindows(split.validation, windowTokens, settings.valWindows) : [];
    if (settings.valFraction > 0 && valWindows.length === 0) {
      throw workbenchError('E_INPUT', dataPaths.join(', '), `the validation split (--val-fraction ${settings.valFraction}) is shorter than one window of ${windowTokens} tokens`);
    }
    await mkdir(out, { recursive: true }); // the log is written into it before the first checkpoint
    const log = await TrainLog.open(join(out, runFiles.log), start ? start.state.step : null);

    const backend = tf.getBackend();
    const firstStep = start ? start.state.step : 0;
    const innerTarget = settings.tttBaseLrWarmup && isTTTMlp(config) ? parseTTTConfig(config).tttBaseLr : null;
    let tokensSeen = start?.state.tokensSeen ?? 0;
    let lastLoss = start?.state.lastLoss ?? null;
    let lastValLoss = start?.state.lastValLoss ?? null;
    let step = firstStep;
    let savedStep = firstStep;
    const sessionStart = performance.now();
    let trainSeconds = 0;
    const elapsed = () => (start?.state.elapsedSeconds ?? 0) + (performance.now() - sessionStart) / 1000;

    const save = async () => {
      await log.write();
      const state: TrainerState = {
        format: 'ttt-workbench-train/1', step, tokensSeen, elapsedSeconds: elapsed(), backend, parameters: model.parameterCount,
        settings, data: identity, lastLoss, lastValLoss,
      };
      await saveCheckpoint(out, { config, weights: await model.snapshot(), optimizer: await optimizer.snapshot(), state }, start ? undefined : modelDir);
      savedStep = step;
      hooks.onProgress?.({ type: 'checkpoint', step, dir: out });
    };

    hooks.onProgress?.({
      type: 'start', step: firstStep, steps: settings.steps, parameters: model.parameterCount, backend,
      trainTokens: split.train.reduce((n, s) => n + s.ids.length, 0), validationTokens: split.validation.reduce((n, s) => n + s.ids.length, 0),
    });
    if (!start) await save(); // step 0: the starting weights, so even an early crash leaves a resumable run
    let cancelled = false;
    while (step < settings.steps) {
      if (hooks.signal?.aborted) {
        cancelled = true;
        break;
      }
      const t0 = performance.now();
      const lr = learningRate(step, { peakLr: settings.lr, warmupSteps: settings.warmup, totalSteps: settings.steps, minLrRatio: settings.minLrRatio });
      const build = { tttBaseLr: innerTarget === null ? undefined : tttBaseLrAt(step, settings.warmup, innerTarget) };
      const windows = sampler.batch(step, settings.batch);
      const batch = batchGradients(model, windows, build, hooks.signal);
      if (!batch) {
        cancelled = true;
        break;
      }
      const { grads: sum, loss: lossSum } = batch;
      const clipped = clipByGlobalNorm(sum, settings.clipNorm);
      const [loss, gradNorm] = [(await lossSum.data())[0], (await clipped.norm.data())[0]];
      tf.dispose([lossSum, clipped.norm, ...sum.values()]);
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        tf.dispose([...clipped.grads.values()]);
        throw workbenchError('E_INPUT', out, `training diverged at step ${step + 1} (loss ${loss}, gradient norm ${gradNorm}); lower --lr`);
      }
      optimizer.apply(clipped.grads, lr);
      tf.dispose([...clipped.grads.values()]);
      step++;
      tokensSeen += windows.length * settings.context;
      lastLoss = loss;
      const stepSeconds = (performance.now() - t0) / 1000;
      trainSeconds += stepSeconds;
      const tokensPerSecond = (windows.length * settings.context) / stepSeconds;
      const sessionSteps = step - firstStep;
      const etaSeconds = ((performance.now() - sessionStart) / 1000 / sessionSteps) * (settings.steps - step);
      hooks.onProgress?.({ type: 'step', step, steps: settings.steps, loss, lr, gradNorm, tokensPerSecond, tokensSeen, etaSeconds });
      let valLoss = Number.NaN;
      if (valWindows.length && (step % settings.valEvery === 0 || step === settings.steps)) {
        valLoss = await meanLoss(model, valWindows);
        lastValLoss = valLoss;
        hooks.onProgress?.({ type: 'validation', step, valLoss });
      }
      log.add({ step, loss, valLoss, lr, tokensPerSecond, gradNorm });
      if (step % settings.saveEvery === 0 || step === settings.steps) await save();
    }
    if (step > savedStep) await save();
    return {
      status: cancelled ? 'cancelled' : 'finished', out, step, steps: settings.steps, loss: lastLoss, valLoss: lastValLoss, tokensSeen,
      elapsedSeconds: elapsed(), tokensPerSecond: trainSeconds > 0 ? ((tokensSeen - (start?.state.tokensSeen ?? 0)) / trainSeconds) : 0,
      parameters: model.parameterCount,
    };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
