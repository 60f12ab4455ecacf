/**
 * The book's text with each token coloured by its NLL under one model, or by the difference to another model on
 * the same book (blue where this model did better). Virtualised, so a 4M-token book scrolls; a click on a chart
 * lands here at that position, with a way back.
 */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { RunManifest } from '../../engine/protocol.js';
import { backFromTokens } from '../commands/analysis.js';
import { EmptyState } from '../components/EmptyState.js';
import { ModelPicker } from '../components/ModelPicker.js';
import { TokenScroller } from '../components/TokenScroller.js';
import { formatCount } from '../lib/format.js';
import { diffLegend, diffScaleMax, nllLegend, nllScaleMax } from '../lib/heat-colors.js';
import { modelFor, modelsFor } from '../lib/run-models.js';
import { type AnalysisState, runTabs, setCompare, setFocus, useAnalysisStore } from '../stores/analysis.js';
import { type RunsState, useRunsStore } from '../stores/runs.js';

const selectHeatmap = (s: AnalysisState) => ({ chosen: s.model, compare: s.compare, focus: s.focus, returnTo: s.returnTo });

/** Other finished runs on the same book (by name; the engine checks the hash) whose models can be subtracted. */
const selectOtherRuns = (book: string, id: string) => (s: RunsState) => s.runs.filter((r) => r.id !== id && r.book === book && r.status === 'finished');

export const TokenHeatmapView = memo(function TokenHeatmapView({ manifest }: { readonly manifest: RunManifest }) {
  const { chosen, compare, focus, returnTo } = useAnalysisStore(useShallow(selectHeatmap));
  const otherRuns = useRunsStore(useShallow(selectOtherRuns(manifest.book.name, manifest.id)));
  const model = modelFor(manifest, 'tokens', chosen);
  if (!model) return <div data-testid="token-heatmap-view"><EmptyState title="No per-token results in this run yet" /></div>;
  const options = [
    ...manifest.models.filter((m) => m.key !== model.key && m.predictedTokens > 0).map((m) => ({ value: `${manifest.id}|${m.key}`, label: m.name })),
    ...otherRuns.flatMap((r) => r.models.map((m) => ({ value: `${r.id}|${m.name}`, label: `${m.name} (run ${r.id.slice(0, 15)})` }))),
  ];
  const back = runTabs.find((t) => t.tab === returnTo);
  return (
    <div className="stack" data-testid="token-heatmap-view">
      <div className="heatmap-controls">
        <ModelPicker models={modelsFor(manifest, 'tokens')} model={model} />
        <label className="picker-field">
          Colour by
          <select aria-label="Colour by" value={compare ?? ''} onChange={(e) => setCompare(e.target.value || null)}>
            <option value="">NLL under {model.name}</option>
            {options.map((o) => <option key={o.value} value={o.value}>NLL difference: {model.name} − {o.label}</option>)}
          </select>
        </label>
        <span className="legend" aria-hidden="true">
          <span>{compare ? `−${diffScaleMax} (better)` : '0'}</span>
          <span className="legend-bar" style={{ background: compare ? diffLegend : nllLegend }} />
          <span>{compare ? `+${diffScaleMax} nats (worse)` : `${nllScaleMax}+ nats`}</span>
        </span>
        {back && <button type="button" className="button button-small" onClick={() => void backFromTokens()}>Back to {back.label}</button>}
      </div>
      <p className="chart-caption" data-testid="token-focus">
        {focus === null
          ? `${formatCount(model.predictedTokens + 1)} tokens. Hover a token for its NLL; click one to mark it.`
          : `Position ${focus.toLocaleString('en')} of ${formatCount(model.predictedTokens + 1)}`}
      </p>
      <TokenScroller
        runId={manifest.id} model={model.key} compare={compare} total={model.predictedTokens + 1} focus={focus}
        onPick={(position) => setFocus(position, returnTo)}
      />
    </div>
  );
});
