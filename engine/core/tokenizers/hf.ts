/**
 * Any Hugging Face `tokenizer.json` (+ optional `tokenizer_config.json`), through `@huggingface/tokenizers`, built
 * from the parsed JSON objects: the caller reads the files (engine/io), so this stays pure.
 *
 * As in transformers.js, the two files decide behaviour. Deviations, each for analysing a whole book:
 * - `encode` passes `add_special_tokens: false`; `bosId` is what the file's post-processor would put first
 *   (found by encoding a probe both ways), so a document gets that BOS once, at the start, and no EOS.
 * - `decode` skips special tokens and cleans up tokenization spaces only when the config asks for it
 *   explicitly (the package's default would turn " ." into "." and break round trips).
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { workbenchError } from '../errors.js';
import { byteText, checkIds, splitsSurrogatePair, type Tokenizer, utf8Length } from './tokenizer.js';

export interface HfTokenizerFiles {
  /** Parsed tokenizer.json. */
  readonly tokenizerJson: unknown;
  /** Parsed tokenizer_config.json, if the model has one. */
  readonly tokenizerConfig?: unknown;
  /** Where the JSON came from, for names and error messages. */
  readonly source?: string;
}

type JsonObject = Record<string, unknown>;
const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** GPT-2's byte ↔ printable-character table (`bytes_to_unicode`), inverted: each such character is one byte. */
const byteLevelBytes: ReadonlyMap<string, number> = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table = new Map<string, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) table.set(String.fromCharCode(printable(b) ? b : 256 + shifted++), b);
  return table;
})();

/** What the decoder config says about how pieces map back to text; drives `tokenBytes` and `tokenText`. */
interface PieceStyle {
  byteLevel: boolean;
  byteFallback: boolean;
  /** The character standing for a space ('▁' in SentencePiece-style files), if any. */
  spaceMark: string | undefined;
  /** WordPiece's continuation prefix ('##'), if any. */
  continuation: string | undefined;
}

function pieceStyle(decoder: unknown): PieceStyle {
  const style: PieceStyle = { byteLevel: false, byteFallback: false, spaceMark: undefined, continuation: undefined };
  const visit = (d: unknown): void => {
    if (!isObject(d)) return;
    if (d.type === 'Sequence' && Array.isArray(d.decoders)) d.decoders.forEach(visit);
    if (d.type === 'ByteLevel') style.byteLevel = true;
    if (d.type === 'ByteFallback') style.byteFallback = true;
    if (d.type === 'Metaspace') style.spaceMark = typeof d.replacement === 'string' ? d.replacement : '▁';
    if (d.type === 'Replace' && isObject(d.pattern) && typeof d.pattern.String === 'string' && d.content === ' ') style.spaceMark = d.pattern.String;
    if (d.type === 'WordPiece') style.continuation = typeof d.prefix === 'string' ? d.prefix : '##';
  };
  visit(decoder);
  return style;
}

const bytePiece = /^<0x([0-9A-Fa-f]{2})>$/;
/** Cuts are tried only after a newline and before a letter: every common pre-tokenizer splits there. */
const letter = /\p{L}/u;
const maxContext = 1024;

class HfTokenizerAdapter implements Tokenizer {
  readonly name: string;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  private readonly style: PieceStyle;
  private readonly special: ReadonlySet<number>;
  private readonly added: ReadonlyMap<number, string>;
  private readonly cleanUp: boolean;
  /** tokenBytes per id, computed on first use; -1 = not yet. */
  private readonly byteLengths: Int32Array;

  constructor(private readonly hf: HfTokenizer, json: JsonObject, config: JsonObject, source: string) {
    this.name = `hf:${source}`;
    let largest = -1;
    for (const id of hf.get_vocab(true).values()) largest = Math.max(largest, id);
    this.vocabSize = largest + 1;
    this.style = pieceStyle(json.decoder);
    const addedTokens = hf.get_added_tokens_decoder();
    this.special = new Set([...addedTokens].filter(([, t]) => t.special).map(([id]) => id));
    this.added = new Map([...addedTokens].map(([id, t]) => [id, t.content]));
    this.cleanUp = config.clean_up_tokenization_spaces === true;
    this.byteLengths = new Int32Array(this.vocabSize).fill(-1);
    const probe = 'a';
    const plain = hf.encode(probe, { add_special_tokens: false }).ids;
    const withSpecials = hf.encode(probe, { add_special_tokens: true }).ids;
    const prefixed = withSpecials.length > plain.length && plain.every((id, i) => withSpecials[i + 1] === id);
    this.bosId = prefixed ? withSpecials[0] : undefined;
  }

  encode(text: string): Int32Array {
    return text.length === 0 ? new Int32Array(0) : Int32Array.from(this.hf.encode(text, { add_special_tokens: false }).ids);
  }

