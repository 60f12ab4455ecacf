/**
 * Result files that survive a crash. The Arrow IPC *file* format keeps its footer at the end, so a file appended
 * in place is unreadable whenever a process dies between a batch and its footer. `ArrowAppender` never appends in
 * place: each flush writes the rows gathered since the last one as a complete small Arrow file, a segment
 * (`<name>.arrow.parts/<first>-<last>.arrow`, written under a temporary name, fsync'd, then renamed), and `close()`
 * joins the segments into `<name>.arrow` the same way and deletes them. So at every instant, a kill -9 included,
 * each `.arrow` file on disk is complete: the final file of a closed writer, or the segments of a running or
 * crashed one, holding every row flushed before the kill.
 *
 * Segments merge as they go (eight of one size become one eight times larger), so a run of hours keeps a few dozen
 * segments, not thousands. A segment's name says which flushes it holds; after a crash between a merge's rename
 * and its deletes, a merged segment and its sources coexist, and `readArrowTable` takes each flush once.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type RecordBatch, Table, tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { workbenchError, WorkbenchError } from '../core/errors.js';

export type Column = Float32Array | Float64Array | Int32Array;
export type Columns = Record<string, Column>;

export interface AppenderOptions {
  /**
   * Gather appended rows into record batches of about this many rows (default: one batch per `append`). Readers
   * pay per batch: a 4M-token run written 512 rows at a time is 8,000 batches and takes seconds to decode,
   * the same run in 64K-row batches a fraction of that.
   */
  readonly batchRows?: number;
  /** With `batchRows`: write what has gathered at least this often, so a crash loses only the last moments. */
  readonly flushMs?: number;
  /**
   * Resume: the file starts with these rows (what an earlier writer wrote up to a checkpoint) instead of empty.
   * Crash-safe: the rows are first the whole `<name>.arrow`, then its first segment, and only then does the
   * final file go, so at every instant the file reads as these rows.
   */
  readonly keep?: Columns;
}

/** The folder of a file's segments while its writer runs (or after it crashed). */
export const partsDirOf = (path: string): string => `${path}.parts`;

/** Segments merge this many at a time. */
const mergeFan = 8;

interface Segment {
  /** First and last flush (0-based) it holds. */
  readonly first: number;
  readonly last: number;
}

const segmentName = (s: Segment) => `${String(s.first).padStart(8, '0')}-${String(s.last).padStart(8, '0')}.arrow`;

function parseSegmentName(name: string): Segment | null {
  const m = /^(\d{8,})-(\d{8,})\.arrow$/.exec(name);
  return m ? { first: Number(m[1]), last: Number(m[2]) } : null;
}

/**
 * Test hook: `TTT_WORKBENCH_DISK_LIMIT=N` makes result-file writes fail with ENOSPC once N bytes were written by
 * this process, so the full-disk path can be tested without a full disk.
 */
let diskBytesWritten = 0;

