import { describe, expect, it } from 'vitest';
import { expNonPositive } from './loop-math.js';

describe('expNonPositive', () => {
  it('equals Math.exp to float32 precision for x ≤ 0, and at the edges', () => {
    let worst = 0;
    for (let i = 0; i <= 200_000; i++) {
      const x = -((i / 200_000) ** 2) * 120; // dense near 0, out to where float32 underflows
      worst = Math.max(worst, Math.abs(expNonPositive(x) - Math.exp(x)) / Math.exp(x));
    }
    expect(worst).toBeLessThan(5e-8);
    expect(expNonPositive(0)).toBe(1);
    expect(expNonPositive(-1e4)).toBe(0);
    expect(expNonPositive(-Infinity)).toBe(0);
    expect(expNonPositive(NaN)).toBeNaN();
    expect(expNonPositive(1)).toBe(Math.E);
  });
});
