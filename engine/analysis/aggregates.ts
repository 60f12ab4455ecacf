/**
 * A run's chart aggregates, maintained as results arrive (DESIGN.md "One scheduler, many consumers"): per model,
 * per-token NLL and bytes in log-spaced position bins, the inner loop in log-spaced bins per layer, weight metrics
 * and state summaries as min/max in equal position bins per layer. O(bins) memory however long the book, updated
 * in O(rows) per chunk, and able to say which bins changed since it was last asked, so a live view receives a few
 * small updates a second instead of re-reading result files. A finished run read back from disk is fed through the
 * same code (`aggregatesFromRun`), so a live chart and the reopened run agree exactly.
 */
import { join } from 'node:path';
import type { LogBins, MinMaxBins, ModelAggregates, RunAggregates, RunManifest, RunModel, TokenBinning } from '../protocol.js';
import { ByteOffsetAccumulator, comparisonCurveBins, firstPredictedOffset, offsetEdges } from './byte-offsets.js';
import { type NumericColumn, readColumns } from './column-cache.js';
import { LogBinAccumulator, logBinEdges, MinMaxAccumulator, type Values } from './log-bins.js';

/** Bins per curve, and the narrowest a smoothed per-token bin may be (so no early bin rests on a few tokens). */
export const binCounts = { smoothed: 40, raw: 800, innerLoop: 400, minmax: 1000 } as const;
const smoothedMinWidth = 64;

/** Where a model's tokens fall in the book's bytes: the book's length and the model's tokenizer. */
export interface BookBytes {
  readonly bytes: number;
  readonly tokenizer: string;
}

/** Columns of each per-layer series, as stored in the model's Arrow files (run-store.ts names the files). */
export const innerLoopColumns = ['init', 'before', 'after', 'reduction', 'ratio'] as const;

/** What one model of a run feeds into its aggregates; sized by its token count and layers when it starts. */
export class ModelAggregator {
  readonly tokens: Record<TokenBinning, LogBinAccumulator>;
  readonly innerLoop: LogBinAccumulator[] = [];
  readonly hiddenState: MinMaxAccumulator[] = [];
  readonly modelState: MinMaxAccumulator[] = [];
  /** Bits per byte by byte offset (the Comparison tab), when the book's size is known. */
  readonly byteOffsets: ByteOffsetAccumulator | null;

  constructor(readonly model: string, readonly tokensTotal: number, readonly layers: number, book?: BookBytes) {
    this.tokens = {
      smoothed: new LogBinAccumulator(logBinEdges(tokensTotal, binCounts.smoothed, smoothedMinWidth), ['nll', 'bytes']),
      raw: new LogBinAccumulator(logBinEdges(tokensTotal, binCounts.raw), ['nll', 'bytes']),
    };
    this.byteOffsets = book ? new ByteOffsetAccumulator(offsetEdges(1, book.bytes + 1, comparisonCurveBins), firstPredictedOffset(book.tokenizer)) : null;
  }

  /** The next rows of the book, in order (the byte offsets are counted from them). */
  addTokens(position: Values, nll: Values, bytes: Values): void {
    for (const binning of ['smoothed', 'raw'] as const) this.tokens[binning].add(position, { nll, bytes });
    this.byteOffsets?.add(nll, bytes);
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
      ...(this.byteOffsets ? { byteOffsets: this.byteOffsets.take(all) } : {}),
    };
  }
}

const emptyLogBins = (): LogBins => ({ index: [], x: [], sum: {}, count: {} });
const emptyMinMaxBins = (): MinMaxBins => ({ index: [], x0: [], x1: [], first: {}, second: {} });

/** Every model's aggregates of one run. */
export class RunAggregator {
  private readonly models = new Map<string, ModelAggregator>();

  constructor(readonly runId: string) {}

  model(key: string, tokensTotal: number, layers: number, book?: BookBytes): ModelAggregator {
    let m = this.models.get(key);
    if (!m) this.models.set(key, (m = new ModelAggregator(key, tokensTotal, layers, book)));
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
    const aggregator = run.model(model.key, model.tokensTotal, model.layers, { bytes: manifest.book.bytes, tokenizer: model.tokenizer });
    try {
      await replayModel(runDir, model, aggregator);
    } catch {
      // a model that failed before writing anything has no files to read: its curves are empty
    }
  }
  return run.take(true);
}
