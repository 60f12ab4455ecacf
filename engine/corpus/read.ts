/**
 * Corpora as users have them: a folder of `.txt` books, a JSON Lines file with a text field, a Parquet file (the
 * layout Hugging Face publishes datasets such as PG19 in: `text` plus metadata columns) or an Arrow IPC file.
 * Every document passes the checks a book passes (io/book.ts): an empty, blank, binary or mis-encoded one is
 * skipped with a one-line reason naming it, and the run lists it, so one bad record does not stop a corpus.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { tableFromIPC } from 'apache-arrow';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { WorkbenchError, workbenchError } from '../core/errors.js';
import { decodeBook, readBook } from '../io/book.js';

export type CorpusFormat = 'folder' | 'jsonl' | 'parquet' | 'arrow';

export interface CorpusDocument {
  /** Position among the corpus's usable documents, 0-based: what results are keyed and combined by. */
  readonly index: number;
  /** A file name, a title column (`short_book_title`, `title`) or `<file>#<record>`. */
  readonly name: string;
  readonly text: string;
  /** UTF-8 length of the text. */
  readonly bytes: number;
  /** Of the text's UTF-8 bytes, so a resumed run knows a document is the one it computed. */
  readonly sha256: string;
}

export interface SkippedDocument {
  readonly name: string;
  /** One line naming the document and what is wrong with it. */
  readonly reason: string;
}

export interface Corpus {
  readonly path: string;
  readonly format: CorpusFormat;
  readonly documents: readonly CorpusDocument[];
  readonly skipped: readonly SkippedDocument[];
}

export interface CorpusOptions {
  /** The field or column that holds each document's text (JSONL, Parquet, Arrow); default `text`. */
  readonly textField?: string;
  /** Only the first N usable documents. */
  readonly maxDocuments?: number;
}

/** Columns that name a document, first found wins (PG19 has `short_book_title`). */
const nameFields = ['short_book_title', 'title', 'name', 'id'];

export async function readCorpus(path: string, options: CorpusOptions = {}): Promise<Corpus> {
  const format = await corpusFormat(path);
  const field = options.textField ?? 'text';
  const limit = options.maxDocuments ?? Infinity;
  const documents: CorpusDocument[] = [];
  const skipped: SkippedDocument[] = [];
  const take = (name: string, value: unknown) => {
    const checked = checkDocument(name, value, field);
    if ('reason' in checked) skipped.push({ name, reason: checked.reason });
    else documents.push(document(documents.length, name, checked.text));
    return documents.length < limit;
  };
  if (format === 'folder') {
    const files = (await readdir(path)).filter((f) => f.toLowerCase().endsWith('.txt')).sort();
    for (const file of files) {
      if (documents.length >= limit) break;
      try {
        const book = await readBook(join(path, file));
        documents.push(document(documents.length, file, book.text));
      } catch (error) {
        if (!(error instanceof WorkbenchError)) throw error;
        skipped.push({ name: file, reason: error.message });
      }
    }
  } else if (format === 'jsonl') await readJsonLines(path, field, take, (name, reason) => skipped.push({ name, reason }));
  else if (format === 'parquet') await readParquet(path, field, take);
  else await readArrow(path, field, take);
  if (documents.length === 0) throw workbenchError('E_INPUT', path, `holds no usable document${skipped.length ? ` (${skipped.length} skipped: ${skipped[0].reason})` : ''}`);
  return { path, format, documents, skipped };
}

async function corpusFormat(path: string): Promise<CorpusFormat> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw workbenchError('E_FILE_NOT_FOUND', path);
  }
  if (info.isDirectory()) return 'folder';
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  if (ext === '.parquet') return 'parquet';
  if (ext === '.arrow' || ext === '.feather' || ext === '.ipc') return 'arrow';
  throw workbenchError('E_INPUT', path, 'is not a corpus (a folder of .txt files, .jsonl, .parquet or .arrow)');
}

function document(index: number, name: string, text: string): CorpusDocument {
  const utf8 = Buffer.from(text, 'utf8');
  return { index, name, text, bytes: utf8.byteLength, sha256: createHash('sha256').update(utf8).digest('hex') };
}

