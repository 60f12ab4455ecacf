/**
 * Learning-rate schedules: the outer loop's linear warm-up then cosine decay (as nanoGPT's `get_lr`), and the warm-up
 * of TTT-MLP's inner-loop base learning rate with which the TTT paper (arXiv 2407.04620) trains it: η_base rises
 * linearly from 0.01 to its final 0.1 while the outer learning rate warms up.
 */

export interface ScheduleOptions {
  readonly peakLr: number;
  readonly warmupSteps: number;
  readonly totalSteps: number;
  /** The decay ends at peakLr · minLrRatio (nanoGPT: 0.1). */
  readonly minLrRatio: number;
}

/** Learning rate of update `step` (0-based): (step+1)/W of the peak during warm-up, then a half cosine to the floor. */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (step < o.warmupSteps) return (o.peakLr * (step + 1)) / o.warmupSteps;
  const minLr = o.peakLr * o.minLrRatio;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  const progress = Math.min(1, (step - o.warmupSteps) / span);
  return minLr + 0.5 * (o.peakLr - minLr) * (1 + Math.cos(Math.PI * progress));
}

/** Inner-loop base learning rate of update `step`: from target/10 up to `target` (0.01 → 0.1 in the paper) over the warm-up. */
export function tttBaseLrAt(step: number, warmupSteps: number, target: number): number {
  if (warmupSteps <= 0 || step >= warmupSteps) return target;
  const start = target / 10;
  return start + ((target - start) * step) / warmupSteps;
}
