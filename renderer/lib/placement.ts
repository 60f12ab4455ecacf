/**
 * Where a model runs, as people read it: the backend, its GPU adapter (and whether that is a software one), the
 * threads each stage computes on, and the pipeline stages (the contiguous layer ranges, one worker thread each).
 * Display formatting only: the engine decides all of it and records it in the run's manifest.
 */
import type { AdapterInfo, BackendAvailability, BackendInfo, LayerRange } from '../../engine/protocol.js';

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** "layers 0–1 | 2–3" from [start, end) ranges; a one-layer stage is its layer alone ("layers 0 | 1"). */
export function formatLayerRanges(ranges: readonly LayerRange[]): string {
  const range = (r: LayerRange) => (r.end - r.start <= 1 ? `${r.start}` : `${r.start}–${r.end - 1}`);
  const single = ranges.length === 1 && ranges[0].end - ranges[0].start <= 1;
  return `${single ? 'layer' : 'layers'} ${ranges.map(range).join(' | ')}`;
}

/** "2 stages: layers 0–1 | 2–3". */
export const formatStages = (ranges: readonly LayerRange[]): string => `${plural(ranges.length, 'stage')}: ${formatLayerRanges(ranges)}`;

/** The adapter's name for itself (its description), else its vendor and architecture. */
export const adapterName = (adapter: AdapterInfo): string =>
  adapter.description || [adapter.vendor, adapter.architecture].filter(Boolean).join(' ') || 'unnamed adapter';

/** Threads per stage, where that says something: a WebGPU stage computes on its adapter. */
export const formatThreads = (backend: BackendInfo): string | null =>
  backend.name === 'webgpu' ? null : `${plural(backend.threads, 'thread')} per stage`;

/** Everything about a backend in one line, for tooltips: "wasm: WebAssembly (XNNPACK), 1 thread per stage, TF.js 4.22.0". */
export function backendDetails(backend: BackendInfo): string {
  const adapter = backend.adapter && `${adapterName(backend.adapter)}${backend.adapter.vendor ? ` (${backend.adapter.vendor})` : ''}${backend.adapter.software ? ', a software adapter' : ''}`;
  return `${backend.name}: ${[backend.detail, adapter, formatThreads(backend), `TF.js ${backend.tfjsVersion}`].filter(Boolean).join(', ')}`;
}

/** A run's stages in a few words for the runs list: "2 stages", or each model's count where they differ. */
export function summarizeStages(models: readonly { readonly name: string; readonly stages?: readonly LayerRange[] }[]): string | null {
  const placed = models.filter((m) => m.stages && m.stages.length > 0);
  if (placed.length === 0) return null;
  const counts = new Set(placed.map((m) => m.stages!.length));
  if (counts.size === 1) return plural(placed[0].stages!.length, 'stage');
  return placed.map((m) => `${m.name} ${plural(m.stages!.length, 'stage')}`).join(', ');
}

/** A backend as the choice before a run lists it: unavailable ones say why, WebGPU names its adapter. */
export function backendChoiceLabel(backend: BackendAvailability): string {
  if (!backend.available) return `${backend.name} — unavailable: ${backend.reason ?? 'it cannot start here'}`;
  if (!backend.adapter) return backend.name;
  return `${backend.name} — ${adapterName(backend.adapter)}${backend.adapter.software ? ' (software)' : ''}`;
}
