/**
 * Runs seen as they stream: a run's chart aggregates are asked for once (`watchRun`) when it is opened, then kept
 * up to date by the `runData` notifications the engine pushes a few times a second; charts that are not zoomed
 * redraw from them. Nothing here polls.
 */
import type { RunAggregates } from '../../engine/protocol.js';
import { applyAggregates, extremesCurve, hasAggregates, meanCurve } from '../series/aggregates.js';
import type { SeriesBuffer } from '../series/buffers.js';
import { type AggregateDrawer, redrawFromAggregates, type SeriesChartSpec } from './charts.js';
import { attempt, request } from './engine.js';

/** Fetches a run's whole aggregates and redraws its charts from them. */
export async function watchRun(runId: string): Promise<void> {
  const aggregates = await attempt('watchRun', () => request('watchRun', { runId }));
  if (!aggregates) return;
  applyAggregates(aggregates);
  redrawFromAggregates(runId);
}

/** The aggregates of a run, fetched unless they are here already (the report draws from them). */
export async function ensureAggregates(runId: string): Promise<void> {
  if (!hasAggregates(runId)) await watchRun(runId);
}

/** A `runData` notification: what changed in a run someone is looking at. */
export function receiveRunData(update: RunAggregates): void {
  if (applyAggregates(update)) redrawFromAggregates(update.runId);
}

/** A per-layer chart (inner loop, weight metrics, state summary) from the aggregates: the traces its spec names. */
export const drawFromAggregates = (spec: SeriesChartSpec): AggregateDrawer => () =>
  spec.sources.flatMap((source) => source.traces.map((trace): SeriesBuffer => {
    const layer = source.layer ?? 0;
    const curve = source.series === 'innerLoop'
      ? meanCurve(spec.runId, source.model, layer, trace.column)
      : extremesCurve(spec.runId, source.model, source.series === 'modelState' ? 'modelState' : 'hiddenState', layer, trace.column);
    return { modelKey: trace.id ?? trace.column, modelName: trace.name, x: curve.x, y: curve.y, rows: curve.rows, axis: trace.axis };
  })).filter((buffer) => buffer.x.length > 0);
