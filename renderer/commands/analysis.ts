/**
 * The run view's analytical tabs: choosing a tab, model, layer or matrix loads what that tab draws (inner-loop
 * losses, weight evolution, snapshots, state size) into the series buffers. Chart keys are built here, once, so
 * the views and the loaders agree on them.
 */
import type { RunManifest, RunModel } from '../../engine/protocol.js';
import { modelFor } from '../lib/run-models.js';
import { seriesKey, setSeries } from '../series/buffers.js';
import {
  type RunTab, setFocus, setLayer, setMatrix, setModel, setSnapshotInfo, setTab, toggleSpectrumAt, useAnalysisStore,
} from '../stores/analysis.js';
import { useRunsStore } from '../stores/runs.js';
import { useViewStore } from '../stores/view.js';
import { type SeriesChartSpec, showChart } from './charts.js';
import { loadComparison } from './comparison.js';
import { attempt, request } from './engine.js';
import { drawFromAggregates } from './live.js';
import { loadPerplexity } from './perplexity.js';

/** Points per trace for charts along the document: plenty for a 1,200-pixel plot, few enough to draw at once. */
const chartPoints = 2000;

export const chartKeys = {
  innerLoop: (runId: string, model: string, layer: number) => seriesKey(runId, `inner-loop/${model}/${layer}`),
  reduction: (runId: string, model: string, layer: number) => seriesKey(runId, `inner-loop-reduction/${model}/${layer}`),
  weightChange: (runId: string, model: string, layer: number) => seriesKey(runId, `weight-change/${model}/${layer}`),
  cosine: (runId: string, model: string, layer: number) => seriesKey(runId, `weight-cosine/${model}/${layer}`),
  pca: (runId: string, model: string, layer: number, matrix: string) => seriesKey(runId, `pca/${model}/${layer}/${matrix}`),
  spectra: (runId: string, model: string, layer: number, matrix: string) => seriesKey(runId, `spectra/${model}/${layer}/${matrix}`),
  state: (runId: string, model: string) => seriesKey(runId, `state/${model}`),
};

function viewed(): { manifest: RunManifest } | null {
  const { runId } = useViewStore.getState();
  const manifest = runId ? useRunsStore.getState().manifests[runId] : undefined;
  return manifest ? { manifest } : null;
}

export function innerLoopSpecs(runId: string, model: string, layer: number): SeriesChartSpec[] {
  const base = { runId, reduce: 'logmean' as const, points: 400 };
  return [
    { ...base, key: chartKeys.innerLoop(runId, model, layer), sources: [{ model, series: 'innerLoop', layer, traces: [
      { column: 'init', name: 'ttt_loss_init (W₀)' }, { column: 'before', name: 'ttt_loss_before' }, { column: 'after', name: 'ttt_loss_after' },
    ] }] },
    { ...base, key: chartKeys.reduction(runId, model, layer), sources: [{ model, series: 'innerLoop', layer, traces: [
      { column: 'reduction', name: 'before − after' }, { column: 'ratio', name: 'after ÷ before', axis: 'y2' },
    ] }] },
  ];
}

export function weightSpecs(runId: string, model: RunModel, layer: number): SeriesChartSpec[] {
  const matrices = model.architecture.toLowerCase().includes('mlp') ? ['W1', 'W2'] : ['W1'];
  const base = { runId, reduce: 'minmax' as const, points: chartPoints };
  const traces = (metric: string, label: (w: string) => string) => matrices.map((w) => ({ column: `${w}_${metric}`, name: label(w) }));
  return [
    { ...base, key: chartKeys.weightChange(runId, model.key, layer), sources: [{ model: model.key, series: 'hiddenState', layer, traces: [
      ...traces('dist_init', (w) => `‖${w}ₜ − ${w}₀‖`), ...traces('dist_prev', (w) => `‖${w}ₜ − ${w}ₜ₋₁‖ (update)`),
    ] }] },
    { ...base, key: chartKeys.cosine(runId, model.key, layer), sources: [{ model: model.key, series: 'hiddenState', layer, traces: traces('cos_init', (w) => `cos(${w}ₜ, ${w}₀)`) }] },
  ];
}

