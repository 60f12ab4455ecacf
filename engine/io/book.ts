/**
 * Reading a book: the one place the engine turns a text file into a string. UTF-8 (a BOM is dropped) or UTF-16
 * with a BOM; anything else is refused with a one-line reason naming the file, before any model time is spent.
 * The text is otherwise kept as it is (line endings included): it is the thing being measured.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { WorkbenchError, workbenchError } from '../core/errors.js';

export type BookEncoding = 'utf-8' | 'utf-16le' | 'utf-16be';

export interface Book {
  readonly path: string;
  readonly text: string;
  /** Size of the file on disk. */
  readonly bytes: number;
  /** UTF-8 length of `text`: what byte-level tokens count and what bits-per-byte divides by. */
  readonly utf8Bytes: number;
  /** Of the file's bytes, so a run can say exactly which file it read. */
  readonly sha256: string;
  readonly encoding: BookEncoding;
}

/** JS strings stop at 2^29 characters; a book is far smaller, so a file this large is a mistake. */
const maxBookBytes = 256 * 1024 * 1024;
const sniffBytes = 8192;
/** Text uses tabs, line and page breaks, rarely anything else below 0x20; a tenth of such bytes is not text. */
const maxControlFraction = 0.1;

export async function readBook(path: string): Promise<Book> {
  let raw: Uint8Array;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw workbenchError('E_FILE_READ', path, 'it is a directory');
    if (info.size > maxBookBytes) throw workbenchError('E_FILE_READ', path, `${info.size} bytes is over the ${maxBookBytes / 2 ** 20} MiB limit for a book`);
    raw = await readFile(path);
  } catch (error) {
    if (error instanceof WorkbenchError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw workbenchError('E_FILE_NOT_FOUND', path);
    throw workbenchError('E_FILE_READ', path, code ?? String(error));
  }
  const { text, encoding } = decodeBook(raw, path);
  return {
    path,
    text,
    bytes: raw.byteLength,
    utf8Bytes: encoding === 'utf-8' ? raw.byteLength - (hasUtf8Bom(raw) ? 3 : 0) : Buffer.byteLength(text, 'utf8'),
    sha256: createHash('sha256').update(raw).digest('hex'),
    encoding,
  };
}

const hasUtf8Bom = (raw: Uint8Array): boolean => raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf;

/** The text of a book file's bytes, or the reason it is not a book; `path` is only for messages. */
export function decodeBook(raw: Uint8Array, path: string): { text: string; encoding: BookEncoding } {
  if (raw.byteLength === 0) throw workbenchError('E_BOOK_EMPTY', path);
  let text: string;
  let encoding: BookEncoding;
  if ((raw[0] === 0xff && raw[1] === 0xfe) || (raw[0] === 0xfe && raw[1] === 0xff)) {
    encoding = raw[0] === 0xff ? 'utf-16le' : 'utf-16be';
    text = decodeUtf16(raw, encoding, path);
    refuseBinary(controlStats((i) => text.charCodeAt(i), Math.min(text.length, sniffBytes / 2)), path, (i) => 2 + 2 * i);
  } else {
    encoding = 'utf-8';
    const body = hasUtf8Bom(raw) ? raw.subarray(3) : raw;
    refuseBinary(controlStats((i) => body[i], Math.min(body.byteLength, sniffBytes)), path, (i) => i + raw.byteLength - body.byteLength);
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
    } catch {
      throw workbenchError('E_BOOK_ENCODING', path, 'UTF-8', (body === raw ? 0 : 3) + firstInvalidUtf8(body));
    }
  }
  if (text.trim().length === 0) throw workbenchError('E_BOOK_BLANK', path, raw.byteLength);
  return { text, encoding };
}

interface ControlStats {
  firstNul: number;
  controls: number;
  sniffed: number;
}

/** Counts, over the first `count` units, NULs and control characters that text does not use. */
function controlStats(unit: (i: number) => number, count: number): ControlStats {
  let firstNul = -1;
  let controls = 0;
  for (let i = 0; i < count; i++) {
    const c = unit(i);
    if (c === 0 && firstNul < 0) firstNul = i;
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0b && c !== 0x0c && c !== 0x0d) || c === 0x7f) controls++;
  }
  return { firstNul, controls, sniffed: count };
}

function refuseBinary({ firstNul, controls, sniffed }: ControlStats, path: string, byteOffset: (unit: number) => number): void {
  if (firstNul >= 0) throw workbenchError('E_BOOK_BINARY', path, `a NUL character at byte offset ${byteOffset(firstNul)}`);
  if (controls > maxControlFraction * sniffed) {
    throw workbenchError('E_BOOK_BINARY', path, `${controls} of its first ${sniffed} characters are control characters`);
  }
}

function decodeUtf16(raw: Uint8Array, encoding: 'utf-16le' | 'utf-16be', path: string): string {
  const name = encoding === 'utf-16le' ? 'UTF-16LE' : 'UTF-16BE';
  if (raw.byteLength % 2 !== 0) throw workbenchError('E_BOOK_ENCODING', path, name, raw.byteLength - 1);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const little = encoding === 'utf-16le';
  // TextDecoder's fatal mode says that a surrogate is unpaired but not where, so find it first.
  for (let at = 2; at < raw.byteLength; at += 2) {
    const unit = view.getUint16(at, little);
    if (unit >= 0xdc00 && unit <= 0xdfff) throw workbenchError('E_BOOK_ENCODING', path, name, at);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = at + 2 < raw.byteLength ? view.getUint16(at + 2, little) : -1;
      if (next < 0xdc00 || next > 0xdfff) throw workbenchError('E_BOOK_ENCODING', path, name, at);
      at += 2;
    }
  }
  return new TextDecoder(encoding, { ignoreBOM: false }).decode(raw);
}

/**
 * Byte offset of the first ill-formed UTF-8 sequence (as the WHATWG decoder judges: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated sequence), or -1 if there is none.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.byteLength;
  for (let i = 0; i < n; ) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let length: number;
    let lower = 0x80;
    let upper = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) lower = 0xa0;
      if (b === 0xed) upper = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) lower = 0x90;
      if (b === 0xf4) upper = 0x8f;
    } else return i;
    if (i + length > n) return i;
    if (bytes[i + 1] < lower || bytes[i + 1] > upper) return i;
    for (let k = 2; k < length; k++) if (bytes[i + k] < 0x80 || bytes[i + k] > 0xbf) return i;
    i += length;
  }
  return -1;
}

/** The start of a text for a UI: at most `chars` characters, ended at a word where one is near, with '…'. */
export function preview(text: string, chars = 280): string {
  if (text.length <= chars) return text;
  let end = chars;
  if (end > 0 && text.charCodeAt(end - 1) >= 0xd800 && text.charCodeAt(end - 1) <= 0xdbff) end--;
  const space = text.slice(0, end).search(/\s\S*$/);
  if (space > 0.8 * end) end = space;
  return `${text.slice(0, end).trimEnd()}…`;
}
