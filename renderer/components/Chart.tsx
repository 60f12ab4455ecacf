/**
 * One chart: a region named by its title, its plot, a status line, and exports (PNG, SVG, CSV). The chart owns
 * its plot element and redraws from its buffers at most once per animation frame with Plotly.react, without
 * re-rendering React. Zooming asks for refined data over the new x range (`onZoom`); a click on a point hands
 * its position to `onPick` (the token heatmap). `data-draws`, `data-range` and `data-busy` on the region say
 * what is drawn, for tests and for the large-run script's timings.
 */
import { memo, type ReactNode, useEffect, useId, useRef, useState } from 'react';
import { type CsvColumns, exportChartImage, exportSeriesCsv } from '../commands/export.js';
import { baseLayout, type FigureBuilder } from '../lib/figures.js';
import { formatCount } from '../lib/format.js';
import { plotly, type PlotlyTypes } from '../lib/plotly.js';
import { getRange, getSeries, type SeriesBuffer, subscribeSeries } from '../series/buffers.js';

export interface ChartProps {
  readonly title: string;
  readonly seriesKey: string;
  /** A stable function (module constant or memoised): a new one redraws the chart from scratch. */
  readonly figure: FigureBuilder;
  readonly csv: CsvColumns;
  readonly filename: string;
  readonly caption?: ReactNode;
  readonly controls?: ReactNode;
  /** The x axis is logarithmic: Plotly reports its zoom in log10 units. */
  readonly logX?: boolean;
  readonly onZoom?: (range: readonly [number, number] | null) => void;
  readonly onPick?: (x: number, trace: string) => void;
  readonly empty?: string;
  readonly testId?: string;
}

interface Status {
  readonly points: number;
  readonly rows: number;
  readonly range: readonly [number, number] | null;
}

// no floating tips: the status line says how to zoom back out
const config: Partial<PlotlyTypes.Config> = { displaylogo: false, responsive: true, showTips: false, modeBarButtonsToRemove: ['toImage', 'lasso2d', 'select2d'] };

type PlotElement = HTMLDivElement & { on?: (event: string, handler: (data: never) => void) => void };

/** Plotly reports a zoom as `xaxis.range[0]`/`[1]` or `xaxis.range`, a reset as `xaxis.autorange`. */
function zoomOf(event: Record<string, unknown>, logX: boolean): readonly [number, number] | null | undefined {
  if (event['xaxis.autorange'] === true) return null;
  const pair = event['xaxis.range'] as unknown[] | undefined;
  const lo = event['xaxis.range[0]'] ?? pair?.[0];
  const hi = event['xaxis.range[1]'] ?? pair?.[1];
  if (typeof lo !== 'number' || typeof hi !== 'number') return undefined;
  const linear = (v: number) => (logX ? 10 ** v : v);
  return [Math.max(0, Math.floor(linear(lo))), Math.ceil(linear(hi)) + 1];
}

const summarise = (series: readonly SeriesBuffer[], range: Status['range']): Status => ({
  points: series.reduce((n, s) => n + s.x.length, 0),
  rows: series.reduce((n, s) => Math.max(n, s.rows), 0),
  range,
});

export const Chart = memo(function Chart(props: ChartProps) {
  const { title, seriesKey: key, figure, csv, filename, caption, controls, logX = false, empty = 'No data yet.', testId } = props;
  const plot = useRef<PlotElement>(null);
  const region = useRef<HTMLElement>(null);
  const draws = useRef(0);
  const latest = useRef(props);
  latest.current = props;
  const titleId = useId();
  const [status, setStatus] = useState<Status | null>(null);

  useEffect(() => {
    const element = plot.current!;
    let frame = 0;
    let listening = false;
    const listen = () => {
      listening = true;
      element.on?.('plotly_relayout', (event: Record<string, unknown>) => {
        const zoom = zoomOf(event, latest.current.logX ?? false);
        if (zoom === undefined || !latest.current.onZoom) return;
        region.current?.setAttribute('data-busy', 'true');
        latest.current.onZoom(zoom);
      });
      element.on?.('plotly_click', (event: { points: { x: number; customdata?: unknown; data: { meta?: unknown } }[] }) => {
        const point = event.points[0];
        if (!point || !latest.current.onPick) return;
        latest.current.onPick(typeof point.customdata === 'number' ? point.customdata : Number(point.x), String(point.data.meta ?? ''));
      });
    };
    // a redraw under a drag (a live run pushes a few a second) would drop the zoom box: wait for the button's release
    let pressed = false, waiting = false;
    const press = () => (pressed = true);
    const release = () => {
      pressed = false;
      if (waiting) {
        waiting = false;
        schedule();
      }
    };
    // capture: Plotly's drag layer may stop the events from bubbling up to the chart
    element.addEventListener('pointerdown', press, true);
    window.addEventListener('pointerup', release, true);
    const draw = () => {
      frame = 0;
      if (pressed) {
        waiting = true;
        return;
      }
      const series = getSeries(key);
      const range = getRange(key);
      const { data, layout } = figure(series);
      const xaxis = { ...layout.xaxis, ...(range ? { range: logX ? range.map((v) => Math.log10(Math.max(1, v))) : [...range], autorange: false } : {}) };
      setStatus(summarise(series, range));
      void plotly().react(element, data, { ...baseLayout, ...layout, xaxis, uirevision: key }, config).then(() => {
        if (!listening) listen();
        draws.current++;
        region.current?.setAttribute('data-draws', String(draws.current));
        region.current?.setAttribute('data-range', range ? `${range[0]}-${range[1]}` : 'all');
        region.current?.setAttribute('data-busy', 'false');
      });
    };
    const schedule = () => {
      if (frame === 0) frame = requestAnimationFrame(draw);
    };
    schedule();
    const unsubscribe = subscribeSeries((changed) => changed === key && schedule());
    return () => {
      unsubscribe();
      cancelAnimationFrame(frame);
      element.removeEventListener('pointerdown', press, true);
      window.removeEventListener('pointerup', release, true);
      plotly().purge(element);
    };
  }, [key, figure, logX]);

  return (
    <section ref={region} role="region" aria-labelledby={titleId} className="chart" data-testid={testId}>
      <header className="chart-header">
        <h2 id={titleId} className="chart-title">{title}</h2>
        {controls}
        <div className="chart-actions">
          <button type="button" className="button button-small" onClick={() => void exportChartImage(plot.current, 'png', filename)}>Export PNG</button>
          <button type="button" className="button button-small" onClick={() => void exportChartImage(plot.current, 'svg', filename)}>Export SVG</button>
          <button type="button" className="button button-small" onClick={() => exportSeriesCsv(key, csv, filename)}>Export CSV</button>
        </div>
      </header>
      {caption && <p className="chart-caption">{caption}</p>}
      <div className="chart-plot-wrap">
        <div ref={plot} className="chart-plot" />
        {status?.points === 0 && <div className="chart-empty">{empty}</div>}
      </div>
      {status && status.points > 0 && (
        <p className="chart-status" data-testid="chart-status">
          {formatCount(status.points)} points from {formatCount(status.rows)} rows
          {status.range ? ` · zoomed to ${formatCount(status.range[0])}–${formatCount(status.range[1])} (double-click to zoom out)` : ''}
          {props.onPick ? ' · click a point to read the text there' : ''}
        </p>
      )}
    </section>
  );
});
