/** `ttt-workbench analyze`: stream a book through models and store per-token results in a run folder. */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { selectBackend } from '../core/backend.js';
import { analyzeBook } from '../analysis/analyze.js';
import { lockRunDir, prepareRunDir } from '../analysis/run-store.js';
import { planResume, type ResumePlan } from '../analysis/resume.js';
import { workbenchError } from '../core/errors.js';
import { describeModel } from '../io/load-model.js';
import { type Command, intOption, parseCommandArgs, requireOption } from './args.js';

const help = `Usage: ttt-workbench analyze BOOK --model DIR [--model DIR2 ...] --out RUNDIR [options]
       ttt-workbench analyze --resume RUNDIR [--backend B] [--stages N]

Streams the whole book through each model in chunks, carrying each model's state from chunk to chunk, and
writes per-token results as it goes:
  RUNDIR/manifest.json                       book hash, models, tokenizer, settings, status, bits/byte
  RUNDIR/models/<model>/tokens.arrow         position, token, nll (nats), bytes of every predicted token
  RUNDIR/models/<model>/inner_loop.arrow     TTT: ttt_loss init/before/after per layer and mini-batch
  RUNDIR/models/<model>/hidden_state.arrow   TTT: |W_t|, |W_t - W_0|, |W_t - W_t-1|, cos(W_t, W_0) per layer
  RUNDIR/models/<model>/snapshots.safetensors  TTT: W at about 32 log-spaced positions
  RUNDIR/models/<model>/model_state.arrow    Mamba: SSM-state norm; Transformer: KV-cache bytes
  RUNDIR/models/<model>/throughput.arrow     tokens/s over the run
Arrow IPC files read directly in pandas (pyarrow.ipc), polars and DuckDB. Ctrl-C, SIGTERM and SIGHUP stop
cleanly: the run is kept, marked "cancelled", with everything computed so far (a second signal stops at once;
the files stay readable). A run that fails says why on the terminal.

Each model's carried state is checkpointed (RUNDIR/models/<model>/state.safetensors) at least every minute.
--resume continues an interrupted, cancelled or failed run in its folder: finished models stay as they are, the
others go on from their last checkpoint (their result files cut back to it), with the run's book, models and
settings; it refuses, in one line, a run whose book or model files changed since it started.

Options:
  --model DIR         model folder (repeat for several models; they advance over the book side by side)
  --out RUNDIR        run folder to create (an existing non-empty folder only with --force)
  --force             replace the run (or anything else) already in RUNDIR
  --resume RUNDIR     continue the run in RUNDIR where it stopped (see above)
  --checkpoint-seconds S  checkpoint each model's state at least every S seconds (default 60; 0: every chunk)
  --max-tokens N      analyse only the first N tokens
  --window W|full     Transformer attention: a sliding window of W tokens, or full causal attention over the
                      whole book (memory and time grow with it). Default: each Transformer's trained context
                      (its config's trained_context or max_position_embeddings), as it was trained
  --chunk N           tokens per chunk (default 512)
  --no-inner-loop     skip the TTT inner-loop and hidden-state series (faster)
  --backend B         tensorflow | webgpu | wasm | cpu (default: the best available)
  --stages N          split each model into N pipeline stages, one worker thread each (default: the CPU
                      cores shared out among the models on wasm and cpu, 1 on GPU backends); results do
                      not depend on it
  -h, --help          show this help`;

export function engineVersions(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const version = (name: string) => {
    try {
      return (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      return 'absent';
    }
  };
  return { node: process.versions.node, 'ttt-workbench': version('../..'), '@tensorflow/tfjs-core': version('@tensorflow/tfjs-core') };
}

/** A number of seconds ≥ 0 (fractions allowed), or one usage line. */
function secondsOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*$/.test(value) ? NaN : Number(value);
  if (!Number.isFinite(n) || n < 0) throw workbenchError('E_USAGE', `analyze: --checkpoint-seconds must be a number ≥ 0, got "${value}"`);
  return n;
}

const formatEta = (s: number | null) => (s === null || !Number.isFinite(s) ? '?' : s < 90 ? `${Math.round(s)}s` : `${Math.round(s / 60)}m`);

