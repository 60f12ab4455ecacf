/**
 * `node --import tsx scripts/probe-pictures.ts --needle RUN --copy RUN --frozen RUN [--out DIR]`: the README's
 * probe figures from probe run folders (`ttt-workbench probe …`), drawn with Plotly in Chromium or Chrome
 * (test/helpers/browser.ts) on a page of their own, and written as PNG to DIR (default docs/screenshots):
 *   probe-needle.png   retrieval accuracy and key bits per context length × needle depth, one heatmap per model
 *   probe-copy.png     NLL of a span read again D tokens later, over D (log axis), against its first reading
 *   probe-frozen.png   ΔNLL along the book when the TTT inner loop is frozen, smoothed over 1,024 tokens
 * Runs that produced them for the README:
 *   ttt-workbench probe needle assets/books/kjv-new-testament.txt --model assets/models/{ttt-linear,ttt-mlp,mamba,transformer} --out RUN --max-length 16384
 *   ttt-workbench probe copy … --max-tokens 131072 --max-distance 65536 --spans 4
 *   ttt-workbench probe intervene … --model assets/models/{ttt-linear,ttt-mlp} --at 0 --interventions frozen --max-tokens 32768
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readArrowTable } from '../engine/analysis/arrow-writer.js';
import { ProbeManifest } from '../engine/protocol.js';
import { findBrowser, launchBrowser } from '../test/helpers/browser.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { needle: { type: 'string' }, copy: { type: 'string' }, frozen: { type: 'string' }, out: { type: 'string' } } });
const outDir = values.out ?? join(root, 'docs', 'screenshots');

type Figure = { data: unknown[]; layout: Record<string, unknown>; width: number; height: number };
type Columns = Record<string, ArrayLike<number>>;

async function load(runDir: string): Promise<{ manifest: ProbeManifest; tables: { name: string; columns: Columns }[] }> {
  const manifest = ProbeManifest.parse(JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')));
  const tables = [];
  for (const m of manifest.models.filter((x) => x.status === 'finished')) {
    const table = await readArrowTable(join(runDir, Object.values(m.files)[0]));
    tables.push({ name: m.name, columns: Object.fromEntries(table.schema.fields.map((f) => [f.name, table.getChild(f.name)!.toArray() as ArrayLike<number>])) });
  }
  return { manifest, tables };
}

const font = { family: 'system-ui, sans-serif', size: 13 };

function needleFigure(tables: { name: string; columns: Columns }[]): Figure {
  const data: unknown[] = [];
  const layout: Record<string, unknown> = { font, margin: { t: 60, l: 60, r: 20, b: 50 }, title: { text: 'Pass-key retrieval: mean bits of the key " NNNNN" per cell (text: keys greedy decoding reproduced, of 3)' } };
  tables.forEach((t, i) => {
    const lengths = [...new Set(Array.from(t.columns.length))].sort((a, b) => a - b);
    const depths = [...new Set(Array.from(t.columns.depth))].sort((a, b) => a - b);
    const z = depths.map(() => lengths.map(() => 0)), hits = depths.map(() => lengths.map(() => 0)), n = depths.map(() => lengths.map(() => 0));
    for (let r = 0; r < t.columns.length.length; r++) {
      const a = depths.indexOf(t.columns.depth[r]), b = lengths.indexOf(t.columns.length[r]);
      z[a][b] += t.columns.bits[r];
      hits[a][b] += t.columns.correct[r];
      n[a][b]++;
    }
    const axis = i === 0 ? '' : String(i + 1);
    data.push({
      type: 'heatmap', x: lengths.map(String), y: depths.map((d) => `${Math.round(100 * d)}%`), z: z.map((row, a) => row.map((s, b) => s / n[a][b])),
      text: hits.map((row, a) => row.map((h, b) => `${h}/${n[a][b]}`)), texttemplate: '%{text}', colorscale: 'Viridis', reversescale: true,
      showscale: i === tables.length - 1, colorbar: { title: { text: 'bits' } }, xaxis: `x${axis}`, yaxis: `y${axis}`,
    });
    layout[`xaxis${axis}`] = { title: { text: `${t.name}: context L` }, type: 'category', domain: [i / tables.length + 0.01, (i + 1) / tables.length - 0.03] };
    layout[`yaxis${axis}`] = { title: { text: i === 0 ? 'needle depth' : '' }, type: 'category', anchor: `x${axis}`, showticklabels: i === 0 };
  });
  // one colour scale for every model: the cells' mean bits, lowest to highest over all of them
  const cells = (data as { z: number[][] }[]).flatMap((d) => d.z.flat());
  for (const d of data as Record<string, unknown>[]) Object.assign(d, { zmin: Math.min(...cells), zmax: Math.max(...cells) });
  return { data, layout, width: 1400, height: 420 };
}

function copyFigure(tables: { name: string; columns: Columns }[]): Figure {
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'];
  const data: unknown[] = [];
  tables.forEach((t, i) => {
    const distances = [...new Set(Array.from(t.columns.distance))].sort((a, b) => a - b);
    const mean = (key: string, D: number) => {
      let s = 0, k = 0;
      for (let r = 0; r < t.columns.distance.length; r++) if (t.columns.distance[r] === D) [s, k] = [s + t.columns[key][r], k + 1];
      return s / k;
    };
    const x = distances.map((D) => Math.max(D, 1)); // D = 0 drawn at 1 on the log axis
    data.push({ type: 'scatter', mode: 'lines+markers', name: `${t.name}: read again`, x, y: distances.map((D) => mean('nll_second', D)), line: { color: colors[i % 4] } });
    data.push({ type: 'scatter', mode: 'lines', name: `${t.name}: first reading`, x, y: distances.map((D) => mean('nll_first', D)), line: { color: colors[i % 4], dash: 'dot' } });
  });
  return {
    data, width: 1000, height: 480,
    layout: {
      font, margin: { t: 60, l: 70, r: 20, b: 60 }, title: { text: 'Copy distance: NLL of a 32-token span read again D tokens after it (dotted: its first reading)' },
      xaxis: { type: 'log', title: { text: 'distance D (tokens; D = 0 drawn at 1)' } }, yaxis: { title: { text: 'nats / token' } },
    },
  };
}

function frozenFigure(tables: { name: string; columns: Columns }[]): Figure {
  const window = 1024;
  const data = tables.flatMap((t) => {
    const d = t.columns.dnll_frozen;
    const x: number[] = [], y: number[] = [];
    for (let from = 1; from + window <= d.length; from += window / 2) {
      let s = 0;
      for (let i = from; i < from + window; i++) s += d[i];
      x.push(from + window / 2);
      y.push(s / window / Math.LN2);
    }
    return [{ type: 'scatter', mode: 'lines', name: t.name, x, y }];
  });
  return {
    data, width: 1000, height: 420,
    layout: {
      font, margin: { t: 60, l: 70, r: 20, b: 60 }, title: { text: 'Inner loop frozen from the start: ΔNLL against the learning model (mean over 1,024 tokens)' },
      xaxis: { title: { text: 'position in the book (tokens)' } }, yaxis: { title: { text: 'ΔNLL (bits / token)' }, zeroline: true },
    },
  };
}

const figures: [string, Figure][] = [];
if (values.needle) figures.push(['probe-needle.png', needleFigure((await load(values.needle)).tables)]);
if (values.copy) figures.push(['probe-copy.png', copyFigure((await load(values.copy)).tables)]);
if (values.frozen) figures.push(['probe-frozen.png', frozenFigure((await load(values.frozen)).tables)]);
if (figures.length === 0) throw new Error('give at least one of --needle RUN, --copy RUN, --frozen RUN');

mkdirSync(outDir, { recursive: true });
const plotly = readFileSync(join(root, 'node_modules', 'plotly.js-dist-min', 'plotly.min.js'), 'utf8');
const browser = await launchBrowser(findBrowser());
try {
  for (const [file, figure] of figures) {
    const page = await browser.newPage({ viewport: { width: figure.width, height: figure.height } });
    await page.setContent(`<!doctype html><html><body style="margin:0"><div id="plot"></div><script>${plotly}</script></body></html>`);
    await page.evaluate(async (f) => {
      const Plotly = (window as unknown as { Plotly: { newPlot: (...a: unknown[]) => Promise<void> } }).Plotly;
      await Plotly.newPlot('plot', f.data, { ...f.layout, width: f.width, height: f.height }, { staticPlot: true });
    }, figure);
    await page.screenshot({ path: join(outDir, file) });
    await page.close();
    process.stdout.write(`${join(outDir, file)}\n`);
  }
} finally {
  await browser.close();
}
