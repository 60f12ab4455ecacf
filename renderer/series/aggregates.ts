/**
 * The chart aggregates of the runs being looked at, as the engine keeps them (protocol.ts `RunAggregates`): the
 * whole of them from `watchRun`, then the bins each `runData` notification says changed, written in place. Outside
 * zustand (they change a few times a second while a run streams); charts are drawn from them through the
 * functions below, which only turn sums into the unit asked for.
 */
import type { ByteAggregates, LogBins, MinMaxBins, ModelAggregates, RunAggregates, TokenBinning } from '../../engine/protocol.js';

/** Bins by index: x is NaN where a bin holds nothing yet. */
interface LogTable {
  x: number[];
  sum: Record<string, number[]>;
  count: Record<string, number[]>;
}

interface MinMaxTable {
  x0: number[];
  x1: number[];
  first: Record<string, number[]>;
  second: Record<string, number[]>;
}

interface ByteTable extends Omit<ByteAggregates, 'curve'> {
  curve: LogTable;
}

interface ModelTables {
  tokens: Record<TokenBinning, LogTable>;
  innerLoop: LogTable[];
  hiddenState: MinMaxTable[];
  modelState: MinMaxTable[];
  byteOffsets?: ByteTable;
}

const runs = new Map<string, Map<string, ModelTables>>();

const put = (column: number[], k: number, v: number) => {
  while (column.length <= k) column.push(NaN);
  column[k] = v;
};

function mergeLog(table: LogTable | undefined, bins: LogBins): LogTable {
  const t = table ?? { x: [], sum: {}, count: {} };
  bins.index.forEach((k, i) => {
    put(t.x, k, bins.x[i]);
    for (const [c, values] of Object.entries(bins.sum)) put((t.sum[c] ??= []), k, values[i]);
    for (const [c, values] of Object.entries(bins.count)) put((t.count[c] ??= []), k, values[i]);
  });
  return t;
}

function mergeMinMax(table: MinMaxTable | undefined, bins: MinMaxBins): MinMaxTable {
  const t = table ?? { x0: [], x1: [], first: {}, second: {} };
  bins.index.forEach((k, i) => {
    put(t.x0, k, bins.x0[i]);
    put(t.x1, k, bins.x1[i]);
    for (const [c, values] of Object.entries(bins.first)) put((t.first[c] ??= []), k, values[i] ?? NaN);
    for (const [c, values] of Object.entries(bins.second)) put((t.second[c] ??= []), k, values[i] ?? NaN);
  });
  return t;
}

function mergeModel(tables: ModelTables | undefined, m: ModelAggregates): ModelTables {
  const t = tables ?? { tokens: { smoothed: mergeLog(undefined, { index: [], x: [], sum: {}, count: {} }), raw: mergeLog(undefined, { index: [], x: [], sum: {}, count: {} }) }, innerLoop: [], hiddenState: [], modelState: [] };
  t.tokens.smoothed = mergeLog(t.tokens.smoothed, m.tokens.smoothed);
  t.tokens.raw = mergeLog(t.tokens.raw, m.tokens.raw);
  m.innerLoop.forEach((bins, layer) => (t.innerLoop[layer] = mergeLog(t.innerLoop[layer], bins)));
  m.hiddenState.forEach((bins, layer) => (t.hiddenState[layer] = mergeMinMax(t.hiddenState[layer], bins)));
  m.modelState.forEach((bins, layer) => (t.modelState[layer] = mergeMinMax(t.modelState[layer], bins)));
  if (m.byteOffsets) {
    const { curve, ...totals } = m.byteOffsets;
    t.byteOffsets = { ...totals, curve: mergeLog(t.byteOffsets?.curve, curve) };
  }
  return t;
}

/**
 * Takes aggregates in: the whole of a run's (replacing what was there), or an update, which is only applied to a
 * run whose whole aggregates arrived first. Returns whether anything was applied.
 */
export function applyAggregates(aggregates: RunAggregates): boolean {
  let run = runs.get(aggregates.runId);
  if (aggregates.complete) runs.set(aggregates.runId, (run = new Map()));
  if (!run) return false;
  for (const m of aggregates.models) run.set(m.model, mergeModel(run.get(m.model), m));
  return true;
}

export const hasAggregates = (runId: string): boolean => runs.has(runId);

export function forgetAggregates(runId?: string): void {
  if (runId === undefined) runs.clear();
  else runs.delete(runId);
}

