/**
 * Probe run folders (engine/probes/run.ts, columns in docs/probes.md) as the Probes page draws them: a needle grid's
 * rows averaged per cell over its keys, a copy probe's spans averaged per distance, an intervention's per-token ΔNLL
 * downsampled. Every sum the charts show is made here, once, so the renderer only places numbers.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import { readJsonFile } from '../io/checkpoint.js';
import { type InterventionKind, type InterventionView, type NeedleView, type CopyView, ProbeManifest, type ProbeModel, type ProbeSummary, type ProbeView } from '../protocol.js';
import { readColumns } from './column-cache.js';
import { minMaxDownsample } from './downsample.js';

export const probeManifestFile = 'manifest.json';

export async function readProbeManifest(runDir: string): Promise<ProbeManifest> {
  const path = join(runDir, probeManifestFile);
  const parsed = ProbeManifest.safeParse(await readJsonFile(path));
  if (!parsed.success) throw workbenchError('E_CONFIG', path, `not a probe manifest (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
  return parsed.data;
}

/** Every readable probe run under `root`, newest first; other folders are skipped. */
export async function listProbeDirs(root: string): Promise<{ dir: string; manifest: ProbeManifest }[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const probes: { dir: string; manifest: ProbeManifest }[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    try {
      probes.push({ dir: join(root, entry.name), manifest: await readProbeManifest(join(root, entry.name)) });
    } catch {
      // not a probe folder, or one whose manifest was never written
    }
  }
  return probes.sort((a, b) => (a.manifest.createdAt < b.manifest.createdAt ? 1 : -1));
}

/** A manifest as seen by someone who knows which probes are live: a stale `running` one was interrupted. */
export function probeWithLiveness(manifest: ProbeManifest, live: boolean): ProbeManifest {
  if (live || (manifest.status !== 'running' && manifest.status !== 'queued')) return manifest;
  return { ...manifest, status: 'interrupted', models: manifest.models.map((m) => (m.status === 'running' || m.status === 'queued' ? { ...m, status: 'interrupted' as const } : m)) };
}

const count = (n: number) => n.toLocaleString('en');

/** A probe's settings in a few words, for its line in the list. */
export function probeDetail(manifest: ProbeManifest): string {
  const s = manifest.settings;
  if (s.kind === 'needle') {
    const lengths = s.lengths ?? [];
    const range = lengths.length ? `contexts ${count(Math.min(...lengths))}–${count(Math.max(...lengths))}` : 'contexts';
    return `${range} · ${s.depths?.length ?? 0} depths · ${s.keys ?? 0} keys`;
  }
  if (s.kind === 'copy') return `spans of ${count(s.spanTokens ?? 0)} tokens · ${s.distances?.length ?? 0} distances up to ${count(s.maxDistance ?? 0)}`;
  return `t = ${count(s.at)}: ${(s.interventions ?? []).join(', ')} · first ${count(s.maxTokens ?? 0)} tokens`;
}

export function summarizeProbe(manifest: ProbeManifest): ProbeSummary {
  return {
    id: manifest.id, kind: manifest.kind, status: manifest.status, createdAt: manifest.createdAt, book: manifest.book.name,
    models: manifest.models.map((m) => ({ name: m.name, status: m.status })), detail: probeDetail(manifest), error: manifest.error,
  };
}

/** The settings as label/value pairs, for the page and the report. */
export function probeSettings(manifest: ProbeManifest): [string, string][] {
  const rows: [string, string][] = [['Probe run', manifest.id], ['Probe', manifest.kind], ['Status', manifest.status], ['Book', manifest.book.path], ['Book SHA-256', manifest.book.sha256]];
  for (const [key, value] of Object.entries(manifest.settings)) {
    if (key === 'kind' || key === 'book' || value === undefined) continue;
    rows.push([key, Array.isArray(value) ? value.join(', ') : String(value)]);
  }
  if (manifest.needle) rows.push(['Needle', manifest.needle.needle.trim()], ['Question', manifest.needle.question.trim()], ['Keys', manifest.needle.keys.join(', ')]);
  for (const m of manifest.models) {
    rows.push([`Model ${m.name}`, `${m.architecture} · ${m.status}${m.attention ? ` · ${m.attention}` : ''}${m.error ? ` · ${m.error}` : ''}`]);
    for (const [kind, reason] of Object.entries(m.skipped ?? {})) rows.push([`${m.name}: ${kind} skipped`, reason]);
  }
  rows.push(['Backend', `${manifest.backend.name} (${manifest.backend.detail})`]);
  return rows;
}

