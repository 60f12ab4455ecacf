/** Exports: a chart's picture (PNG, SVG) through Plotly, the data behind it as CSV, and text files in general. */
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

export const csvField = (value: string | number | null): string =>
  value === null ? '' : typeof value === 'number' ? String(value) : /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;

/** Column names of a chart's CSV: what a trace is (model, loss …), what x and y are, and the colour, if any. */
export interface CsvColumns {
  readonly series: string;
  readonly x: string;
  readonly y: string;
  readonly color?: string;
}

/** Long format, one row per trace and point, so spreadsheets and pandas pivot it as they like. */
export function seriesCsv(key: string, columns: CsvColumns): string {
  const lines = [[columns.series, columns.x, columns.y, ...(columns.color ? [columns.color] : []), 'points_from_rows'].join(',')];
  for (const series of getSeries(key)) {
    for (let i = 0; i < series.x.length; i++) {
      const color = columns.color ? [series.color?.[i] ?? null] : [];
      lines.push([series.modelName, series.x[i], series.y[i], ...color, series.rows].map(csvField).join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Saves text as a download (the browser's, or Electron's save dialog). */
export function downloadText(filename: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function exportSeriesCsv(key: string, columns: CsvColumns, filename: string): void {
  downloadText(`${filename}.csv`, seriesCsv(key, columns), 'text/csv');
}
