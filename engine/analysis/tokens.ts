/**
 * Tokens of a run for the heatmap: what each token reads as (through the run's own tokenizer) and its NLL, a
 * window at a time, and optionally the NLL difference to another model on the same book. Two models with the
 * same tokenizer are compared token by token; with different tokenizers, each token of the first is compared
 * with the second model's NLL over the same UTF-8 bytes (each of its tokens' NLL spread evenly over its bytes).
 */
import { open } from 'node:fs/promises';
import { workbenchError } from '../core/errors.js';
import { createTokenizer, type Tokenizer } from '../core/tokenizers/index.js';
import { tokenizerSpecFor } from '../io/model-dir.js';
import type { MethodParams, MethodResult, RunManifest, RunModel } from '../protocol.js';
import { cached, type ColumnTable, readColumns } from './column-cache.js';
import { findModel, lowerBound, modelFile } from './run-store.js';

const tokenizers = new Map<string, Promise<Tokenizer>>();

/** The tokenizer a run model was analysed with (a model's own tokenizer.json for `hf:` names). */
function tokenizerOf(model: RunModel): Promise<Tokenizer> {
  const key = model.tokenizer.startsWith('hf:') ? `${model.tokenizer}|${model.dir}` : model.tokenizer;
  let tokenizer = tokenizers.get(key);
  if (!tokenizer) {
    tokenizer = (model.tokenizer.startsWith('hf:') ? tokenizerSpecFor(model.dir, 'hf') : Promise.resolve(model.tokenizer)).then(createTokenizer);
    tokenizer.catch(() => tokenizers.delete(key));
    tokenizers.set(key, tokenizer);
  }
  return tokenizer;
}

/**
 * Position 0 is never predicted, so tokens.arrow does not hold it: it is the tokenizer's BOS where it puts one,
 * else the first token of the book's opening bytes. Null when the book cannot be read any more.
 */
async function firstToken(manifest: RunManifest, tokenizer: Tokenizer): Promise<number | null> {
  if (tokenizer.bosId !== undefined) return tokenizer.bosId;
  try {
    const file = await open(manifest.book.path);
    try {
      const { buffer, bytesRead } = await file.read({ buffer: new Uint8Array(1024), position: 0 });
      const text = new TextDecoder().decode(buffer.subarray(0, bytesRead));
      const cut = Math.max(text.lastIndexOf(' '), text.lastIndexOf('\n'));
      const ids = tokenizer.encode(cut > 0 ? text.slice(0, cut) : text);
      return ids.length > 0 ? ids[0] : null;
    } finally {
      await file.close();
    }
  } catch {
    return null;
  }
}

interface Loaded {
  readonly manifest: RunManifest;
  readonly model: RunModel;
  readonly path: string;
  readonly table: ColumnTable;
  readonly tokenizer: Tokenizer;
  readonly first: number | null;
}

async function load(runDir: string, manifest: RunManifest, modelKey: string): Promise<Loaded> {
  const model = findModel(manifest, modelKey);
  const path = modelFile(runDir, manifest, model, 'nll', 'per-token');
  const [table, tokenizer] = await Promise.all([readColumns(path), tokenizerOf(model)]);
  return { manifest, model, path, table, tokenizer, first: await firstToken(manifest, tokenizer) };
}

/** Byte offset where each stored row's token starts (row r is position r + 1), and the NLL summed before it. */
function cumulative(loaded: Loaded): Promise<{ offset: Float64Array; nll: Float64Array }> {
  return cached(loaded.path, `${loaded.path}#cumulative`, async () => {
    const { bytes, nll } = loaded.table.columns;
    const rows = loaded.table.rows;
    const offset = new Float64Array(rows + 1);
    const sum = new Float64Array(rows + 1);
    offset[0] = loaded.first === null ? 0 : loaded.tokenizer.tokenBytes([loaded.first])[0];
    for (let r = 0; r < rows; r++) {
      offset[r + 1] = offset[r] + bytes[r];
      sum[r + 1] = sum[r] + nll[r];
    }
    return { offset, nll: sum };
  });
}

/** NLL the model spent on bytes [0, at), each token's NLL spread evenly over its bytes; null past its end. */
export function nllBefore(c: { offset: Float64Array; nll: Float64Array }, at: number): number | null {
  const rows = c.offset.length - 1;
  if (at > c.offset[rows]) return null;
  if (at <= c.offset[0]) return 0;
  const r = Math.min(rows - 1, lowerBound(c.offset, at + 1e-9) - 1);
  const width = c.offset[r + 1] - c.offset[r];
  return c.nll[r] + (width > 0 ? ((c.nll[r + 1] - c.nll[r]) * (at - c.offset[r])) / width : 0);
}

export async function readTokens(
  runDirOf: (runId: string) => string,
  manifestOf: (runId: string) => Promise<RunManifest>,
  params: MethodParams<'getTokens'>,
): Promise<MethodResult<'getTokens'>> {
  const a = await load(runDirOf(params.runId), await manifestOf(params.runId), params.model);
  const positions = a.table.columns.position;
  const total = a.table.rows + 1;
  const start = Math.min(params.start, total);
  const end = Math.min(total, start + params.count);
  const tokens: string[] = [];
  const nll: (number | null)[] = [];
  for (let p = start; p < end; p++) {
    if (p === 0) {
      tokens.push(a.first === null ? '' : a.tokenizer.tokenText(a.first));
      nll.push(null);
      continue;
    }
    const row = positions[p - 1] === p ? p - 1 : lowerBound(positions, p);
    tokens.push(a.tokenizer.tokenText(a.table.columns.token[row]));
    nll.push(a.table.columns.nll[row]);
  }
  if (!params.compare) return { start, total, tokens, nll, diff: null, byteAligned: false };

  const otherRun = params.compare.runId ?? params.runId;
  const otherManifest = await manifestOf(otherRun);
  if (otherManifest.book.sha256 !== a.manifest.book.sha256) {
    throw workbenchError('E_RUN', otherRun, `read a different book (${otherManifest.book.name}) than run ${params.runId} (${a.manifest.book.name}): no token-by-token difference`);
  }
  const b = await load(runDirOf(otherRun), otherManifest, params.compare.model);
  const diff: (number | null)[] = [];
  if (b.model.tokenizer === a.model.tokenizer) {
    const other = b.table.columns;
    for (let p = start; p < end; p++) {
      const row = p - 1;
      diff.push(p === 0 || row >= b.table.rows || other.position[row] !== p ? null : (nll[p - start] as number) - other.nll[row]);
    }
    return { start, total, tokens, nll, diff, byteAligned: false };
  }
  const [ca, cb] = await Promise.all([cumulative(a), cumulative(b)]);
  for (let p = start; p < end; p++) {
    if (p === 0) {
      diff.push(null);
      continue;
    }
    const from = nllBefore(cb, ca.offset[p - 1]);
    const to = nllBefore(cb, ca.offset[p]);
    diff.push(from === null || to === null ? null : (nll[p - start] as number) - (to - from));
  }
  return { start, total, tokens, nll, diff, byteAligned: true };
}
