/**
 * How a model's state evolves along the document. TTT: the inner model's weights W_t per layer (distance from
 * W_0, update size, cosine to W_0), their trajectory (PCA of the snapshots, coloured by position) and
 * singular-value spectra at chosen positions. Mamba: the SSM-state norm; Transformer: the KV-cache size, so a
 * fixed-size state and a growing cache read at a glance on the same token axis.
 */
import { memo, useMemo } from 'react';
import type { RunManifest } from '../../engine/protocol.js';
import { chartKeys, openTokensAt, toggleSpectrum } from '../commands/analysis.js';
import { refineChart } from '../commands/charts.js';
import { Chart } from '../components/Chart.js';
import { EmptyState } from '../components/EmptyState.js';
import { ModelPicker } from '../components/ModelPicker.js';
import { cosineFigure, pcaFigure, spectraFigure, stateFigure, stateTitle, weightChangeFigure } from '../lib/figures.js';
import { formatCount } from '../lib/format.js';
import { modelFor, modelsFor } from '../lib/run-models.js';
import { type AnalysisState, useAnalysisStore } from '../stores/analysis.js';
import { useShallow } from 'zustand/react/shallow';

const selectChoice = (s: AnalysisState) => ({
  chosen: s.model, layer: s.layer, matrix: s.matrix, positions: s.snapshotPositions, explained: s.explained, spectraAt: s.spectraAt,
});
const weightCsv = { series: 'measure', x: 'position', y: 'value' };
const pcaCsv = { series: 'matrix', x: 'pc1', y: 'pc2', color: 'position' };
const spectraCsv = { series: 'snapshot', x: 'index', y: 'singular_value' };
const stateCsv = { series: 'layer', x: 'position', y: 'value' };
const stateFigures = { ttt: stateFigure('ttt'), llama: stateFigure('llama'), mamba: stateFigure('mamba'), delta: stateFigure('delta') };

export const HiddenStateView = memo(function HiddenStateView({ manifest }: { readonly manifest: RunManifest }) {
  const { chosen, layer, matrix, positions, explained, spectraAt } = useAnalysisStore(useShallow(selectChoice));
  const pca = useMemo(() => pcaFigure(explained), [explained]);
  const model = modelFor(manifest, 'hiddenState', chosen);
  if (!model) return <div data-testid="hidden-state-view"><EmptyState title="No state recorded in this run" /></div>;
  const id = manifest.id;
  const ttt = Boolean(model.files.hiddenState);
  const matrices = model.architecture.includes('MLP') ? ['W1', 'W2'] : ['W1'];
  const pick = (x: number) => openTokensAt(x, model.key);
  const file = `${id}-${model.name}-layer${layer}`;
  const keys = {
    change: chartKeys.weightChange(id, model.key, layer), cosine: chartKeys.cosine(id, model.key, layer),
    pca: chartKeys.pca(id, model.key, layer, matrix), spectra: chartKeys.spectra(id, model.key, layer, matrix), state: chartKeys.state(id, model.key),
  };
  return (
    <div className="stack" data-testid="hidden-state-view">
      <ModelPicker models={modelsFor(manifest, 'hiddenState')} model={model} layer={ttt ? layer : undefined} matrix={matrix} matrices={matrices} />
      {ttt && <>
        <Chart title="Weight change along the document" seriesKey={keys.change} figure={weightChangeFigure} csv={weightCsv} filename={`weight-change-${file}`} logX
          caption="Distance of the inner model's weights from where the sequence started (‖Wₜ − W₀‖) and the size of each mini-batch's update (‖Wₜ − Wₜ₋₁‖), Frobenius norms over all heads."
          onZoom={(r) => refineChart(keys.change, r)} onPick={pick} />
        <Chart title="Cosine similarity to the initial weights" seriesKey={keys.cosine} figure={cosineFigure} csv={weightCsv} filename={`weight-cosine-${file}`} logX
          caption="cos(Wₜ, W₀): 1 while the weights still point where they started; it falls as the context rewrites them."
          onZoom={(r) => refineChart(keys.cosine, r)} onPick={pick} />
        <div className="chart-pair">
          <Chart title="Weight trajectory (PCA of snapshots)" seriesKey={keys.pca} figure={pca} csv={pcaCsv} filename={`weight-pca-${file}-${matrix}`}
            caption={`${matrix} at ${positions.length} log-spaced positions, projected on its first two principal components; colour is token position.`}
            onPick={pick} />
          <Chart title="Singular-value spectra" seriesKey={keys.spectra} figure={spectraFigure} csv={spectraCsv} filename={`weight-spectra-${file}-${matrix}`}
            caption={`Singular values of ${matrix} (all heads), largest first, at the chosen positions.`}
            controls={null} />
        </div>
        <div className="chips" role="group" aria-label="Spectra at positions">
          {positions.map((p) => (
            <button key={p} type="button" className="chip" aria-pressed={spectraAt.includes(p)} onClick={() => void toggleSpectrum(p)}>{formatCount(p)}</button>
          ))}
        </div>
      </>}
      {model.files.modelState && (
        <Chart title={stateTitle(model.family)} seriesKey={keys.state} figure={stateFigures[model.family]} csv={stateCsv} filename={`state-${id}-${model.name}`}
          caption={model.family === 'llama'
            ? 'Bytes of keys and values the attention keeps, per layer: it grows with every token unless a window bounds it.'
            : 'Norm of the SSM state per layer: a fixed-size state, whatever the length of the context.'}
          onZoom={(r) => refineChart(keys.state, r)} onPick={pick} />
      )}
    </div>
  );
});