/** One line for a failed write; a full disk says so. */
export function writeError(path: string, error: unknown): WorkbenchError {
  if (error instanceof WorkbenchError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return workbenchError('E_DISK_FULL', path);
  return workbenchError('E_FILE_WRITE', path, code ?? (error as Error).message ?? String(error));
}

/** Writes `bytes` to `path` all or nothing: a temporary file, flushed to disk, renamed over `path`; throws fs errors. */
function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp`;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    if (diskBytesWritten + bytes.byteLength > Number(process.env.TTT_WORKBENCH_DISK_LIMIT ?? Infinity)) {
      throw Object.assign(new Error('ENOSPC: no space left on device (TTT_WORKBENCH_DISK_LIMIT)'), { code: 'ENOSPC' });
    }
    for (let at = 0; at < bytes.byteLength;) at += writeSync(fd, bytes, at);
    diskBytesWritten += bytes.byteLength;
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (error) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** `writeAtomic` with a one-line error naming `path`. */
export function writeFileAtomicSync(path: string, bytes: Uint8Array): void {
  try {
    writeAtomic(path, bytes);
  } catch (error) {
    throw writeError(path, error);
  }
}

const concatColumns = (parts: readonly Columns[], rows: number): Columns => {
  const merged: Columns = {};
  for (const name of Object.keys(parts[0])) {
    const out = new (parts[0][name].constructor as Float32ArrayConstructor)(rows);
    let offset = 0;
    for (const part of parts) {
      out.set(part[name], offset);
      offset += part[name].length;
    }
    merged[name] = out;
  }
  return merged;
};

const rowsOf = (columns: Columns) => Object.values(columns)[0]?.length ?? 0;

/** A table's columns as contiguous typed arrays. */
const columnsOf = (table: Table): Columns =>
  Object.fromEntries(table.schema.fields.map((f) => [f.name, table.getChild(f.name)!.toArray() as Column]));

export class ArrowAppender {
  private readonly parts: string;
  private failure: WorkbenchError | null = null;
  private closed = false;
  private rowCount = 0;
  private pending: Columns[] = [];
  private pendingRows = 0;
  private lastFlush = performance.now();
  private flushes = 0;
  /** Segments on disk, oldest first, with how many flushes each holds. */
  private segments: Segment[] = [];
  /** The first columns appended, even empty: a file closed without rows still gets their schema. */
  private schemaOf: Columns | null = null;

  constructor(readonly path: string, private readonly options: AppenderOptions = {}) {
    this.parts = partsDirOf(path);
    const keep = options.keep && rowsOf(options.keep) > 0 ? options.keep : null;
    try {
      // kept rows replace the file whole before its segments go, so a crash in between leaves them readable
      if (keep) writeAtomic(path, tableToIPC(this.table([keep]), 'file'));
      // a new file: what a previous writer left under this name goes
      else rmSync(path, { force: true });
      rmSync(this.parts, { recursive: true, force: true });
      mkdirSync(this.parts, { recursive: true });
      if (keep) {
        this.schemaOf = keep;
        this.rowCount = rowsOf(keep);
        this.pending = [keep];
        this.pendingRows = this.rowCount;
        this.flush();
        rmSync(path, { force: true });
      }
    } catch (error) {
      throw writeError(path, error);
    }
  }

  get rows(): number {
    return this.rowCount;
  }

  /** Appends rows; every call must use the same column names and array types. */
  append(columns: Columns): void {
    this.throwIfFailed();
    const n = rowsOf(columns);
    this.schemaOf ??= columns;
    if (n === 0) return;
    this.rowCount += n;
    this.pending.push(columns);
    this.pendingRows += n;
    const { batchRows, flushMs } = this.options;
    if (!batchRows || this.pendingRows >= batchRows || performance.now() - this.lastFlush >= (flushMs ?? Infinity)) this.flush();
  }

  /** Writes the gathered rows as one new segment now (a checkpoint needs them on disk), then merges segments of equal size. */
  flush(): void {
    this.throwIfFailed();
    this.lastFlush = performance.now();
    if (this.pending.length === 0) return;
    const columns = concatColumns(this.pending, this.pendingRows);
    const segment = { first: this.flushes, last: this.flushes };
    this.guard(() => writeAtomic(join(this.parts, segmentName(segment)), tableToIPC(this.table([columns]), 'file')));
    this.flushes++;
    this.pending = [];
    this.pendingRows = 0;
    this.segments.push(segment);
    this.mergeSegments();
  }

  /** While the newest `mergeFan` segments hold equally many flushes, joins them into one. */
  private mergeSegments(): void {
    for (;;) {
      const tail = this.segments.slice(-mergeFan);
      const size = (s: Segment) => s.last - s.first + 1;
      if (tail.length < mergeFan || tail.some((s) => size(s) !== size(tail[0]))) return;
      const merged = { first: tail[0].first, last: tail[tail.length - 1].last };
      const table = this.table(tail.map((s) => columnsOf(this.readSegment(s))));
      this.guard(() => writeAtomic(join(this.parts, segmentName(merged)), tableToIPC(table, 'file')));
      // the merged segment is in place: its sources may go (a crash now leaves both; readers take each flush once)
      for (const s of tail) rmSync(join(this.parts, segmentName(s)), { force: true });
      this.segments.splice(-mergeFan, mergeFan, merged);
    }
  }

  private readSegment(s: Segment): Table {
    return tableFromIPC(readFileSync(join(this.parts, segmentName(s))));
  }

  /** Rows as a table, in record batches of `batchRows` (or one batch per part without it). */
  private table(parts: readonly Columns[]): Table {
    const batchRows = this.options.batchRows;
    const batches: RecordBatch[] = [];
    if (!batchRows) {
      for (const part of parts) batches.push(...tableFromArrays(part).batches);
      return new Table(batches);
    }
    const rows = parts.reduce((n, p) => n + rowsOf(p), 0);
    const all = parts.length === 1 ? parts[0] : concatColumns(parts, rows);
    for (let start = 0; start < rows; start += batchRows) {
      const end = Math.min(start + batchRows, rows);
      batches.push(tableFromArrays(Object.fromEntries(Object.entries(all).map(([k, c]) => [k, c.subarray(start, end)]))).batches[0]);
    }
    return new Table(batches);
  }

  /**
   * Joins the segments and what is still gathered into `<name>.arrow` (a temporary file, then a rename) and
   * deletes the segments. If that fails (a full disk), the segments stay: the file still reads, from them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // after a failed write, rows gathered but not written are lost; the segments on disk remain the file
    this.throwIfFailed();
    const parts = this.segments.map((s) => columnsOf(this.readSegment(s)));
    if (this.pending.length > 0) parts.push(concatColumns(this.pending, this.pendingRows));
    this.pending = [];
    this.pendingRows = 0;
    // a file without rows is still a valid Arrow file: the columns it would have had, or none
    if (parts.length === 0) parts.push(this.schemaOf ?? {});
    this.guard(() => writeAtomic(this.path, tableToIPC(Object.keys(parts[0]).length > 0 ? this.table(parts) : new Table(), 'file')));
    rmSync(this.parts, { recursive: true, force: true });
  }

  private guard(write: () => void): void {
    try {
      write();
    } catch (error) {
      this.failure = writeError(this.path, error);
      throw this.failure;
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}

/**
 * The segments that hold each flush once, in order: the widest segment starting at each next flush; a segment
 * inside one already taken (the source of a merge interrupted before it deleted them) is skipped.
 */
export function segmentCover(names: readonly string[]): string[] {
  const segments = names.map((n) => ({ name: n, s: parseSegmentName(n) })).filter((x): x is { name: string; s: Segment } => x.s !== null);
  segments.sort((a, b) => a.s.first - b.s.first || b.s.last - a.s.last);
  const cover: string[] = [];
  let next = 0;
  for (const { name, s } of segments) {
    if (s.last < next) continue;
    if (s.first !== next) break; // a gap (a segment deleted by hand): what follows cannot be placed
    cover.push(name);
    next = s.last + 1;
  }
  return cover;
}

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

/** Parses IPC bytes: a complete Arrow file, or (from older versions) a file whose footer was never written. */
function tableOfBytes(path: string, bytes: Uint8Array): Table {
  try {
    return tableFromIPC(bytes);
  } catch {
    // 8 bytes of "ARROW1\0\0" magic, then a plain IPC stream: what a crashed writer of an older version left
    try {
      return tableFromIPC(bytes.subarray(8));
    } catch (error) {
      throw workbenchError('E_FILE_READ', path, `not an Arrow IPC file (${(error as Error).message})`);
    }
  }
}

/** The segments of a running or crashed writer as one table, or null when there is no segment folder. */
async function readSegments(path: string): Promise<Table | null> {
  const parts = partsDirOf(path);
  let names: string[];
  try {
    names = await readdir(parts);
  } catch (error) {
    if (isMissing(error)) return null;
    throw workbenchError('E_FILE_READ', parts, (error as NodeJS.ErrnoException).code ?? String(error));
  }
  const batches: RecordBatch[] = [];
  for (const name of segmentCover(names)) batches.push(...tableOfBytes(join(parts, name), await readFile(join(parts, name))).batches);
  return new Table(batches);
}

/**
 * Reads a result file: `<name>.arrow` when its writer closed, else the segments it has written so far (a live or
 * crashed run). A writer merging or closing while this reads is met by reading again.
 */
export async function readArrowTable(path: string): Promise<Table> {
  for (let attempt = 0; ; attempt++) {
    try {
      return tableOfBytes(path, await readFile(path));
    } catch (error) {
      if (!isMissing(error)) {
        if (error instanceof WorkbenchError) throw error;
        throw workbenchError('E_FILE_READ', path, (error as NodeJS.ErrnoException).code ?? String(error));
      }
    }
    try {
      const table = await readSegments(path);
      if (table) return table;
      throw workbenchError('E_FILE_NOT_FOUND', path);
    } catch (error) {
      // a segment merged or joined away between listing and reading: the next look finds its successor
      if (!isMissing(error) || attempt >= 5) throw error instanceof WorkbenchError ? error : workbenchError('E_FILE_READ', path, String(error));
    }
  }
}

/**
 * What identifies the present content of a result file, for caches: the file's size and mtime, or the names of
 * its segments while it has no final file.
 */
export async function arrowFileVersion(path: string): Promise<string> {
  try {
    const info = await stat(path);
    return `${info.size}:${info.mtimeMs}`;
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  try {
    return `parts:${segmentCover(await readdir(partsDirOf(path))).join(',')}`;
  } catch (error) {
    if (isMissing(error)) throw workbenchError('E_FILE_NOT_FOUND', path);
    throw error;
  }
}

/** The Arrow files a reader can open in a folder, for tests and tools: `<name>.arrow` and every segment. */
export function arrowFilesIn(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...arrowFilesIn(path));
    else if (entry.name.endsWith('.arrow')) out.push(path);
  }
  return out;
}
