/**
 * Tokenizers by name (after transformers.js: a table, and an unknown name fails listing the known ones), the
 * model-fit check, and encoding a whole book: BOS once at the start, then the text in chunks that give exactly
 * the ids of one `encode` call on the whole text.
 */
import { workbenchError } from '../errors.js';
import { byteTokenizer } from './bytes.js';
import { createHfTokenizer, type HfTokenizerFiles } from './hf.js';
import { loadLlama2Tokenizer } from './llama2.js';
import type { Tokenizer } from './tokenizer.js';

export type { Tokenizer } from './tokenizer.js';
export type { HfTokenizerFiles } from './hf.js';
export { byteTokenizer } from './bytes.js';

export type TokenizerSpec = 'bytes' | 'llama2' | ({ readonly kind: 'hf' } & HfTokenizerFiles);

const named: ReadonlyMap<string, () => Promise<Tokenizer>> = new Map([
  ['bytes', () => Promise.resolve(byteTokenizer)],
  ['llama2', loadLlama2Tokenizer],
]);

/** Names a config or the command line may use; 'hf' stands for a model's own tokenizer.json. */
export const knownTokenizers: readonly string[] = [...named.keys(), 'hf'];

/** Async because llama2's data is loaded on first use. A plain string may come from a config or the command line. */
export async function createTokenizer(spec: TokenizerSpec | string): Promise<Tokenizer> {
  if (typeof spec !== 'string') {
    if (spec.kind === 'hf') return createHfTokenizer(spec);
    throw workbenchError('E_TOKENIZER_UNKNOWN', String((spec as { kind?: unknown }).kind), knownTokenizers);
  }
  const load = named.get(spec);
  if (load) return load();
  if (spec === 'hf') throw workbenchError('E_TOKENIZER', 'hf', 'needs the model\'s tokenizer.json');
  throw workbenchError('E_TOKENIZER_UNKNOWN', spec, knownTokenizers);
}

/** A tokenizer that can emit ids the model has no embedding for is refused before any text is read. */
export function assertTokenizerFitsModel(tokenizer: Tokenizer, modelVocabSize: number, modelSource: string): void {
  if (tokenizer.vocabSize > modelVocabSize) {
    throw workbenchError('E_TOKENIZER_VOCAB', modelSource, tokenizer.name, tokenizer.vocabSize, modelVocabSize);
  }
}

export interface DocumentOptions {
  /** Put the tokenizer's BOS before the first token. Default: yes where the tokenizer has one (`bosId`). */
  readonly bos?: boolean;
}

export interface TokenChunk {
  /** text[start, end) is what `ids` encode (apart from a BOS at the front of the first chunk). */
  readonly start: number;
  readonly end: number;
  readonly ids: Int32Array;
}

const defaultChunkChars = 1 << 16;

/**
 * A long text's ids, chunk by chunk, so a caller can feed the model while later chunks are still being
 * tokenized. Each cut comes from the tokenizer's `findCut`, so the concatenated ids equal `encodeDocument`.
 */
export function* tokenizeInChunks(
  tokenizer: Tokenizer,
  text: string,
  chunkChars: number = defaultChunkChars,
  options: DocumentOptions = {},
): Generator<TokenChunk> {
  if (!Number.isInteger(chunkChars) || chunkChars < 1) throw new RangeError(`tokenizeInChunks: chunkChars must be a positive integer, got ${chunkChars}`);
  const bos = options.bos ?? tokenizer.bosId !== undefined;
  let start = 0;
  while (start < text.length) {
    const cut = tokenizer.findCut(text, start + chunkChars, text.length);
    const end = cut < 0 ? text.length : cut;
    const ids = tokenizer.encodeSpan(text, start, end);
    yield { start, end, ids: start === 0 && bos ? withBos(tokenizer, ids) : ids };
    start = end;
  }
  if (text.length === 0 && bos) yield { start: 0, end: 0, ids: withBos(tokenizer, new Int32Array(0)) };
}

/** The ids a model reads for a whole document: BOS once (see `DocumentOptions`), then `encode(text)`. */
export function encodeDocument(tokenizer: Tokenizer, text: string, options: DocumentOptions = {}): Int32Array {
  const bos = options.bos ?? tokenizer.bosId !== undefined;
  const ids = tokenizer.encode(text);
  return bos ? withBos(tokenizer, ids) : ids;
}

function withBos(tokenizer: Tokenizer, ids: Int32Array): Int32Array {
  if (tokenizer.bosId === undefined) throw workbenchError('E_TOKENIZER', tokenizer.name, 'has no BOS token to put before the text');
  const out = new Int32Array(ids.length + 1);
  out[0] = tokenizer.bosId;
  out.set(ids, 1);
  return out;
}
