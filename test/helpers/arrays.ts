import { expect } from 'vitest';

/** Deterministic values in [-scale, scale) (a linear congruential sequence from `seed`). */
export function seededValues(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = scale * (s / 1073741824 - 1);
  }
  return out;
}

/** The largest absolute difference of two arrays of the same length (asserted). */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
