/** `ttt-workbench export`: a run's Arrow series as CSV files, for spreadsheets. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readArrowTable } from '../analysis/arrow-writer.js';
import { readManifest } from '../analysis/run-store.js';
import { workbenchError } from '../core/errors.js';
import { type Command, parseCommandArgs, requireOption } from './args.js';

const help = `Usage: ttt-workbench export RUNDIR --csv OUTDIR

Writes every Arrow series of a run as CSV: OUTDIR/<model>/<series>.csv (nll, innerLoop, hiddenState,
modelState, throughput, as the run has them), plus OUTDIR/summary.csv with one row per model.

Options:
  --csv OUTDIR    folder to write the CSV files into
  -h, --help      show this help`;

/** CSV of an Arrow table, streamed row by row into one string per file (series are numeric; no quoting needed). */
async function tableToCsv(path: string): Promise<string> {
  const table = await readArrowTable(path);
  const names = table.schema.fields.map((f) => f.name);
  const columns = names.map((n) => table.getChild(n)!.toArray() as ArrayLike<number>);
  const lines = [names.join(',')];
  for (let i = 0; i < table.numRows; i++) lines.push(columns.map((c) => c[i]).join(','));
  return `${lines.join('\n')}\n`;
}

export const exportCommand: Command = {
  name: 'export',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs('export', argv, { csv: { type: 'string' } }, true);
    if (values.help) {
      io.stdout(help);
      return 0;
    }
    const runDir = requireOption('export', positionals[0], 'RUNDIR');
    const out = requireOption('export', values.csv, '--csv');
    const manifest = await readManifest(runDir);
    const summary = ['model,architecture,status,tokens,bits_per_byte,tokens_per_s'];
    for (const m of manifest.models) {
      await mkdir(join(out, m.key), { recursive: true });
      for (const [series, file] of Object.entries(m.files)) {
        if (!file.endsWith('.arrow')) continue;
        try {
          await writeFile(join(out, m.key, `${series}.csv`), await tableToCsv(join(runDir, file)));
        } catch (error) {
          throw workbenchError('E_FILE_WRITE', join(out, m.key, `${series}.csv`), (error as Error).message);
        }
      }
      summary.push([m.key, JSON.stringify(m.architecture), m.status, m.tokensDone, m.bitsPerByte ?? '', m.tokensPerSecond ?? ''].join(','));
    }
    await writeFile(join(out, 'summary.csv'), `${summary.join('\n')}\n`);
    io.stderr(`wrote CSV for ${manifest.models.length} model(s) to ${out}`);
    return 0;
  },
};