const tables = (runId: string, model: string) => runs.get(runId)?.get(model);

/** Units of the per-token curve. */
export type TokenUnit = 'perplexity' | 'nats' | 'bits' | 'bitsPerByte';

export interface Curve {
  readonly x: Float64Array;
  readonly y: Float64Array;
  /** Rows the points summarise. */
  readonly rows: number;
}

const emptyCurve: Curve = { x: new Float64Array(0), y: new Float64Array(0), rows: 0 };

/** A unit's value from a bin's NLL sum (nats), its token count and its bytes. */
export function tokenValue(unit: TokenUnit, nllSum: number, tokens: number, bytes: number): number {
  if (tokens <= 0) return NaN;
  const mean = nllSum / tokens;
  if (unit === 'perplexity') return Math.exp(mean);
  if (unit === 'nats') return mean;
  if (unit === 'bits') return mean / Math.LN2;
  return bytes > 0 ? nllSum / Math.LN2 / bytes : NaN;
}

/** One model's per-token curve in the bins and unit asked for. */
export function tokenCurve(runId: string, model: string, binning: TokenBinning, unit: TokenUnit): Curve {
  const t = tables(runId, model)?.tokens[binning];
  if (!t) return emptyCurve;
  const x: number[] = [], y: number[] = [];
  let rows = 0;
  t.x.forEach((bx, k) => {
    const n = t.count.nll?.[k] ?? 0;
    if (!(bx === bx) || n <= 0) return;
    x.push(bx);
    y.push(tokenValue(unit, t.sum.nll[k], n, t.sum.bytes?.[k] ?? 0));
    rows += n;
  });
  return { x: Float64Array.from(x), y: Float64Array.from(y), rows };
}

/** Means of one column of a layer's log-binned series (the inner loop). */
export function meanCurve(runId: string, model: string, layer: number, column: string): Curve {
  const t = tables(runId, model)?.innerLoop[layer];
  if (!t || !t.sum[column]) return emptyCurve;
  const x: number[] = [], y: number[] = [];
  let rows = 0;
  t.x.forEach((bx, k) => {
    const n = t.count[column][k];
    if (!(bx === bx) || !(n > 0)) return;
    x.push(bx);
    y.push(t.sum[column][k] / n);
    rows += n;
  });
  return { x: Float64Array.from(x), y: Float64Array.from(y), rows };
}

/** Each bin's two extremes of one column, in the order they occurred: spikes survive, as in a min/max plot. */
export function extremesCurve(runId: string, model: string, series: 'hiddenState' | 'modelState', layer: number, column: string): Curve {
  const t = tables(runId, model)?.[series][layer];
  if (!t || !t.first[column]) return emptyCurve;
  const x: number[] = [], y: number[] = [];
  t.x0.forEach((x0, k) => {
    if (!(x0 === x0)) return;
    x.push(x0, t.x1[k]);
    y.push(t.first[column][k], t.second[column][k]);
  });
  return { x: Float64Array.from(x), y: Float64Array.from(y), rows: x.length / 2 };
}

/** One model's bits per byte by byte offset (the Comparison tab): overall, per position range, and the curve. */
export interface ByteOffsetFigures {
  readonly bytes: number;
  readonly bitsPerByte: number | null;
  readonly ranges: (number | null)[];
  readonly x: number[];
  readonly y: number[];
}

const bitsPerByte = (nll: number, bytes: number) => (bytes > 0 ? tokenValue('bitsPerByte', nll, 1, bytes) : null);

/** A model's byte-offset figures from its aggregates, or null when the engine kept none. */
export function byteOffsetFigures(runId: string, model: string): ByteOffsetFigures | null {
  const t = tables(runId, model)?.byteOffsets;
  if (!t) return null;
  const x: number[] = [], y: number[] = [];
  t.curve.x.forEach((bx, k) => {
    const v = bitsPerByte(t.curve.sum.nll?.[k] ?? 0, t.curve.sum.bytes?.[k] ?? 0);
    if (!(bx === bx) || v === null) return;
    x.push(bx);
    y.push(v);
  });
  return { bytes: t.totalBytes, bitsPerByte: bitsPerByte(t.totalNll, t.totalBytes), ranges: t.rangeNll.map((n, k) => bitsPerByte(n, t.rangeBytes[k])), x, y };
}
