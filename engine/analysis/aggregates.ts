/**
 * A run's chart aggregates, maintained as results arrive (DESIGN.md "One scheduler, many consumers"): per model,
 * per-token NLL and bytes in log-spaced position bins, the inner loop in log-spaced bins per layer, weight metrics
 * and state summaries as min/max in equal position bins per layer. O(bins) memory however long the book, updated
 * in O(rows) per chunk, and able to say which bins changed since it was last asked, so a live view receives a few
 * small updates a second instead of re-reading result files. A finished run read back from disk is fed through the
 * same code (`aggregatesFromRun`), so a live chart and the reopened run agree exactly.
 */
import type { LogBins, MinMaxBins, ModelAggregates, RunAggregates, RunManifest, RunModel, TokenBinning } from '../protocol.js';
import { type NumericColumn, readColumns } from './column-cache.js';
import { join } from 'node:path';

type Values = ArrayLike<number>;

/** Bins per curve, and the narrowest a smoothed per-token bin may be (so no early bin rests on a few tokens). */
export const binCounts = { smoothed: 40, raw: 800, innerLoop: 400, minmax: 1000 } as const;
const smoothedMinWidth = 64;

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

/** Columns of each per-layer series, as stored in the model's Arrow files (run-store.ts names the files). */
export const innerLoopColumns = ['init', 'before', 'after', 'reduction', 'ratio'] as const;

/** What one model of a run feeds into its aggregates; sized by its token count and layers when it starts. */
export class ModelAggregator {
  readonly tokens: Record<TokenBinning, LogBinAccumulator>;
  readonly innerLoop: LogBinAccumulator[] = [];
  readonly hiddenState: MinMaxAccumulator[] = [];
  readonly modelState: MinMaxAccumulator[] = [];

  constructor(readonly model: string, readonly tokensTotal: number, readonly layers: number) {
    this.tokens = {
      smoothed: new LogBinAccumulator(logBinEdges(tokensTotal, binCounts.smoothed, smoothedMinWidth), ['nll', 'bytes']),
      raw: new LogBinAccumulator(logBinEdges(tokensTotal, binCounts.raw), ['nll', 'bytes']),
    };
  }

  addTokens(position: Values, nll: Values, bytes: Values): void {
    for (const binning of ['smoothed', 'raw'] as const) this.tokens[binning].add(position, { nll, bytes });
  }

  /** Inner-loop rows of one layer: init, before, after per row; the reduction each update achieves is derived here. */
  addInnerLoop(layer: number, position: Values, init: Values, before: Values, after: Values): void {
    const reduction = Float64Array.from(before, (b, i) => b - after[i]);
    const ratio = Float64Array.from(before, (b, i) => (b > 0 ? after[i] / b : NaN));
    (this.innerLoop[layer] ??= new LogBinAccumulator(logBinEdges(this.tokensTotal, binCounts.innerLoop), innerLoopColumns))
      .add(position, { init, before, after, reduction, ratio });
  }

  addHiddenState(layer: number, position: Values, columns: Readonly<Record<string, Values>>): void {
    (this.hiddenState[layer] ??= new MinMaxAccumulator(this.tokensTotal, binCounts.minmax, Object.keys(columns))).add(position, columns);
  }

  addModelState(layer: number, position: Values, value: Values): void {
    (this.modelState[layer] ??= new MinMaxAccumulator(this.tokensTotal, binCounts.minmax, ['value'])).add(position, { value });
  }

  take(all = false): ModelAggregates {
    return {
      model: this.model,
      tokens: { smoothed: this.tokens.smoothed.take(all), raw: this.tokens.raw.take(all) },
      innerLoop: Array.from(this.innerLoop, (a) => a?.take(all) ?? emptyLogBins()),
      hiddenState: Array.from(this.hiddenState, (a) => a?.take(all) ?? emptyMinMaxBins()),
      modelState: Array.from(this.modelState, (a) => a?.take(all) ?? emptyMinMaxBins()),
    };
  }
}

