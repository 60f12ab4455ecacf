/**
 * The Llama-2 SentencePiece BPE tokenizer (vocabulary 32000: <unk>, <s>, </s>, 256 byte pieces <0x00>…<0xFF>,
 * then merged pieces with '▁' for a space), as shipped inside `llama-tokenizer-js`, whose vocabulary and merges
 * are inlined in the package: it loads in Node and in a browser bundle without network. The paper's TTT
 * checkpoints use it.
 *
 * Conventions, as SentencePiece with the Llama-2 model file (and Hugging Face's LlamaTokenizer) apply them:
 * - one space is put before the text (`add_dummy_prefix`), so "Hello world" → ▁Hello ▁world = [15043, 3186];
 *   decode takes that space off again.
 * - BOS (id 1) is not added by `encode`; `bosId` says the convention wants it once before a sequence.
 * - a literal '▁' (U+2581) in the text reads as a space, as in SentencePiece: the only text that does not
 *   round-trip.
 *
 * Speed: the package runs BPE over the whole string it is given (a linked list node per character). No Llama
 * piece has '▁' after another character (checked in the tests), and byte pieces (such as '\n') take part in no
 * merge, so merges never cross the start of a run of spaces or the end of a line. Text is therefore encoded
 * word by word (a word being a run of spaces plus what follows, up to the next such boundary), with a cache of
 * recent words: the same ids as one call on the whole text, several times faster, in bounded memory.
 */
import type { LlamaTokenizer } from 'llama-tokenizer-js';
import { workbenchError } from '../errors.js';
import { byteText, checkIds, type Tokenizer, utf8Decode, utf8Encode } from './tokenizer.js';

const vocabSize = 32000;
const unkId = 0;
const bosId = 1;
const eosId = 2;
const space = '▁';
const bytePiece = /^<0x([0-9A-F]{2})>$/;
/** Words longer than this are rare and not worth remembering; the cache is emptied when it grows past its cap. */
const maxCachedWord = 48;
const maxCacheEntries = 100_000;

/** True where encoding may restart: before the first space of a run, or after a newline. */
function isWordStart(text: string, i: number): boolean {
  const previous = text.charCodeAt(i - 1);
  return previous === 0x0a || (text.charCodeAt(i) === 0x20 && previous !== 0x20);
}

/** Appends ids to a growing Int32Array, so a million-token book is not built as a JS array of numbers. */
class IdBuffer {
  private data = new Int32Array(1024);
  private length = 0;
  push(ids: readonly number[]): void {
    if (this.length + ids.length > this.data.length) {
      const grown = new Int32Array(Math.max(2 * this.data.length, this.length + ids.length));
      grown.set(this.data.subarray(0, this.length));
      this.data = grown;
    }
    for (let i = 0; i < ids.length; i++) this.data[this.length + i] = ids[i];
    this.length += ids.length;
  }
  finish(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

class Llama2Tokenizer implements Tokenizer {
  readonly name = 'llama2';
  readonly vocabSize = vocabSize;
  readonly bosId = bosId;
  private readonly pieces: readonly string[];
  /** UTF-8 bytes of each piece as it appears in text ('▁' → one space byte); specials are empty. */
  private readonly pieceBytes: readonly Uint8Array[];
  private readonly byteLengths: Uint32Array;
  private readonly cache = new Map<string, readonly number[]>();

  constructor(private readonly lib: LlamaTokenizer) {
    if (lib.vocabById.length !== vocabSize) {
      throw workbenchError('E_TOKENIZER', 'llama2', `llama-tokenizer-js has ${lib.vocabById.length} pieces, expected ${vocabSize}`);
    }
    this.pieces = lib.vocabById;
    this.pieceBytes = this.pieces.map((piece, id) => {
      if (id === unkId || id === bosId || id === eosId) return new Uint8Array(0);
      const byte = bytePiece.exec(piece);
      return byte ? Uint8Array.of(parseInt(byte[1], 16)) : utf8Encode(piece.replaceAll(space, ' '));
    });
    this.byteLengths = Uint32Array.from(this.pieceBytes, (b) => b.byteLength);
  }

  encode(text: string): Int32Array {
    return this.encodeSpan(text, 0, text.length);
  }

  encodeSpan(text: string, start: number, end: number): Int32Array {
    const out = new IdBuffer();
    let wordStart = start;
    for (let i = start + 1; i <= end; i++) {
      if (i < end && !isWordStart(text, i)) continue;
      out.push(this.encodeWord(text.slice(wordStart, i), wordStart === 0));
      wordStart = i;
    }
    return out.finish();
  }

  private encodeWord(word: string, atTextStart: boolean): readonly number[] {
    // Only the text's first word gets the dummy-prefix space; it is not cached, being encoded differently.
    if (atTextStart) return this.lib.encode(word, false, true);
    const cached = this.cache.get(word);
    if (cached) return cached;
    const ids = this.lib.encode(word, false, false);
    if (word.length <= maxCachedWord) {
      if (this.cache.size >= maxCacheEntries) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  findCut(text: string, from: number, to: number): number {
    for (let i = Math.max(from, 1); i < Math.min(to, text.length); i++) if (isWordStart(text, i)) return i;
    return -1;
  }

  decode(ids: ArrayLike<number>): string {
    this.check(ids);
    let length = 0;
    for (let i = 0; i < ids.length; i++) length += ids[i] === unkId ? unkText.byteLength : this.byteLengths[ids[i]];
    const bytes = new Uint8Array(length);
    let at = 0;
    let first = -1;
    for (let i = 0; i < ids.length; i++) {
      const piece = ids[i] === unkId ? unkText : this.pieceBytes[ids[i]];
      if (first < 0 && piece.byteLength > 0) first = ids[i];
      bytes.set(piece, at);
      at += piece.byteLength;
    }
    const text = utf8Decode(bytes);
    // Undo the dummy prefix: SentencePiece drops the space of a leading '▁' piece, not a space from bytes.
    return first >= 0 && this.pieces[first].startsWith(space) ? text.slice(1) : text;
  }

  tokenBytes(ids: ArrayLike<number>): Uint32Array {
    this.check(ids);
    return Uint32Array.from(ids, (id) => this.byteLengths[id]);
  }

  tokenText(id: number): string {
    this.check([id]);
    const byte = bytePiece.exec(this.pieces[id]);
    return byte ? byteText(parseInt(byte[1], 16)) : this.pieces[id].replaceAll(space, ' ');
  }

  private check(ids: ArrayLike<number>): void {
    checkIds(ids, vocabSize, (position, id) => workbenchError('E_TOKEN_ID', 'llama2', position, id, vocabSize));
  }
}

/** SentencePiece renders <unk> as ' ⁇ '; encode never produces it (every byte has a piece), a model might. */
const unkText = utf8Encode(' ⁇ ');

let loading: Promise<Tokenizer> | undefined;

/** The package decodes its inlined 32000-piece vocabulary on import (~0.2 s), so it is loaded on first use only. */
export function loadLlama2Tokenizer(): Promise<Tokenizer> {
  loading ??= import('llama-tokenizer-js').then(
    (module) => new Llama2Tokenizer(module.default),
    (error: unknown) => {
      loading = undefined;
      throw workbenchError('E_TOKENIZER', 'llama2', `cannot load llama-tokenizer-js: ${error instanceof Error ? error.message : String(error)}`);
    },
  );
  return loading;
}
