import { describe, expect, it } from 'vitest';
import { nllBefore } from './tokens.js';

describe('byte-aligned NLL (comparing models with different tokenizers)', () => {
  // a model whose tokens cover bytes [1, 3), [3, 4), [4, 8) with NLL 2, 3 and 4 nats; byte 0 is its first, unpredicted token
  const other = { offset: Float64Array.of(1, 3, 4, 8), nll: Float64Array.of(0, 2, 5, 9) };

  it('spreads each token\'s NLL evenly over its bytes', () => {
    expect(nllBefore(other, 0)).toBe(0);
    expect(nllBefore(other, 1)).toBe(0);
    expect(nllBefore(other, 2)).toBe(1); // half of the first token
    expect(nllBefore(other, 3)).toBe(2);
    expect(nllBefore(other, 6)).toBe(7); // 2 + 3 + half of 4
    expect(nllBefore(other, 8)).toBe(9);
    // so a byte-level token covering byte 5 is compared with 1 nat of the other model's NLL
    expect(nllBefore(other, 6)! - nllBefore(other, 5)!).toBe(1);
  });

  it('is null past the end of what the other model analysed', () => {
    expect(nllBefore(other, 9)).toBeNull();
  });
});
