/**
 * Per-token perplexity along the document, one line per model: mean NLL in log-spaced position bins (the TTT
 * paper's Figure 2, right), exponentiated. Zooming refines the bins over the new range; a click opens the text.
 */
import { memo } from 'react';
import { openTokensAt } from '../commands/analysis.js';
import { refineChart } from '../commands/charts.js';
import { changePerplexityMode, perplexityKey } from '../commands/perplexity.js';
import { perplexityFigure } from '../lib/figures.js';
import type { PerplexityMode } from '../stores/view.js';
import { Chart } from './Chart.js';

export interface PerplexityChartProps {
  readonly runId: string;
  readonly mode: PerplexityMode;
  readonly title?: string;
}

const figures = { smoothed: perplexityFigure(true), raw: perplexityFigure(false) };
const csv = { series: 'model', x: 'position', y: 'perplexity' };

export const PerplexityChart = memo(function PerplexityChart({ runId, mode, title = 'Perplexity along the document' }: PerplexityChartProps) {
  const key = perplexityKey(runId, mode);
  const controls = (
    <div className="segmented" role="group" aria-label="Curve">
      {(['smoothed', 'raw'] as const).map((m) => (
        <button key={m} type="button" aria-pressed={mode === m} onClick={() => void changePerplexityMode(m)}>{m === 'smoothed' ? 'Smoothed' : 'Raw'}</button>
      ))}
    </div>
  );
  return (
    <Chart
      title={title} seriesKey={key} figure={figures[mode]} csv={csv} filename={`perplexity-${runId}-${mode}`} controls={controls} logX
      testId="perplexity-chart" empty="No per-token results yet."
      caption={<>
        Mean negative log-likelihood in {mode === 'smoothed' ? 'a few wide' : 'many narrow'} log-spaced position bins, as perplexity:
        lower is better, and a curve that keeps falling means the model uses more of the context.
      </>}
      onZoom={(range) => refineChart(key, range)} onPick={(x, model) => openTokensAt(x, model)}
    />
  );
});
