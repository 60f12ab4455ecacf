/** The run view's first chart: per-token perplexity along the document, one curve per model. */
import type { RunManifest } from '../../engine/protocol.js';
import { seriesKey } from '../series/buffers.js';
import { bumpSeriesVersion, useRunsStore } from '../stores/runs.js';
import { type PerplexityMode, setPerplexityMode, useViewStore } from '../stores/view.js';
import { loadSeriesChart, type SeriesChartSpec } from './charts.js';

/** Log-spaced bins per perplexity curve: few for the smooth Figure-2 view, many for the raw one. */
export const perplexityPoints: Record<PerplexityMode, number> = { smoothed: 40, raw: 800 };

export const perplexityKey = (runId: string, mode: PerplexityMode): string => seriesKey(runId, `perplexity-${mode}`);

export function perplexitySpec(manifest: RunManifest, mode: PerplexityMode): SeriesChartSpec {
  return {
    key: perplexityKey(manifest.id, mode), runId: manifest.id, reduce: 'logmean', points: perplexityPoints[mode],
    sources: manifest.models
      .filter((m) => m.predictedTokens > 0 && m.files.nll)
      .map((m) => ({ model: m.key, series: 'nll' as const, traces: [{ column: 'nll', name: m.name, id: m.key, exp: true }] })),
  };
}

export async function loadPerplexity(manifest: RunManifest): Promise<void> {
  const spec = perplexitySpec(manifest, useViewStore.getState().perplexityMode);
  if (spec.sources.length === 0) return;
  if (await loadSeriesChart(spec)) bumpSeriesVersion(manifest.id);
}

export async function changePerplexityMode(mode: PerplexityMode): Promise<void> {
  setPerplexityMode(mode);
  const { runId } = useViewStore.getState();
  const manifest = runId ? useRunsStore.getState().manifests[runId] : undefined;
  if (manifest) await loadPerplexity(manifest);
}
