/**
 * Appends record batches to an Arrow IPC file as results arrive, so a run's per-token arrays never sit in memory
 * and a stopped run keeps everything written so far. `close()` writes the file footer; a file whose writer never
 * closed (a crash) is still readable as an Arrow stream — `readArrowTable` falls back to that.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { RecordBatchFileWriter, type Table, tableFromArrays, tableFromIPC } from 'apache-arrow';
import { workbenchError } from '../core/errors.js';

export type Column = Float32Array | Float64Array | Int32Array;
export type Columns = Record<string, Column>;

export class ArrowAppender {
  private readonly writer = new RecordBatchFileWriter();
  private readonly file: WriteStream;
  private failure: Error | null = null;
  private closed = false;
  private rowCount = 0;

  constructor(readonly path: string) {
    this.file = createWriteStream(path);
    this.file.on('error', (error) => {
      this.failure = error;
    });
    this.writer.toNodeStream().pipe(this.file);
  }

  get rows(): number {
    return this.rowCount;
  }

  /** Appends rows; every call must use the same column names and array types. */
  append(columns: Columns): void {
    this.throwIfFailed();
    const first = Object.values(columns)[0];
    if (!first || first.length === 0) return;
    this.writer.write(tableFromArrays(columns).batches[0]);
    this.rowCount += first.length;
  }

  /** Writes the footer and waits until the bytes are on disk. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.writer.close();
    await new Promise<void>((resolve, reject) => {
      if (this.file.writableFinished) resolve();
      this.file.once('finish', resolve);
      this.file.once('error', reject);
    }).catch((error: Error) => {
      this.failure = error;
    });
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) {
      const code = (this.failure as NodeJS.ErrnoException).code;
      throw workbenchError('E_FILE_WRITE', this.path, code === 'ENOSPC' ? 'the disk is full' : code ?? this.failure.message);
    }
  }
}

/** Reads an Arrow IPC file, or the batches of one whose footer was never written. */
export async function readArrowTable(path: string): Promise<Table> {
  const bytes = await readFile(path);
  try {
    return tableFromIPC(bytes);
  } catch {
    // A file that was never closed: 8 bytes of "ARROW1\0\0" magic, then a plain IPC stream.
    try {
      return tableFromIPC(bytes.subarray(8));
    } catch (error) {
      throw workbenchError('E_FILE_READ', path, `not an Arrow IPC file (${(error as Error).message})`);
    }
  }
}
