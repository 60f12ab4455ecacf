/**
 * The TTT inner loop along the document, per layer: the self-supervised loss with the initial weights, before
 * and after each mini-batch's update, and how much each update removes (the paper's picture of the inner loop
 * learning from the context). x is log-binned token position.
 */
import { memo } from 'react';
import type { RunManifest } from '../../engine/protocol.js';
import { chartKeys, openTokensAt } from '../commands/analysis.js';
import { refineChart } from '../commands/charts.js';
import { Chart } from '../components/Chart.js';
import { EmptyState } from '../components/EmptyState.js';
import { ModelPicker } from '../components/ModelPicker.js';
import { innerLoopFigure, reductionFigure } from '../lib/figures.js';
import { modelFor, modelsFor } from '../lib/run-models.js';
import { useAnalysisStore } from '../stores/analysis.js';

const lossCsv = { series: 'loss', x: 'position', y: 'ttt_loss' };
const reductionCsv = { series: 'measure', x: 'position', y: 'value' };

export const InnerLoopView = memo(function InnerLoopView({ manifest }: { readonly manifest: RunManifest }) {
  const chosen = useAnalysisStore((s) => s.model);
  const layer = useAnalysisStore((s) => s.layer);
  const models = modelsFor(manifest, 'innerLoop');
  const model = modelFor(manifest, 'innerLoop', chosen);
  if (!model) {
    return (
      <div data-testid="inner-loop-view">
        <EmptyState title="No inner loop in this run">
          Only TTT models (TTT-Linear, TTT-MLP) learn at test time; run one with inner-loop statistics on to see its losses here.
        </EmptyState>
      </div>
    );
  }
  const lossKey = chartKeys.innerLoop(manifest.id, model.key, layer);
  const reductionKey = chartKeys.reduction(manifest.id, model.key, layer);
  const pick = (x: number) => openTokensAt(x, model.key);
  return (
    <div className="stack" data-testid="inner-loop-view">
      <ModelPicker models={models} model={model} layer={layer} />
      <Chart
        title="Inner-loop loss along the document" seriesKey={lossKey} figure={innerLoopFigure} csv={lossCsv} logX
        filename={`inner-loop-${manifest.id}-${model.name}-layer${layer}`}
        caption={<>Self-supervised reconstruction loss on each mini-batch&apos;s last token, averaged in log-spaced bins: with the
          sequence&apos;s initial weights W₀ (init), with the weights at the start of the mini-batch (before) and after its update (after).</>}
        onZoom={(range) => refineChart(lossKey, range)} onPick={pick}
      />
      <Chart
        title="Inner-loop reduction" seriesKey={reductionKey} figure={reductionFigure} csv={reductionCsv} logX
        filename={`inner-loop-reduction-${manifest.id}-${model.name}-layer${layer}`}
        caption={<>What one gradient step on the mini-batch removes: before − after (left axis) and after ÷ before (right axis, below 1 when the update helps).</>}
        onZoom={(range) => refineChart(reductionKey, range)} onPick={pick}
      />
    </div>
  );
});
