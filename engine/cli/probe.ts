/** `ttt-workbench probe needle|copy|intervene`: retrieval, copy-distance and intervention probes into a run folder. */
import { selectBackend } from '../core/backend.js';
import { workbenchError } from '../core/errors.js';
import { lockRunDir, prepareRunDir } from '../analysis/run-store.js';
import { runProbe } from '../probes/run.js';
import { InterventionKind, type ProbeFigures, type ProbeParams } from '../protocol.js';
import { engineVersions } from './analyze.js';
import { type Command, intOption, parseCommandArgs, requireOption } from './args.js';

const help = `Usage: ttt-workbench probe needle|copy|intervene BOOK --model DIR [--model DIR2 ...] --out RUNDIR [options]

Probes of long-context memory; each model runs in this process, one after another, and the run folder gets
  RUNDIR/manifest.json                     settings, per-model status and headline figures
  RUNDIR/models/<model>/<probe>.arrow      the numbers (columns in docs/probes.md)

  needle      a pass key hidden at depth d of a context of L tokens of the book, asked for at the end: bits of
              the key and whether greedy decoding reproduces it, per length x depth x key (needle.arrow)
  copy        a span of the book read again D tokens after it ended: mean NLL of the second reading against
              the first, per distance and span (copy.arrow)
  intervene   per-token NLL of the unmodified run and of each intervention at position t: the inner loop
              frozen from t (TTT, DeltaNet), the state reset at t, the state after a donor text put in at t
              (intervene.arrow, with dnll_<kind> = its NLL less the unmodified run's)

Options (all probes):
  --model DIR          model folder (repeat for several)
  --out RUNDIR         run folder to create (an existing non-empty folder only with --force)
  --force              replace what RUNDIR holds
  --window W|full      Transformer attention (default: each Transformer's trained context)
  --chunk N            tokens per model call (default 512)
  --seed N             keys, span places (default 1)
  --backend B          tensorflow | webgpu | wasm | cpu (default: the best available)
needle:
  --max-length N       longest context (default 16384); lengths: powers of two from 1024 up to it
  --lengths A,B,...    the context lengths instead
  --depths A,B,...     needle depths in [0, 1] (default 0,0.2,0.4,0.6,0.8,1)
  --keys N             random keys per cell (default 3)
  --key-kind K         digits (default: 5-digit numbers) | words (three words of the book)
copy:
  --span N             tokens per span (default 32)
  --max-distance N     longest distance (default: as long as the book allows); distances 0, 16, 32, ... up to it
  --distances A,B,...  the distances instead
  --spans N            spans per distance (default 4)
  --max-tokens N       only the book's first N tokens (default: all)
intervene:
  --at T               the position t (required; 0 = from the start)
  --max-tokens N       tokens of the book probed (default: 32768)
  --interventions L    comma-separated frozen,reset,transplant (default: frozen,reset, and transplant with --donor)
  --donor FILE         the text whose final state is transplanted at t
  --donor-tokens N     read only the donor's first N tokens

Progress goes to stderr. Ctrl-C, SIGTERM and SIGHUP stop between chunks: models done so far are kept and the
run is marked "cancelled" (a second signal stops at once).`;

const kinds = ['needle', 'copy', 'intervene'] as const;

function listOption(value: string | undefined, flag: string, parse: (s: string) => number): number[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim());
  const out = items.map(parse);
  if (items.length === 0 || out.some((n) => !Number.isFinite(n))) throw workbenchError('E_USAGE', `probe: ${flag} must be a comma-separated list of numbers, got "${value}"`);
  return out;
}

