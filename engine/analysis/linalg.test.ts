import { describe, expect, it } from 'vitest';
import { pca2, singularValues, symmetricEigen } from './linalg.js';
import { layerSpectrum } from './snapshots.js';

/** A deterministic pseudo-random matrix (xorshift), so failures reproduce. */
function randomMatrix(rows: number, cols: number, seed = 1): Float64Array {
  let s = seed;
  return Float64Array.from({ length: rows * cols }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32) * 2 - 1;
  });
}

const sumOfSquares = (values: ArrayLike<number>) => Array.from(values).reduce((sum, v) => sum + v * v, 0);

describe('singular values', () => {
  it('match a small known matrix: [[3, 0], [4, 5]] has singular values 3√5 and √5', () => {
    expect(Array.from(singularValues([3, 0, 4, 5], 2, 2))).toEqual([expect.closeTo(3 * Math.sqrt(5), 12), expect.closeTo(Math.sqrt(5), 12)]);
  });

  it('are |diagonal| of a diagonal matrix, sorted, for wide and tall shapes alike', () => {
    // [2, 3] = [[0, -2, 0], [7, 0, 0]] and its transpose: singular values 7 and 2
    expect(Array.from(singularValues([0, -2, 0, 7, 0, 0], 2, 3))).toEqual([expect.closeTo(7, 12), expect.closeTo(2, 12)]);
    expect(Array.from(singularValues([0, 7, -2, 0, 0, 0], 3, 2))).toEqual([expect.closeTo(7, 12), expect.closeTo(2, 12)]);
  });

  it('keep the Frobenius norm and find rank deficiency in a random 24x16 matrix', () => {
    const a = randomMatrix(24, 16);
    const values = singularValues(a, 24, 16);
    expect(sumOfSquares(values)).toBeCloseTo(sumOfSquares(a), 9);
    // a rank-1 outer product u vᵀ has exactly one non-zero singular value, ‖u‖·‖v‖
    const u = randomMatrix(6, 1, 7), v = randomMatrix(1, 5, 9);
    const outer = Float64Array.from({ length: 30 }, (_, i) => u[Math.floor(i / 5)] * v[i % 5]);
    const rank1 = singularValues(outer, 6, 5);
    expect(rank1[0]).toBeCloseTo(Math.sqrt(sumOfSquares(u) * sumOfSquares(v)), 10);
    expect(Math.max(...rank1.slice(1))).toBeLessThan(1e-10);
  });

  it('of a block-diagonal layer are the union of its heads\' spectra', () => {
    // two heads [[3, 0], [4, 5]] and [[1, 0], [0, 0.5]]
    const spectrum = layerSpectrum({ shape: [2, 2, 2], data: Float32Array.of(3, 0, 4, 5, 1, 0, 0, 0.5) });
    expect(spectrum).toEqual([3 * Math.sqrt(5), Math.sqrt(5), 1, 0.5].map((v) => expect.closeTo(v, 5)));
  });
});

describe('symmetric eigen-decomposition and PCA', () => {
  it('diagonalises [[2, 1], [1, 2]]: eigenvalues 3 and 1 with eigenvectors (1, 1)/√2 and (1, −1)/√2', () => {
    const { values, vectors } = symmetricEigen([2, 1, 1, 2], 2);
    expect(Array.from(values)).toEqual([expect.closeTo(3, 12), expect.closeTo(1, 12)]);
    expect(Math.abs(vectors[0][0] * vectors[0][1] * 2)).toBeCloseTo(1, 12);
    expect(vectors[1][0] * vectors[1][1]).toBeCloseTo(-0.5, 12);
  });

  it('puts points on a line on the first component and explains all the variance with it', () => {
    // four points on the line t·(1, 2, 2) (length 3t): centred coordinates are 3·(t − 1.5)
    const { x, y, explained } = pca2([0, 1, 2, 3].map((t) => [t, 2 * t, 2 * t]));
    expect(x).toEqual([-4.5, -1.5, 1.5, 4.5].map((v) => expect.closeTo(v, 9)));
    expect(y.every((v) => Math.abs(v) < 1e-6)).toBe(true);
    expect(explained[0]).toBeCloseTo(1, 12);
  });

  it('recovers a known 2-D layout up to rotation: pairwise distances are kept', () => {
    // a square and its centre, embedded in 5-D by an orthonormal pair of directions
    const points = [[0, 0], [2, 0], [2, 2], [0, 2], [1, 1]];
    const e1 = [0.6, 0.8, 0, 0, 0], e2 = [0, 0, 0, 1, 0];
    const embedded = points.map(([a, b]) => e1.map((v, i) => a * v + b * e2[i] + 10));
    const { x, y, explained } = pca2(embedded);
    for (let i = 0; i < points.length; i++) {
      for (let j = 0; j < points.length; j++) {
        const want = Math.hypot(points[i][0] - points[j][0], points[i][1] - points[j][1]);
        expect(Math.hypot(x[i] - x[j], y[i] - y[j])).toBeCloseTo(want, 9);
      }
    }
    expect(explained[0] + explained[1]).toBeCloseTo(1, 12);
  });
});
