/**
 * Runs on disk: one folder per run with `manifest.json` (replaced atomically, so it is never half-written) and
 * Arrow IPC files per model. A run whose manifest still says `running` when no engine is working on it was
 * interrupted (a crash or a kill): it reads as `interrupted`, never as complete.
 */
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import { readJsonFile } from '../io/checkpoint.js';
import { RunManifest, type RunSummary, type Series, type SeriesName } from '../protocol.js';
import { readArrowTable } from './arrow-writer.js';
import { logBinnedMean, minMaxDownsample } from './downsample.js';

export const manifestFile = 'manifest.json';

export async function writeManifest(runDir: string, manifest: RunManifest): Promise<void> {
  const tmp = join(runDir, `${manifestFile}.tmp`);
  try {
    await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(tmp, join(runDir, manifestFile));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw workbenchError('E_FILE_WRITE', join(runDir, manifestFile), code === 'ENOSPC' ? 'the disk is full' : code ?? String(error));
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
    models: manifest.models.map((m) => ({ name: m.name, family: m.family, status: m.status, tokensDone: m.tokensDone, bitsPerByte: m.bitsPerByte })),
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
  nll: { file: 'nll', exclude: ['position', 'token', 'bytes'] },
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

/** One model's series from a run folder, restricted to [start, end) and reduced to at most `points` points. */
export async function readSeries(runDir: string, manifest: RunManifest, modelKey: string, series: SeriesName, query: SeriesQuery = {}): Promise<Series> {
  const model = manifest.models.find((m) => m.key === modelKey || m.name === modelKey);
  if (!model) throw workbenchError('E_RUN', manifest.id, `has no model "${modelKey}" (models: ${manifest.models.map((m) => m.key).join(', ')})`);
  const spec = seriesColumns[series];
  const file = model.files[spec.file];
  if (!file) throw workbenchError('E_RUN', manifest.id, `model ${model.name} has no ${series} series`);
  const table = await readArrowTable(join(runDir, file));
  const position = table.getChild('position')?.toArray() as Int32Array | undefined;
  if (!position) throw workbenchError('E_RUN', manifest.id, `${file} has no position column`);
  const layerColumn = table.getChild('layer')?.toArray() as Int32Array | undefined;
  const names = table.schema.fields.map((f) => f.name).filter((n) => !spec.exclude.includes(n));
  const all = Object.fromEntries(names.map((n) => [n, table.getChild(n)!.toArray() as ArrayLike<number>]));
  const start = query.start ?? 0;
  const end = query.end ?? Infinity;
  const keep: number[] = [];
  for (let i = 0; i < position.length; i++) {
    if (position[i] >= start && position[i] < end && (query.layer === undefined || !layerColumn || layerColumn[i] === query.layer)) keep.push(i);
  }
  const x = Float64Array.from(keep, (i) => position[i]);
  const columns = Object.fromEntries(names.map((n) => [n, Float64Array.from(keep, (i) => Number(all[n][i]))]));
  const points = query.points ?? 4000;
  const reduced = query.reduce === 'logmean' ? logBinnedMean({ x, columns }, points) : minMaxDownsample({ x, columns }, points);
  return { x: reduced.x, columns: reduced.columns, rows: keep.length, downsampled: reduced.x.length !== keep.length || query.reduce === 'logmean' };
}
