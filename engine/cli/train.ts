/** `ttt-workbench train`: outer-loop training of a model folder on books, with checkpoints and resume. */
import { resolve } from 'node:path';
import { selectBackend } from '../core/backend.js';
import { workbenchError } from '../core/errors.js';
import { type TrainProgress, trainModel } from '../train/train.js';
import { type Command, intOption, parseCommandArgs, requireOption } from './args.js';

const help = `Usage: ttt-workbench train --model DIR --data FILE [--data FILE2 ...] --context N --batch B --steps S --out DIR [options]
       ttt-workbench train --out DIR --resume [--steps S]

Trains every weight of a model (from \`ttt-workbench init\` or a trained folder) on next-token prediction over
windows of the books, tokenized with the model's tokenizer. TTT models are differentiated through their inner
loop (dual form). Each step averages the loss of B windows of N tokens, clips the gradient's global norm and
applies AdamW with linear warm-up then cosine decay. The last --val-fraction of every book is held out.

The --out folder is both a checkpoint and a model folder (analyze, compare and info read it directly):
  config.json, model.safetensors       the model after the last saved step
  optimizer.safetensors, trainer_state.json   AdamW moments, step, settings, data identity
  train_log.arrow                      step, loss, val_loss, lr, tokens_per_s, grad_norm (losses in nats/token)
Ctrl-C (or SIGTERM, SIGHUP) saves a checkpoint and stops; --resume continues exactly where it stopped (the same loss curve).

Options:
  --model DIR          starting model folder
  --data FILE          a book (repeat for several)
  --context N          tokens per window
  --batch B            windows per step
  --steps S            total optimizer steps (on --resume: may extend the run)
  --out DIR            run folder to create (or to resume)
  --resume             continue the run in --out from its last checkpoint
  --force              allow --out to be the --model folder (its weights are replaced)
  --lr LR              peak learning rate (default 1e-3)
  --warmup W           warm-up steps (default min(100, steps/10))
  --weight-decay WD    AdamW weight decay on matrices (default 0.1)
  --clip C             global gradient-norm limit, 0 for none (default 1)
  --val-fraction F     held-out tail of each book (default 0.05; 0 for no validation)
  --val-every K        validation loss every K steps (default 50)
  --val-windows N      validation windows (default 8)
  --save-every K       checkpoint every K steps (default 100)
  --seed S             window-sampling seed (default 0)
  --no-ttt-base-lr-warmup
                       TTT-MLP: keep ttt_base_lr fixed instead of warming it up from a tenth over the warm-up
                       (the paper's recipe, on by default; off for a run that continues a trained model)
  --backend B          tensorflow | webgpu | wasm | cpu (default: the best available)
  -h, --help           show this help`;

function numberOption(value: string | undefined, flag: string, check: (n: number) => boolean, rule: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || !check(n)) throw workbenchError('E_USAGE', `train: ${flag} must be ${rule}, got "${value}"`);
  return n;
}

