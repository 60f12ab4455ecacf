/**
 * Per-token perplexity along the document, one line per model: mean NLL in log-spaced position bins (the TTT
 * paper's Figure 2, right), exponentiated. The chart owns its plot element and redraws from the series
 * buffers at most once per animation frame, without re-rendering React.
 */
import { memo, useEffect, useId, useRef, useState } from 'react';
import { changePerplexityMode } from '../commands/runs.js';
import { exportChartImage, exportSeriesCsv } from '../commands/export.js';
import { plotly, type PlotlyTypes } from '../lib/plotly.js';
import { getSeries, type SeriesBuffer, seriesKey, subscribeSeries } from '../series/buffers.js';
import type { PerplexityMode } from '../stores/view.js';

export interface PerplexityChartProps {
  readonly runId: string;
  readonly mode: PerplexityMode;
  readonly title?: string;
}

const colors = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

const layout: Partial<PlotlyTypes.Layout> = {
  margin: { l: 60, r: 20, t: 10, b: 48 },
  font: { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 12, color: '#374151' },
  paper_bgcolor: '#ffffff',
  plot_bgcolor: '#ffffff',
  colorway: colors,
  xaxis: { type: 'log', title: { text: 'Token position (log scale)' }, gridcolor: '#eceef2', zeroline: false },
  yaxis: { title: { text: 'Perplexity' }, gridcolor: '#eceef2', zeroline: false },
  legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
  hovermode: 'x unified',
};

const config: Partial<PlotlyTypes.Config> = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ['toImage', 'lasso2d', 'select2d'] };

const traces = (series: readonly SeriesBuffer[], mode: PerplexityMode): Partial<PlotlyTypes.PlotData>[] =>
  series.map((s) => ({
    type: 'scatter',
    mode: mode === 'smoothed' ? 'lines+markers' : 'lines',
    name: s.modelName,
    x: s.x as unknown as number[],
    y: s.y as unknown as number[],
    line: { width: mode === 'smoothed' ? 2 : 1.2 },
    marker: { size: 4 },
    hovertemplate: '%{y:.2f}<extra>%{fullData.name}</extra>',
  }));

export const PerplexityChart = memo(function PerplexityChart({ runId, mode, title = 'Perplexity along the document' }: PerplexityChartProps) {
  const plot = useRef<HTMLDivElement>(null);
  const titleId = useId();
  const key = seriesKey(runId, `perplexity-${mode}`);
  const [points, setPoints] = useState(0);
  useEffect(() => {
    const element = plot.current;
    if (!element) return;
    let frame = 0;
    const draw = () => {
      frame = 0;
      const series = getSeries(key);
      setPoints(series.reduce((n, s) => n + s.x.length, 0));
      void plotly().react(element, traces(series, mode), layout, config);
    };
    const schedule = () => {
      if (frame === 0) frame = requestAnimationFrame(draw);
    };
    schedule();
    const unsubscribe = subscribeSeries((changed) => changed === key && schedule());
    return () => {
      unsubscribe();
      cancelAnimationFrame(frame);
      plotly().purge(element);
    };
  }, [key, mode]);
  const filename = `perplexity-${runId}-${mode}`;
  return (
    <section role="region" aria-labelledby={titleId} className="chart" data-testid="perplexity-chart">
      <header className="chart-header">
        <h2 id={titleId} className="chart-title">{title}</h2>
        <div className="segmented" role="group" aria-label="Curve">
          {(['smoothed', 'raw'] as const).map((m) => (
            <button key={m} type="button" aria-pressed={mode === m} onClick={() => void changePerplexityMode(m)}>{m === 'smoothed' ? 'Smoothed' : 'Raw'}</button>
          ))}
        </div>
        <div className="chart-actions">
          <button type="button" className="button button-small" onClick={() => void exportChartImage(plot.current, 'png', filename)}>Export PNG</button>
          <button type="button" className="button button-small" onClick={() => void exportChartImage(plot.current, 'svg', filename)}>Export SVG</button>
          <button type="button" className="button button-small" onClick={() => exportSeriesCsv(key, 'perplexity', filename)}>Export CSV</button>
        </div>
      </header>
      <p className="chart-caption">
        Mean negative log-likelihood in {mode === 'smoothed' ? 'a few wide' : 'many narrow'} log-spaced position bins, as perplexity:
        lower is better, and a curve that keeps falling means the model uses more of the context.
      </p>
      <div className="chart-plot-wrap">
        <div ref={plot} className="chart-plot" />
        {points === 0 && <div className="chart-empty">No per-token results yet.</div>}
      </div>
    </section>
  );
});
