/**
 * Several runs on one book side by side, in bits per byte: total NLL (in bits) over the UTF-8 bytes the tokens
 * cover. Unlike perplexity it does not depend on the tokenizer, so a byte-level model and a Llama-tokenized one
 * compare; for the same reason the position ranges and the curve's x axis are byte offsets into the book (for
 * byte-level models, byte offset and token position are the same number).
 */
import { workbenchError } from '../core/errors.js';
import type { MethodParams, MethodResult, RunManifest } from '../protocol.js';
import { readColumns } from './column-cache.js';
import { modelFile } from './run-store.js';

/** The TTT paper's picture of context use: early, short, medium and long context. */
export const comparisonRanges = [
  { label: '0–1k', start: 0, end: 1024 },
  { label: '1k–8k', start: 1024, end: 8192 },
  { label: '8k–64k', start: 8192, end: 65_536 },
  { label: '64k+', start: 65_536, end: null },
] as const;

const defaultCurvePoints = 60;

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
  const curveStart = Math.max(1, params.start ?? 1);
  const curveEnd = params.end ?? book.bytes + 1;
  const bins = params.points ?? defaultCurvePoints;
  const step = (Math.log(Math.max(curveStart + 1, curveEnd)) - Math.log(curveStart)) / bins;
  for (const manifest of manifests) {
    for (const model of manifest.models) {
      if (!model.files.nll || model.predictedTokens < 1) continue;
      const { columns, rows: count } = await readColumns(modelFile(runDirOf(manifest.id), manifest, model, 'nll', 'per-token'));
      const { nll, bytes } = columns;
      const rangeNll = new Float64Array(comparisonRanges.length);
      const rangeBytes = new Float64Array(comparisonRanges.length);
      const binNll = new Float64Array(bins);
      const binBytes = new Float64Array(bins);
      let totalNll = 0, totalBytes = 0;
      // the first token is never predicted: its bytes (1 for byte-level; none for a BOS) start the offsets
      let offset = model.tokenizer === 'bytes' ? 1 : 0;
      for (let r = 0; r < count; r++) {
        const v = nll[r], b = bytes[r];
        totalNll += v;
        totalBytes += b;
        let k = comparisonRanges.length - 1;
        while (k > 0 && offset < comparisonRanges[k].start) k--;
        rangeNll[k] += v;
        rangeBytes[k] += b;
        if (offset >= curveStart && offset < curveEnd) {
          const bin = Math.min(bins - 1, Math.floor((Math.log(offset) - Math.log(curveStart)) / step));
          binNll[bin] += v;
          binBytes[bin] += b;
        }
        offset += b;
      }
      const bpb = (n: number, b: number) => (b > 0 ? n / Math.LN2 / b : null);
      rows.push({
        runId: manifest.id, model: model.key, name: model.name, architecture: model.architecture, tokenizer: model.tokenizer, status: model.status,
        bytes: totalBytes, bitsPerByte: bpb(totalNll, totalBytes), ranges: comparisonRanges.map((_, k) => bpb(rangeNll[k], rangeBytes[k])),
      });
      const x: number[] = [], y: number[] = [];
      for (let k = 0; k < bins; k++) {
        if (binBytes[k] === 0) continue;
        x.push(curveStart * Math.exp((k + 0.5) * step));
        y.push(binNll[k] / Math.LN2 / binBytes[k]);
      }
      curves.push({ runId: manifest.id, model: model.key, name: model.name, x, y });
    }
  }
  return {
    book: { name: book.name, sha256: book.sha256, bytes: book.bytes },
    ranges: comparisonRanges.map((r) => ({ label: r.label, start: r.start, end: r.end })),
    rows,
    curves,
  };
}
