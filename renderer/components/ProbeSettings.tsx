/**
 * The next probe: which one, the models it runs (the same selection "Run analysis" takes, shared with the Models
 * page), and its settings. Empty fields leave the engine's defaults.
 */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { InterventionKind, ProbeKind } from '../../engine/protocol.js';
import { interventionLabels } from '../commands/probes.js';
import { type DocumentsState, toggleModel, useDocumentsStore } from '../stores/documents.js';
import { type ProbesState, setProbeForm, useProbesStore } from '../stores/probes.js';

const selectModels = (s: DocumentsState) => ({ models: s.models, selected: s.selectedModels, books: s.books, openBook: s.openBook });
const selectForm = (s: ProbesState) => s.form;

const probeLabels: Record<ProbeKind, string> = { needle: 'Needle retrieval', copy: 'Copy distance', intervene: 'Intervention' };

const numberOrNull = (text: string) => (text.trim() === '' || !Number.isFinite(Number(text)) ? null : Number(text));

function NumberField({ label, value, placeholder, onChange, title }: {
  readonly label: string; readonly value: number | null; readonly placeholder?: string; readonly title?: string; readonly onChange: (value: number | null) => void;
}) {
  return (
    <label className="picker-field" title={title}>
      {label}
      <input type="number" aria-label={label} min={0} step={1} inputMode="numeric" value={value ?? ''} placeholder={placeholder ?? 'Default'}
        onChange={(e) => onChange(numberOrNull(e.target.value))} />
    </label>
  );
}

export const ProbeSettings = memo(function ProbeSettings() {
  const { models, selected, books, openBook } = useDocumentsStore(useShallow(selectModels));
  const form = useProbesStore(selectForm);
  return (
    <div className="stack" data-testid="probe-settings">
      <fieldset className="run-choice">
        <legend>Models</legend>
        {models.map((m) => (
          <label key={m.dir} className="run-choice-item">
            <input type="checkbox" checked={selected.includes(m.dir)} onChange={() => toggleModel(m.dir)} aria-label={`Probe ${m.name}`} />
            {m.name} <span className="muted">· {m.architecture}</span>
          </label>
        ))}
      </fieldset>
      <div className="run-settings" role="group" aria-label="Probe settings">
        <label className="picker-field">
          Probe
          <select aria-label="Probe" value={form.kind} onChange={(e) => setProbeForm({ kind: ProbeKind.parse(e.target.value) })}>
            {ProbeKind.options.map((p) => <option key={p} value={p}>{probeLabels[p]}</option>)}
          </select>
        </label>
        {form.kind === 'needle' && <>
          <NumberField label="Shortest context" value={form.minLength} placeholder="1024" title="Context lengths are powers of two from this many tokens." onChange={(minLength) => setProbeForm({ minLength })} />
          <NumberField label="Longest context" value={form.maxLength} placeholder="16384" title="Context lengths are powers of two up to this many tokens." onChange={(maxLength) => setProbeForm({ maxLength })} />
          <NumberField label="Depths" value={form.depths} placeholder="6" title="Needle depths, evenly from 0% to 100% of the context." onChange={(depths) => setProbeForm({ depths })} />
          <NumberField label="Keys per cell" value={form.keys} placeholder="3" onChange={(keys) => setProbeForm({ keys })} />
        </>}
        {form.kind === 'copy' && <>
          <NumberField label="Span (tokens)" value={form.spanTokens} onChange={(spanTokens) => setProbeForm({ spanTokens })} />
          <NumberField label="Longest distance" value={form.maxDistance} placeholder="Whole book" onChange={(maxDistance) => setProbeForm({ maxDistance })} />
          <NumberField label="First tokens" value={form.maxTokens} placeholder="Whole book" title="Spans and their repeats only within the book's first N tokens." onChange={(maxTokens) => setProbeForm({ maxTokens })} />
        </>}
        {form.kind === 'intervene' && <>
          <label className="picker-field">
            Intervention
            <select aria-label="Intervention" value={form.intervention ?? ''} onChange={(e) => setProbeForm({ intervention: e.target.value ? InterventionKind.parse(e.target.value) : null })}>
              <option value="">Frozen and reset</option>
              {InterventionKind.options.map((k) => <option key={k} value={k}>{interventionLabels[k][0].toUpperCase() + interventionLabels[k].slice(1)}</option>)}
            </select>
          </label>
          <NumberField label="Position t" value={form.at} placeholder="0" title="The token position the intervention takes effect at (0: from the start)." onChange={(at) => setProbeForm({ at: at ?? 0 })} />
          <NumberField label="First tokens" value={form.maxTokens} placeholder="Whole book" onChange={(maxTokens) => setProbeForm({ maxTokens })} />
          {form.intervention === 'transplant' && (
            <label className="picker-field" title="The state the models had after reading this book replaces theirs at t.">
              State from
              <select aria-label="State from" value={form.donor ?? ''} onChange={(e) => setProbeForm({ donor: e.target.value || null })}>
                <option value="">Choose a book…</option>
                {books.filter((b) => b.path !== openBook).map((b) => <option key={b.path} value={b.path}>{b.name}</option>)}
              </select>
            </label>
          )}
        </>}
      </div>
    </div>
  );
});
