/**
 * Position bins and exact sums: each document's per-token NLL is summed into log-spaced position bins, and a
 * corpus's bins are those sums added up over documents in document order. Every bin sum is a float64 sum of
 * float32 values taken in a fixed order (positions within a document, then documents by index), so the result
 * does not depend on which machine computed which document, nor in what order they finished.
 *
 * Bins: quarter octaves of the predicted token's position p (p ≥ 1: token p predicted from tokens 0..p-1), the
 * ladder 1, 2, 3, 4, 5, 6, 8, 9, 11, 13, 16, 19, … — fixed, so a document's bins are a prefix of the ladder and a
 * corpus's bins end at the bin holding its longest document's last position.
 */

/** Bin start positions: floor(2^(k/4)), duplicates dropped, up to 2^31. */
export const binLadder: readonly number[] = (() => {
  const starts: number[] = [];
  for (let k = 0; k <= 124; k++) {
    const start = Math.floor(2 ** (k / 4));
    if (starts[starts.length - 1] !== start) starts.push(start);
  }
  return starts;
})();

/** The bin holding position p ≥ 1. */
export function binOf(position: number): number {
  let lo = 0, hi = binLadder.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (binLadder[mid] <= position) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** One document's binned sums; arrays as long as its last position's bin + 1. */
export interface BinnedSums {
  /** Σ nll (nats) of the bin's tokens. */
  readonly nll: number[];
  /** Σ nll². */
  readonly nllSquared: number[];
  readonly tokens: number[];
}

/** Adds `nll[i]` (the NLL of the token at `firstPosition + i`) into `sums`, in position order. */
export function addToBins(sums: BinnedSums, firstPosition: number, nll: Float32Array): void {
  let bin = binOf(firstPosition);
  let nextStart = binLadder[bin + 1];
  for (let i = 0; i < nll.length; i++) {
    const position = firstPosition + i;
    while (position >= nextStart) nextStart = binLadder[++bin + 1];
    while (sums.nll.length <= bin) {
      sums.nll.push(0);
      sums.nllSquared.push(0);
      sums.tokens.push(0);
    }
    const x = nll[i];
    sums.nll[bin] += x;
    sums.nllSquared[bin] += x * x;
    sums.tokens[bin]++;
  }
}

export const emptySums = (): BinnedSums => ({ nll: [], nllSquared: [], tokens: [] });

/** A corpus's bin: its documents' sums added in document order, and the statistics they give. */
export interface CorpusBin {
  /** Positions [start, end). */
  readonly start: number;
  readonly end: number;
  readonly nllSum: number;
  readonly nllSquaredSum: number;
  readonly tokens: number;
  /** Documents with at least one token in the bin. */
  readonly documents: number;
  readonly meanNll: number;
  /** Standard error of the mean; see `aggregateBins`. */
  readonly standardError: number;
  readonly ciLow: number;
  readonly ciHigh: number;
}

const z95 = 1.959963984540054;

/**
 * Sums `documents` (already in document order) bin by bin. The standard error treats documents as the sampled
 * units (tokens of one book are not independent): the ratio estimator's cluster-robust variance
 * D/(D-1) · Σ_d (S_d − m·N_d)² / (Σ_d N_d)², over the D documents reaching the bin; a bin only one document reaches
 * falls back to its tokens' spread, sqrt(var/N). `lastPosition` is the longest document's last position.
 */
export function aggregateBins(documents: readonly BinnedSums[], lastPosition: number): CorpusBin[] {
  const count = lastPosition >= 1 ? binOf(lastPosition) + 1 : 0;
  const bins: CorpusBin[] = [];
  for (let b = 0; b < count; b++) {
    let nllSum = 0, nllSquaredSum = 0, tokens = 0, reached = 0;
    for (const d of documents) {
      if (b >= d.tokens.length || d.tokens[b] === 0) continue;
      nllSum += d.nll[b];
      nllSquaredSum += d.nllSquared[b];
      tokens += d.tokens[b];
      reached++;
    }
    const mean = tokens > 0 ? nllSum / tokens : NaN;
    let variance: number;
    if (reached >= 2) {
      let spread = 0;
      for (const d of documents) {
        if (b >= d.tokens.length || d.tokens[b] === 0) continue;
        spread += (d.nll[b] - mean * d.tokens[b]) ** 2;
      }
      variance = (reached / (reached - 1)) * spread / (tokens * tokens);
    } else variance = tokens > 1 ? Math.max(0, nllSquaredSum - tokens * mean * mean) / (tokens - 1) / tokens : NaN;
    const standardError = Math.sqrt(variance);
    bins.push({
      start: binLadder[b], end: b === count - 1 ? lastPosition + 1 : binLadder[b + 1],
      nllSum, nllSquaredSum, tokens, documents: reached, meanNll: mean, standardError,
      ciLow: mean - z95 * standardError, ciHigh: mean + z95 * standardError,
    });
  }
  return bins;
}
