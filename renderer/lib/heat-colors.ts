/**
 * Heatmap colours: a token's NLL on a white-to-red scale, or a difference between two models on a blue (this
 * model did better) to red (it did worse) scale. Quantised, so thousands of spans share a few style strings.
 */

/** NLL (nats) at which the red is full: well above log(256) ≈ 5.5, a byte model's uniform guess. */
export const nllScaleMax = 8;
/** Difference (nats) at which blue or red is full. */
export const diffScaleMax = 3;

const steps = 24;
const reds = Array.from({ length: steps + 1 }, (_, i) => `rgba(220, 38, 38, ${((i / steps) * 0.8).toFixed(3)})`);
const blues = Array.from({ length: steps + 1 }, (_, i) => `rgba(37, 99, 235, ${((i / steps) * 0.8).toFixed(3)})`);

const level = (t: number) => Math.round(Math.min(1, Math.max(0, t)) * steps);

export function nllColor(nll: number): string {
  return Number.isNaN(nll) ? 'transparent' : reds[level(nll / nllScaleMax)];
}

export function diffColor(diff: number): string {
  if (Number.isNaN(diff)) return 'transparent';
  return diff < 0 ? blues[level(-diff / diffScaleMax)] : reds[level(diff / diffScaleMax)];
}

export const nllLegend = `linear-gradient(to right, ${reds[0]}, ${reds[steps]})`;
export const diffLegend = `linear-gradient(to right, ${blues[steps]}, ${blues[0]}, ${reds[steps]})`;
