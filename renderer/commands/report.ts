/**
 * "Export report": a whole run as one self-contained HTML file. The same figures as the live charts (from the
 * same engine methods), rendered by Plotly to static SVG and inlined, with the models table, bits per byte by
 * position range, and the run's settings.
 */
import type { Comparison, RunManifest } from '../../engine/protocol.js';
import {
  baseLayout, type Figure, innerLoopFigure, pcaFigure, perplexityFigure, spectraFigure, stateFigure, stateTitle, weightChangeFigure,
} from '../lib/figures.js';
import { formatBitsPerByte, formatCount, formatDuration, formatRate } from '../lib/format.js';
import { backendDetails, formatStages } from '../lib/placement.js';
import { plotly } from '../lib/plotly.js';
import { type ReportFigure, reportHtml, type ReportTable } from '../lib/report-html.js';
import { innerLoopSpecs, stateSpec, weightSpecs } from './analysis.js';
import { fetchSeriesBuffers } from './charts.js';
import { attempt, request } from './engine.js';
import { downloadText } from './export.js';
import { ensureAggregates } from './live.js';
import { perplexityFromAggregates } from './perplexity.js';

const size = { width: 960, height: 400 };

/** A figure as Plotly's static SVG, at the report's size. */
export async function svgOf(figure: Figure): Promise<string> {
  const layout = { ...baseLayout, ...figure.layout, ...size };
  const url = await plotly().toImage({ data: figure.data, layout } as never, { format: 'svg', ...size });
  return decodeURIComponent(url.slice(url.indexOf(',') + 1));
}

/** Layers worth a chart in a report: the first and the last. */
const reportLayers = (layers: number) => [...new Set([0, layers - 1])];

async function runFigures(manifest: RunManifest): Promise<ReportFigure[]> {
  const figures: ReportFigure[] = [];
  await ensureAggregates(manifest.id);
  const perplexity = perplexityFromAggregates(manifest, 'smoothed', 'perplexity')();
  if (perplexity.length) {
    figures.push({ title: 'Perplexity along the document', caption: 'Mean NLL in log-spaced position bins, as perplexity.', svg: await svgOf(perplexityFigure(true)(perplexity)) });
  }
  for (const model of manifest.models.filter((m) => m.predictedTokens > 0)) {
    if (model.files.innerLoop) {
      for (const layer of reportLayers(model.layers)) {
        const [losses] = innerLoopSpecs(manifest.id, model.key, layer);
        figures.push({ title: `${model.name}: inner-loop loss, layer ${layer}`, svg: await svgOf(innerLoopFigure(await fetchSeriesBuffers(losses, null))) });
      }
    }
    if (model.files.hiddenState) {
      const layer = model.layers - 1;
      const [change] = weightSpecs(manifest.id, model, layer);
      figures.push({ title: `${model.name}: weight change, layer ${layer}`, svg: await svgOf(weightChangeFigure(await fetchSeriesBuffers(change, null))) });
      const s = await request('getSnapshots', { runId: manifest.id, model: model.key, layer });
      const pca = { modelKey: 'pca', modelName: 'W1', x: Float64Array.from(s.pca.x), y: Float64Array.from(s.pca.y), color: Float64Array.from(s.positions), rows: s.positions.length };
      figures.push({ title: `${model.name}: trajectory of W1 (PCA of snapshots), layer ${layer}`, svg: await svgOf(pcaFigure(s.pca.explained)([pca])) });
      const spectra = s.spectra.map((x) => ({ modelKey: String(x.position), modelName: `position ${x.position}`, x: Float64Array.from(x.values, (_, i) => i + 1), y: Float64Array.from(x.values), rows: x.values.length }));
      figures.push({ title: `${model.name}: singular values of W1, layer ${layer}`, svg: await svgOf(spectraFigure(spectra)) });
    }
    if (model.files.modelState) {
      figures.push({ title: `${model.name}: ${stateTitle(model.family)}`, svg: await svgOf(stateFigure(model.family)(await fetchSeriesBuffers(stateSpec(manifest.id, model), null))) });
    }
  }
  return figures;
}

function tables(manifest: RunManifest, comparison: Comparison): ReportTable[] {
  return [
    {
      caption: 'Models',
      head: ['Model', 'Architecture', 'Tokenizer', 'Status', 'Tokens', 'Bits per byte', 'Speed', 'Time', 'Parameters', 'Ran on'],
      numeric: [4, 5, 6, 7, 8],
      rows: manifest.models.map((m) => [
        m.name, m.attention ? `${m.architecture} (${m.attention})` : m.architecture, m.tokenizer, m.status, `${formatCount(m.tokensDone)} / ${formatCount(m.tokensTotal)}`, formatBitsPerByte(m.bitsPerByte),
        formatRate(m.tokensPerSecond), formatDuration(m.wallSeconds), formatCount(m.parameters),
        [manifest.backend.name, ...(m.stages?.length ? [formatStages(m.stages)] : [])].join(' · '),
      ]),
    },
    {
      caption: 'Bits per byte by position range (byte offsets in the book)',
      head: ['Model', 'Overall', ...comparison.ranges.map((r) => r.label)],
      numeric: comparison.ranges.map((_, i) => i + 1).concat([comparison.ranges.length + 1]),
      rows: comparison.rows.map((r) => [r.name, formatBitsPerByte(r.bitsPerByte), ...r.ranges.map(formatBitsPerByte)]),
    },
  ];
}

function settings(manifest: RunManifest): [string, string][] {
  return [
    ['Run', manifest.id], ['Status', manifest.status], ['Created', manifest.createdAt], ['Finished', manifest.finishedAt ?? '—'],
    ['Book', manifest.book.path], ['Book SHA-256', manifest.book.sha256], ['Book size', `${manifest.book.bytes} bytes, ${manifest.book.tokens} tokens`],
    ['Max tokens', String(manifest.settings.maxTokens ?? 'all')], ['Chunk', `${manifest.settings.chunkTokens} tokens`],
    ['Window', manifest.settings.window === 'full' ? 'full attention (asked for)' : manifest.settings.window ? `${manifest.settings.window} tokens` : "each Transformer's trained context"], ['Inner-loop statistics', manifest.settings.innerLoop ? 'on' : 'off'],
    ['Backend', backendDetails(manifest.backend)],
    ...manifest.models.map((m): [string, string] => [`Model ${m.name}`, m.dir]),
    ...Object.entries(manifest.versions).map(([k, v]): [string, string] => [`Version of ${k}`, v]),
  ];
}

export async function exportReport(runId: string): Promise<void> {
  await attempt('exportReport', async () => {
    const { manifest } = await request('getRun', { runId });
    const comparison = await request('getComparison', { runIds: [runId] });
    const html = reportHtml({
      title: `${manifest.book.name}: ${manifest.models.map((m) => m.name).join(', ')}`,
      subtitle: `Run ${manifest.id} · ${manifest.status} · ${formatCount(manifest.book.tokens)} tokens · backend ${manifest.backend.name}`,
      tables: tables(manifest, comparison),
      figures: await runFigures(manifest),
      settings: settings(manifest),
      generatedBy: `Made by TTT Workbench on ${new Date().toISOString()}.`,
    });
    downloadText(`report-${runId}.html`, html, 'text/html');
  });
}
