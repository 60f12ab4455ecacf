/** Fetching the heatmap's token blocks as it scrolls; each block is asked for once, however often it is drawn. */
import { blockKey, blockTokens, getBlock, putBlock } from '../series/tokens.js';
import { showBanner } from '../stores/view.js';
import { request } from './engine.js';

const inFlight = new Set<string>();

/** `compare` is `runId|model` of the model to subtract, or null. Failures leave the block to be asked again. */
export function ensureTokenBlocks(runId: string, model: string, compare: string | null, indices: readonly number[]): void {
  for (const index of indices) {
    const key = blockKey(runId, model, compare, index);
    if (inFlight.has(key) || getBlock(key)) continue;
    inFlight.add(key);
    const [compareRun, compareModel] = compare ? compare.split('|') : [];
    request('getTokens', {
      runId, model, start: index * blockTokens, count: blockTokens,
      ...(compare ? { compare: { runId: compareRun, model: compareModel } } : {}),
    }).then(
      (w) => putBlock(key, {
        start: w.start, tokens: w.tokens, byteAligned: w.byteAligned,
        nll: Float64Array.from(w.nll, (v) => v ?? NaN),
        diff: w.diff ? Float64Array.from(w.diff, (v) => v ?? NaN) : null,
      }),
      (error: Error) => showBanner(`Could not read the tokens: ${error.message}`),
    ).finally(() => inFlight.delete(key));
  }
}