const emptyLogBins = (): LogBins => ({ index: [], x: [], sum: {}, count: {} });
const emptyMinMaxBins = (): MinMaxBins => ({ index: [], x0: [], x1: [], first: {}, second: {} });

/** Every model's aggregates of one run. */
export class RunAggregator {
  private readonly models = new Map<string, ModelAggregator>();

  constructor(readonly runId: string) {}

  model(key: string, tokensTotal: number, layers: number): ModelAggregator {
    let m = this.models.get(key);
    if (!m) this.models.set(key, (m = new ModelAggregator(key, tokensTotal, layers)));
    return m;
  }

  /** Everything (`all`), or what changed since the last call. */
  take(all = false): RunAggregates {
    return { runId: this.runId, complete: all, models: [...this.models.values()].map((m) => m.take(all)) };
  }
}

/** Rows of one layer of a per-layer table, as index lists (tables are long: layer, position, values). */
function rowsByLayer(layer: NumericColumn, rows: number): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (let i = 0; i < rows; i++) {
    const l = layer[i];
    let list = out.get(l);
    if (!list) out.set(l, (list = []));
    list.push(i);
  }
  return out;
}

const pick = (column: NumericColumn, rows: readonly number[]) => Float64Array.from(rows, (i) => column[i]);

/** Rows of one result file, by column. */
export interface SeriesRows {
  readonly columns: Readonly<Record<string, NumericColumn>>;
  readonly rows: number;
}

/** Feeds one model's stored rows (by series name, as in a manifest's `files`) through the aggregator, as the live run fed its chunks. */
export function replayRows(aggregator: ModelAggregator, series: Readonly<Partial<Record<string, SeriesRows>>>): void {
  const { nll, innerLoop, hiddenState, modelState } = series;
  if (nll) aggregator.addTokens(nll.columns.position, nll.columns.nll, nll.columns.bytes);
  if (innerLoop) {
    const c = innerLoop.columns;
    for (const [layer, rows] of rowsByLayer(c.layer, innerLoop.rows)) {
      aggregator.addInnerLoop(layer, pick(c.position, rows), pick(c.init, rows), pick(c.before, rows), pick(c.after, rows));
    }
  }
  if (hiddenState) {
    const c = hiddenState.columns;
    const names = Object.keys(c).filter((n) => !['layer', 'position', 'mini_batch'].includes(n));
    for (const [layer, rows] of rowsByLayer(c.layer, hiddenState.rows)) {
      aggregator.addHiddenState(layer, pick(c.position, rows), Object.fromEntries(names.map((n) => [n, pick(c[n], rows)])));
    }
  }
  if (modelState) {
    const c = modelState.columns;
    for (const [layer, rows] of rowsByLayer(c.layer, modelState.rows)) aggregator.addModelState(layer, pick(c.position, rows), pick(c.value, rows));
  }
}

/** Feeds one model's stored result files through the aggregator. */
async function replayModel(runDir: string, model: RunModel, aggregator: ModelAggregator): Promise<void> {
  const series: Record<string, SeriesRows> = {};
  for (const name of ['nll', 'innerLoop', 'hiddenState', 'modelState']) if (model.files[name]) series[name] = await readColumns(join(runDir, model.files[name]));
  replayRows(aggregator, series);
}

/** The aggregates of a run from its files: what a live view of it showed, for a run no engine is streaming. */
export async function aggregatesFromRun(runDir: string, manifest: RunManifest): Promise<RunAggregates> {
  const run = new RunAggregator(manifest.id);
  for (const model of manifest.models) {
    const aggregator = run.model(model.key, model.tokensTotal, model.layers);
    try {
      await replayModel(runDir, model, aggregator);
    } catch {
      // a model that failed before writing anything has no files to read: its curves are empty
    }
  }
  return run.take(true);
}
