/**
 * Probes domain: the probe runs (summaries from the engine) and their live progress, the one being looked at with its
 * settings, the form of the next probe, and what the needle heatmaps colour by. The probes' numbers themselves live
 * in the series buffers (renderer/series/buffers.ts), as the charts draw them.
 */
import { create } from 'zustand';
import type { InterventionKind, NotificationParams, ProbeKind, ProbeSummary } from '../../engine/protocol.js';
import type { NeedleMeasure } from '../lib/probe-figures.js';

export type ProbeProgress = NotificationParams<'probe.progress'>;

/** The next probe's settings, as the form holds them (null: the engine's default). */
export interface ProbeForm {
  readonly kind: ProbeKind;
  /** Context lengths: powers of two from `minLength` (default 1,024) to `maxLength` (default 16,384). */
  readonly minLength: number | null;
  readonly maxLength: number | null;
  /** How many needle depths, evenly from 0% to 100%. */
  readonly depths: number | null;
  readonly keys: number | null;
  readonly spanTokens: number | null;
  readonly maxDistance: number | null;
  /** One intervention, or null: the engine's default (frozen and reset). */
  readonly intervention: InterventionKind | null;
  readonly at: number;
  readonly maxTokens: number | null;
  /** Path of the book transplanted from (one of the library's books). */
  readonly donor: string | null;
}

/** The probe being looked at: which kind, and what its charts draw (models; interventions and their position t). */
export interface ProbeShown {
  readonly id: string;
  readonly kind: ProbeKind;
  readonly models: readonly { readonly model: string; readonly name: string }[];
  readonly settings: readonly (readonly [string, string])[];
  readonly at: number | null;
  readonly interventions: readonly InterventionKind[];
}

export interface ProbesState {
  /** Newest first, as the engine lists them. */
  readonly probes: readonly ProbeSummary[];
  readonly loaded: boolean;
  readonly progress: Readonly<Record<string, ProbeProgress>>;
  readonly shown: ProbeShown | null;
  /** The probe last started from the page: it shows itself when it finishes. */
  readonly started: string | null;
  readonly form: ProbeForm;
  readonly measure: NeedleMeasure;
}

const initialForm: ProbeForm = {
  kind: 'needle', minLength: null, maxLength: null, depths: null, keys: null, spanTokens: null, maxDistance: null, intervention: null, at: 0, maxTokens: null, donor: null,
};

const initialState: ProbesState = { probes: [], loaded: false, progress: {}, shown: null, started: null, form: initialForm, measure: 'bits' };

export const useProbesStore = create<ProbesState>()(() => initialState);

const ended = (status: ProbeSummary['status']) => status !== 'queued' && status !== 'running';

export function setProbes(probes: readonly ProbeSummary[]): void {
  useProbesStore.setState((s) => ({
    probes,
    loaded: true,
    progress: Object.fromEntries(Object.entries(s.progress).filter(([id]) => probes.some((p) => p.id === id && !ended(p.status)))),
  }));
}

/** A probe the engine just accepted: listed at once as queued, before the next `probe.list`. */
export function addQueuedProbe(probe: ProbeSummary): void {
  useProbesStore.setState((s) => ({ probes: [probe, ...s.probes.filter((p) => p.id !== probe.id)], started: probe.id }));
}

/** A progress notification: the model at work and how far it is. */
export function applyProbeProgress(progress: ProbeProgress): void {
  useProbesStore.setState((s) => ({
    probes: s.probes.map((p) => (p.id === progress.runId && p.status === 'queued' ? { ...p, status: 'running' } : p)),
    progress: { ...s.progress, [progress.runId]: progress },
  }));
}

/** A probe ended: its status and error in the list, and no more progress. */
export function endProbe(runId: string, status: ProbeSummary['status'], error: string | null): void {
  useProbesStore.setState((s) => ({
    probes: s.probes.map((p) => (p.id === runId ? { ...p, status, error } : p)),
    progress: Object.fromEntries(Object.entries(s.progress).filter(([id]) => id !== runId)),
  }));
}

export function showProbe(shown: ProbeShown | null): void {
  useProbesStore.setState({ shown });
}

export function setProbeForm(patch: Partial<ProbeForm>): void {
  useProbesStore.setState((s) => ({ form: { ...s.form, ...patch } }));
}

export function setNeedleMeasure(measure: NeedleMeasure): void {
  useProbesStore.setState({ measure });
}