export const probeCommand: Command = {
  name: 'probe',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs('probe', argv, {
      model: { type: 'string', multiple: true }, out: { type: 'string' }, force: { type: 'boolean' }, window: { type: 'string' },
      chunk: { type: 'string' }, seed: { type: 'string' }, backend: { type: 'string' },
      'max-length': { type: 'string' }, lengths: { type: 'string' }, depths: { type: 'string' }, keys: { type: 'string' }, 'key-kind': { type: 'string' },
      span: { type: 'string' }, 'max-distance': { type: 'string' }, distances: { type: 'string' }, spans: { type: 'string' },
      at: { type: 'string' }, 'max-tokens': { type: 'string' }, interventions: { type: 'string' }, donor: { type: 'string' }, 'donor-tokens': { type: 'string' },
    }, true);
    if (values.help) {
      io.stdout(help);
      return 0;
    }
    const kind = requireOption('probe', positionals[0], 'the probe (needle, copy or intervene)') as (typeof kinds)[number];
    if (!kinds.includes(kind)) throw workbenchError('E_USAGE', `probe: unknown probe "${kind}" (probes: ${kinds.join(', ')})`);
    const book = requireOption('probe', positionals[1], 'BOOK');
    const models = values.model ?? [];
    requireOption('probe', models[0], '--model');
    const out = requireOption('probe', values.out, '--out');
    const int = (flag: string, min = 1) => intOption('probe', values[flag as keyof typeof values] as string | undefined, `--${flag}`, min);
    const common = {
      book, models,
      window: values.window === 'full' ? ('full' as const) : int('window'),
      chunkTokens: int('chunk'), seed: int('seed', 0),
    };
    let params: ProbeParams;
    if (kind === 'needle') {
      const keyKind = values['key-kind'];
      if (keyKind !== undefined && keyKind !== 'digits' && keyKind !== 'words') throw workbenchError('E_USAGE', `probe: --key-kind must be digits or words, got "${keyKind}"`);
      const depths = listOption(values.depths, '--depths', Number);
      if (depths?.some((d) => d < 0 || d > 1)) throw workbenchError('E_USAGE', `probe: --depths must lie in [0, 1], got "${values.depths}"`);
      params = { kind, ...common, maxLength: int('max-length'), lengths: listOption(values.lengths, '--lengths', Number), depths, keys: int('keys'), keyKind };
    } else if (kind === 'copy') {
      params = { kind, ...common, spanTokens: int('span', 2), maxDistance: int('max-distance'), distances: listOption(values.distances, '--distances', Number), spans: int('spans'), maxTokens: int('max-tokens') };
    } else {
      const at = intOption('probe', requireOption('probe', values.at, '--at'), '--at', 0)!;
      const interventions = values.interventions?.split(',').map((s) => {
        const parsed = InterventionKind.safeParse(s.trim());
        if (!parsed.success) throw workbenchError('E_USAGE', `probe: unknown intervention "${s}" (interventions: ${InterventionKind.options.join(', ')})`);
        return parsed.data;
      });
      if (interventions?.includes('transplant') && !values.donor) throw workbenchError('E_USAGE', 'probe: the transplant intervention needs --donor FILE');
      params = { kind, ...common, at, maxTokens: int('max-tokens'), interventions, donor: values.donor, donorTokens: int('donor-tokens') };
    }
    const backend = await selectBackend(values.backend);
    await prepareRunDir(out, values.force === true);
    const unlock = await lockRunDir(out);
    const controller = new AbortController();
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals > 1) {
        process.stderr.write(`\nprobe: ${signal} again: stopping now; ${out} keeps what was written\n`);
        process.exit(130);
      }
      controller.abort();
    };
    const stopSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const signal of stopSignals) process.on(signal, onSignal);
    const tty = process.stderr.isTTY === true;
    let lastLine = '';
    try {
      const { manifest, runDir } = await runProbe({
        params, runDir: out, backend, versions: engineVersions(), signal: controller.signal, progressIntervalMs: tty ? 200 : 10_000,
        onProgress: (p) => {
          const line = `${p.model} ${Math.round((100 * p.tokensDone) / Math.max(1, p.tokensTotal))}% of ${p.tokensTotal} tokens${p.stage ? `  ${p.stage}` : ''}`;
          if (line === lastLine) return;
          lastLine = line;
          process.stderr.write(tty ? `\r${line.padEnd(78)}` : `${line}\n`);
        },
      });
      if (tty) process.stderr.write('\n');
      for (const m of manifest.models) io.stdout(`${m.name.padEnd(24)} ${m.status.padEnd(9)} ${summaryOf(m.figures)}${m.error ? `  ${m.error}` : ''}`);
      io.stderr(manifest.status === 'failed' ? `probe failed: ${runDir}: ${manifest.error ?? 'see its manifest.json'}` : `probe ${manifest.status}: ${runDir}`);
      return manifest.status === 'finished' ? 0 : manifest.status === 'cancelled' ? 130 : 1;
    } finally {
      for (const signal of stopSignals) process.off(signal, onSignal);
      await unlock();
    }
  },
};

function summaryOf(f: ProbeFigures): string {
  if (f.accuracy !== undefined && f.accuracy !== null) return `retrieved ${(100 * f.accuracy).toFixed(0)}%  key ${f.keyBits?.toFixed(1)} bits`;
  if (f.nllSecondByDistance) return `NLL first ${f.nllFirst?.toFixed(3)}  second ${Object.entries(f.nllSecondByDistance).map(([d, v]) => `D${d} ${v.toFixed(3)}`).join(' ')}`;
  if (f.meanDeltaNll) return Object.entries(f.meanDeltaNll).map(([k, v]) => `ΔNLL ${k} ${v.toFixed(4)}`).join('  ');
  return '';
}
