/**
 * How the next analysis runs: the backend (Automatic is the engine's own; backends that cannot start on the
 * engine's machine are listed greyed out with the reason) and the pipeline stages per model (Automatic: the chosen
 * backend's default). The choice stays for later runs.
 */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { BackendName, maxStages } from '../../engine/protocol.js';
import { backendChoiceLabel } from '../lib/placement.js';
import { type ConnectionState, useConnectionStore } from '../stores/connection.js';
import { setBackendChoice, setStagesChoice, type SettingsState, useSettingsStore } from '../stores/settings.js';

const selectBackends = (s: ConnectionState) => ({ backends: s.backends, defaultBackend: s.defaultBackend });
const selectChoice = (s: SettingsState) => ({ backend: s.backend, stages: s.stages });

export const RunSettings = memo(function RunSettings() {
  const { backends, defaultBackend } = useConnectionStore(useShallow(selectBackends));
  const { backend, stages } = useSettingsStore(useShallow(selectChoice));
  const chosen = backends.find((b) => b.name === (backend ?? defaultBackend));
  const software = chosen?.adapter?.software === true && backend !== null;
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
          placeholder={`Automatic${chosen ? ` (${chosen.defaultStages})` : ''}`}
          onChange={(e) => setStagesChoice(e.target.value === '' ? null : Number(e.target.value))}
        />
      </label>
      {software && <span className="run-settings-note">A software adapter emulates a GPU on the CPU: expect it to be slower than wasm.</span>}
    </div>
  );
});
