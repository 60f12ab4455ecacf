/**
 * What each chart looks like: Plotly traces and layout from chart buffers. Display only (names, colours, axes);
 * shared by the live charts and the HTML report so both draw the same pictures.
 */
import type { SeriesBuffer } from '../series/buffers.js';
import type { PlotlyTypes } from './plotly.js';

export interface Figure {
  readonly data: Partial<PlotlyTypes.PlotData>[];
  readonly layout: Partial<PlotlyTypes.Layout>;
}

export type FigureBuilder = (series: readonly SeriesBuffer[]) => Figure;

export const colors = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

export const baseLayout: Partial<PlotlyTypes.Layout> = {
  margin: { l: 64, r: 24, t: 10, b: 48 },
  font: { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 12, color: '#374151' },
  paper_bgcolor: '#ffffff',
  plot_bgcolor: '#ffffff',
  colorway: colors,
  legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
  hovermode: 'x unified',
};

// log axes label 1, 2 and 5 of each decade (D2), not every digit: a zoom inside one decade stays readable
const axis = (text: string, type: 'log' | 'linear' = 'linear'): Partial<PlotlyTypes.LayoutAxis> =>
  ({ type, title: { text }, gridcolor: '#eceef2', zeroline: false, automargin: true, ...(type === 'log' ? { dtick: 'D2' } : {}) });

const positionAxis = (log: boolean) => axis(log ? 'Token position (log scale)' : 'Token position', log ? 'log' : 'linear');

// Plotly reads typed arrays directly; the cast only satisfies its Datum[] typing.
const values = (a: Float64Array) => a as unknown as number[];

function lines(series: readonly SeriesBuffer[], style: (s: SeriesBuffer, i: number) => Partial<PlotlyTypes.PlotData> = () => ({})): Partial<PlotlyTypes.PlotData>[] {
  return series.map((s, i) => ({
    type: 'scatter', mode: 'lines', name: s.modelName, meta: s.modelKey as unknown as [], x: values(s.x), y: values(s.y),
    yaxis: s.axis ?? 'y', line: { width: 1.5 }, hovertemplate: '%{y:.4g}<extra>%{fullData.name}</extra>', ...style(s, i),
  }));
}

/** The per-token curve's y-axis titles, by unit (renderer/stores/view.ts `PerplexityUnit`). */
export const tokenUnitTitles = { perplexity: 'Perplexity', nats: 'NLL (nats per token)', bits: 'Bits per token', bitsPerByte: 'Bits per byte' } as const;

export const perplexityFigure = (smoothed: boolean, unit: keyof typeof tokenUnitTitles = 'perplexity', logY = true): FigureBuilder => (series) => ({
  data: lines(series, () => ({ mode: smoothed ? 'lines+markers' : 'lines', line: { width: smoothed ? 2 : 1.2 }, marker: { size: 4 }, hovertemplate: '%{y:.3f}<extra>%{fullData.name}</extra>' })),
  layout: { xaxis: positionAxis(true), yaxis: axis(`${tokenUnitTitles[unit]}${logY ? ' (log scale)' : ''}`, logY ? 'log' : 'linear') },
});

const innerLoopStyle: Record<string, Partial<PlotlyTypes.PlotData>> = {
  init: { line: { color: '#9ca3af', width: 1.2, dash: 'dot' } },
  before: { line: { color: '#d97706', width: 1.5 } },
  after: { line: { color: '#2563eb', width: 1.5 } },
};

export const innerLoopFigure: FigureBuilder = (series) => ({
  data: lines(series, (s) => innerLoopStyle[s.modelKey] ?? {}),
  layout: { xaxis: positionAxis(true), yaxis: axis('Self-supervised loss (ttt_loss)') },
});

export const reductionFigure: FigureBuilder = (series) => ({
  data: lines(series, (s) => ({ line: { color: s.axis === 'y2' ? '#7c3aed' : '#059669', width: 1.5 } })),
  layout: {
    xaxis: positionAxis(true),
    yaxis: axis('before − after'),
    yaxis2: { ...axis('after ÷ before'), overlaying: 'y', side: 'right', showgrid: false },
    margin: { ...baseLayout.margin, r: 64 },
  },
});

export const weightChangeFigure: FigureBuilder = (series) => ({
  data: lines(series, (s) => ({ line: { width: 1.5, dash: s.modelKey.startsWith('W2') ? 'dash' : 'solid' } })),
  layout: { xaxis: positionAxis(true), yaxis: axis('Frobenius norm', 'log') },
});

export const cosineFigure: FigureBuilder = (series) => ({
  data: lines(series),
  layout: { xaxis: positionAxis(true), yaxis: axis('cos(W_t, W_0)') },
});

/** Snapshots in PCA space, joined in order and coloured by token position. */
export const pcaFigure = (explained: readonly [number, number]): FigureBuilder => (series) => ({
  data: series.map((s) => ({
    type: 'scatter', mode: 'lines+markers', name: s.modelName, x: values(s.x), y: values(s.y),
    customdata: s.color ? (Array.from(s.color) as unknown as []) : undefined,
    line: { color: '#cbd5e1', width: 1 },
    marker: { size: 9, color: s.color ? values(s.color) : undefined, colorscale: 'Viridis', showscale: true, colorbar: { title: { text: 'Position' }, thickness: 12 } },
    hovertemplate: 'position %{customdata}<extra></extra>',
  })),
  layout: {
    xaxis: axis(`PC 1 (${Math.round(explained[0] * 100)}% of variance)`),
    yaxis: axis(`PC 2 (${Math.round(explained[1] * 100)}% of variance)`),
    hovermode: 'closest', showlegend: false,
  },
});

export const spectraFigure: FigureBuilder = (series) => ({
  data: lines(series, () => ({ mode: 'lines+markers', marker: { size: 3 } })),
  layout: { xaxis: axis('Index (largest first)'), yaxis: axis('Singular value', 'log'), hovermode: 'closest' },
});

export const stateFigure = (family: 'mamba' | 'llama' | 'ttt' | 'delta'): FigureBuilder => (series) => ({
  data: lines(series, () => ({ line: { width: 1.5, shape: 'hv' } })),
  layout: { xaxis: positionAxis(false), yaxis: axis(family === 'llama' ? 'KV-cache size (bytes)' : 'SSM-state norm') },
});

export const stateTitle = (family: 'mamba' | 'llama' | 'ttt' | 'delta'): string =>
  family === 'llama' ? 'KV-cache size along the document' : 'SSM-state norm along the document';

export const comparisonFigure: FigureBuilder = (series) => ({
  data: lines(series, () => ({ mode: 'lines+markers', marker: { size: 4 }, line: { width: 1.8 } })),
  layout: { xaxis: axis('Byte offset in the book (log scale)', 'log'), yaxis: axis('Bits per byte') },
});
