/**
 * The Comparison tab: finished runs on the viewed run's book, overlaid in bits per byte (curves and the table
 * by position range from `getComparison`), and that table as CSV. A run that is still streaming contributes from
 * its aggregates (the engine keeps its byte-offset sums as it goes), so the tab follows it without asking again.
 */
import { type Comparison, comparisonRanges, type RunManifest } from '../../engine/protocol.js';
import { byteOffsetFigures } from '../series/aggregates.js';
import { getRange, seriesKey, setSeries } from '../series/buffers.js';
import { setComparedRuns, setComparison, useAnalysisStore } from '../stores/analysis.js';
import { useRunsStore } from '../stores/runs.js';
import { useViewStore } from '../stores/view.js';
import { downloadText, csvField } from './export.js';
import { attempt, request } from './engine.js';

export const comparisonKey = (runId: string): string => seriesKey(runId, 'comparison');

/** The runs compared: the ones chosen, else the viewed run alone. */
function comparedRuns(): string[] {
  const { comparedRuns: chosen } = useAnalysisStore.getState();
  const { runId } = useViewStore.getState();
  return chosen.length > 0 ? [...chosen] : runId ? [runId] : [];
}

/** A streaming run whose aggregates hold its byte-offset sums: its part of the comparison needs no request. */
function liveManifest(runId: string): RunManifest | null {
  const manifest = useRunsStore.getState().manifests[runId];
  if (manifest?.status !== 'running') return null;
  return manifest.models.some((m) => byteOffsetFigures(runId, m.key)) ? manifest : null;
}

/** The live run's rows and curves, from its aggregates. */
function liveComparison(manifest: RunManifest): Pick<Comparison, 'rows' | 'curves'> {
  const rows: Comparison['rows'] = [], curves: Comparison['curves'] = [];
  for (const m of manifest.models) {
    const f = byteOffsetFigures(manifest.id, m.key);
    if (!f || f.bytes === 0) continue;
    rows.push({ runId: manifest.id, model: m.key, name: m.name, architecture: m.architecture, tokenizer: m.tokenizer, status: m.status, bytes: f.bytes, bitsPerByte: f.bitsPerByte, ranges: f.ranges });
    curves.push({ runId: manifest.id, model: m.key, name: m.name, x: f.x, y: f.y });
  }
  return { rows, curves };
}

/** The other compared runs' part, fetched once per choice of runs while the viewed run streams. */
let others: { readonly runIds: string; readonly result: Comparison } | null = null;

/** Loads the table and the curves, or with `range` (byte offsets) only refines the curves after a zoom. */
export async function loadComparison(range: readonly [number, number] | null = null): Promise<void> {
  const runIds = comparedRuns();
  const { runId } = useViewStore.getState();
  if (!runId || runIds.length === 0) return;
  const live = range ? null : liveManifest(runId);
  if (live) return showLiveComparison(live, runIds);
  const result = await attempt('loadComparison', () => request('getComparison', { runIds, ...(range ? { start: range[0], end: range[1] } : {}) }));
  if (!result || useViewStore.getState().runId !== runId) return;
  if (!range) setComparison(result);
  showComparisonCurves(runId, result, range);
}

/** The viewed run is streaming: its rows from aggregates, the other runs' from one request per choice of runs. */
async function showLiveComparison(live: RunManifest, runIds: readonly string[]): Promise<void> {
  const rest = runIds.filter((id) => id !== live.id);
  const key = rest.join('|');
  if (rest.length > 0 && others?.runIds !== key) {
    const result = await attempt('loadComparison', () => request('getComparison', { runIds: rest }));
    if (!result) return;
    others = { runIds: key, result };
  }
  if (useViewStore.getState().runId !== live.id) return;
  const mine = liveComparison(live);
  const theirs = rest.length > 0 && others ? others.result : null;
  const { book } = live;
  const result: Comparison = {
    book: { name: book.name, sha256: book.sha256, bytes: book.bytes },
    ranges: comparisonRanges.map((r) => ({ ...r })),
    rows: [...mine.rows, ...(theirs?.rows ?? [])],
    curves: [...mine.curves, ...(theirs?.curves ?? [])],
  };
  setComparison(result);
  // a zoomed chart keeps the rows it was refined with; the table follows regardless
  if (!getRange(comparisonKey(live.id))) showComparisonCurves(live.id, result, null);
}

/** The viewed run's aggregates changed: a Comparison tab showing it follows (unless zoomed in). */
export function followLiveComparison(runId: string): void {
  if (useAnalysisStore.getState().tab !== 'comparison' || useViewStore.getState().runId !== runId) return;
  const live = liveManifest(runId);
  if (live) void showLiveComparison(live, comparedRuns());
}

function showComparisonCurves(runId: string, result: Comparison, range: readonly [number, number] | null): void {
  const several = new Set(result.curves.map((c) => c.runId)).size > 1;
  setSeries(comparisonKey(runId), result.curves.map((c) => ({
    modelKey: `${c.runId}|${c.model}`, modelName: several ? `${c.name} · ${c.runId.slice(0, 15)}` : c.name,
    x: Float64Array.from(c.x), y: Float64Array.from(c.y), rows: result.rows.find((r) => r.runId === c.runId && r.model === c.model)?.bytes ?? 0,
  })), range);
}

export async function toggleComparedRun(id: string): Promise<void> {
  const runs = comparedRuns();
  const next = runs.includes(id) ? runs.filter((r) => r !== id) : [...runs, id];
  if (next.length === 0) return; // one run at least: the table would be empty
  setComparedRuns(next);
  await loadComparison();
}

/** The bits-per-byte table as CSV: one row per run and model, one column per position range. */
export function comparisonCsv(comparison: Comparison): string {
  const header = ['run', 'model', 'architecture', 'tokenizer', 'bytes', 'bits_per_byte', ...comparison.ranges.map((r) => `bits_per_byte_${r.label}`)];
  const rows = comparison.rows.map((r) => [r.runId, r.name, r.architecture, r.tokenizer, r.bytes, r.bitsPerByte, ...r.ranges].map(csvField).join(','));
  return `${[header.map(csvField).join(','), ...rows].join('\n')}\n`;
}

export function exportComparisonCsv(): void {
  const { comparison } = useAnalysisStore.getState();
  if (comparison) downloadText(`bits-per-byte-${comparison.book.name.replace(/\W+/g, '-')}.csv`, comparisonCsv(comparison), 'text/csv');
}
