/**
 * The run view's first chart: per-token loss along the document, one curve per model, in the unit and y scale the
 * person chose. Drawn from the run's aggregates (live while it streams); a zoom asks the engine for the stored rows.
 */
import type { RunManifest } from '../../engine/protocol.js';
import { tokenCurve } from '../series/aggregates.js';
import { seriesKey } from '../series/buffers.js';
import { bumpSeriesVersion, useRunsStore } from '../stores/runs.js';
import { type PerplexityMode, type PerplexityUnit, setPerplexityMode, setPerplexityUnit, togglePerplexityLogY, useViewStore } from '../stores/view.js';
import { type SeriesChartSpec, showChart } from './charts.js';

/** Log-spaced bins per curve in a zoom: few for the smooth Figure-2 view, many for the raw one. */
export const perplexityPoints: Record<PerplexityMode, number> = { smoothed: 40, raw: 800 };

export const perplexityKey = (runId: string, mode: PerplexityMode, unit: PerplexityUnit): string => seriesKey(runId, `perplexity-${mode}-${unit}`);

export function perplexitySpec(manifest: RunManifest, mode: PerplexityMode, unit: PerplexityUnit): SeriesChartSpec {
  return {
    key: perplexityKey(manifest.id, mode, unit), runId: manifest.id, reduce: 'logmean', points: perplexityPoints[mode],
    sources: manifest.models.map((m) => ({ model: m.key, series: 'nll' as const, traces: [{ column: 'nll', name: m.name, id: m.key, unit }] })),
  };
}

/** The chart's traces from the aggregates: models with no tokens yet are left out. */
export const perplexityFromAggregates = (manifest: RunManifest, mode: PerplexityMode, unit: PerplexityUnit) => () =>
  manifest.models
    .map((m) => ({ m, curve: tokenCurve(manifest.id, m.key, mode, unit) }))
    .filter(({ curve }) => curve.x.length > 0)
    .map(({ m, curve }) => ({ modelKey: m.key, modelName: m.name, x: curve.x, y: curve.y, rows: curve.rows }));

export async function loadPerplexity(manifest: RunManifest): Promise<void> {
  const { perplexityMode: mode, perplexityUnit: unit } = useViewStore.getState();
  if (await showChart(perplexitySpec(manifest, mode, unit), perplexityFromAggregates(manifest, mode, unit))) bumpSeriesVersion(manifest.id);
}

async function reloadViewed(): Promise<void> {
  const { runId } = useViewStore.getState();
  const manifest = runId ? useRunsStore.getState().manifests[runId] : undefined;
  if (manifest) await loadPerplexity(manifest);
}

export async function changePerplexityMode(mode: PerplexityMode): Promise<void> {
  setPerplexityMode(mode);
  await reloadViewed();
}

export async function changePerplexityUnit(unit: PerplexityUnit): Promise<void> {
  setPerplexityUnit(unit);
  await reloadViewed();
}

export function switchPerplexityScale(): void {
  togglePerplexityLogY();
}
