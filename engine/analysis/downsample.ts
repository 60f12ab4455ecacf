/**
 * Reducing long series for charts, engine-side, so a 4M-token run never ships millions of points to the UI.
 * `minmax` keeps each bin's extremes (spikes survive); `logmean` averages NLL in log-spaced position bins, the
 * paper's Figure-2 view of how loss falls with context.
 */

export interface SeriesData {
  readonly x: ArrayLike<number>;
  readonly columns: Readonly<Record<string, ArrayLike<number>>>;
}

export interface ReducedSeries {
  x: number[];
  columns: Record<string, number[]>;
}

const empty = (names: string[]): ReducedSeries => ({ x: [], columns: Object.fromEntries(names.map((n) => [n, []])) });

/** At most `points` points per column: each of points/2 equal-count bins contributes its min and max, in order. */
export function minMaxDownsample(data: SeriesData, points: number): ReducedSeries {
  const names = Object.keys(data.columns);
  const n = data.x.length;
  if (n <= points) return { x: Array.from(data.x), columns: Object.fromEntries(names.map((k) => [k, Array.from(data.columns[k])])) };
  const bins = Math.max(1, Math.floor(points / 2));
  const out = empty(names);
  for (let b = 0; b < bins; b++) {
    const lo = Math.floor((b * n) / bins);
    const hi = Math.floor(((b + 1) * n) / bins);
    if (hi <= lo) continue;
    out.x.push(data.x[lo], data.x[hi - 1]);
    for (const name of names) {
      const col = data.columns[name];
      let min = Infinity, max = -Infinity, argMin = lo, argMax = lo;
      for (let i = lo; i < hi; i++) {
        const v = col[i];
        if (v < min) [min, argMin] = [v, i];
        if (v > max) [max, argMax] = [v, i];
      }
      // the earlier extreme first, so the line zig-zags the way the data does
      out.columns[name].push(...(argMin <= argMax ? [min, max] : [max, min]));
    }
  }
  return out;
}

/**
 * Means in `bins` log-spaced bins of x over [max(1, x0), xEnd]; x of each output point is the bin's geometric
 * centre. Empty bins are skipped (there are few tokens at small positions), and so are values that are not
 * numbers (a ratio with a zero denominator). x must not decrease. One pass per column over plain loops: this runs
 * over millions of rows when a long run opens.
 */
export function logBinnedMean(data: SeriesData, bins: number): ReducedSeries {
  const names = Object.keys(data.columns);
  const n = data.x.length;
  const out = empty(names);
  if (n === 0) return out;
  const first = Math.max(1, data.x[0]);
  const last = Math.max(first + 1, data.x[n - 1] + 1);
  const logFirst = Math.log(first);
  const step = (Math.log(last) - logFirst) / bins;
  // bin edges as row indices, found once for all columns
  const edges: number[] = [0];
  let i = 0;
  for (let b = 0; b < bins && i < n; b++) {
    const hiX = b === bins - 1 ? Infinity : Math.exp(logFirst + (b + 1) * step);
    while (i < n && data.x[i] < hiX) i++;
    if (i > edges[edges.length - 1]) edges.push(i);
  }
  for (let k = 1; k < edges.length; k++) out.x.push(Math.sqrt(Math.max(1, data.x[edges[k - 1]]) * Math.max(1, data.x[edges[k] - 1])));
  for (const name of names) {
    const column = data.columns[name];
    const means = out.columns[name];
    for (let k = 1; k < edges.length; k++) {
      let sum = 0, count = 0;
      for (let j = edges[k - 1]; j < edges[k]; j++) {
        const v = column[j];
        if (v === v) { // not NaN
          sum += v;
          count++;
        }
      }
      means.push(count > 0 ? sum / count : NaN);
    }
  }
  return out;
}
