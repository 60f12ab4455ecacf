/**
 * Per-token loss along the document, one line per model: the mean in log-spaced position bins (the TTT paper's
 * Figure 2, right), in the unit chosen (perplexity, nats or bits per token, bits per byte) on a log or linear y
 * axis. While a run streams the curves grow; zooming refines the bins over the new range; a click opens the text.
 */
import { memo, useMemo } from 'react';
import { openTokensAt } from '../commands/analysis.js';
import { refineChart } from '../commands/charts.js';
import { changePerplexityMode, changePerplexityUnit, perplexityKey, switchPerplexityScale } from '../commands/perplexity.js';
import { perplexityFigure, tokenUnitTitles } from '../lib/figures.js';
import type { PerplexityMode, PerplexityUnit } from '../stores/view.js';
import { Chart } from './Chart.js';

export interface PerplexityChartProps {
  readonly runId: string;
  readonly mode: PerplexityMode;
  readonly unit: PerplexityUnit;
  readonly logY: boolean;
  readonly title?: string;
}

const unitLabels: Record<PerplexityUnit, string> = { perplexity: 'Perplexity', nats: 'Nats / token', bits: 'Bits / token', bitsPerByte: 'Bits / byte' };

export const PerplexityChart = memo(function PerplexityChart({ runId, mode, unit, logY, title = 'Perplexity along the document' }: PerplexityChartProps) {
  const key = perplexityKey(runId, mode, unit);
  const figure = useMemo(() => perplexityFigure(mode === 'smoothed', unit, logY), [mode, unit, logY]);
  const csv = useMemo(() => ({ series: 'model', x: 'position', y: unit === 'bitsPerByte' ? 'bits_per_byte' : unit === 'bits' ? 'bits_per_token' : unit === 'nats' ? 'nll_nats' : 'perplexity' }), [unit]);
  const controls = (
    <div className="chart-controls">
      <label className="picker-field">
        Unit
        <select aria-label="Unit" value={unit} onChange={(e) => void changePerplexityUnit(e.target.value as PerplexityUnit)}>
          {(Object.keys(unitLabels) as PerplexityUnit[]).map((u) => <option key={u} value={u}>{unitLabels[u]}</option>)}
        </select>
      </label>
      <div className="segmented" role="group" aria-label="Y axis">
        {([true, false] as const).map((log) => (
          <button key={String(log)} type="button" aria-pressed={logY === log} onClick={() => logY !== log && switchPerplexityScale()}>{log ? 'Log' : 'Linear'}</button>
        ))}
      </div>
      <div className="segmented" role="group" aria-label="Curve">
        {(['smoothed', 'raw'] as const).map((m) => (
          <button key={m} type="button" aria-pressed={mode === m} onClick={() => void changePerplexityMode(m)}>{m === 'smoothed' ? 'Smoothed' : 'Raw'}</button>
        ))}
      </div>
    </div>
  );
  return (
    <Chart
      title={title} seriesKey={key} figure={figure} csv={csv} filename={`perplexity-${runId}-${mode}-${unit}`} controls={controls} logX
      testId="perplexity-chart" empty="No per-token results yet."
      caption={<>
        {tokenUnitTitles[unit]} from the mean negative log-likelihood in {mode === 'smoothed' ? 'a few wide log-spaced position bins (none narrower than 64 tokens)' : 'many narrow log-spaced position bins'}:
        lower is better, and a curve that keeps falling means the model uses more of the context.
      </>}
      onZoom={(range) => refineChart(key, range)} onPick={(x, model) => openTokensAt(x, model)}
    />
  );
});
