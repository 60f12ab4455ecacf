/**
 * Runs on disk: one folder per run with `manifest.json` (replaced atomically, so it is never half-written) and
 * Arrow IPC files per model. A run whose manifest still says `running` when no engine is working on it was
 * interrupted (a crash or a kill): it reads as `interrupted`, never as complete.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import { readJsonFile } from '../io/checkpoint.js';
import { RunManifest, type RunModel, type RunSummary, type Series, type SeriesName } from '../protocol.js';
import { writeError } from './arrow-writer.js';
import { cached, type NumericColumn, readColumns } from './column-cache.js';
import { logBinnedMean, minMaxDownsample, type SeriesData } from './downsample.js';

export const manifestFile = 'manifest.json';
/** Held by the process writing a run folder: its pid. */
export const lockFile = '.lock';

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code;

/** Whether a process with this id is alive (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

/**
 * Takes the run folder's lock (`<dir>/.lock`, holding this process's pid), so a second writer is refused in one
 * line. A lock whose process is dead (a crash) is taken over. Returns the release function.
 */
export async function lockRunDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, lockFile);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw workbenchError('E_FILE_WRITE', path, errorCode(error) ?? String(error));
    }
    const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw workbenchError('E_RUN', dir, `is being written by process ${pid} (${path}); wait for it or stop it`);
    await rm(path, { force: true }); // stale: its writer is gone
  }
  throw workbenchError('E_FILE_WRITE', path, 'another process keeps taking the lock');
}

/**
 * Gets `dir` ready to hold a new run: creates it, or refuses in one line a path that is a file, cannot be written,
 * or already holds anything (a finished run, a model, any file) unless `force`; with `force`, an earlier run's
 * files (manifest and models/) are removed first so none is left orphaned beside the new ones.
 */
export async function prepareRunDir(dir: string, force: boolean): Promise<void> {
  const refuse = (error: unknown) => {
    const code = errorCode(error);
    const reason = code === 'ENOTDIR' || code === 'EEXIST' ? 'a part of the path is a file' : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'permission denied' : code ?? String(error);
    return workbenchError('E_FILE_WRITE', dir, reason);
  };
  const info = await stat(dir).catch((error: unknown) => {
    if (errorCode(error) === 'ENOENT') return null;
    throw refuse(error);
  });
  if (info && !info.isDirectory()) throw workbenchError('E_FILE_WRITE', dir, 'it is a file, not a folder');
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '.write-test'), '');
    await rm(join(dir, '.write-test'));
  } catch (error) {
    throw refuse(error);
  }
  const entries = (await readdir(dir)).filter((name) => name !== lockFile);
  if (entries.length === 0) return;
  if (!force) {
    const what = entries.includes(manifestFile) ? 'holds a run' : entries.includes('config.json') ? 'holds a model' : `is not empty (${entries.length} entries)`;
    throw workbenchError('E_FILE_WRITE', dir, `it ${what}; pass --force to replace it, or choose a new folder`);
  }
  await rm(join(dir, manifestFile), { force: true });
  await rm(join(dir, 'models'), { recursive: true, force: true });
}

export async function writeManifest(runDir: string, manifest: RunManifest): Promise<void> {
  const tmp = join(runDir, `${manifestFile}.tmp`);
  try {
    await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(tmp, join(runDir, manifestFile));
  } catch (error) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw writeError(join(runDir, manifestFile), error);
  }
}

