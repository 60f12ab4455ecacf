/**
 * What the engine needs from a tokenizer: text ↔ ids, and what each id stands for in the text (its UTF-8 bytes
 * for bits-per-byte, its display text for a token heatmap). Implementations: `bytes.ts`, `llama2.ts`, `hf.ts`.
 *
 * Special tokens: `encode` never adds any. A tokenizer whose own convention starts a sequence with BOS says so in
 * `bosId`; a book is one sequence, so `encodeDocument` / `tokenizeInChunks` put that BOS once, at the start.
 */

export interface Tokenizer {
  /** 'bytes', 'llama2' or 'hf:<source>'; recorded in run manifests. */
  readonly name: string;
  /** One more than the largest id this tokenizer can produce or decode; checked against the model's vocabulary. */
  readonly vocabSize: number;
  /** The id the tokenizer's own convention puts before a sequence, or undefined where it adds none. */
  readonly bosId: number | undefined;
  /** The ids of `text` as one whole sequence, without special tokens. */
  encode(text: string): Int32Array;
  /** Inverse of `encode`; special tokens decode to nothing. */
  decode(ids: ArrayLike<number>): string;
  /**
   * UTF-8 bytes of text each id stands for inside running text (a word-initial piece counts its space; special
   * tokens count 0). Sums to the text's byte length, except that SentencePiece-style tokenizers (llama2) count
   * the one space they invent before the first word. Divide by the document's real byte count for bits-per-byte.
   */
  tokenBytes(ids: ArrayLike<number>): Uint32Array;
  /** What id looks like in running text, for display: spaces as ' ', bytes that are not text as `<0xNN>`. */
  tokenText(id: number): string;
  /**
   * The first index in [from, to) where text may be cut so that encoding the parts (with `encodeSpan`) gives
   * exactly `encode(text)`, or -1 if there is none. Never 0.
   */
  findCut(text: string, from: number, to: number): number;
  /** The ids `encode(text)` has for text[start, end), where start and end are 0, text.length or from `findCut`. */
  encodeSpan(text: string, start: number, end: number): Int32Array;
}

const utf8 = new TextEncoder();

/** UTF-8 byte length of a string, without allocating for the common all-ASCII case. */
export function utf8Length(text: string): number {
  let ascii = true;
  for (let i = 0; i < text.length && ascii; i++) ascii = text.charCodeAt(i) < 0x80;
  return ascii ? text.length : utf8.encode(text).byteLength;
}

export function utf8Encode(text: string): Uint8Array {
  return utf8.encode(text);
}

/** Decodes UTF-8 leniently (bad sequences → U+FFFD) and keeps a leading U+FEFF, so decode(encode(s)) === s. */
export function utf8Decode(bytes: Uint8Array): string {
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
}

const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;
const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

/** True if a cut at index i would split a surrogate pair (and so a character). */
export function splitsSurrogatePair(text: string, i: number): boolean {
  return i > 0 && i < text.length && isHighSurrogate(text.charCodeAt(i - 1)) && isLowSurrogate(text.charCodeAt(i));
}

/** How a single byte reads in a heatmap: printable ASCII and common whitespace as themselves, the rest as <0xNN>. */
export function byteText(byte: number): string {
  if ((byte >= 0x20 && byte < 0x7f) || byte === 0x0a || byte === 0x09 || byte === 0x0d) return String.fromCharCode(byte);
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/** Shared range check for `decode`: a model can emit any id of its own vocabulary, not necessarily ours. */
export function checkIds(ids: ArrayLike<number>, vocabSize: number, onBad: (position: number, id: number) => Error): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw onBad(i, id);
  }
}
