/**
 * Small dense linear algebra for the hidden-state views, in plain float64 JavaScript: the matrices are tiny
 * (a head's W is at most a few hundred on a side, a PCA is over ~32 snapshots), so Jacobi methods are exact
 * enough, allocation-light, and keep TensorFlow.js (and its float32) off the engine's main thread.
 */

/** Sweeps before giving up; Jacobi converges quadratically, so well-conditioned inputs need fewer than 10. */
const maxSweeps = 60;

/**
 * Singular values of a row-major [rows, cols] matrix, largest first: one-sided Jacobi (Hestenes) rotates pairs
 * of columns until all are orthogonal; the column norms are then the singular values. Working on A itself
 * (not AᵀA) keeps small singular values accurate.
 */
export function singularValues(matrix: ArrayLike<number>, rows: number, cols: number): Float64Array {
  if (matrix.length !== rows * cols) throw new RangeError(`singularValues: ${matrix.length} values for a ${rows}x${cols} matrix`);
  // Orthogonalise along the shorter side: columns of A when rows ≥ cols, else columns of Aᵀ.
  const tall = rows >= cols;
  const m = tall ? rows : cols;
  const n = tall ? cols : rows;
  const a = new Float64Array(m * n); // column-major: column j is a[j*m .. j*m+m)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (tall) a[c * m + r] = matrix[r * cols + c];
      else a[r * m + c] = matrix[r * cols + c];
    }
  }
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < m; i++) {
          const x = a[p * m + i], y = a[q * m + i];
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = a[p * m + i], y = a[q * m + i];
          a[p * m + i] = c * x - s * y;
          a[q * m + i] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  const values = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let i = 0; i < m; i++) sum += a[j * m + i] * a[j * m + i];
    values[j] = Math.sqrt(sum);
  }
  return values.sort().reverse();
}

/** Eigenvalues (largest first) and unit eigenvectors (`vectors[k]`) of a symmetric row-major [n, n] matrix. */
export function symmetricEigen(matrix: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array[] } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0, total = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        total += a[i * n + j] ** 2;
        if (i !== j) off += a[i * n + j] ** 2;
      }
    }
    if (off <= 1e-24 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(1 + theta * theta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = t * c;
        // A ← Jᵀ A J for the rotation J in the (p, q) plane; V ← V J accumulates the eigenvectors
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  return {
    values: Float64Array.from(order, (i) => a[i * n + i]),
    vectors: order.map((i) => Float64Array.from({ length: n }, (_, k) => v[k * n + i])),
  };
}

export interface Pca2 {
  /** Coordinates of each vector on the first two principal components. */
  readonly x: number[];
  readonly y: number[];
  /** Fraction of the total variance each of the two components explains. */
  readonly explained: [number, number];
}

/**
 * The first two principal components of a few long vectors (snapshots of W, each thousands of numbers): the
 * Gram matrix of the centred vectors is only [N, N], and its eigenvectors scaled by √λ are the coordinates.
 * Signs are fixed so that the last vector has non-negative coordinates (a stable picture across reloads).
 */
export function pca2(vectors: readonly ArrayLike<number>[]): Pca2 {
  const n = vectors.length;
  if (n === 0) return { x: [], y: [], explained: [0, 0] };
  const d = vectors[0].length;
  const mean = new Float64Array(d);
  for (const v of vectors) for (let i = 0; i < d; i++) mean[i] += v[i] / n;
  const centred = vectors.map((v) => Float64Array.from({ length: d }, (_, i) => v[i] - mean[i]));
  const gram = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += centred[i][k] * centred[j][k];
      gram[i * n + j] = gram[j * n + i] = dot;
    }
  }
  const { values, vectors: eigenvectors } = symmetricEigen(gram, n);
  const total = values.reduce((sum, l) => sum + Math.max(0, l), 0);
  const coordinates = [0, 1].map((k) => {
    const lambda = Math.max(0, values[k] ?? 0);
    const u = eigenvectors[k] ?? new Float64Array(n);
    const sign = u[n - 1] < 0 ? -1 : 1;
    return Array.from(u, (value) => sign * value * Math.sqrt(lambda));
  });
  const share = (k: number) => (total > 0 ? Math.max(0, values[k] ?? 0) / total : 0);
  return { x: coordinates[0], y: coordinates[1], explained: [share(0), share(1)] };
}
