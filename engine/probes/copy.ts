/**
 * Copy distance: a span of n book tokens is read again D tokens after it ended. The NLL of the second reading
 * against the first, as a curve over D, says how far back a model can still copy; a model that remembers nothing
 * shows no drop. The first token of each span is left out of both means: after unrelated text no copy can predict it.
 *
 * One stream reads the book unmodified; at each span's end + D it forks (state cloned) and reads the span again,
 * so all spans and distances share one pass over the book, and the first reading is the book's own.
 */
import { seededRandom } from '../core/random.js';
import type { CausalLM } from '../models/model.js';
import { type FeedOptions, TokenStream } from './stream.js';

/** Distances 0 and the powers of two from 16 up to `max`, and `max` itself. */
export function logSpacedDistances(max: number): number[] {
  const out = [0];
  for (let d = 16; d < max; d *= 2) out.push(d);
  if (max > 0) out.push(max);
  return out;
}

export interface CopyFork {
  readonly span: number;
  /** Book position of the span's first token. */
  readonly start: number;
  readonly distance: number;
  /** Book position where the span is read again: start + n + distance. */
  readonly at: number;
}

/** Span starts, random in the room the longest distance leaves, and every (span, distance) fork, in book order. */
export function copyPlan(bookTokens: number, spanTokens: number, distances: readonly number[], spans: number, seed: number): { starts: number[]; forks: CopyFork[] } {
  const maxD = Math.max(...distances);
  const room = bookTokens - spanTokens - maxD;
  if (room < 1) throw new Error(`a span of ${spanTokens} tokens read again ${maxD} tokens later needs a book of more than ${spanTokens + maxD} tokens (it has ${bookTokens})`);
  const random = seededRandom(seed);
  const starts = Array.from({ length: spans }, () => Math.floor(random.uniform() * room));
  const forks = starts.flatMap((start, span) => distances.map((distance) => ({ span, start, distance, at: start + spanTokens + distance })));
  forks.sort((a, b) => a.at - b.at);
  return { starts, forks };
}

export interface CopyRow {
  readonly span: number;
  readonly start: number;
  readonly distance: number;
  /** Mean NLL (nats/token) over the span's tokens after its first, at the first and the second reading. */
  readonly nllFirst: number;
  readonly nllSecond: number;
}

export function copyWork(plan: { forks: readonly CopyFork[] }, spanTokens: number): number {
  return Math.max(0, ...plan.forks.map((f) => f.at)) + plan.forks.length * spanTokens;
}

const meanAfterFirst = (nll: Float32Array) => {
  let s = 0;
  for (let i = 1; i < nll.length; i++) s += nll[i];
  return s / Math.max(1, nll.length - 1);
};

/** Runs the plan on one model over `book` (token ids); rows in the order of `plan.forks`. */
export async function runCopyDistance(
  model: CausalLM, book: Int32Array, plan: { starts: readonly number[]; forks: readonly CopyFork[] }, spanTokens: number, options: FeedOptions,
): Promise<CopyRow[]> {
  const first = new Map<number, number>(); // span → mean NLL of its first reading
  const rows: CopyRow[] = [];
  const main = TokenStream.fresh(model);
  // the main stream stops at every span's end (to read its NLL) and every fork
  const stops = [...new Set([...plan.starts.map((s) => s + spanTokens), ...plan.forks.map((f) => f.at)])].sort((a, b) => a - b);
  const nllAt = new Float32Array(stops[stops.length - 1]);
  try {
    let forkIndex = 0;
    for (const stop of stops) {
      const from = main.position;
      if (stop > from) nllAt.set((await main.feed(book.subarray(from, stop), options)).nll, from);
      plan.starts.forEach((start, span) => {
        if (start + spanTokens === stop) first.set(span, meanAfterFirst(nllAt.subarray(start, stop)));
      });
      for (; forkIndex < plan.forks.length && plan.forks[forkIndex].at === stop; forkIndex++) {
        const f = plan.forks[forkIndex];
        const fork = main.fork();
        try {
          const { nll } = await fork.feed(book.subarray(f.start, f.start + spanTokens), options);
          rows.push({ span: f.span, start: f.start, distance: f.distance, nllFirst: first.get(f.span)!, nllSecond: meanAfterFirst(nll) });
        } finally {
          fork.dispose();
        }
      }
    }
  } finally {
    main.dispose();
  }
  return rows;
}
