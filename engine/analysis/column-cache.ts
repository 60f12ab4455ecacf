/**
 * Decoded run files, kept in memory for the next request. Decoding a 4M-row Arrow file (8,000 record batches)
 * takes about a second, and a person opening a run and zooming asks for the same file many times in a row, so
 * the engine keeps the last few decoded files (and what it derived from them: one layer's rows, cumulative
 * sums) in a small LRU. An entry is keyed by the file's path and checked against its size and mtime (or, for a
 * result file a live run is still writing, the names of its segments), so a growing file is read again rather than
 * served stale.
 */
import { readFile, stat } from 'node:fs/promises';
import { arrowFileVersion, readArrowTable } from './arrow-writer.js';

export type NumericColumn = Float32Array | Float64Array | Int32Array;

export interface ColumnTable {
  readonly rows: number;
  readonly columns: Readonly<Record<string, NumericColumn>>;
}

/** A tiny least-recently-used map: `Map` keeps insertion order, so re-inserting on use makes the first key the oldest. */
export class LruCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly capacity: number) {}

  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * Twelve entries: each tab of a run view touches a file or two per model plus a derived view of each (one
 * layer's rows, a PCA), and switching tabs back and forth should not decode the same file again.
 */
const cache = new LruCache<{ version: string; value: Promise<unknown> }>(12);
let decodes = 0;

/** How many files were decoded (not served from the cache) since start: tests check that the cache works. */
export const decodeCount = (): number => decodes;

export function clearColumnCache(): void {
  cache.clear();
}

/**
 * `derive(path)` once per version of the file at `path`, kept under `key` (the path itself for the decoded
 * columns, `path#something` for views derived from them). Concurrent callers share one promise.
 */
export async function cached<V>(path: string, key: string, derive: () => Promise<V>): Promise<V> {
  // a result file still being written has segments instead of a final file: their names are its version
  const version = path.endsWith('.arrow') ? await arrowFileVersion(path) : await stat(path).then((info) => `${info.size}:${info.mtimeMs}`);
  const hit = cache.get(key);
  if (hit && hit.version === version) return hit.value as Promise<V>;
  const value = derive();
  cache.set(key, { version, value });
  value.catch(() => {
    // a failed read must not stick: the next request tries again
    if (cache.get(key)?.value === value) cache.set(key, { version: 'failed', value });
  });
  return value;
}

/**
 * The columns of an Arrow IPC file, each as one contiguous typed array (Arrow keeps one per record batch), made
 * when first used: the perplexity chart needs two of tokens.arrow's four columns, and joining a column of a
 * 4M-row file is a 16 MB allocation.
 */
export function readColumns(path: string): Promise<ColumnTable> {
  return cached(path, path, async () => {
    decodes++;
    const table = await readArrowTable(path);
    const columns: Record<string, NumericColumn> = {};
    for (const field of table.schema.fields) {
      let joined: NumericColumn | undefined;
      Object.defineProperty(columns, field.name, { enumerable: true, get: () => (joined ??= table.getChild(field.name)!.toArray() as NumericColumn) });
    }
    return { rows: table.numRows, columns };
  });
}

/** The raw bytes of a file (safetensors snapshots), cached like the Arrow files. */
export function readBytes(path: string): Promise<Uint8Array> {
  return cached(path, `${path}#bytes`, async () => {
    decodes++;
    return new Uint8Array(await readFile(path));
  });
}
