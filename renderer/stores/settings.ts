/**
 * Settings domain: how the next analysis runs. The backend picked (null: "Automatic", the engine's own backend)
 * and the pipeline stages per model (null: the backend's default, one per core on CPU backends). They stay as the
 * person left them for every later run of the session. What the app keeps across launches (window, recent books)
 * lives in Electron main's settings file, which the page cannot reach; these are not kept there (yet).
 */
import { create } from 'zustand';
import { type BackendName, maxStages } from '../../engine/protocol.js';

export interface SettingsState {
  readonly backend: BackendName | null;
  readonly stages: number | null;
}

const initialState: SettingsState = { backend: null, stages: null };

export const useSettingsStore = create<SettingsState>()(() => initialState);

export function setBackendChoice(backend: BackendName | null): void {
  useSettingsStore.setState({ backend });
}

/** Anything but a whole number ≥ 1 means "Automatic"; more than the engine accepts is the most it accepts. */
export function setStagesChoice(stages: number | null): void {
  useSettingsStore.setState({ stages: stages !== null && Number.isInteger(stages) && stages >= 1 ? Math.min(stages, maxStages) : null });
}

/** A remembered backend that the engine now says cannot start goes back to "Automatic". */
export function forgetUnavailableBackend(available: readonly BackendName[]): void {
  useSettingsStore.setState((s) => (s.backend !== null && !available.includes(s.backend) ? { backend: null } : s));
}
