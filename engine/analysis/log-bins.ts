/**
 * Fixed bins that sums, counts and extremes are accumulated into as rows stream in (aggregates.ts, byte-offsets.ts):
 * log-spaced bins of sums and counts, and equal bins of min/max. Each remembers which bins changed since it was
 * last asked, so a live view gets only those.
 */
import type { LogBins, MinMaxBins } from '../protocol.js';

export type Values = ArrayLike<number>;


/**
 * Edges e₀ = 1 < e₁ < … < eₙ = total + 1 of about `bins` log-spaced bins over positions [1, total]; bin k holds
 * positions [eₖ, eₖ₊₁). Edges closer than `minWidth` to the previous one are dropped, so the first bins are wide.
 */
export function logBinEdges(total: number, bins: number, minWidth = 1): Float64Array {
  const end = Math.max(2, total + 1);
  const edges = [1];
  for (let k = 1; k < bins; k++) {
    const e = Math.round(Math.exp((Math.log(end) * k) / bins));
    if (e - edges[edges.length - 1] >= minWidth && end - e >= minWidth) edges.push(e);
  }
  edges.push(end);
  return Float64Array.from(edges);
}

/** Index of the bin holding x: the last k with edges[k] ≤ x, clamped to the bins there are. */
function binOf(edges: Float64Array, x: number, hint: number): number {
  const last = edges.length - 2;
  let k = Math.min(Math.max(hint, 0), last);
  if (x < edges[k]) k = 0; // positions only move forward in a stream; a restart searches from the start
  while (k < last && x >= edges[k + 1]) k++;
  return k;
}

/** Tracks the lowest and highest bin touched since the last `take`. */
class DirtyRange {
  lo = Infinity;
  hi = -Infinity;
  mark(k: number): void {
    if (k < this.lo) this.lo = k;
    if (k > this.hi) this.hi = k;
  }
  /** The bins touched, then forgets them; `all` gives every bin (of `n`) that holds something. */
  take(n: number, all: boolean): [number, number] {
    const range: [number, number] = all ? [0, n - 1] : [this.lo, this.hi];
    this.lo = Infinity;
    this.hi = -Infinity;
    return range;
  }
}

/** Sums and counts per column in fixed log-spaced bins (means are sum / count; NaN values are left out). */
export class LogBinAccumulator {
  private readonly sum: Record<string, Float64Array>;
  private readonly count: Record<string, Float64Array>;
  private readonly first: Float64Array;
  private readonly last: Float64Array;
  private readonly dirty = new DirtyRange();
  private cursor = 0;

  constructor(readonly edges: Float64Array, readonly columns: readonly string[]) {
    const n = edges.length - 1;
    this.sum = Object.fromEntries(columns.map((c) => [c, new Float64Array(n)]));
    this.count = Object.fromEntries(columns.map((c) => [c, new Float64Array(n)]));
    this.first = new Float64Array(n).fill(NaN);
    this.last = new Float64Array(n).fill(NaN);
  }

  /** Adds rows at positions `x` (non-decreasing), one value per row in each named column. */
  add(x: Values, values: Readonly<Record<string, Values>>): void {
    for (let i = 0; i < x.length; i++) {
      const k = (this.cursor = binOf(this.edges, x[i], this.cursor));
      if (!(this.first[k] <= x[i])) this.first[k] = x[i];
      if (!(this.last[k] >= x[i])) this.last[k] = x[i];
      for (const c of this.columns) {
        const v = values[c][i];
        if (v === v) {
          this.sum[c][k] += v;
          this.count[c][k]++;
        }
      }
      this.dirty.mark(k);
    }
  }

  /** The bins changed since the last call (every filled bin with `all`). */
  take(all = false): LogBins {
    const [lo, hi] = this.dirty.take(this.first.length, all);
    const out: LogBins = { index: [], x: [], sum: {}, count: {} };
    for (const c of this.columns) [out.sum[c], out.count[c]] = [[], []];
    for (let k = lo; k <= hi; k++) {
      if (!(this.first[k] >= 0)) continue;
      out.index.push(k);
      out.x.push(Math.sqrt(Math.max(1, this.first[k]) * Math.max(1, this.last[k])));
      for (const c of this.columns) {
        out.sum[c].push(this.sum[c][k]);
        out.count[c].push(this.count[c][k]);
      }
    }
    return out;
  }
}

/** Per column, each bin's min and max and which came first, in `bins` equal bins of positions [0, total]. */
export class MinMaxAccumulator {
  private readonly min: Record<string, Float64Array>;
  private readonly max: Record<string, Float64Array>;
  private readonly argMin: Record<string, Float64Array>;
  private readonly argMax: Record<string, Float64Array>;
  private readonly x0: Float64Array;
  private readonly x1: Float64Array;
  private readonly dirty = new DirtyRange();

  constructor(readonly total: number, readonly bins: number, readonly columns: readonly string[]) {
    const make = (fill: number) => Object.fromEntries(columns.map((c) => [c, new Float64Array(bins).fill(fill)]));
    [this.min, this.max, this.argMin, this.argMax] = [make(Infinity), make(-Infinity), make(0), make(0)];
    this.x0 = new Float64Array(bins).fill(NaN);
    this.x1 = new Float64Array(bins).fill(NaN);
  }

  add(x: Values, values: Readonly<Record<string, Values>>): void {
    const scale = this.bins / (this.total + 1);
    for (let i = 0; i < x.length; i++) {
      const k = Math.min(this.bins - 1, Math.max(0, Math.floor(x[i] * scale)));
      if (!(this.x0[k] <= x[i])) this.x0[k] = x[i];
      if (!(this.x1[k] >= x[i])) this.x1[k] = x[i];
      for (const c of this.columns) {
        const v = values[c][i];
        if (v < this.min[c][k]) [this.min[c][k], this.argMin[c][k]] = [v, x[i]];
        if (v > this.max[c][k]) [this.max[c][k], this.argMax[c][k]] = [v, x[i]];
      }
      this.dirty.mark(k);
    }
  }

  take(all = false): MinMaxBins {
    const [lo, hi] = this.dirty.take(this.bins, all);
    const out: MinMaxBins = { index: [], x0: [], x1: [], first: {}, second: {} };
    for (const c of this.columns) [out.first[c], out.second[c]] = [[], []];
    for (let k = lo; k <= hi; k++) {
      if (!(this.x0[k] >= 0)) continue;
      out.index.push(k);
      out.x0.push(this.x0[k]);
      out.x1.push(this.x1[k]);
      for (const c of this.columns) {
        // NaN-only bins keep ±Infinity: JSON would turn those into null, so send NaN's stand-in as null too
        const [a, b] = this.argMin[c][k] <= this.argMax[c][k] ? [this.min[c][k], this.max[c][k]] : [this.max[c][k], this.min[c][k]];
        out.first[c].push(Number.isFinite(a) ? a : NaN);
        out.second[c].push(Number.isFinite(b) ? b : NaN);
      }
    }
    return out;
  }
}
