/**
 * The corpus view's pictures, shared by its live charts and its HTML report: each model's mean NLL by position
 * with its 95% band on a log position axis (as the TTT paper's Figure 2, right), and a per-document scatter of
 * one model's bits per byte against another's. Display only: the bins and intervals come from the engine.
 */
import { colors, type FigureBuilder } from './figures.js';
import type { PlotlyTypes } from './plotly.js';

/** Trace ids of a model's band in the curve chart: `<key>:high` and `<key>:low` beside its mean `<key>`. */
export const bandId = (key: string, side: 'high' | 'low'): string => `${key}:${side}`;

const axis = (text: string, type: 'log' | 'linear' = 'linear'): Partial<PlotlyTypes.LayoutAxis> =>
  ({ type, title: { text }, gridcolor: '#eceef2', zeroline: false, automargin: true, ...(type === 'log' ? { dtick: 'D2' } : {}) });

const values = (a: Float64Array) => a as unknown as number[];

function translucent(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** Per model: its upper bound (no line), its lower bound filled up to it (the band), then its mean on top. */
export const corpusCurveFigure: FigureBuilder = (series) => {
  const byId = new Map(series.map((s) => [s.modelKey, s]));
  const means = series.filter((s) => !s.modelKey.includes(':'));
  const data = means.flatMap((mean, i): Partial<PlotlyTypes.PlotData>[] => {
    const color = colors[i % colors.length];
    const high = byId.get(bandId(mean.modelKey, 'high'));
    const low = byId.get(bandId(mean.modelKey, 'low'));
    const band: Partial<PlotlyTypes.PlotData>[] = high && low ? [
      { type: 'scatter', mode: 'lines', name: high.modelName, x: values(high.x), y: values(high.y), line: { width: 0, color }, showlegend: false, hoverinfo: 'skip', connectgaps: false },
      {
        type: 'scatter', mode: 'lines', name: `${mean.modelName} 95% interval`, x: values(low.x), y: values(low.y), line: { width: 0, color },
        fill: 'tonexty', fillcolor: translucent(color, 0.18), hoverinfo: 'skip', connectgaps: false,
      },
    ] : [];
    return [...band, {
      type: 'scatter', mode: 'lines+markers', name: mean.modelName, x: values(mean.x), y: values(mean.y),
      line: { width: 2, color }, marker: { size: 4, color }, hovertemplate: '%{y:.3f} nats<extra>%{fullData.name}</extra>',
    }];
  });
  return { data, layout: { xaxis: axis('Token position (log scale)', 'log'), yaxis: axis('Mean NLL (nats per token), 95% interval') } };
};

/** One point per document both models finished, and the diagonal where they do equally well. */
export const corpusScatterFigure = (nameA: string, nameB: string, documents: readonly string[] = []): FigureBuilder => (series) => {
  const points = series[0];
  const all = points ? [...points.x, ...points.y].filter(Number.isFinite) : [];
  const lo = all.length ? Math.min(...all) : 0, hi = all.length ? Math.max(...all) : 1;
  const data: Partial<PlotlyTypes.PlotData>[] = [
    { type: 'scatter', mode: 'lines', name: 'equal', x: [lo, hi], y: [lo, hi], line: { color: '#9ca3af', width: 1, dash: 'dot' }, hoverinfo: 'skip', showlegend: false },
  ];
  if (points) {
    data.push({
      type: 'scatter', mode: 'markers', name: points.modelName, x: values(points.x), y: values(points.y), text: documents as string[],
      marker: { size: 7, color: colors[0], opacity: 0.8 }, hovertemplate: '%{text}<br>A %{x:.4f} · B %{y:.4f} bits/byte<extra></extra>',
    });
  }
  return {
    data,
    layout: { xaxis: axis(`${nameA}: bits per byte`), yaxis: axis(`${nameB}: bits per byte`, 'linear'), hovermode: 'closest', showlegend: false },
  };
};

