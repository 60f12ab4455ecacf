/**
 * The Comparison tab: finished runs on the viewed run's book, overlaid in bits per byte (curves and the table
 * by position range from `getComparison`), and that table as CSV.
 */
import type { Comparison } from '../../engine/protocol.js';
import { seriesKey, setSeries } from '../series/buffers.js';
import { setComparedRuns, setComparison, useAnalysisStore } from '../stores/analysis.js';
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

/** Loads the table and the curves, or with `range` (byte offsets) only refines the curves after a zoom. */
export async function loadComparison(range: readonly [number, number] | null = null): Promise<void> {
  const runIds = comparedRuns();
  const { runId } = useViewStore.getState();
  if (!runId || runIds.length === 0) return;
  const result = await attempt('loadComparison', () => request('getComparison', { runIds, ...(range ? { start: range[0], end: range[1] } : {}) }));
  if (!result || useViewStore.getState().runId !== runId) return;
  if (!range) setComparison(result);
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