export function stateSpec(runId: string, model: RunModel): SeriesChartSpec {
  return {
    key: chartKeys.state(runId, model.key), runId, reduce: 'minmax', points: chartPoints,
    sources: Array.from({ length: model.layers }, (_, layer) => ({ model: model.key, series: 'modelState' as const, layer, traces: [{ column: 'value', name: `layer ${layer}`, id: `layer${layer}` }] })),
  };
}

async function loadSnapshots(runId: string, model: string, layer: number, matrix: 'W1' | 'W2', spectraAt: readonly number[]): Promise<void> {
  const s = await attempt('loadSnapshots', () => request('getSnapshots', { runId, model, layer, matrix, ...(spectraAt.length ? { spectra: [...spectraAt] } : {}) }));
  if (!s) return;
  setSnapshotInfo(s.positions, s.pca.explained, s.spectra.map((x) => x.position));
  const positions = Float64Array.from(s.positions);
  setSeries(chartKeys.pca(runId, model, layer, matrix), [{ modelKey: 'trajectory', modelName: `${matrix} snapshots`, x: Float64Array.from(s.pca.x), y: Float64Array.from(s.pca.y), rows: s.positions.length, color: positions }]);
  setSeries(chartKeys.spectra(runId, model, layer, matrix), s.spectra.map((x) => ({
    modelKey: String(x.position), modelName: `position ${x.position.toLocaleString('en')}`, x: Float64Array.from(x.values, (_, i) => i + 1), y: Float64Array.from(x.values), rows: x.values.length,
  })));
}

/** Loads what the current tab draws for the viewed run (blocks of the token heatmap load as it scrolls). */
export async function loadTab(): Promise<void> {
  const run = viewed();
  if (!run) return;
  const { manifest } = run;
  const { tab, model: chosen, layer, matrix, spectraAt } = useAnalysisStore.getState();
  if (tab === 'perplexity') return loadPerplexity(manifest);
  if (tab === 'comparison') return loadComparison();
  const model = modelFor(manifest, tab, chosen);
  if (!model) return;
  const l = Math.min(layer, model.layers - 1);
  if (model.key !== chosen || l !== layer) setModel(model.key, l);
  const loads: Promise<unknown>[] = [];
  const show = (spec: SeriesChartSpec) => showChart(spec, drawFromAggregates(spec));
  if (tab === 'innerLoop') loads.push(...innerLoopSpecs(manifest.id, model.key, l).map(show));
  if (tab === 'hiddenState' && model.files.hiddenState) {
    loads.push(...weightSpecs(manifest.id, model, l).map(show));
    // snapshots are written when a model finishes: a live model has none yet
    if (model.status !== 'running' && model.status !== 'queued') loads.push(loadSnapshots(manifest.id, model.key, l, matrix, model.key === chosen ? spectraAt : []));
  }
  if (tab === 'hiddenState' && model.files.modelState) loads.push(show(stateSpec(manifest.id, model)));
  await Promise.all(loads);
}

export async function showRunTab(tab: RunTab): Promise<void> {
  setTab(tab);
  await loadTab();
}

export async function chooseModel(model: string): Promise<void> {
  setModel(model, useAnalysisStore.getState().layer);
  await loadTab();
}

export async function chooseLayer(layer: number): Promise<void> {
  setLayer(layer);
  await loadTab();
}

export async function chooseMatrix(matrix: 'W1' | 'W2'): Promise<void> {
  setMatrix(matrix);
  await loadTab();
}

export async function toggleSpectrum(position: number): Promise<void> {
  toggleSpectrumAt(position);
  const run = viewed();
  const { model, layer, matrix, spectraAt } = useAnalysisStore.getState();
  if (run && model) await loadSnapshots(run.manifest.id, model, layer, matrix, spectraAt);
}

/** A click on a chart: the token heatmap at that position, under the chart's model, with a way back. */
export function openTokensAt(position: number, model?: string): void {
  const { tab } = useAnalysisStore.getState();
  const run = viewed();
  if (model && run && run.manifest.models.some((m) => m.key === model && m.files.nll)) setModel(model, useAnalysisStore.getState().layer);
  setFocus(Math.max(0, Math.round(position)), tab === 'tokens' ? null : tab);
  setTab('tokens');
}

export async function backFromTokens(): Promise<void> {
  const { returnTo } = useAnalysisStore.getState();
  setFocus(null);
  await showRunTab(returnTo ?? 'perplexity');
}
