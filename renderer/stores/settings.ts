/**
 * Settings domain: how the next analysis runs. The backend picked (null: "Automatic", the engine's own backend)
 * and the pipeline stages per model (null: the backend's default, one per core on CPU backends). They stay as the
 * person left them for every later run of the session. What the app keeps across launches (window, recent books)
 * lives in Electron main's settings file, which the page cannot reach; these are not kept there (yet).
 */
import { create } from 'zustand';
import { type BackendName, maxStages, type MethodResult } from '../../engine/protocol.js';

export type AnalysisEstimate = MethodResult<'estimateAnalysis'>['models'];

export interface SettingsState {
  readonly backend: BackendName | null;
  readonly stages: number | null;
  /** Transformer attention: null, each model's trained context (the honest default); a window in tokens; or full. */
  readonly window: number | 'full' | null;
  /** Analyse only the first N tokens of the book (null: all of it). */
  readonly maxTokens: number | null;
  /** TTT inner-loop losses and weight metrics (slower; on by default). */
  readonly innerLoop: boolean;
  /** What full attention would take, per model, for the book and models chosen (null: not asked). */
  readonly estimate: AnalysisEstimate | null;
}

const initialState: SettingsState = { backend: null, stages: null, window: null, maxTokens: null, innerLoop: true, estimate: null };

export const useSettingsStore = create<SettingsState>()(() => initialState);

export function setBackendChoice(backend: BackendName | null): void {
  useSettingsStore.setState({ backend });
}

/** Anything but a whole number ≥ 1 means "Automatic"; more than the engine accepts is the most it accepts. */
export function setStagesChoice(stages: number | null): void {
  useSettingsStore.setState({ stages: stages !== null && Number.isInteger(stages) && stages >= 1 ? Math.min(stages, maxStages) : null });
}

const wholeOrNull = (n: number | null) => (n !== null && Number.isInteger(n) && n >= 1 ? n : null);

export function setWindowChoice(window: number | 'full' | null): void {
  useSettingsStore.setState({ window: window === 'full' ? 'full' : wholeOrNull(window), estimate: null });
}

export function setEstimate(estimate: AnalysisEstimate | null): void {
  useSettingsStore.setState({ estimate });
}

export function setMaxTokensChoice(maxTokens: number | null): void {
  useSettingsStore.setState({ maxTokens: wholeOrNull(maxTokens) });
}

export function setInnerLoopChoice(innerLoop: boolean): void {
  useSettingsStore.setState({ innerLoop });
}

/** A remembered backend that the engine now says cannot start goes back to "Automatic". */
export function forgetUnavailableBackend(available: readonly BackendName[]): void {
  useSettingsStore.setState((s) => (s.backend !== null && !available.includes(s.backend) ? { backend: null } : s));
}