const bits = (nats: number) => nats / Math.LN2;
const duration = (s: number | null) => (s === null || !Number.isFinite(s) ? '?' : s < 90 ? `${Math.round(s)}s` : s < 5400 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`);

export const trainCommand: Command = {
  name: 'train',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('train', argv, {
      model: { type: 'string' }, data: { type: 'string', multiple: true }, context: { type: 'string' }, batch: { type: 'string' },
      steps: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' }, lr: { type: 'string' }, warmup: { type: 'string' },
      'weight-decay': { type: 'string' }, clip: { type: 'string' }, 'val-fraction': { type: 'string' }, 'val-every': { type: 'string' },
      'val-windows': { type: 'string' }, 'save-every': { type: 'string' }, seed: { type: 'string' }, backend: { type: 'string' },
      'no-ttt-base-lr-warmup': { type: 'boolean' }, force: { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(help);
      return 0;
    }
    const out = requireOption('train', values.out, '--out');
    if (!values.resume) {
      requireOption('train', values.model, '--model');
      requireOption('train', values.data?.[0], '--data');
      // the starting model's weights would be replaced by the first checkpoint
      if (resolve(values.model!) === resolve(out) && !values.force) {
        throw workbenchError('E_USAGE', `train: --out ${out} is the --model folder, whose weights the first checkpoint would replace; choose a new --out (or pass --force)`);
      }
    }
    const options = {
      model: values.model, data: values.data, out, resume: values.resume === true,
      context: intOption('train', values.context, '--context', 1),
      batch: intOption('train', values.batch, '--batch', 1),
      steps: intOption('train', values.steps, '--steps', 1),
      lr: numberOption(values.lr, '--lr', (n) => n > 0, 'a number > 0'),
      warmup: intOption('train', values.warmup, '--warmup', 0),
      weightDecay: numberOption(values['weight-decay'], '--weight-decay', (n) => n >= 0, 'a number ≥ 0'),
      clipNorm: numberOption(values.clip, '--clip', (n) => n >= 0, 'a number ≥ 0'),
      valFraction: numberOption(values['val-fraction'], '--val-fraction', (n) => n >= 0 && n < 1, 'in [0, 1)'),
      valEvery: intOption('train', values['val-every'], '--val-every', 1),
      valWindows: intOption('train', values['val-windows'], '--val-windows', 1),
      saveEvery: intOption('train', values['save-every'], '--save-every', 1),
      seed: intOption('train', values.seed, '--seed', 0),
      tttBaseLrWarmup: values['no-ttt-base-lr-warmup'] ? false : undefined,
    };
    const backend = await selectBackend(values.backend);
    const controller = new AbortController();
    // Ctrl-C, SIGTERM and SIGHUP (a closed terminal) all save a checkpoint and stop
    const onSignal = () => controller.abort();
    const stopSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const signal of stopSignals) process.once(signal, onSignal);
    // a terminal gets one line rewritten in place; a log file gets a line every 30 s and at each validation
    const tty = process.stderr.isTTY === true;
    let lastLine = -Infinity;
    let valLoss: number | null = null;
    const onProgress = (p: TrainProgress) => {
      if (p.type === 'start') {
        io.stderr(`training ${p.parameters.toLocaleString('en-US')} parameters on ${backend.name}: steps ${p.step}→${p.steps}, `
          + `${p.trainTokens.toLocaleString('en-US')} training and ${p.validationTokens.toLocaleString('en-US')} validation tokens`);
        return;
      }
      if (p.type === 'checkpoint') return;
      if (p.type === 'validation') valLoss = p.valLoss;
      if (p.type !== 'step' && tty) return;
      const now = performance.now();
      if (p.type === 'step' && now - lastLine < (tty ? 200 : 30_000) && p.step !== p.steps) return;
      lastLine = now;
      const line = p.type === 'step'
        ? `step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)} (${bits(p.loss).toFixed(3)} bits)  val ${valLoss === null ? '-' : valLoss.toFixed(4)}  `
          + `lr ${p.lr.toExponential(2)}  ${Math.round(p.tokensPerSecond)} tok/s  ETA ${duration(p.etaSeconds)}`
        : `step ${p.step}  validation loss ${p.valLoss.toFixed(4)} (${bits(p.valLoss).toFixed(3)} bits)`;
      if (tty) process.stderr.write(`\r${line}   `);
      else io.stderr(line);
    };
    try {
      const result = await trainModel(options, { signal: controller.signal, onProgress });
      if (tty) process.stderr.write('\n');
      io.stdout(`${result.status} at step ${result.step}/${result.steps}: loss ${result.loss === null ? '-' : result.loss.toFixed(4)}, `
        + `validation ${result.valLoss === null ? '-' : `${result.valLoss.toFixed(4)} (${bits(result.valLoss).toFixed(3)} bits/token)`}, `
        + `${result.tokensSeen.toLocaleString('en-US')} tokens, ${Math.round(result.tokensPerSecond)} tok/s, ${duration(result.elapsedSeconds)} in all`);
      io.stderr(`run saved in ${result.out}${result.status === 'cancelled' ? ' (continue with --resume)' : ''}`);
      return result.status === 'finished' ? 0 : 130;
    } finally {
      for (const signal of stopSignals) process.off(signal, onSignal);
    }
  },
};
