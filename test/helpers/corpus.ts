/**
 * A small corpus in every form `eval` reads (a folder of .txt files, JSON Lines, Parquet, Arrow IPC), with the
 * same documents in each, and a few bad ones (empty, binary) that every reader must skip. The Parquet file comes
 * from `writeParquet`, a minimal writer (PLAIN, uncompressed, required UTF-8 columns) written from the format's
 * specification, so the test needs no Parquet writer package; hyparquet reads it as any other Parquet file.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { repoRoot } from './fixtures.js';

export interface TestCorpus {
  readonly folder: string;
  readonly jsonl: string;
  readonly parquet: string;
  readonly arrow: string;
  /** The usable documents, in corpus order. */
  readonly texts: readonly string[];
  readonly names: readonly string[];
}

/** `count` documents of 40–400 bytes cut from the KJV, written in four forms under `dir`. */
export function writeTestCorpus(dir: string, count = 20): TestCorpus {
  const kjv = readFileSync(join(repoRoot, 'assets/corpus/kjv.txt'), 'utf8');
  const texts: string[] = [];
  let at = 1000;
  for (let i = 0; i < count; i++) {
    const length = 40 + ((i * 97) % 361);
    texts.push(kjv.slice(at, at + length));
    at += length + 5000;
  }
  const names = texts.map((_, i) => `book-${String(i).padStart(2, '0')}.txt`);
  // bad documents, placed between good ones: each reader skips them with a line
  const bad = [{ name: 'book-05a.txt', text: '' }, { name: 'book-09a.txt', text: 'ab\u0000\u0001\u0002\u0003cd' }];
  const rows = [...texts.map((text, i) => ({ name: names[i], text })), ...bad].sort((a, b) => a.name.localeCompare(b.name));

  const folder = join(dir, 'books');
  mkdirSync(folder, { recursive: true });
  for (const r of rows) writeFileSync(join(folder, r.name), r.text);
  writeFileSync(join(folder, 'README.md'), 'not a .txt file: not a document');
  const jsonl = join(dir, 'corpus.jsonl');
  writeFileSync(jsonl, rows.map((r) => JSON.stringify({ short_book_title: r.name, text: r.text })).join('\n') + '\n');
  const parquet = join(dir, 'corpus.parquet');
  writeFileSync(parquet, writeParquet({ text: rows.map((r) => r.text), short_book_title: rows.map((r) => r.name), publication_date: rows.map(() => '1611') }));
  const arrow = join(dir, 'corpus.arrow');
  writeFileSync(arrow, tableToIPC(tableFromArrays({ short_book_title: rows.map((r) => r.name), text: rows.map((r) => r.text) }), 'file'));
  return { folder, jsonl, parquet, arrow, texts, names };
}

// --- a minimal Parquet writer: Thrift compact protocol, one row group, one PLAIN data page per column ---

class Compact {
  private readonly bytes: number[] = [];
  private readonly lastField: number[] = [0];

  varint(n: bigint): void {
    let v = n;
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }
  private zigzag(n: number | bigint): void {
    const v = BigInt(n);
    this.varint(v >= 0n ? v << 1n : (-v << 1n) - 1n);
  }
  private field(id: number, type: number): void {
    const last = this.lastField[this.lastField.length - 1];
    this.bytes.push(((id - last) << 4) | type); // ids here always grow by 1..15
    this.lastField[this.lastField.length - 1] = id;
  }
  i32(id: number, n: number): this {
    this.field(id, 5);
    this.zigzag(n);
    return this;
  }
  i64(id: number, n: number): this {
    this.field(id, 6);
    this.zigzag(n);
    return this;
  }
  string(id: number, s: string): this {
    this.field(id, 8);
    const b = Buffer.from(s, 'utf8');
    this.varint(BigInt(b.length));
    this.bytes.push(...b);
    return this;
  }
  struct(id: number, body: (c: Compact) => void): this {
    this.field(id, 12);
    this.structBody(body);
    return this;
  }
  /** A list of structs (type 12), i32s (5) or strings (8). */
  list<T>(id: number, elementType: number, items: readonly T[], write: (c: Compact, item: T) => void): this {
    this.field(id, 9);
    if (items.length < 15) this.bytes.push((items.length << 4) | elementType);
    else {
      this.bytes.push(0xf0 | elementType);
      this.varint(BigInt(items.length));
    }
    for (const item of items) write(this, item);
    return this;
  }
  structBody(body: (c: Compact) => void): void {
    this.lastField.push(0);
    body(this);
    this.bytes.push(0);
    this.lastField.pop();
  }
  rawI32(n: number): void {
    this.zigzag(n);
  }
  rawString(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.varint(BigInt(b.length));
    this.bytes.push(...b);
  }
  get buffer(): Buffer {
    return Buffer.from(this.bytes);
  }
}

const BYTE_ARRAY = 6, REQUIRED = 0, UTF8 = 0, PLAIN = 0, RLE = 3, UNCOMPRESSED = 0, DATA_PAGE = 0;

/** A Parquet file of required UTF-8 string columns, all of the same length. */
export function writeParquet(columns: Record<string, readonly string[]>): Buffer {
  const names = Object.keys(columns);
  const rows = columns[names[0]].length;
  const parts: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const chunks: { name: string; offset: number; size: number }[] = [];
  for (const name of names) {
    const values = columns[name].map((s) => Buffer.from(s, 'utf8'));
    const data = Buffer.concat(values.flatMap((v) => {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(v.length);
      return [length, v];
    }));
    const header = new Compact();
    header.structBody((c) => c
      .i32(1, DATA_PAGE).i32(2, data.length).i32(3, data.length)
      .struct(5, (d) => d.i32(1, rows).i32(2, PLAIN).i32(3, RLE).i32(4, RLE)));
    const page = Buffer.concat([header.buffer, data]);
    chunks.push({ name, offset, size: page.length });
    parts.push(page);
    offset += page.length;
  }
  const footer = new Compact();
  footer.structBody((c) => c
    .i32(1, 1)
    .list(2, 12, [null, ...names], (l, name) => l.structBody((e) => {
      if (name === null) e.string(4, 'schema').i32(5, names.length);
      else e.i32(1, BYTE_ARRAY).i32(3, REQUIRED).string(4, name).i32(6, UTF8);
    }))
    .i64(3, rows)
    .list(4, 12, [chunks], (l, group) => l.structBody((g) => g
      .list(1, 12, group, (cl, chunk) => cl.structBody((cc) => cc
        .i64(2, chunk.offset)
        .struct(3, (m) => m
          .i32(1, BYTE_ARRAY)
          .list(2, 5, [PLAIN], (x, e) => x.rawI32(e))
          .list(3, 8, [chunk.name], (x, s) => x.rawString(s))
          .i32(4, UNCOMPRESSED).i64(5, rows).i64(6, chunk.size).i64(7, chunk.size).i64(9, chunk.offset))))
      .i64(2, group.reduce((n, ch) => n + ch.size, 0))
      .i64(3, rows))));
  const meta = footer.buffer;
  const length = Buffer.alloc(4);
  length.writeUInt32LE(meta.length);
  parts.push(meta, length, Buffer.from('PAR1'));
  return Buffer.concat(parts);
}
