/**
 * The corpus view: each model's NLL by token position over the corpus with its 95% band (log position axis, as
 * the TTT paper's Figure 2, right), a per-document scatter of model A against model B in bits per byte, the
 * per-document table, live progress per worker while it runs, and exports (charts as PNG, SVG, CSV; the table as
 * CSV; the whole run as an HTML report). Every number comes from the engine; this only lays it out.
 */
import { memo, useMemo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { CorpusRun } from '../../engine/protocol.js';
import { cancelCorpusRun, chooseScatter, resumable, resumeCorpusRun, corpusCurveKey, corpusScatterKey, corpusTable, scatterPoints } from '../commands/corpus.js';
import { exportCorpusDocumentsCsv, exportCorpusReport } from '../commands/corpus-report.js';
import { Chart } from '../components/Chart.js';
import { CorpusProgressPanel } from '../components/CorpusProgressPanel.js';
import { EmptyState } from '../components/EmptyState.js';
import { PageHeader } from '../components/PageHeader.js';
import { corpusCurveFigure, corpusScatterFigure } from '../lib/corpus-figures.js';
import { formatBitsPerByte, formatBytes } from '../lib/format.js';
import { type CorpusState, scatterModels, useCorpusStore } from '../stores/corpus.js';
import { isActive } from '../stores/runs.js';
import { showScreen, useViewStore } from '../stores/view.js';

const selectRun = (s: CorpusState) => ({
  runId: s.runId, run: s.run, progress: s.runId ? s.progress[s.runId] : undefined, summary: s.runs.find((r) => r.id === s.runId), modelA: s.modelA, modelB: s.modelB,
});

const curveCsv = { series: 'model', x: 'position', y: 'mean_nll' } as const;
const scatterCsv = { series: 'models', x: 'bits_per_byte_a', y: 'bits_per_byte_b' } as const;

export const CorpusRunView = memo(function CorpusRunView() {
  const { runId, run, progress, summary, modelA, modelB } = useCorpusStore(useShallow(selectRun));
  const pair = useMemo(() => scatterModels({ run, modelA, modelB }), [run, modelA, modelB]);
  const exporting = useViewStore((s) => s.pending.exportCorpusReport === true);
  // a resumed run is live again before its manifest, read when documents finish, says so
  const status = summary && isActive(summary.status) ? summary.status : run?.manifest.status ?? summary?.status ?? 'queued';
  const names = useMemo(() => new Map(run?.manifest.models.map((m) => [m.key, m.name]) ?? []), [run]);
  const documents = useMemo(() => (run && pair ? scatterPoints(run, pair[0], pair[1]).names : []), [run, pair]);
  const scatterFigure = useMemo(() => corpusScatterFigure(names.get(pair?.[0] ?? '') ?? 'A', names.get(pair?.[1] ?? '') ?? 'B', documents), [names, pair, documents]);
  if (!runId) return <EmptyState title="No corpus run open" />;
  const title = run ? run.manifest.corpus.path.split(/[\\/]/).filter(Boolean).pop() ?? run.manifest.corpus.path : summary?.corpus ?? runId;
  return (
    <section className="view" data-testid="corpus-run-view" aria-label="Corpus run">
      <PageHeader
        title={title}
        subtitle={<>
          <span className={`status status-${status}`}>{status}</span>
          {run && ` · ${run.manifest.corpus.documents} documents (${run.manifest.corpus.format})${run.manifest.corpus.skipped.length ? `, ${run.manifest.corpus.skipped.length} skipped` : ''} · ${run.manifest.models.map((m) => `${m.name} ${formatBitsPerByte(m.bitsPerByte)} bits/byte`).join(', ')}`}
        </>}
        actions={<>
          <button type="button" className="button" onClick={() => showScreen('corpus')}>All corpus runs</button>
          {isActive(status) && <button type="button" className="button button-danger" onClick={() => void cancelCorpusRun(runId)}>Cancel run</button>}
          {resumable(status) && <button type="button" className="button" onClick={() => void resumeCorpusRun(runId)}>Resume</button>}
          <button type="button" className="button" onClick={() => void exportCorpusDocumentsCsv(runId)} disabled={!run}>Export table CSV</button>
          <button type="button" className="button button-primary" onClick={() => void exportCorpusReport(runId)} disabled={!run || exporting}>Export report</button>
        </>}
      />
      {progress && <CorpusProgressPanel progress={progress} run={run} />}
      {!run ? <EmptyState title={status === 'queued' ? 'Queued behind other runs…' : 'Loading…'} loading /> : (<>
        <Chart
          title="NLL by token position" seriesKey={corpusCurveKey(runId)} figure={corpusCurveFigure} csv={curveCsv} filename={`corpus-${runId}-nll-by-position`} logX
          caption="Mean NLL per quarter-octave position bin over the documents reaching it; the band is its 95% interval (documents as the sampled units)."
          empty="No document finished yet." testId="corpus-curve"
        />
        <Chart
          title="Bits per byte per document" seriesKey={corpusScatterKey(runId)} figure={scatterFigure} csv={scatterCsv} filename={`corpus-${runId}-documents`}
          controls={<ScatterPickers run={run} pair={pair} />} empty="No document both models finished yet." testId="corpus-scatter"
          caption="One point per document; below the diagonal model B does better than model A."
        />
        <DocumentsTable run={run} />
        <Problems run={run} />
      </>)}
    </section>
  );
});

const ScatterPickers = memo(function ScatterPickers({ run, pair }: { run: CorpusRun; pair: readonly [string, string] | null }) {
  return (
    <div className="picker">
      {(['A', 'B'] as const).map((axis, i) => (
        <label key={axis} className="picker-field">
          Model {axis}
          <select aria-label={`Model ${axis}`} value={pair?.[i] ?? ''} onChange={(e) => chooseScatter(axis, e.target.value)}>
            {run.manifest.models.map((m) => <option key={m.key} value={m.key} title={m.architecture}>{m.name}</option>)}
          </select>
        </label>
      ))}
    </div>
  );
});

const DocumentsTable = memo(function DocumentsTable({ run }: { run: CorpusRun }) {
  const rows = useMemo(() => corpusTable(run), [run]);
  return (
    <table className="table corpus-documents" aria-label="Documents">
      <thead>
        <tr>
          <th scope="col">Document</th>
          <th scope="col" className="num">Size</th>
          {run.manifest.models.map((m) => <th key={m.key} scope="col" className="num">{m.name} bits/byte</th>)}
          <th scope="col">Computed by</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.document} data-testid="corpus-document-row">
            <td>{r.name}</td>
            <td className="num">{formatBytes(r.bytes)}</td>
            {r.bitsPerByte.map((b, i) => <td key={run.manifest.models[i].key} className="num">{formatBitsPerByte(b)}</td>)}
            <td className="muted">{r.workers}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
});

/** Documents the readers skipped and (model, document) pairs that failed, one line each as the engine said. */
const Problems = memo(function Problems({ run }: { run: CorpusRun }) {
  const { skipped } = run.manifest.corpus;
  const { failures } = run.manifest;
  if (skipped.length === 0 && failures.length === 0) return null;
  return (
    <details className="corpus-problems" data-testid="corpus-problems">
      <summary>{skipped.length} skipped, {failures.length} failed</summary>
      <ul>
        {skipped.map((d) => <li key={`s-${d.name}`}>{d.reason}</li>)}
        {failures.map((f) => <li key={`f-${f.model}-${f.document}`}>{f.model} · {f.name}: {f.error}</li>)}
      </ul>
    </details>
  );
});
