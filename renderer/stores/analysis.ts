/**
 * Analysis domain: what the run view's analytical tabs look at. The tab; the model, layer and matrix the
 * inner-loop, hidden-state and token views show; snapshot facts for the hidden-state charts; the heatmap's
 * comparison, focus and way back; the runs compared and their table. Chart data itself lives in the series
 * buffers, token text in the token blocks.
 */
import { create } from 'zustand';
import type { Comparison } from '../../engine/protocol.js';

export type RunTab = 'perplexity' | 'innerLoop' | 'hiddenState' | 'tokens' | 'comparison';

export const runTabs: readonly { tab: RunTab; label: string }[] = [
  { tab: 'perplexity', label: 'Perplexity' },
  { tab: 'innerLoop', label: 'Inner loop' },
  { tab: 'hiddenState', label: 'Hidden state' },
  { tab: 'tokens', label: 'Tokens' },
  { tab: 'comparison', label: 'Comparison' },
];

export interface AnalysisState {
  readonly tab: RunTab;
  /** Model key the inner-loop, hidden-state and token views show (null: the view picks the first that fits). */
  readonly model: string | null;
  readonly layer: number;
  readonly matrix: 'W1' | 'W2';
  /** Positions of the current layer's W snapshots, and how much variance the two PCA axes explain. */
  readonly snapshotPositions: readonly number[];
  readonly explained: readonly [number, number];
  /** Positions whose singular-value spectra are drawn. */
  readonly spectraAt: readonly number[];
  /** `runId|model` the heatmap subtracts, or null to colour by NLL. */
  readonly compare: string | null;
  /** Token the heatmap scrolls to and marks, and the tab to go back to. */
  readonly focus: number | null;
  readonly returnTo: RunTab | null;
  readonly comparedRuns: readonly string[];
  readonly comparison: Comparison | null;
}

const initialState: AnalysisState = {
  tab: 'perplexity', model: null, layer: 0, matrix: 'W1', snapshotPositions: [], explained: [0, 0], spectraAt: [],
  compare: null, focus: null, returnTo: null, comparedRuns: [], comparison: null,
};

export const useAnalysisStore = create<AnalysisState>()(() => initialState);

/** A different run starts on its overview with nothing chosen. */
export function resetAnalysis(): void {
  useAnalysisStore.setState(initialState);
}

export function setTab(tab: RunTab): void {
  useAnalysisStore.setState({ tab });
}

/** A new model keeps the layer where it exists (the caller clamps) but forgets model-specific choices. */
export function setModel(model: string, layer: number): void {
  useAnalysisStore.setState((s) => ({ model, layer, matrix: 'W1', spectraAt: [], compare: s.compare?.endsWith(`|${model}`) ? null : s.compare }));
}

export function setLayer(layer: number): void {
  useAnalysisStore.setState({ layer, spectraAt: [] });
}

export function setMatrix(matrix: AnalysisState['matrix']): void {
  useAnalysisStore.setState({ matrix, spectraAt: [] });
}

export function setSnapshotInfo(snapshotPositions: readonly number[], explained: readonly [number, number], spectraAt: readonly number[]): void {
  useAnalysisStore.setState({ snapshotPositions, explained, spectraAt });
}

export function toggleSpectrumAt(position: number): void {
  useAnalysisStore.setState((s) => ({
    spectraAt: s.spectraAt.includes(position) ? s.spectraAt.filter((p) => p !== position) : [...s.spectraAt, position].sort((a, b) => a - b),
  }));
}

export function setCompare(compare: string | null): void {
  useAnalysisStore.setState({ compare });
}

/** The heatmap opened at a token from a chart on `from` (null: the person scrolled there themselves). */
export function setFocus(focus: number | null, returnTo: RunTab | null = null): void {
  useAnalysisStore.setState({ focus, returnTo });
}

export function setComparedRuns(comparedRuns: readonly string[]): void {
  useAnalysisStore.setState({ comparedRuns });
}

export function setComparison(comparison: Comparison | null): void {
  useAnalysisStore.setState({ comparison });
}
