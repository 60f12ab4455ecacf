import { describe, expect, it } from 'vitest';
import { addToBins, aggregateBins, binLadder, binOf, emptySums } from './bins.js';

describe('position bins', () => {
  it('are quarter octaves from 1, each position in exactly one', () => {
    expect(binLadder.slice(0, 16)).toEqual([1, 2, 3, 4, 5, 6, 8, 9, 11, 13, 16, 19, 22, 26, 32, 38]);
    for (let p = 1; p < 5000; p++) {
      const b = binOf(p);
      expect(binLadder[b] <= p && p < binLadder[b + 1], `position ${p}`).toBe(true);
    }
  });

  it('sum a document chunk by chunk as in one go, and give the cluster-robust standard error', () => {
    const nll = Float32Array.from({ length: 300 }, (_, i) => 1 + Math.sin(i));
    const whole = emptySums();
    addToBins(whole, 1, nll);
    const chunked = emptySums();
    for (let s = 0; s < 300; s += 64) addToBins(chunked, 1 + s, nll.subarray(s, Math.min(300, s + 64)));
    expect(chunked).toEqual(whole);
    expect(whole.tokens.reduce((a, b) => a + b, 0)).toBe(300);

    // two documents, one bin [1, 2): NLLs 1 and 3 → mean 2; robust variance 2/1 · ((1−2)² + (3−2)²) / 2² = 1
    const a = emptySums(), b = emptySums();
    addToBins(a, 1, Float32Array.of(1));
    addToBins(b, 1, Float32Array.of(3));
    const [bin] = aggregateBins([a, b], 1);
    expect(bin).toMatchObject({ start: 1, end: 2, tokens: 2, documents: 2, meanNll: 2, standardError: 1 });
    expect(bin.ciHigh - bin.meanNll).toBeCloseTo(1.96, 2);
  });
});
