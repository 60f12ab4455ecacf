/**
 * Per-token series for charts, as typed arrays outside zustand (they can be large and change while a run
 * streams). Keyed by run, chart and model; charts subscribe here and redraw without re-rendering React.
 */
export interface SeriesBuffer {
  readonly modelKey: string;
  readonly modelName: string;
  /** Token positions (bin centres for log-binned series). */
  readonly x: Float64Array;
  readonly y: Float64Array;
  /** Stored rows the points summarise. */
  readonly rows: number;
}

type Listener = (key: string) => void;

const buffers = new Map<string, Map<string, SeriesBuffer>>();
const listeners = new Set<Listener>();

export const seriesKey = (runId: string, chart: string): string => `${runId}/${chart}`;

/** Replaces one model's series of a chart and tells subscribers. */
export function putSeries(key: string, buffer: SeriesBuffer): void {
  let models = buffers.get(key);
  if (!models) buffers.set(key, (models = new Map()));
  models.set(buffer.modelKey, buffer);
  for (const listener of listeners) listener(key);
}

/** A chart's series, in the order they were first put (the run's model order). */
export function getSeries(key: string): readonly SeriesBuffer[] {
  return [...(buffers.get(key)?.values() ?? [])];
}

export function subscribeSeries(listener: Listener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

export function clearSeries(): void {
  buffers.clear();
}
