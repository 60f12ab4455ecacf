/**
 * Loading chart data from `getSeries` into the series buffers, and refining it when a chart is zoomed: the
 * engine downsamples (min/max or log-binned means) to a few thousand points per trace over the asked range, so
 * a 4M-token run never ships millions of points. A chart remembers how it was loaded, so a zoom re-asks the
 * same series over the new range; an answer that arrives after a newer request for the same chart is dropped.
 */
import type { SeriesName } from '../../engine/protocol.js';
import { getRange, type SeriesBuffer, setSeries } from '../series/buffers.js';
import { attempt, request } from './engine.js';

export interface TraceSpec {
  /** Column of the series drawn as this trace. */
  readonly column: string;
  readonly name: string;
  /** Trace id within the chart (default: the column). */
  readonly id?: string;
  readonly axis?: 'y2';
  /** Draw exp(value): perplexity from NLL. */
  readonly exp?: boolean;
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
      const y = Float64Array.from(column, (v: number | null) => (v === null ? NaN : trace.exp ? Math.exp(v) : v));
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

/** A zoom (or, with null, a reset) on a chart loaded by `loadSeriesChart`: the same series over the new range. */
export function refineChart(key: string, range: readonly [number, number] | null): void {
  const spec = specs.get(key);
  if (spec) void loadSeriesChart(spec, range);
}