/** Finished models with the table the probe writes, and its path. */
const tablesOf = (runDir: string, manifest: ProbeManifest, table: string): { model: ProbeModel; path: string }[] =>
  manifest.models.filter((m) => m.files[table]).map((model) => ({ model, path: join(runDir, model.files[table]) }));

/** Mean of `values` over rows grouped by `group`, in the order of `keys` (null where a group has no row). */
function groupMean(keys: readonly string[], group: (i: number) => string, values: ArrayLike<number>, rows: number): (number | null)[] {
  const sum = new Map<string, number>();
  const n = new Map<string, number>();
  for (let i = 0; i < rows; i++) {
    const k = group(i);
    sum.set(k, (sum.get(k) ?? 0) + values[i]);
    n.set(k, (n.get(k) ?? 0) + 1);
  }
  return keys.map((k) => (n.get(k) ? sum.get(k)! / n.get(k)! : null));
}

async function needleView(runDir: string, manifest: ProbeManifest): Promise<NeedleView> {
  const settings = manifest.settings.kind === 'needle' ? manifest.settings : null;
  const lengths = [...(settings?.lengths ?? [])].sort((a, b) => a - b);
  const depths = [...(settings?.depths ?? [])].sort((a, b) => a - b);
  const cells = lengths.flatMap((L) => depths.map((d) => `${L}|${d}`));
  const models = [];
  for (const { model, path } of tablesOf(runDir, manifest, 'needle')) {
    const { rows, columns } = await readColumns(path);
    const group = (i: number) => `${columns.length[i]}|${columns.depth[i]}`;
    const bits = groupMean(cells, group, columns.bits, rows);
    const retrieved = groupMean(cells, group, columns.correct, rows);
    const grid = (flat: (number | null)[]) => lengths.map((_, r) => flat.slice(r * depths.length, (r + 1) * depths.length));
    models.push({ model: model.key, name: model.name, bits: grid(bits), retrieved: grid(retrieved), keys: settings?.keys ?? 0 });
  }
  return { kind: 'needle', lengths, depths, models };
}

async function copyView(runDir: string, manifest: ProbeManifest): Promise<CopyView> {
  const settings = manifest.settings.kind === 'copy' ? manifest.settings : null;
  const distances = [...(settings?.distances ?? [])].sort((a, b) => a - b);
  const keys = distances.map(String);
  const models = [];
  for (const { model, path } of tablesOf(runDir, manifest, 'copy')) {
    const { rows, columns } = await readColumns(path);
    const group = (i: number) => String(columns.distance[i]);
    models.push({ model: model.key, name: model.name, distances, second: groupMean(keys, group, columns.nll_second, rows), first: groupMean(keys, group, columns.nll_first, rows) });
  }
  return { kind: 'copy', spanTokens: settings?.spanTokens ?? 0, models };
}

async function interventionView(runDir: string, manifest: ProbeManifest, points: number): Promise<InterventionView> {
  const settings = manifest.settings.kind === 'intervene' ? manifest.settings : null;
  const kinds: InterventionKind[] = settings?.interventions ?? [];
  const tables = await Promise.all(tablesOf(runDir, manifest, 'intervene').map(async (t) => ({ ...t, table: await readColumns(t.path) })));
  const interventions = kinds.map((intervention) => {
    const column = `dnll_${intervention}`;
    const models = tables.filter((t) => t.table.columns[column]).map(({ model, table }) => {
      const reduced = minMaxDownsample({ x: table.columns.position, columns: { delta: table.columns[column] } }, points);
      return { model: model.key, name: model.name, x: reduced.x, delta: reduced.columns.delta.map((v) => (Number.isFinite(v) ? v : null)), rows: table.rows };
    });
    const skipped = manifest.models.flatMap((m) => (m.skipped?.[intervention] ? [{ name: m.name, reason: m.skipped[intervention] }] : []));
    return { intervention, models, skipped };
  });
  return { kind: 'intervene', at: settings?.at ?? 0, interventions };
}

/** What a probe run's charts draw, from its files (null while no model has finished). */
export async function probeView(runDir: string, manifest: ProbeManifest, points = 4000): Promise<ProbeView | null> {
  if (!manifest.models.some((m) => Object.keys(m.files).length > 0)) return null;
  if (manifest.kind === 'needle') return needleView(runDir, manifest);
  if (manifest.kind === 'copy') return copyView(runDir, manifest);
  return interventionView(runDir, manifest, points);
}
