/**
 * Chart data as typed arrays outside zustand (they can be large and change while a run streams). Keyed by
 * chart (`runId/chart/…`); each chart holds traces by id and the x range it was last refined to. Charts
 * subscribe here and redraw without re-rendering React.
 */
export interface SeriesBuffer {
  /** The trace's id within its chart: a model key, or a column such as `before`. */
  readonly modelKey: string;
  /** The trace's name in the legend and in CSV exports. */
  readonly modelName: string;
  /** Token positions (bin centres for log-binned series), or whatever the chart's x axis is. */
  readonly x: Float64Array;
  readonly y: Float64Array;
  /** Stored rows the points summarise. */
  readonly rows: number;
  /** Per-point colour values (a PCA trajectory coloured by position). */
  readonly color?: Float64Array;
  /** Draw against the chart's second y axis. */
  readonly axis?: 'y2';
}

type Listener = (key: string) => void;

interface ChartData {
  readonly traces: Map<string, SeriesBuffer>;
  /** The x range the data was refined to after a zoom; null for the whole series. */
  range: readonly [number, number] | null;
}

const charts = new Map<string, ChartData>();
const listeners = new Set<Listener>();

export const seriesKey = (runId: string, chart: string): string => `${runId}/${chart}`;

function chart(key: string): ChartData {
  let data = charts.get(key);
  if (!data) charts.set(key, (data = { traces: new Map(), range: null }));
  return data;
}

const notify = (key: string) => {
  for (const listener of listeners) listener(key);
};

/** Replaces one trace of a chart and tells subscribers. */
export function putSeries(key: string, buffer: SeriesBuffer): void {
  chart(key).traces.set(buffer.modelKey, buffer);
  notify(key);
}

/** Replaces every trace of a chart at once (a new layer, a refined zoom) and records the range shown. */
export function setSeries(key: string, buffers: readonly SeriesBuffer[], range: readonly [number, number] | null = null): void {
  const data = chart(key);
  data.traces.clear();
  for (const buffer of buffers) data.traces.set(buffer.modelKey, buffer);
  data.range = range;
  notify(key);
}

/** A chart's traces, in the order they were first put (the run's model order). */
export function getSeries(key: string): readonly SeriesBuffer[] {
  return [...(charts.get(key)?.traces.values() ?? [])];
}

export function getRange(key: string): readonly [number, number] | null {
  return charts.get(key)?.range ?? null;
}

export function subscribeSeries(listener: Listener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

export function clearSeries(): void {
  charts.clear();
}
