/**
 * A model as a pipeline of stages (DESIGN.md "Execution"): stage i holds a contiguous range of layers
 * [start, end), plus the embedding when it is the first stage and the final norm and head when it is the last.
 * One stage holding every layer is the whole model. Each family's `forwardStage` is a pure function of
 * (token ids or the previous stage's [T, C] hidden states, the state of its own layers); this file holds what the
 * families share: ranges, which checkpoint tensors a stage needs, and how many parameters it counts.
 */
import { workbenchError } from '../core/errors.js';
import type { WeightMap, WeightSpec } from '../core/weights.js';

/** Layers [start, end) of a model. */
export interface LayerRange {
  readonly start: number;
  readonly end: number;
}

export const wholeModel = (numLayers: number): LayerRange => ({ start: 0, end: numLayers });

/** A non-empty range inside [0, numLayers), or a one-line error naming it. */
export function checkLayerRange(range: LayerRange | undefined, numLayers: number, source: string): LayerRange {
  if (range === undefined) return wholeModel(numLayers);
  const { start, end } = range;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > numLayers || start >= end) {
    throw workbenchError('E_CONFIG', source, `layer range [${start}, ${end}) is not inside the model's ${numLayers} layers`);
  }
  return range;
}

/** The layer a reference-named tensor belongs to (`model.layers.3.…`, `backbone.layers.3.…` → 3); null for the rest. */
export function layerOfTensor(name: string): number | null {
  const match = /(?:^|\.)layers\.(\d+)\./.exec(name);
  return match ? Number(match[1]) : null;
}

/** The non-layer tensors of a checkpoint, by role. */
export interface SharedTensors {
  readonly embedding: string;
  /** The head shares the embedding's weights (then the last stage needs the embedding too). */
  readonly tied: boolean;
}

/**
 * The part of a model's tensor list that a stage uses: its layers' tensors, the embedding when it embeds tokens (or
 * computes a head tied to it), and every other non-layer tensor (final norm, untied head) when it is the last stage.
 */
export function stageWeightSpecs(specs: readonly WeightSpec[], range: LayerRange, numLayers: number, shared: SharedTensors): WeightSpec[] {
  const last = range.end === numLayers;
  return specs.filter((spec) => {
    const layer = layerOfTensor(spec.name);
    if (layer !== null) return layer >= range.start && layer < range.end;
    if (spec.name === shared.embedding) return range.start === 0 || (last && shared.tied);
    return last;
  });
}

/**
 * The tensors of `tensors` a stage may see: those the full model expects but this stage does not are dropped
 * (other stages hold them), so the stage's weight check still reports every missing, mis-shaped or unknown tensor.
 */
export function tensorsForStage(tensors: WeightMap, allSpecs: readonly WeightSpec[], stageSpecs: readonly WeightSpec[]): WeightMap {
  if (allSpecs.length === stageSpecs.length) return tensors;
  const mine = new Set(stageSpecs.map((s) => s.name));
  const others = new Set(allSpecs.filter((s) => !mine.has(s.name)).map((s) => s.name));
  return new Map([...tensors].filter(([name]) => !others.has(name)));
}

/** Parameters of a stage: its tensors, the embedding counted only by the stage that embeds (a tied head reuses it). */
export function stageParameterCount(stageSpecs: readonly WeightSpec[], range: LayerRange, embedding: string): number {
  return stageSpecs
    .filter((s) => s.name !== embedding || range.start === 0)
    .reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * Estimated time per token of each part of a model on one CPU thread (microseconds; only the ratios matter), for
 * balancing stages: the head with a 32,000-token vocabulary costs as much as several layers of a 125M model.
 */
export interface StageCosts {
  readonly layers: readonly number[];
  readonly head: number;
}

/** µs per multiply-add of a large dense matMul on one wasm thread (~25 GFLOP/s). */
export const denseMacMicros = 8e-5;

/** µs per vocabulary entry for the head's softmax statistics (log-sum-exp over every logit). */
export const logitMicros = 0.004;

/**
 * Splits a model into `stages` contiguous ranges of at least one layer each, minimising the most expensive stage
 * (the classic linear partition, by dynamic programming). The head goes with the last layer, so "holds layer
 * L−1" and "computes the logits" stay the same thing; more stages than layers: one layer per stage.
 */
export function balanceStages(costs: StageCosts, stages: number): LayerRange[] {
  const parts = costs.layers.map((c, i) => c + (i === costs.layers.length - 1 ? costs.head : 0));
  const n = parts.length;
  const S = Math.max(1, Math.min(stages, n));
  const prefix = [0];
  for (const c of parts) prefix.push(prefix[prefix.length - 1] + c);
  // best[s][i]: least possible maximum over splitting layers [0, i) into s stages; cut[s][i]: where the last begins
  const best = Array.from({ length: S + 1 }, () => new Array<number>(n + 1).fill(Infinity));
  const cut = Array.from({ length: S + 1 }, () => new Array<number>(n + 1).fill(0));
  best[0][0] = 0;
  for (let s = 1; s <= S; s++) {
    for (let i = s; i <= n; i++) {
      for (let j = s - 1; j < i; j++) {
        const worst = Math.max(best[s - 1][j], prefix[i] - prefix[j]);
        if (worst < best[s][i]) {
          best[s][i] = worst;
          cut[s][i] = j;
        }
      }
    }
  }
  const bounds: number[] = [n];
  for (let s = S, i = n; s > 0; s--) {
    i = cut[s][i];
    bounds.unshift(i);
  }
  return Array.from({ length: S }, (_, k) => ({ start: bounds[k], end: bounds[k + 1] }));
}
