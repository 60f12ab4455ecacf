/**
 * What an analysis would need before it starts: per model, the tokens it reads, how it attends, the memory its
 * weights, activations and carried state take (attention that grows with the book counted to the book's end), and
 * the multiply-adds its attention adds. Full attention over a long book is the case this is for: its cost grows
 * with the square of the book, and a person should see that before pressing start.
 */
import { basename, join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import { createTokenizer, encodeDocument } from '../core/tokenizers/index.js';
import { readBook } from '../io/book.js';
import { checkpointSize, tiedHeadOf } from '../io/checkpoint.js';
import { type MemoryInput, bytesNeeded, estimateMemory, backendLimits } from '../io/memory.js';
import { describeModelDir, tokenizerSpecFor } from '../io/model-dir.js';
import type { ModelDescription } from '../models/registry.js';
import type { BackendName, MethodResult } from '../protocol.js';

const formatCount = (n: number) => n.toLocaleString('en-US');

/** How a model will attend: the window it gets and the words that say why. Recurrent models have no attention. */
export function attentionFor(description: ModelDescription, asked: number | 'full' | undefined): { window: number | null; note: string | null } {
  if (description.trainedContext === null) return { window: null, note: null };
  const trained = description.trainedContext;
  if (asked === 'full') return { window: null, note: `full attention (asked for; trained context ${formatCount(trained)})` };
  if (asked === undefined) return { window: trained, note: `window ${formatCount(trained)}, its trained context` };
  return { window: asked, note: `window ${formatCount(asked)} (asked for; trained context ${formatCount(trained)})` };
}

export type ModelEstimate = MethodResult<'estimateAnalysis'>['models'][number];

/** Keys summed over the queries of a stream of `tokens` tokens, each seeing at most `window` of them (itself included). */
export function keysAttended(tokens: number, window: number | null): number {
  const w = window ?? tokens;
  const full = Math.min(tokens, w);
  // the first `full` queries see 1, 2, …, full keys; the rest see w each
  return (full * (full + 1)) / 2 + Math.max(0, tokens - full) * w;
}

/** Memory input of a whole model reading `tokens` tokens with `window` (null: full attention to the end of the book). */
export function memoryFor(description: ModelDescription, parameters: number, tokens: number, window: number | null): MemoryInput {
  const attends = description.trainedContext !== null;
  return { description, parameters, tiedHead: tiedHeadOf(description.details), window: attends ? window ?? Math.max(1, tokens) : undefined };
}

/**
 * Refuses, in one line, a model whose attention over this many tokens cannot fit the backend: full attention
 * over a whole book is the one state that grows with it, and found out mid-run it is a crash hours in.
 */
export async function assertAttentionFits(dir: string, description: ModelDescription, tokens: number, window: number | null, backend: BackendName): Promise<void> {
  if (description.trainedContext === null || window !== null) return;
  const { parameters } = await checkpointSize(dir, tiedHeadOf(description.details));
  const needs = bytesNeeded(estimateMemory(memoryFor(description, parameters, tokens, null)), backend);
  const { limit, what } = backendLimits()[backend];
  if (limit !== null && needs > limit) {
    throw workbenchError('E_MEMORY', join(dir, 'config.json'), backend, `${(needs / 2 ** 30).toFixed(1)} GiB for full attention over ${tokens.toLocaleString('en-US')} tokens`,
      `${(limit / 2 ** 30).toFixed(1)} GiB (${what})`, 'use a sliding window (the default, its trained context) or analyse fewer tokens');
  }
}

export async function estimateAnalysis(
  bookPath: string, dirs: readonly string[], options: { maxTokens?: number; window?: number | 'full' },
): Promise<ModelEstimate[]> {
  const book = await readBook(bookPath);
  const out: ModelEstimate[] = [];
  for (const dir of dirs) {
    const description = await describeModelDir(dir);
    const tokenizer = await createTokenizer(await tokenizerSpecFor(dir, description.tokenizer));
    const tokens = Math.min(tokenizer.name === 'bytes' ? book.utf8Bytes : encodeDocument(tokenizer, book.text).length, options.maxTokens ?? Infinity);
    const { window, note } = attentionFor(description, options.window);
    const { parameters } = await checkpointSize(dir, tiedHeadOf(description.details));
    const memory = estimateMemory(memoryFor(description, parameters, tokens, window));
    const attentionFlops = description.trainedContext === null ? 0 : 2 * description.layers * description.hiddenSize * keysAttended(tokens, window);
    out.push({ dir, name: basename(dir), tokens, attention: note, memoryBytes: memory.weights + memory.activations + memory.state, attentionFlops });
  }
  return out;
}
