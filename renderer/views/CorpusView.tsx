/**
 * Evaluate corpus: a corpus (a folder of .txt books, or a .jsonl, .parquet or .arrow file, as a path on the
 * engine's machine) through the selected models, with the same model selection as Run analysis; the corpus runs
 * below, live ones with their progress and a cancel button.
 */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { CorpusRunSummary } from '../../engine/protocol.js';
import { cancelCorpusRun, evaluateCorpus, openCorpusRun, resumable, resumeCorpusRun } from '../commands/corpus.js';
import { EmptyState } from '../components/EmptyState.js';
import { PageHeader } from '../components/PageHeader.js';
import { ProgressBar } from '../components/ProgressBar.js';
import { formatBitsPerByte, formatTime } from '../lib/format.js';
import { type CorpusProgress, type CorpusState, setCorpusLimit, setCorpusPath, useCorpusStore } from '../stores/corpus.js';
import { type DocumentsState, toggleModel, useDocumentsStore } from '../stores/documents.js';
import { isActive } from '../stores/runs.js';
import { useViewStore } from '../stores/view.js';

const selectForm = (s: CorpusState) => ({ path: s.path, documents: s.documents, maxTokens: s.maxTokens, jobs: s.jobs, runs: s.runs, loaded: s.loaded, progress: s.progress });
const selectModels = (s: DocumentsState) => ({ models: s.models, selected: s.selectedModels });
const numberOrNull = (text: string) => (text.trim() === '' ? null : Number(text));

const limits = [
  { name: 'documents', label: 'First documents', placeholder: 'All', title: 'Only the first N usable documents of the corpus.' },
  { name: 'maxTokens', label: 'First tokens', placeholder: 'Whole documents', title: 'Only the first L tokens of each document.' },
  { name: 'jobs', label: 'Jobs', placeholder: 'One per core', title: 'Documents read at once, one worker thread each.' },
] as const;

export const CorpusView = memo(function CorpusView() {
  const form = useCorpusStore(useShallow(selectForm));
  const { models, selected } = useDocumentsStore(useShallow(selectModels));
  const starting = useViewStore((s) => s.pending.evaluateCorpus === true);
  return (
    <section className="view" data-testid="corpus-view" aria-label="Evaluate corpus">
      <PageHeader
        title="Evaluate corpus"
        subtitle="Every document through every selected model: NLL by position with its 95% interval over the corpus, and bits per byte per document."
        actions={<button type="button" className="button button-primary" onClick={() => void evaluateCorpus()} disabled={starting || form.path.trim() === '' || selected.length === 0}>Evaluate corpus</button>}
      />
      <div className="run-settings" role="group" aria-label="Corpus settings">
        <label className="picker-field corpus-path" title="A folder of .txt files, or a .jsonl, .parquet or .arrow file with a text field, on the engine's machine.">
          Corpus
          <input type="text" aria-label="Corpus path" placeholder="/data/pg19-test.parquet or a folder of .txt books" value={form.path} onChange={(e) => setCorpusPath(e.target.value)} />
        </label>
        {limits.map((l) => (
          <label key={l.name} className="picker-field" title={l.title}>
            {l.label}
            <input type="number" aria-label={l.label} min={1} step={1} inputMode="numeric" placeholder={l.placeholder} value={form[l.name] ?? ''}
              onChange={(e) => setCorpusLimit(l.name, numberOrNull(e.target.value))} />
          </label>
        ))}
      </div>
      <fieldset className="corpus-models">
        <legend>Models <span className="muted">(the same selection as Run analysis)</span></legend>
        {models.length === 0 ? <span className="muted">No models yet: add one on the Models page.</span> : models.map((m) => (
          <label key={m.dir} className="picker-check" title={m.dir}>
            <input type="checkbox" checked={selected.includes(m.dir)} onChange={() => toggleModel(m.dir)} />
            {m.name} <span className="muted">({m.architecture})</span>
          </label>
        ))}
      </fieldset>
      {!form.loaded ? <EmptyState title="Loading corpus runs…" loading /> : form.runs.length === 0 ? (
        <EmptyState title="No corpus runs yet">
          A corpus run averages each model&apos;s per-token loss by position over many documents, the curve that says whether a model uses long context.
        </EmptyState>
      ) : (
        <ul className="runs" aria-label="Corpus runs">
          {form.runs.map((run) => <CorpusRunItem key={run.id} run={run} progress={form.progress[run.id]} />)}
        </ul>
      )}
    </section>
  );
});

const CorpusRunItem = memo(function CorpusRunItem({ run, progress }: { run: CorpusRunSummary; progress?: CorpusProgress }) {
  const name = `${run.corpus} · ${run.models.map((m) => m.name).join(', ')}`;
  const live = isActive(run.status);
  const fraction = progress ? progress.done / Math.max(1, progress.total) : run.status === 'finished' ? 1 : 0;
  return (
    <li className="run" aria-label={name} data-testid="corpus-run-item" data-status={run.status}>
      <div className="run-main">
        <button type="button" className="run-title" onClick={() => void openCorpusRun(run.id)} disabled={run.status === 'queued'}>
          <span className="strong">{run.corpus}</span><span className="muted"> · {run.models.map((m) => `${m.name} ${formatBitsPerByte(m.bitsPerByte)}`).join(', ')}</span>
        </button>
        <p className="run-meta">
          <span className={`status status-${run.status}`}>{run.status}</span>
          <span className="muted">{formatTime(run.createdAt)}</span>
          {run.documents > 0 && <span className="muted">{run.documents} documents{run.format ? ` (${run.format})` : ''}</span>}
        </p>
      </div>
      <div className="run-progress">
        <ProgressBar fraction={fraction} label={`Progress of ${name}`} tone={live ? 'active' : run.status === 'finished' ? 'done' : 'stopped'} />
      </div>
      <div className="run-actions">
        <button type="button" className="button button-small" onClick={() => void openCorpusRun(run.id)} disabled={run.status === 'queued'} aria-label={`Open ${name}`}>Open</button>
        {live && <button type="button" className="button button-small button-danger" onClick={() => void cancelCorpusRun(run.id)}>Cancel run</button>}
        {resumable(run.status) && <button type="button" className="button button-small" onClick={() => void resumeCorpusRun(run.id)} aria-label={`Resume ${name}`}>Resume</button>}
      </div>
    </li>
  );
});