export async function readManifest(runDir: string): Promise<RunManifest> {
  const path = join(runDir, manifestFile);
  const parsed = RunManifest.safeParse(await readJsonFile(path));
  if (!parsed.success) throw workbenchError('E_CONFIG', path, `not a run manifest (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
  return parsed.data;
}

/** A manifest as seen by someone who knows which runs are live: stale `running` becomes `interrupted`. */
export function withLiveness(manifest: RunManifest, live: boolean): RunManifest {
  if (live || (manifest.status !== 'running' && manifest.status !== 'queued')) return manifest;
  return {
    ...manifest,
    status: 'interrupted',
    models: manifest.models.map((m) => (m.status === 'running' || m.status === 'queued' ? { ...m, status: 'interrupted' as const } : m)),
  };
}

export function summarize(manifest: RunManifest, dir: string): RunSummary {
  return {
    id: manifest.id,
    dir,
    status: manifest.status,
    createdAt: manifest.createdAt,
    book: manifest.book.name,
    tokens: manifest.book.tokens,
    backend: manifest.backend,
    models: manifest.models.map((m) => ({ name: m.name, family: m.family, status: m.status, tokensDone: m.tokensDone, bitsPerByte: m.bitsPerByte, stages: m.stages })),
  };
}

/** Every readable run under `root`, newest first; unreadable folders are skipped. */
export async function listRunDirs(root: string): Promise<{ dir: string; manifest: RunManifest }[]> {
  await mkdir(root, { recursive: true });
  const entries = await readdir(root, { withFileTypes: true });
  const runs: { dir: string; manifest: RunManifest }[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const dir = join(root, entry.name);
    try {
      runs.push({ dir, manifest: await readManifest(dir) });
    } catch {
      // not a run folder (or a run whose manifest was never written): nothing to show
    }
  }
  return runs.sort((a, b) => (a.manifest.createdAt < b.manifest.createdAt ? 1 : -1));
}

/** A new run id: sortable by time, unique enough for one machine. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Which stored columns make up each series (x is always `position`). */
const seriesColumns: Record<SeriesName, { file: string; exclude: readonly string[] }> = {
  nll: { file: 'nll', exclude: ['position', 'token'] },
  innerLoop: { file: 'innerLoop', exclude: ['position', 'layer', 'mini_batch'] },
  hiddenState: { file: 'hiddenState', exclude: ['position', 'layer', 'mini_batch'] },
  modelState: { file: 'modelState', exclude: ['position', 'layer'] },
  throughput: { file: 'throughput', exclude: ['position'] },
};

export interface SeriesQuery {
  readonly layer?: number;
  readonly start?: number;
  readonly end?: number;
  readonly points?: number;
  readonly reduce?: 'minmax' | 'logmean';
}

/** A run model by key or name, with a one-line error listing the keys when there is none. */
export function findModel(manifest: RunManifest, modelKey: string): RunModel {
  const model = manifest.models.find((m) => m.key === modelKey || m.name === modelKey);
  if (!model) throw workbenchError('E_RUN', manifest.id, `has no model "${modelKey}" (models: ${manifest.models.map((m) => m.key).join(', ')})`);
  return model;
}

/** Path of one of a model's files (`nll`, `innerLoop`, `snapshots` …), or a one-line error if it has none. */
export function modelFile(runDir: string, manifest: RunManifest, model: RunModel, file: string, what: string = file): string {
  const rel = model.files[file];
  if (!rel) throw workbenchError('E_RUN', manifest.id, `model ${model.name} has no ${what} series`);
  return join(runDir, rel);
}

interface SeriesView {
  /** Positions; `sorted` says whether they never decrease (then a range is a binary search away). */
  readonly x: NumericColumn;
  readonly sorted: boolean;
  readonly columns: Readonly<Record<string, NumericColumn>>;
}

/**
 * One series of one file as chart columns: one layer's rows picked out of per-layer files, and for the inner
 * loop the reduction it achieves (before − after, and after / before), computed here once so that charts and
 * exports show the same numbers. Cached with the decoded file.
 */
function seriesView(path: string, series: SeriesName, layer: number | undefined): Promise<SeriesView> {
  return cached(path, `${path}#${series}:${layer ?? 'all'}`, async () => {
    const table = await readColumns(path);
    const position = table.columns.position;
    // a live model whose writer has not flushed its first rows: nothing stored yet, not a broken file
    if (!position && table.rows === 0) return { x: new Float64Array(0), sorted: true, columns: {} };
    if (!position) throw workbenchError('E_FILE_READ', path, 'has no position column');
    const names = Object.keys(table.columns).filter((n) => !seriesColumns[series].exclude.includes(n));
    let rows: Int32Array | null = null;
    const layerColumn = table.columns.layer;
    if (layer !== undefined && layerColumn) {
      let count = 0;
      for (let i = 0; i < table.rows; i++) if (layerColumn[i] === layer) count++;
      rows = new Int32Array(count);
      for (let i = 0, k = 0; i < table.rows; i++) if (layerColumn[i] === layer) rows[k++] = i;
    }
    const pick = (column: NumericColumn): NumericColumn => {
      if (!rows) return column;
      const out = new (column.constructor as Float32ArrayConstructor)(rows.length);
      for (let k = 0; k < rows.length; k++) out[k] = column[rows[k]];
      return out;
    };
    const x = pick(position);
    const columns: Record<string, NumericColumn> = Object.fromEntries(names.map((n) => [n, pick(table.columns[n])]));
    if (series === 'innerLoop' && columns.before && columns.after) {
      const { before, after } = columns;
      columns.reduction = Float32Array.from(before, (b, i) => b - after[i]);
      columns.ratio = Float32Array.from(before, (b, i) => (b > 0 ? after[i] / b : NaN));
    }
    let sorted = true;
    for (let i = 1; i < x.length && sorted; i++) sorted = x[i] >= x[i - 1];
    return { x, sorted, columns };
  });
}

/** First index i with x[i] >= value, in a non-decreasing array. */
export function lowerBound(x: ArrayLike<number>, value: number): number {
  let lo = 0, hi = x.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One model's series from a run folder, restricted to [start, end) and reduced to at most `points` points. */
export async function readSeries(runDir: string, manifest: RunManifest, modelKey: string, series: SeriesName, query: SeriesQuery = {}): Promise<Series> {
  const model = findModel(manifest, modelKey);
  const path = modelFile(runDir, manifest, model, seriesColumns[series].file, series);
  const view = await seriesView(path, series, query.layer);
  const start = query.start ?? 0;
  const end = query.end ?? Infinity;
  let data: SeriesData;
  if (view.sorted) {
    // a zoom is a slice of the cached columns, not a copy of them
    const lo = lowerBound(view.x, start);
    const hi = lowerBound(view.x, end);
    data = { x: view.x.subarray(lo, hi), columns: Object.fromEntries(Object.entries(view.columns).map(([n, c]) => [n, c.subarray(lo, hi)])) };
  } else {
    const keep: number[] = [];
    for (let i = 0; i < view.x.length; i++) if (view.x[i] >= start && view.x[i] < end) keep.push(i);
    data = { x: Float64Array.from(keep, (i) => view.x[i]), columns: Object.fromEntries(Object.entries(view.columns).map(([n, c]) => [n, Float64Array.from(keep, (i) => c[i])])) };
  }
  const rows = data.x.length;
  const points = query.points ?? 4000;
  const reduced = query.reduce === 'logmean' ? logBinnedMean(data, points) : minMaxDownsample(data, points);
  return { x: reduced.x, columns: reduced.columns, rows, downsampled: reduced.x.length !== rows || query.reduce === 'logmean' };
}
