/** Exports of a chart: the picture (PNG, SVG) through Plotly, the data behind it as CSV. */
import { plotly } from '../lib/plotly.js';
import { getSeries } from '../series/buffers.js';
import { showBanner } from '../stores/view.js';

export async function exportChartImage(plot: HTMLElement | null, format: 'png' | 'svg', filename: string): Promise<void> {
  if (!plot) return;
  try {
    await plotly().downloadImage(plot, { format, filename, width: 1200, height: 600 });
  } catch (error) {
    showBanner(`Could not export the chart: ${(error as Error).message}`);
  }
}

const csvField = (value: string) => (/[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

/** Long format, one row per model and point, so spreadsheets and pandas pivot it as they like. */
export function seriesCsv(key: string, valueName: string): string {
  const lines = [`model,position,${valueName},points_from_rows`];
  for (const series of getSeries(key)) {
    for (let i = 0; i < series.x.length; i++) lines.push(`${csvField(series.modelName)},${series.x[i]},${series.y[i]},${series.rows}`);
  }
  return `${lines.join('\n')}\n`;
}

export function exportSeriesCsv(key: string, valueName: string, filename: string): void {
  const url = URL.createObjectURL(new Blob([seriesCsv(key, valueName)], { type: 'text/csv' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = `${filename}.csv`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
