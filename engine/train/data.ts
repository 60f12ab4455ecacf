/**
 * Training data: token arrays (one per book), a held-out validation tail of each, and batches of windows drawn
 * from the rest.
 *
 * Draws are counter-based: step s uses its own generator seeded from (seed, s), so any step's batch is known
 * without replaying the steps before it, and a resumed run sees exactly the batches an uninterrupted one would.
 */
import { workbenchError } from '../core/errors.js';
import { seededRandom } from '../core/random.js';

export interface TokenSource {
  readonly name: string;
  readonly ids: Int32Array;
}

export interface DataSplit {
  readonly train: readonly TokenSource[];
  readonly validation: readonly TokenSource[];
}

/**
 * Holds out the last `fraction` of every source as one contiguous tail, so that no training window overlaps a
 * validation window and the validation text is text the model has not read.
 */
export function splitSources(sources: readonly TokenSource[], fraction: number): DataSplit {
  if (!(fraction >= 0 && fraction < 1)) throw workbenchError('E_OPTION', 'val-fraction', String(fraction), 'must be in [0, 1)');
  const train: TokenSource[] = [];
  const validation: TokenSource[] = [];
  for (const s of sources) {
    const cut = s.ids.length - Math.floor(s.ids.length * fraction);
    train.push({ name: s.name, ids: s.ids.subarray(0, cut) });
    if (cut < s.ids.length) validation.push({ name: s.name, ids: s.ids.subarray(cut) });
  }
  return { train, validation };
}

/** A 32-bit seed for step `step` of a run seeded `seed` (murmur3's finaliser over both). */
function stepSeed(seed: number, step: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Windows of `windowTokens` consecutive tokens, drawn uniformly over every position where one fits. */
export class WindowSampler {
  private readonly sources: readonly TokenSource[];
  /** Cumulative count of window starts, per source. */
  private readonly cumulative: Float64Array;

  constructor(sources: readonly TokenSource[], readonly windowTokens: number, readonly seed: number) {
    this.sources = sources.filter((s) => s.ids.length >= windowTokens);
    this.cumulative = new Float64Array(this.sources.length);
    let total = 0;
    this.sources.forEach((s, i) => {
      total += s.ids.length - windowTokens + 1;
      this.cumulative[i] = total;
    });
    if (total === 0) {
      const longest = Math.max(0, ...sources.map((s) => s.ids.length));
      throw workbenchError('E_INPUT', sources.map((s) => s.name).join(', ') || 'data',
        `the training text (${longest} tokens in the longest file) is shorter than one window of ${windowTokens} tokens`);
    }
  }

  /** Number of distinct window starts. */
  get positions(): number {
    return this.cumulative[this.cumulative.length - 1];
  }

  /** The `count` windows of step `step` (0-based); views into the token arrays, not copies. */
  batch(step: number, count: number): Int32Array[] {
    const rng = seededRandom(stepSeed(this.seed, step));
    const windows: Int32Array[] = [];
    for (let b = 0; b < count; b++) {
      const r = Math.floor(rng.uniform() * this.positions);
      let i = 0;
      while (this.cumulative[i] <= r) i++;
      const start = r - (i === 0 ? 0 : this.cumulative[i - 1]);
      windows.push(this.sources[i].ids.subarray(start, start + this.windowTokens));
    }
    return windows;
  }
}

/**
 * Up to `count` non-overlapping windows spread evenly over the validation split: the same windows at every
 * evaluation, so validation losses along a run compare like with like.
 */
export function validationWindows(sources: readonly TokenSource[], windowTokens: number, count: number): Int32Array[] {
  const candidates: Int32Array[] = [];
  for (const s of sources) {
    for (let start = 0; start + windowTokens <= s.ids.length; start += windowTokens) candidates.push(s.ids.subarray(start, start + windowTokens));
  }
  if (candidates.length <= count) return candidates;
  return Array.from({ length: count }, (_, i) => candidates[Math.floor((i * candidates.length) / count)]);
}
