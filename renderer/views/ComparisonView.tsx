/**
 * Finished runs on the same book side by side: bits per byte along the book (so byte-level and
 * Llama-tokenized models compare) and a table of bits per byte overall and by position range.
 */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { RunManifest } from '../../engine/protocol.js';
import { comparisonKey, exportComparisonCsv, loadComparison, toggleComparedRun } from '../commands/comparison.js';
import { Chart } from '../components/Chart.js';
import { comparisonFigure } from '../lib/figures.js';
import { formatBitsPerByte, formatTime } from '../lib/format.js';
import { type AnalysisState, useAnalysisStore } from '../stores/analysis.js';
import { type RunsState, useRunsStore } from '../stores/runs.js';

const selectComparison = (s: AnalysisState) => ({ comparedRuns: s.comparedRuns, comparison: s.comparison });
const selectCandidates = (book: string, id: string) => (s: RunsState) => s.runs.filter((r) => r.book === book && (r.id === id || r.status === 'finished'));
const csv = { series: 'model', x: 'byte_offset', y: 'bits_per_byte' };

export const ComparisonView = memo(function ComparisonView({ manifest }: { readonly manifest: RunManifest }) {
  const { comparedRuns, comparison } = useAnalysisStore(useShallow(selectComparison));
  const candidates = useRunsStore(useShallow(selectCandidates(manifest.book.name, manifest.id)));
  const compared = comparedRuns.length ? comparedRuns : [manifest.id];
  const key = comparisonKey(manifest.id);
  return (
    <div className="stack" data-testid="comparison-view">
      <fieldset className="run-choice">
        <legend>Runs on {manifest.book.name}</legend>
        {candidates.map((r) => (
          <label key={r.id} className="run-choice-item">
            <input type="checkbox" checked={compared.includes(r.id)} onChange={() => void toggleComparedRun(r.id)} />
            {r.models.map((m) => m.name).join(', ')} <span className="muted">· {formatTime(r.createdAt)}{r.id === manifest.id ? ' · this run' : ''}</span>
          </label>
        ))}
      </fieldset>
      <Chart
        title="Bits per byte along the book" seriesKey={key} figure={comparisonFigure} csv={csv} filename={`bits-per-byte-${manifest.id}`} logX
        caption="Total NLL in bits over the UTF-8 bytes the tokens cover, in log-spaced byte-offset bins: independent of the tokenizer."
        onZoom={(range) => void loadComparison(range)}
      />
      <section className="chart" role="region" aria-labelledby="bpb-table-title">
        <header className="chart-header">
          <h2 id="bpb-table-title" className="chart-title">Bits per byte by position range</h2>
          <div className="chart-actions">
            <button type="button" className="button button-small" disabled={!comparison} onClick={exportComparisonCsv}>Export CSV</button>
          </div>
        </header>
        <p className="chart-caption">Ranges are byte offsets into the book (for byte-level models, token positions): early, short, medium and long context.</p>
        <table className="table" aria-label="Bits per byte by position range">
          <thead>
            <tr>
              <th scope="col">Model</th><th scope="col">Architecture</th><th scope="col">Tokenizer</th><th scope="col">Run</th>
              <th scope="col" className="num">Overall</th>
              {comparison?.ranges.map((r) => <th key={r.label} scope="col" className="num">{r.label}</th>)}
            </tr>
          </thead>
          <tbody>
            {comparison?.rows.map((r) => (
              <tr key={`${r.runId}|${r.model}`}>
                <td className="strong">{r.name}</td><td>{r.architecture}</td><td>{r.tokenizer}</td><td className="muted">{r.runId.slice(0, 15)}</td>
                <td className="num">{formatBitsPerByte(r.bitsPerByte)}</td>
                {r.ranges.map((v, i) => <td key={i} className="num">{formatBitsPerByte(v)}</td>)}
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
});
