/**
 * Bits per byte by byte offset into the book: the comparison between runs whose models tokenize differently
 * (comparison.ts), kept as running sums so that a live run's Comparison tab and the same run read back from disk
 * give the same figures from the same code. Offsets are those of each predicted token's first byte; the first token
 * is never predicted, so a byte-level model's offsets start at 1 and a model with a BOS token's at 0.
 */
import { type ByteAggregates, comparisonRanges } from '../protocol.js';
import { LogBinAccumulator } from './log-bins.js';

/** Bins of the comparison curve over the whole book. */
export const comparisonCurveBins = 60;

/** Offset of the first predicted token: after the one byte of a byte-level model's first token, else 0. */
export const firstPredictedOffset = (tokenizer: string): number => (tokenizer === 'bytes' ? 1 : 0);

/** `bins` log-spaced edges over byte offsets [start, end), e₀ = start, eₙ = end (not rounded: bytes are dense). */
export function offsetEdges(start: number, end: number, bins: number): Float64Array {
  const lo = Math.max(1, start), hi = Math.max(lo + 1, end);
  const step = (Math.log(hi) - Math.log(lo)) / bins;
  return Float64Array.from({ length: bins + 1 }, (_, k) => (k === bins ? hi : lo * Math.exp(k * step)));
}

/** Per-token NLL and bytes, in book order, summed by position range and into log-spaced offset bins. */
export class ByteOffsetAccumulator {
  private readonly curve: LogBinAccumulator;
  private readonly rangeNll = new Float64Array(comparisonRanges.length);
  private readonly rangeBytes = new Float64Array(comparisonRanges.length);
  private offset: number;
  private totalNll = 0;
  private totalBytes = 0;

  constructor(readonly edges: Float64Array, firstOffset: number) {
    this.offset = firstOffset;
    this.curve = new LogBinAccumulator(edges, ['nll', 'bytes']);
  }

  /** The next rows of the book: each token's NLL (nats) and UTF-8 bytes. */
  add(nll: ArrayLike<number>, bytes: ArrayLike<number>): void {
    const lo = this.edges[0], hi = this.edges[this.edges.length - 1];
    const x: number[] = [], inNll: number[] = [], inBytes: number[] = [];
    for (let i = 0; i < nll.length; i++) {
      const v = nll[i], b = bytes[i], at = this.offset;
      this.totalNll += v;
      this.totalBytes += b;
      let k = comparisonRanges.length - 1;
      while (k > 0 && at < comparisonRanges[k].start) k--;
      this.rangeNll[k] += v;
      this.rangeBytes[k] += b;
      if (at >= lo && at < hi) {
        x.push(at);
        inNll.push(v);
        inBytes.push(b);
      }
      this.offset += b;
    }
    if (x.length > 0) this.curve.add(x, { nll: inNll, bytes: inBytes });
  }

  take(all = false): ByteAggregates {
    return { curve: this.curve.take(all), totalNll: this.totalNll, totalBytes: this.totalBytes, rangeNll: [...this.rangeNll], rangeBytes: [...this.rangeBytes] };
  }
}

/** Bits per byte of summed nats over bytes; null where there are no bytes. */
export const bitsPerByteOf = (nll: number, bytes: number): number | null => (bytes > 0 ? nll / Math.LN2 / bytes : null);