export const analyzeCommand: Command = {
  name: 'analyze',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs('analyze', argv, {
      model: { type: 'string', multiple: true }, out: { type: 'string' }, 'max-tokens': { type: 'string' },
      window: { type: 'string' }, chunk: { type: 'string' }, 'no-inner-loop': { type: 'boolean' }, backend: { type: 'string' },
      stages: { type: 'string' }, force: { type: 'boolean' }, resume: { type: 'string' }, 'checkpoint-seconds': { type: 'string' },
    }, true);
    if (values.help) {
      io.stdout(help);
      return 0;
    }
    const numbers = {
      maxTokens: intOption('analyze', values['max-tokens'], '--max-tokens', 1),
      window: values.window === 'full' ? ('full' as const) : intOption('analyze', values.window, '--window', 1),
      chunkTokens: intOption('analyze', values.chunk, '--chunk', 1),
      stages: intOption('analyze', values.stages, '--stages', 1),
      checkpointSeconds: secondsOption(values['checkpoint-seconds']),
    };
    let resume: ResumePlan | null = null;
    if (values.resume !== undefined) {
      const given = [positionals[0] !== undefined && 'BOOK', values.model && '--model', values.out && '--out', values.force && '--force'].filter(Boolean);
      if (given.length > 0) throw workbenchError('E_USAGE', `analyze: --resume takes the book, models and folder from the run; leave out ${given.join(', ')}`);
    }
    if (values.resume !== undefined) {
      // a run another process is writing is refused by the lock below
      resume = await planResume(requireOption('analyze', values.resume, '--resume'), {
        maxTokens: numbers.maxTokens, window: numbers.window, chunkTokens: numbers.chunkTokens, innerLoop: values['no-inner-loop'] ? false : undefined,
      });
    }
    // absolute in the manifest, so --resume finds them from any folder
    const book = resume ? resume.manifest.book.path : resolve(requireOption('analyze', positionals[0], 'BOOK'));
    const models = resume ? resume.manifest.models.map((m) => m.dir) : (values.model ?? []).map((m) => (m === '' ? m : resolve(m)));
    requireOption('analyze', models[0], '--model');
    const out = resume ? values.resume! : requireOption('analyze', values.out, '--out');
    if (resume) {
      const s = resume.manifest.settings;
      Object.assign(numbers, { maxTokens: s.maxTokens ?? undefined, window: s.window ?? undefined, chunkTokens: s.chunkTokens });
    }
    // a stage is at least one layer: more stages than the deepest model has layers would start idle workers
    if (numbers.stages !== undefined) {
      let layers = 0;
      for (const dir of models) layers = Math.max(layers, (await describeModel(dir)).layers);
      if (numbers.stages > layers) {
        io.stderr(`analyze: --stages ${numbers.stages} is more than the ${layers} layer${layers === 1 ? '' : 's'} of the model${models.length === 1 ? '' : 's'}; using ${layers}`);
        numbers.stages = layers;
      }
    }
    const backend = await selectBackend(values.backend);
    if (!resume) await prepareRunDir(out, values.force === true);
    const unlock = await lockRunDir(out);
    const controller = new AbortController();
    let signals = 0;
    // the first signal stops between chunks (the run is kept, "cancelled"); a second one stops now
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals > 1) {
        process.stderr.write(`\nanalyze: ${signal} again: stopping now; ${out} keeps what was written\n`);
        process.exit(130);
      }
      controller.abort();
    };
    const stopSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const signal of stopSignals) process.on(signal, onSignal);
    const tty = process.stderr.isTTY === true;
    let lastLine = 0;
    try {
      const { manifest, runDir } = await analyzeBook({
        book, models, runDir: out, backend, versions: engineVersions(), signal: controller.signal, ...numbers,
        innerLoop: resume ? resume.manifest.settings.innerLoop : !values['no-inner-loop'], resume: resume ?? undefined,
        onProgress: (p) => {
          if (!tty || performance.now() - lastLine < 200) return;
          lastLine = performance.now();
          const models = p.models.map((m) => `${m.model} ${Math.round((100 * m.tokensDone) / Math.max(1, m.tokensTotal))}%${m.tokensPerSecond === null ? '' : ` ${Math.round(m.tokensPerSecond)} tok/s`}`);
          process.stderr.write(`\r${models.join('  ')}  ETA ${formatEta(p.etaSeconds)}   `);
        },
      });
      if (tty) process.stderr.write('\n');
      for (const m of manifest.models) {
        const attention = m.attention ? `  (${m.attention})` : '';
        io.stdout(`${m.name.padEnd(28)} ${m.status.padEnd(9)} ${m.tokensDone} tokens  ${m.bitsPerByte === null ? '-' : m.bitsPerByte.toFixed(4)} bits/byte  ${m.tokensPerSecond === null ? '-' : Math.round(m.tokensPerSecond)} tok/s${attention}`);
      }
      if (manifest.status === 'failed') {
        // the reason, not only the folder: the run's error names each failed model and why
        io.stderr(`run failed: ${runDir}: ${manifest.error ?? 'see its manifest.json'}`);
      } else {
        io.stderr(`run ${manifest.status}: ${runDir}`);
      }
      return manifest.status === 'finished' ? 0 : manifest.status === 'cancelled' ? 130 : 1;
    } finally {
      for (const signal of stopSignals) process.off(signal, onSignal);
      await unlock();
    }
  },
};