/** A lone UTF-16 surrogate: a string that came from mis-decoded bytes and has no UTF-8 form. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The text of a record's value, or the one-line reason it is not a document. */
function checkDocument(name: string, value: unknown, field: string): { text: string } | { reason: string } {
  try {
    if (value instanceof Uint8Array) return { text: decodeBook(value, name).text };
    if (typeof value !== 'string') throw workbenchError('E_INPUT', name, value === undefined || value === null ? `has no "${field}" field` : `its "${field}" field is not text`);
    const at = value.search(loneSurrogate);
    if (at >= 0) throw workbenchError('E_INPUT', name, `not valid Unicode: a lone surrogate at character ${at}`);
    // the same checks as a book file: empty, control characters (binary), blank
    return { text: decodeBook(Buffer.from(value, 'utf8'), name).text };
  } catch (error) {
    if (error instanceof WorkbenchError) return { reason: error.message };
    throw error;
  }
}

const nameOf = (record: Record<string, unknown>, fallback: string): string => {
  for (const key of nameFields) {
    const v = record[key];
    if ((typeof v === 'string' && v.trim() !== '') || typeof v === 'number' || typeof v === 'bigint') return String(v);
  }
  return fallback;
};

/** Calls `take` for each record; stops when it returns false. */
async function readJsonLines(
  path: string, field: string, take: (name: string, value: unknown) => boolean, skip: (name: string, reason: string) => void,
): Promise<void> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of lines) {
      line++;
      if (raw.trim() === '') continue;
      const fallback = `${basename(path)}:${line}`;
      let record: unknown;
      try {
        record = JSON.parse(raw);
      } catch (error) {
        skip(fallback, workbenchError('E_JSON', fallback, (error as Error).message).message);
        continue;
      }
      if (typeof record !== 'object' || record === null || Array.isArray(record)) {
        skip(fallback, workbenchError('E_INPUT', fallback, 'is not a JSON object').message);
        continue;
      }
      if (!take(nameOf(record as Record<string, unknown>, fallback), (record as Record<string, unknown>)[field])) break;
    }
  } finally {
    lines.close();
  }
}

/** Rows per read: a Parquet file of whole books is read a few books at a time, so only a few sit in memory. */
const parquetRowsPerRead = 16;

async function readParquet(path: string, field: string, take: (name: string, value: unknown) => boolean): Promise<void> {
  let file, metadata;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw workbenchError('E_INPUT', path, `not a readable Parquet file (${(error as Error).message.split('\n')[0]})`);
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  if (!columns.includes(field)) throw workbenchError('E_INPUT', path, `has no "${field}" column (columns: ${columns.join(', ')}); choose one with --text-field`);
  const nameColumn = nameFields.find((n) => columns.includes(n));
  const rows = Number(metadata.num_rows);
  for (let start = 0; start < rows; start += parquetRowsPerRead) {
    const end = Math.min(rows, start + parquetRowsPerRead);
    const records = await parquetReadObjects({ file, metadata, columns: nameColumn ? [field, nameColumn] : [field], rowStart: start, rowEnd: end, utf8: true });
    for (let i = 0; i < records.length; i++) {
      if (!take(nameOf(records[i], `${basename(path)}#${start + i}`), records[i][field])) return;
    }
  }
}

async function readArrow(path: string, field: string, take: (name: string, value: unknown) => boolean): Promise<void> {
  let table;
  try {
    table = tableFromIPC(await readFile(path));
  } catch (error) {
    throw workbenchError('E_INPUT', path, `not a readable Arrow IPC file (${(error as Error).message.split('\n')[0]})`);
  }
  const columns = table.schema.fields.map((f) => f.name);
  const text = table.getChild(field);
  if (!text) throw workbenchError('E_INPUT', path, `has no "${field}" column (columns: ${columns.join(', ')}); choose one with --text-field`);
  const nameColumn = nameFields.map((n) => table.getChild(n)).find((c) => c !== null);
  for (let i = 0; i < table.numRows; i++) {
    const name = nameColumn ? nameOf({ name: nameColumn.get(i) as unknown }, `${basename(path)}#${i}`) : `${basename(path)}#${i}`;
    if (!take(name, text.get(i))) return;
  }
}
