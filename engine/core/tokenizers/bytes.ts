/**
 * Byte-level tokenizer: id = UTF-8 byte value, vocabulary 256. The shipped demo models use it; it needs no data,
 * round-trips any string exactly, and every token is one byte, so bits per token = bits per byte.
 */
import { workbenchError } from '../errors.js';
import { byteText, checkIds, splitsSurrogatePair, type Tokenizer, utf8Decode, utf8Encode } from './tokenizer.js';

const vocabSize = 256;

export const byteTokenizer: Tokenizer = Object.freeze({
  name: 'bytes',
  vocabSize,
  bosId: undefined,

  encode(text: string): Int32Array {
    return Int32Array.from(utf8Encode(text));
  },

  decode(ids: ArrayLike<number>): string {
    checkIds(ids, vocabSize, (position, id) => workbenchError('E_TOKEN_ID', 'bytes', position, id, vocabSize));
    return utf8Decode(Uint8Array.from(ids));
  },

  tokenBytes(ids: ArrayLike<number>): Uint32Array {
    return new Uint32Array(ids.length).fill(1);
  },

  tokenText(id: number): string {
    return byteText(id);
  },

  findCut(text: string, from: number, to: number): number {
    // Bytes never merge, so any index is a cut unless it splits a character's UTF-16 surrogate pair.
    for (let i = Math.max(from, 1); i < Math.min(to, text.length); i++) if (!splitsSurrogatePair(text, i)) return i;
    return -1;
  },

  encodeSpan(text: string, start: number, end: number): Int32Array {
    return Int32Array.from(utf8Encode(text.slice(start, end)));
  },
});
