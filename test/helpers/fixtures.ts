/** Paths and readers for the shared parity fixtures, and comparison helpers that report the worst difference. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The parity fixtures (test/fixtures/parity, made by scripts/make-fixtures) and the KJV text (assets/corpus). */
export const fixtureDir = (name: string) => `${repoRoot}test/fixtures/parity/${name}`;
export const kjvPath = `${repoRoot}assets/corpus/kjv.txt`;

export const tttFixtures = [
  'ttt-linear-mamba-backbone',
  'ttt-linear-transformer-backbone',
  'ttt-mlp-mamba-backbone',
  'ttt-mlp-transformer-backbone',
] as const;

export interface Golden {
  input_ids: number[];
  logits: number[];
  logits_shape: [number, number];
  decode_prefill?: number;
  decode_logits?: number[];
  decode_logits_shape?: [number, number];
  window?: number;
  window_logits?: number[];
}

export function readGolden(name: string): Golden {
  return JSON.parse(readFileSync(`${fixtureDir(name)}/golden.json`, 'utf8')) as Golden;
}

export interface Diff {
  max: number;
  row: number;
  col: number;
}

/** Largest |a − b| over row-major [rows, cols] arrays, with where it happened (for failure messages). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, cols: number, rowOffsetA = 0, rowOffsetB = 0, rows?: number): Diff {
  const n = rows ?? Math.min(a.length / cols - rowOffsetA, b.length / cols - rowOffsetB);
  let worst: Diff = { max: 0, row: -1, col: -1 };
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < cols; c++) {
      const d = Math.abs(a[(r + rowOffsetA) * cols + c] - b[(r + rowOffsetB) * cols + c]);
      if (!(d <= worst.max)) worst = { max: d, row: r + rowOffsetA, col: c };
    }
  }
  return worst;
}

export const describeDiff = (d: Diff) => `max |Δ| = ${d.max.toExponential(3)} at [row ${d.row}, col ${d.col}]`;
