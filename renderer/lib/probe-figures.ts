/**
 * What the probe charts look like: Plotly traces and layout from chart buffers, shared by the Probes page and the
 * probe report. Display only: every number drawn comes from the engine (`probe.get`); here it is only placed.
 *
 * A needle heatmap's buffer holds one cell per point, in long format (x = needle depth in %, y = context length in
 * tokens, `color` = the value), one trace per measure (`bits`, `accuracy`), so its CSV is one row per cell.
 */
import type { SeriesBuffer } from '../series/buffers.js';
import { baseLayout, type FigureBuilder } from './figures.js';
import type { PlotlyTypes } from './plotly.js';

/** What a needle heatmap colours by: the key's bits given the prompt, or the share of keys greedy decoding retrieved. */
export type NeedleMeasure = 'bits' | 'accuracy';

export const needleMeasureTitles: Record<NeedleMeasure, string> = { bits: 'Key bits', accuracy: 'Greedy retrieved' };

const axis = (text: string, type: 'log' | 'linear' | 'category' = 'linear'): Partial<PlotlyTypes.LayoutAxis> =>
  ({ type, title: { text }, gridcolor: '#eceef2', zeroline: false, automargin: true, ...(type === 'log' ? { dtick: 'D2' } : {}) });

/** NIAH's colours: red where the key is lost, green where it is found (for bits the scale runs the other way). */
const retrievalScale: [number, string][] = [[0, '#d73027'], [0.5, '#fee08b'], [1, '#1a9850']];

const sortedUnique = (values: ArrayLike<number>) => [...new Set(Array.from(values))].sort((a, b) => a - b);

/** The z matrix [length][depth] of one measure's cells (null where the grid has no cell). */
function grid(buffer: SeriesBuffer | undefined, lengths: readonly number[], depths: readonly number[]): (number | null)[][] {
  const z = lengths.map(() => depths.map((): number | null => null));
  if (!buffer?.color) return z;
  for (let i = 0; i < buffer.x.length; i++) {
    const row = lengths.indexOf(buffer.y[i]);
    const column = depths.indexOf(buffer.x[i]);
    const value = buffer.color[i];
    if (row >= 0 && column >= 0 && !Number.isNaN(value)) z[row][column] = value;
  }
  return z;
}

/**
 * A needle heatmap: context length (rows, as categories so 1k…16k are evenly spaced) × needle depth, coloured by
 * `measure`; hovering a cell gives both numbers. Bits: low is good (green); retrieved: high is good.
 */
export const needleFigure = (measure: NeedleMeasure): FigureBuilder => (series) => {
  const bits = series.find((s) => s.modelKey === 'bits');
  const accuracy = series.find((s) => s.modelKey === 'accuracy');
  const cells = bits ?? accuracy;
  const lengths = cells ? sortedUnique(cells.y) : [];
  const depths = cells ? sortedUnique(cells.x) : [];
  const zBits = grid(bits, lengths, depths);
  const zAccuracy = grid(accuracy, lengths, depths);
  const shown = measure === 'bits' ? zBits : zAccuracy;
  const customdata = lengths.map((_, r) => depths.map((__, c) => [zBits[r][c], zAccuracy[r][c] === null ? null : zAccuracy[r][c]! * 100]));
  const data: Partial<PlotlyTypes.PlotData>[] = cells ? [{
    type: 'heatmap', name: needleMeasureTitles[measure], x: depths.map((d) => `${d}%`), y: lengths.map(String), z: shown as unknown as number[][],
    customdata: customdata as unknown as PlotlyTypes.Datum[], xgap: 2, ygap: 2,
    colorscale: retrievalScale, reversescale: measure === 'bits',
    // retrieval on one fixed scale for every model; bits on each model's own range (the numbers are on hover)
    ...(measure === 'accuracy' ? { zauto: false, zmin: 0, zmax: 1 } : {}),
    colorbar: { title: { text: measure === 'bits' ? 'bits' : 'retrieved' }, thickness: 12, ...(measure === 'accuracy' ? { tickformat: '.0%' } : {}) },
    hovertemplate: 'context %{y} tokens, depth %{x}<br>key bits %{customdata[0]:.2f}<br>greedy retrieved %{customdata[1]:.0f}%<extra></extra>',
  } as Partial<PlotlyTypes.PlotData>] : [];
  return {
    data,
    layout: { xaxis: axis('Needle depth (% of the context)', 'category'), yaxis: axis('Context length (tokens)', 'category'), hovermode: 'closest' },
  };
};

/** A copy curve's trace id suffix for the spans' first occurrence (drawn dotted). */
export const firstSuffix = '|first';

/** NLL of the span's second occurrence (per token) against the distance back to the first, one line per model. */
export const copyFigure: FigureBuilder = (series) => ({
  data: series.map((s) => ({
    type: 'scatter', mode: 'lines+markers', name: s.modelName, x: Array.from(s.x), y: Array.from(s.y), marker: { size: 5 }, line: { width: 1.8, dash: s.modelKey.endsWith(firstSuffix) ? 'dot' : 'solid' },
    hovertemplate: 'D = %{x}: %{y:.3f} nats<extra>%{fullData.name}</extra>',
  })),
  layout: { xaxis: axis('Distance D back to the first occurrence (tokens, log scale)', 'log'), yaxis: axis('NLL of the repeated span (nats per token)'), hovermode: 'closest' },
});

/**
 * Per-token ΔNLL of an intervention against the unmodified run, one line per model, with position t marked by a
 * dashed vertical line (positive: the intervention made the model worse).
 */
export const interventionFigure = (t: number, label: string): FigureBuilder => (series) => ({
  data: series.map((s) => ({
    type: 'scatter', mode: 'lines', name: s.modelName, x: Array.from(s.x), y: Array.from(s.y), line: { width: 1.4 },
    hovertemplate: '%{y:.3f}<extra>%{fullData.name}</extra>',
  })),
  layout: {
    xaxis: axis('Token position'), yaxis: axis('ΔNLL (nats, intervened − unmodified)'),
    shapes: [
      { type: 'line', xref: 'x', yref: 'paper', x0: t, x1: t, y0: 0, y1: 1, line: { color: '#111827', width: 1.5, dash: 'dash' } },
      { type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: 0, y1: 0, line: { color: '#9ca3af', width: 1 } },
    ],
    annotations: [{ x: t, xref: 'x', y: 1, yref: 'paper', text: `t = ${t.toLocaleString('en')} (${label})`, showarrow: false, xanchor: 'left', yanchor: 'bottom', font: { size: 11 } }],
    margin: { ...baseLayout.margin, t: 24 },
  },
});
