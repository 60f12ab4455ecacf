/**
 * Several runs on one book side by side, in bits per byte: total NLL (in bits) over the UTF-8 bytes the tokens
 * cover. Unlike perplexity it does not depend on the tokenizer, so a byte-level model and a Llama-tokenized one
 * compare; for the same reason the position ranges and the curve's x axis are byte offsets into the book (for
 * byte-level models, byte offset and token position are the same number).
 */
import { workbenchError } from '../core/errors.js';
import { type ByteAggregates, comparisonRanges, type MethodParams, type MethodResult, type RunManifest } from '../protocol.js';
import { bitsPerByteOf, ByteOffsetAccumulator, comparisonCurveBins, firstPredictedOffset, offsetEdges } from './byte-offsets.js';
import { readColumns } from './column-cache.js';
import { modelFile } from './run-store.js';

type Comparison = MethodResult<'getComparison'>;

export async function compareRuns(
  runDirOf: (runId: string) => string,
  manifestOf: (runId: string) => Promise<RunManifest>,
  params: MethodParams<'getComparison'>,
): Promise<Comparison> {
  const runIds = [...new Set(params.runIds)];
  const manifests = await Promise.all(runIds.map(manifestOf));
  const book = manifests[0].book;
  for (const m of manifests) {
    if (m.book.sha256 !== book.sha256) throw workbenchError('E_RUN', m.id, `read ${m.book.name}, not ${book.name}: only runs on the same book compare`);
  }
  const rows: Comparison['rows'] = [];
  const curves: Comparison['curves'] = [];
  const edges = offsetEdges(params.start ?? 1, params.end ?? book.bytes + 1, params.points ?? comparisonCurveBins);
  for (const manifest of manifests) {
    for (const model of manifest.models) {
      if (!model.files.nll || model.predictedTokens < 1) continue;
      const { rows: stored, columns } = await readColumns(modelFile(runDirOf(manifest.id), manifest, model, 'nll', 'per-token'));
      if (stored === 0) continue; // a live model whose first rows are not on disk yet
      const sums = new ByteOffsetAccumulator(edges, firstPredictedOffset(model.tokenizer));
      sums.add(columns.nll, columns.bytes);
      const row = rowOf(sums.take(true));
      rows.push({ runId: manifest.id, model: model.key, name: model.name, architecture: model.architecture, tokenizer: model.tokenizer, status: model.status, ...row.figures });
      curves.push({ runId: manifest.id, model: model.key, name: model.name, ...row.curve });
    }
  }
  return {
    book: { name: book.name, sha256: book.sha256, bytes: book.bytes },
    ranges: comparisonRanges.map((r) => ({ label: r.label, start: r.start, end: r.end })),
    rows,
    curves,
  };
}

/** A comparison row's figures and curve from one model's byte-offset sums (a live run's come from its aggregates). */
export function rowOf(sums: ByteAggregates): { figures: Pick<Comparison['rows'][number], 'bytes' | 'bitsPerByte' | 'ranges'>; curve: { x: number[]; y: number[] } } {
  const { curve } = sums;
  const x: number[] = [], y: number[] = [];
  curve.index.forEach((_, i) => {
    const v = bitsPerByteOf(curve.sum.nll[i], curve.sum.bytes[i]);
    if (v === null) return;
    x.push(curve.x[i]);
    y.push(v);
  });
  return {
    figures: { bytes: sums.totalBytes, bitsPerByte: bitsPerByteOf(sums.totalNll, sums.totalBytes), ranges: sums.rangeNll.map((n, k) => bitsPerByteOf(n, sums.rangeBytes[k])) },
    curve: { x, y },
  };
}
