import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkbenchError } from '../core/errors.js';
import { byteTokenizer, tokenizeInChunks } from '../core/tokenizers/index.js';
import { firstInvalidUtf8, preview, readBook } from './book.js';

const kjvPath = fileURLToPath(new URL('../../assets/corpus/kjv.txt', import.meta.url));
const sample = 'Grüße, 中文 😀\nSecond line.\r\n';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ttt-book-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, bytes: Uint8Array | string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** The error readBook gives for a file: a WorkbenchError of `code`, one line, starting with the path. */
async function refusal(path: string, code: string): Promise<string> {
  const error: unknown = await readBook(path).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(WorkbenchError);
  expect((error as WorkbenchError).code).toBe(code);
  const { message } = error as Error;
  expect(message).not.toContain('\n');
  expect(message.startsWith(`${path}: `)).toBe(true);
  return message;
}

function utf16(text: string, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(2 + 2 * text.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, 0xfeff, littleEndian);
  for (let i = 0; i < text.length; i++) view.setUint16(2 + 2 * i, text.charCodeAt(i), littleEndian);
  return out;
}

describe('readBook', () => {
  it('reads UTF-8 as it is, with size, UTF-8 length and the hash of the file', async () => {
    const path = await file('plain.txt', sample);
    const book = await readBook(path);
    const bytes = new TextEncoder().encode(sample);
    expect(book).toEqual({
      path, text: sample, bytes: bytes.byteLength, utf8Bytes: bytes.byteLength, encoding: 'utf-8',
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  });

  it('drops a UTF-8 BOM', async () => {
    const book = await readBook(await file('bom.txt', `\uFEFF${sample}`));
    expect(book.text).toBe(sample);
    expect(book.encoding).toBe('utf-8');
    expect(book.bytes).toBe(book.utf8Bytes + 3);
  });

  it.each([['utf-16le', true], ['utf-16be', false]] as const)('converts %s with a BOM', async (encoding, little) => {
    const book = await readBook(await file(`${encoding}.txt`, utf16(sample, little)));
    expect(book.text).toBe(sample);
    expect(book.encoding).toBe(encoding);
    expect(book.utf8Bytes).toBe(new TextEncoder().encode(sample).byteLength);
    expect(book.bytes).toBe(2 + 2 * sample.length);
  });

  it('refuses a missing file, a directory, an empty and a blank file', async () => {
    expect(await refusal(join(dir, 'nope.txt'), 'E_FILE_NOT_FOUND')).toMatch(/: no such file$/);
    const sub = join(dir, 'folder');
    await mkdir(sub);
    expect(await refusal(sub, 'E_FILE_READ')).toMatch(/directory/);
    expect(await refusal(await file('empty.txt', ''), 'E_BOOK_EMPTY')).toMatch(/: the file is empty$/);
    expect(await refusal(await file('blank.txt', ' \n\t\r\n  \n'), 'E_BOOK_BLANK')).toMatch(/only whitespace \(8 bytes\)$/);
    await refusal(await file('bom-only.txt', '\uFEFF\n'), 'E_BOOK_BLANK');
  });

  it('refuses binary files: NUL bytes, or mostly control characters', async () => {
    const png = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52);
    expect(await refusal(await file('image.png', png), 'E_BOOK_BINARY')).toMatch(/NUL character at byte offset 8\)$/);
    const controls = Uint8Array.from({ length: 400 }, (_, i) => (i % 3 === 0 ? 0x01 + (i % 7) : 0x41 + (i % 26)));
    expect(await refusal(await file('controls.bin', controls), 'E_BOOK_BINARY')).toMatch(/control characters\)$/);
    await refusal(await file('utf16-nul.txt', utf16('ab\0cd', true)), 'E_BOOK_BINARY');
  });

  it('refuses invalid UTF-8 with the byte offset of the first bad sequence', async () => {
    const bad = Uint8Array.from([...new TextEncoder().encode('Hello, wörld '), 0xc3, 0x28, 0x41]);
    expect(await refusal(await file('latin1.txt', bad), 'E_BOOK_ENCODING')).toMatch(/not valid UTF-8: .* at byte offset 14$/);
    const withBom = Uint8Array.from([0xef, 0xbb, 0xbf, ...bad]);
    expect(await refusal(await file('latin1-bom.txt', withBom), 'E_BOOK_ENCODING')).toMatch(/byte offset 17$/);
    const lonely = utf16('ab', true);
    const unpaired = Uint8Array.from([...lonely, 0x00, 0xd8, 0x41, 0x00]); // a high surrogate followed by 'A'
    expect(await refusal(await file('utf16-bad.txt', unpaired), 'E_BOOK_ENCODING')).toMatch(/not valid UTF-16LE: .* at byte offset 6$/);
    expect(await refusal(await file('utf16-odd.txt', Uint8Array.from([...lonely, 0x41])), 'E_BOOK_ENCODING')).toMatch(/byte offset 6$/);
  });

  it.skipIf(!existsSync(kjvPath))('reads the KJV, which byte-tokenizes to exactly its file size', async () => {
    const book = await readBook(kjvPath);
    const size = statSync(kjvPath).size;
    expect(book.encoding).toBe('utf-8');
    expect(book.bytes).toBe(size);
    expect(byteTokenizer.encode(book.text).length).toBe(size);
    let streamed = 0;
    for (const chunk of tokenizeInChunks(byteTokenizer, book.text, 1 << 18)) streamed += chunk.ids.length;
    expect(streamed).toBe(size);
  });
});

describe('firstInvalidUtf8', () => {
  it('finds the sequences WHATWG decoding refuses', () => {
    const cases: Array<[number[], number]> = [
      [[0x41, 0x42], -1],
      [[0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80], -1],
      [[0x41, 0xc0, 0x80], 1], // overlong
      [[0xe0, 0x80, 0x80], 0], // overlong
      [[0xed, 0xa0, 0x80], 0], // surrogate
      [[0xf4, 0x90, 0x80, 0x80], 0], // above U+10FFFF
      [[0x41, 0xe2, 0x82], 1], // truncated
      [[0x80], 0],
      [[0x41, 0xff], 1],
    ];
    for (const [bytes, offset] of cases) expect(firstInvalidUtf8(Uint8Array.from(bytes))).toBe(offset);
  });

  it('agrees with TextDecoder on random bytes', () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const strict = new TextDecoder('utf-8', { fatal: true });
    for (let trial = 0; trial < 2000; trial++) {
      const bytes = Uint8Array.from({ length: 1 + (trial % 6) }, () => (trial % 2 ? random() : 0x80 | (random() & 0x7f)));
      let valid = true;
      try {
        strict.decode(bytes);
      } catch {
        valid = false;
      }
      expect(firstInvalidUtf8(bytes) === -1).toBe(valid);
    }
  });
});

describe('preview', () => {
  it('keeps short texts and ends long ones at a word', () => {
    expect(preview('short text', 40)).toBe('short text');
    expect(preview('In the beginning God created the heaven and the earth.', 18)).toBe('In the beginning…');
    expect(preview('😀😀😀', 3)).toBe('😀…');
  });
});
