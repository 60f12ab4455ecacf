/**
 * plotly.js, loaded by index.html as its own prebuilt script (vendor/plotly.min.js) rather than bundled:
 * re-bundling its 4.6 MB of minified code made every renderer build take most of a minute.
 */
import type * as PlotlyModule from 'plotly.js';

export type { PlotlyModule as PlotlyTypes };

export function plotly(): typeof PlotlyModule {
  const loaded = (globalThis as { Plotly?: typeof PlotlyModule }).Plotly;
  if (!loaded) throw new Error('the chart library (plotly.js) did not load');
  return loaded;
}