  /**
   * Encodes text[start, end) after the line before it and keeps only the new ids: normalizers and pre-tokenizers
   * that treat the start of the input specially (Metaspace's prepended '▁', Prepend) then act on the context.
   */
  encodeSpan(text: string, start: number, end: number): Int32Array {
    if (start === 0) return this.encode(text.slice(0, end));
    const tail = this.afterContext(text, start, end);
    if (!tail) throw workbenchError('E_TOKENIZER_CHUNK', this.name, start);
    return tail;
  }

  findCut(text: string, from: number, to: number): number {
    for (let i = Math.max(from, 1); i < Math.min(to, text.length); i++) {
      if (text.charCodeAt(i - 1) !== 0x0a || !letter.test(String.fromCodePoint(text.codePointAt(i) ?? 0))) continue;
      const lineEnd = text.indexOf('\n', i);
      if (this.afterContext(text, i, lineEnd < 0 ? Math.min(text.length, i + maxContext) : lineEnd + 1)) return i;
    }
    return -1;
  }

  /** The ids of text[start, end) following its context, or undefined if the context's ids are not a prefix. */
  private afterContext(text: string, start: number, end: number): Int32Array | undefined {
    let contextStart = Math.max(text.lastIndexOf('\n', start - 2) + 1, start - maxContext);
    if (splitsSurrogatePair(text, contextStart)) contextStart++;
    const context = text.slice(contextStart, start);
    const head = this.encode(context);
    const both = this.encode(context + text.slice(start, end));
    for (let i = 0; i < head.length; i++) if (both[i] !== head[i]) return undefined;
    return both.slice(head.length);
  }

  decode(ids: ArrayLike<number>): string {
    this.check(ids);
    if (ids.length === 0) return '';
    return this.hf.decode(Array.from(ids), { skip_special_tokens: true, clean_up_tokenization_spaces: this.cleanUp });
  }

  tokenBytes(ids: ArrayLike<number>): Uint32Array {
    this.check(ids);
    return Uint32Array.from(ids, (id) => {
      if (this.byteLengths[id] < 0) this.byteLengths[id] = this.bytesOf(id);
      return this.byteLengths[id];
    });
  }

  private bytesOf(id: number): number {
    if (this.special.has(id)) return 0;
    const added = this.added.get(id);
    if (added !== undefined) return utf8Length(added);
    const piece = this.hf.id_to_token(id);
    if (piece === undefined) return 0;
    if (this.style.byteFallback && bytePiece.test(piece)) return 1;
    if (this.style.byteLevel) return [...piece].length;
    const { continuation, spaceMark } = this.style;
    if (continuation !== undefined && piece.startsWith(continuation)) return utf8Length(piece.slice(continuation.length));
    return utf8Length(spaceMark === undefined ? piece : piece.replaceAll(spaceMark, ' '));
  }

  tokenText(id: number): string {
    this.check([id]);
    const added = this.added.get(id);
    if (added !== undefined) return added;
    const piece = this.hf.id_to_token(id) ?? '';
    const byte = bytePiece.exec(piece);
    if (this.style.byteFallback && byte) return byteText(parseInt(byte[1], 16));
    if (this.style.byteLevel) {
      const bytes = Uint8Array.from([...piece], (c) => byteLevelBytes.get(c) ?? 0x3f);
      try {
        return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch {
        return Array.from(bytes, byteText).join(''); // a piece of a multi-byte character
      }
    }
    const { continuation, spaceMark } = this.style;
    if (continuation !== undefined && piece.startsWith(continuation)) return piece.slice(continuation.length);
    return spaceMark === undefined ? piece : piece.replaceAll(spaceMark, ' ');
  }

  private check(ids: ArrayLike<number>): void {
    checkIds(ids, this.vocabSize, (position, id) => workbenchError('E_TOKEN_ID', this.name, position, id, this.vocabSize));
  }
}

export function createHfTokenizer(files: HfTokenizerFiles): Tokenizer {
  const source = files.source ?? 'tokenizer.json';
  const { tokenizerJson, tokenizerConfig } = files;
  if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
    throw workbenchError('E_TOKENIZER', source, 'tokenizer.json must be an object with a "model" object');
  }
  if (tokenizerConfig !== undefined && !isObject(tokenizerConfig)) {
    throw workbenchError('E_TOKENIZER', source, 'tokenizer_config.json must be an object');
  }
  // The package requires every top-level key; files written by older `tokenizers` versions omit the null ones.
  const json: JsonObject = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...tokenizerJson };
  const config: JsonObject = tokenizerConfig ?? {};
  try {
    return new HfTokenizerAdapter(new HfTokenizer(json, config), json, config, source);
  } catch (error) {
    throw workbenchError('E_TOKENIZER', source, error instanceof Error ? error.message : String(error));
  }
}

// Used by tests to check the table against the package's own byte-level pre-tokenizer.
export const byteLevelAlphabet: ReadonlyMap<string, number> = byteLevelBytes;
