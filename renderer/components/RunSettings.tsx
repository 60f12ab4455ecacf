/**
 * How the next analysis runs: the backend (Automatic is the engine's own; backends that cannot start on the
 * engine's machine are listed greyed out with the reason), the pipeline stages per model (Automatic: the cores
 * shared among the models), Transformer attention (by default each model's trained context; full attention shows
 * what it would cost before it starts), how much of the book, and whether to record the TTT inner loop. The choices
 * stay for later runs.
 */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { BackendName, maxStages } from '../../engine/protocol.js';
import { chooseWindow } from '../commands/settings.js';
import { formatCount } from '../lib/format.js';
import { backendChoiceLabel } from '../lib/placement.js';
import { type ConnectionState, useConnectionStore } from '../stores/connection.js';
import {
  setBackendChoice, setInnerLoopChoice, setMaxTokensChoice, setStagesChoice, type SettingsState, useSettingsStore,
} from '../stores/settings.js';

const selectBackends = (s: ConnectionState) => ({ backends: s.backends, defaultBackend: s.defaultBackend });
const selectChoice = (s: SettingsState) => ({ backend: s.backend, stages: s.stages, window: s.window, maxTokens: s.maxTokens, innerLoop: s.innerLoop, estimate: s.estimate });

const numberOrNull = (text: string) => (text.trim() === '' ? null : Number(text));
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GiB`;

export const RunSettings = memo(function RunSettings() {
  const { backends, defaultBackend } = useConnectionStore(useShallow(selectBackends));
  const { backend, stages, window, maxTokens, innerLoop, estimate } = useSettingsStore(useShallow(selectChoice));
  const chosen = backends.find((b) => b.name === (backend ?? defaultBackend));
  const software = chosen?.adapter?.software === true && backend !== null;
  const windowMode = window === null ? 'trained' : window === 'full' ? 'full' : 'custom';
  return (
    <div className="run-settings" role="group" aria-label="Run settings" data-testid="run-settings">
      <label className="picker-field">
        Backend
        <select aria-label="Backend" value={backend ?? ''} onChange={(e) => setBackendChoice(e.target.value === '' ? null : BackendName.parse(e.target.value))}>
          <option value="">Automatic{defaultBackend ? ` (${defaultBackend})` : ''}</option>
          {backends.map((b) => (
            <option key={b.name} value={b.name} disabled={!b.available} title={b.reason ?? undefined}>{backendChoiceLabel(b)}</option>
          ))}
        </select>
      </label>
      <label className="picker-field" title="Each model's layers split across this many worker threads, one after the other; results do not depend on it.">
        Stages
        <input
          type="number" aria-label="Stages" min={1} max={maxStages} step={1} inputMode="numeric" value={stages ?? ''}
          placeholder="Automatic"
          onChange={(e) => setStagesChoice(numberOrNull(e.target.value))}
        />
      </label>
      <label className="picker-field" title="How Transformers attend: within the context they were trained on (the default), a window you choose, or the whole book.">
        Attention
        <select aria-label="Attention" value={windowMode} onChange={(e) => void chooseWindow(e.target.value === 'full' ? 'full' : e.target.value === 'custom' ? 1024 : null)}>
          <option value="trained">Trained context (default)</option>
          <option value="custom">Window of…</option>
          <option value="full">Full (whole book)</option>
        </select>
      </label>
      {windowMode === 'custom' && (
        <label className="picker-field">
          Window (tokens)
          <input type="number" aria-label="Window (tokens)" min={1} step={1} inputMode="numeric" value={typeof window === 'number' ? window : ''}
            onChange={(e) => void chooseWindow(numberOrNull(e.target.value) ?? 1)} />
        </label>
      )}
      <label className="picker-field" title="Analyse only the first N tokens of the book; empty: all of it.">
        First tokens
        <input type="number" aria-label="First tokens" min={1} step={1} inputMode="numeric" value={maxTokens ?? ''} placeholder="Whole book"
          onChange={(e) => setMaxTokensChoice(numberOrNull(e.target.value))} />
      </label>
      <label className="picker-check" title="TTT models: the inner loop's losses and the weights' evolution (slower to compute).">
        <input type="checkbox" checked={innerLoop} onChange={(e) => setInnerLoopChoice(e.target.checked)} />
        Inner-loop statistics
      </label>
      {software && <span className="run-settings-note">A software adapter emulates a GPU on the CPU: expect it to be slower than wasm.</span>}
      {windowMode === 'full' && estimate && estimate.length > 0 && (
        <p className="run-settings-note" data-testid="attention-estimate">
          Full attention past a model's trained context is not how it was trained, and its cost grows with the square of the book:{' '}
          {estimate.map((m) => `${m.name}: ${formatCount(m.tokens)} tokens, about ${gib(m.memoryBytes)}, ${(m.attentionFlops / 1e12).toFixed(2)} TFLOP of attention`).join('; ')}.
        </p>
      )}
    </div>
  );
});
