/**
 * Loading chart data from `getSeries` into the series buffers, and refining it when a chart is zoomed: the
 * engine downsamples (min/max or log-binned means) to a few thousand points per trace over the asked range, so
 * a 4M-token run never ships millions of points. A chart remembers how it was loaded, so a zoom re-asks the
 * same series over the new range; an answer that arrives after a newer request for the same chart is dropped.
 */
import type { SeriesName } from '../../engine/protocol.js';
import { type TokenUnit, tokenValue } from '../series/aggregates.js';
import { getRange, type SeriesBuffer, setSeries } from '../series/buffers.js';
import { attempt, request } from './engine.js';

export interface TraceSpec {
  /** Column of the series drawn as this trace. */
  readonly column: string;
  readonly name: string;
  /** Trace id within the chart (default: the column). */
  readonly id?: string;
  readonly axis?: 'y2';
  /** The column is mean NLL per token (and the series has mean `bytes`): draw it in this unit. */
  readonly unit?: TokenUnit;
}

export interface SeriesChartSpec {
  readonly key: string;
  readonly runId: string;
  readonly sources: readonly { readonly model: string; readonly series: SeriesName; readonly layer?: number; readonly traces: readonly TraceSpec[] }[];
  readonly reduce: 'minmax' | 'logmean';
  readonly points: number;
}

const specs = new Map<string, SeriesChartSpec>();
const generation = new Map<string, number>();
/** The range each chart was last asked for, applied or still loading: a reload while a zoom loads keeps the zoom. */
const wanted = new Map<string, readonly [number, number] | null>();

/** A chart's traces over `range` (null: everything), straight from the engine; throws what the engine throws. */
export async function fetchSeriesBuffers(spec: SeriesChartSpec, range: readonly [number, number] | null): Promise<SeriesBuffer[]> {
  const bounds = range ? { start: range[0], end: Math.max(range[0] + 1, range[1]) } : {};
  const answers = await Promise.all(spec.sources.map((source) =>
    request('getSeries', { runId: spec.runId, model: source.model, series: source.series, layer: source.layer, reduce: spec.reduce, points: spec.points, ...bounds })));
  const buffers: SeriesBuffer[] = [];
  answers.forEach((series, i) => {
    const x = Float64Array.from(series.x);
    for (const trace of spec.sources[i].traces) {
      const column = series.columns[trace.column];
      if (!column) continue;
      // NaN travels as JSON null: keep it a gap, not a zero
      const bytes = series.columns.bytes;
      const y = Float64Array.from(column, (v: number | null, j) => (v === null ? NaN : trace.unit ? tokenValue(trace.unit, v, 1, bytes?.[j] ?? 0) : v));
      buffers.push({ modelKey: trace.id ?? trace.column, modelName: trace.name, x, y, rows: series.rows, axis: trace.axis });
    }
  });
  return buffers;
}

/**
 * Loads a chart over `range` (null: everything; left out: the range it already shows, so a chart reloaded when a
 * run streams on or a person comes back to it keeps its zoom) and remembers its spec for later zooms.
 */
export async function loadSeriesChart(spec: SeriesChartSpec, zoom?: readonly [number, number] | null): Promise<boolean> {
  specs.set(spec.key, spec);
  const range = zoom === undefined ? (wanted.has(spec.key) ? wanted.get(spec.key)! : getRange(spec.key)) : zoom;
  wanted.set(spec.key, range);
  const id = (generation.get(spec.key) ?? 0) + 1;
  generation.set(spec.key, id);
  const buffers = await attempt('loadSeries', () => fetchSeriesBuffers(spec, range));
  if (!buffers || generation.get(spec.key) !== id) return false;
  setSeries(spec.key, buffers, range);
  return true;
}

/** Builds a chart's traces from its run's aggregates (series/aggregates.ts). */
export type AggregateDrawer = () => SeriesBuffer[];

/** Charts drawn from aggregates when not zoomed, by key: live runs redraw them as their aggregates change. */
const drawers = new Map<string, { readonly runId: string; readonly draw: AggregateDrawer }>();

function drawWhole(key: string, draw: AggregateDrawer): void {
  wanted.set(key, null);
  generation.set(key, (generation.get(key) ?? 0) + 1); // a zoom still loading is no longer wanted
  setSeries(key, draw(), null);
}

/**
 * Shows a chart: the whole of it from the run's aggregates (what the engine keeps as the run streams, so a live run
 * needs no request), a zoom from the engine's stored rows over the zoomed range. A chart keeps its zoom when shown
 * again.
 */
export async function showChart(spec: SeriesChartSpec, draw: AggregateDrawer): Promise<boolean> {
  specs.set(spec.key, spec);
  drawers.set(spec.key, { runId: spec.runId, draw });
  const range = wanted.has(spec.key) ? wanted.get(spec.key)! : getRange(spec.key);
  if (range) return loadSeriesChart(spec, range);
  drawWhole(spec.key, draw);
  return true;
}

/** A run's aggregates changed: its charts that are not zoomed redraw from them. */
export function redrawFromAggregates(runId: string): void {
  for (const [key, { runId: id, draw }] of drawers) if (id === runId && !wanted.get(key)) drawWhole(key, draw);
}

/** A zoom (or, with null, a reset) on a chart: the same series over the new range. */
export function refineChart(key: string, range: readonly [number, number] | null): void {
  const drawer = drawers.get(key);
  if (range === null && drawer) return drawWhole(key, drawer.draw);
  const spec = specs.get(key);
  if (spec) void loadSeriesChart(spec, range);
}
