/**
 * A corpus run's exports: the per-document table as CSV, and the whole run as one self-contained HTML report (the
 * NLL-by-position curves with their 95% bands and the scatter as inline SVG, the models, documents, skipped
 * documents and settings), drawn by the same figure builders as the view.
 */
import type { CorpusRun } from '../../engine/protocol.js';
import { corpusCurveFigure, corpusScatterFigure } from '../lib/corpus-figures.js';
import { formatBitsPerByte, formatCount } from '../lib/format.js';
import { backendDetails } from '../lib/placement.js';
import { reportHtml, type ReportTable } from '../lib/report-html.js';
import { scatterModels, useCorpusStore } from '../stores/corpus.js';
import { corpusTable, curveBuffers, scatterPoints } from './corpus.js';
import { attempt, request } from './engine.js';
import { csvField, downloadText } from './export.js';
import { svgOf } from './report.js';

/** Long format: one row per model and document. */
export function corpusDocumentsCsv(run: CorpusRun): string {
  const lines = ['model,document,name,tokens,bytes,nll_sum,bits_per_byte,seconds,worker'];
  for (const [i, m] of run.manifest.models.entries()) {
    for (const d of run.models[i]?.documents ?? []) {
      lines.push([m.name, d.document, d.name, d.tokens, d.bytes, d.nllSum, d.bitsPerByte, d.seconds, d.worker].map(csvField).join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function exportCorpusDocumentsCsv(runId: string): Promise<void> {
  const got = await attempt('exportCorpusCsv', () => request('getCorpusRun', { runId }));
  if (got) downloadText(`corpus-${runId}-documents.csv`, corpusDocumentsCsv(got), 'text/csv');
}

function tables(run: CorpusRun): ReportTable[] {
  const { manifest } = run;
  return [
    {
      caption: 'Models',
      head: ['Model', 'Architecture', 'Documents', 'Failed', 'Tokens', 'Bits per byte', 'Content hash'],
      numeric: [2, 3, 4, 5],
      rows: manifest.models.map((m) => [m.name, m.architecture, `${m.documentsDone} / ${manifest.corpus.documents}`, String(m.documentsFailed), formatCount(m.tokens), formatBitsPerByte(m.bitsPerByte), m.hash.slice(0, 12)]),
    },
    {
      caption: 'Bits per byte per document',
      head: ['Document', 'Bytes', ...manifest.models.map((m) => m.name)],
      numeric: [1, ...manifest.models.map((_, i) => i + 2)],
      rows: corpusTable(run).map((r) => [r.name, formatCount(r.bytes), ...r.bitsPerByte.map(formatBitsPerByte)]),
    },
    ...(manifest.corpus.skipped.length ? [{ caption: 'Skipped documents', head: ['Document', 'Why'], rows: manifest.corpus.skipped.map((s) => [s.name, s.reason]) }] : []),
    ...(manifest.failures.length ? [{ caption: 'Failed documents', head: ['Model', 'Document', 'Error'], rows: manifest.failures.map((f) => [f.model, f.name, f.error]) }] : []),
  ];
}

function settings(run: CorpusRun): [string, string][] {
  const { manifest: m } = run;
  return [
    ['Run', m.id], ['Status', m.status], ['Created', m.createdAt], ['Finished', m.finishedAt ?? '—'],
    ['Corpus', `${m.corpus.path} (${m.corpus.format})`], ['Documents', `${m.corpus.documents}, ${formatCount(m.corpus.bytes)} bytes`],
    ['First tokens of each', String(m.settings.maxTokens ?? 'all')], ['Chunk', `${m.settings.chunkTokens} tokens`],
    ['Window', m.settings.window === 'full' ? 'full attention (asked for)' : m.settings.window ? `${m.settings.window} tokens` : "each Transformer's trained context"],
    ['Executor', m.settings.executor], ['Backend', backendDetails(m.backend)], ['Bins', m.bins.note],
    ...m.models.map((x): [string, string] => [`Model ${x.name}`, `${x.dir} (sha256 ${x.hash})`]),
    ...Object.entries(m.versions).map(([k, v]): [string, string] => [`Version of ${k}`, v]),
  ];
}

export async function exportCorpusReport(runId: string): Promise<void> {
  await attempt('exportCorpusReport', async () => {
    const run = await request('getCorpusRun', { runId });
    const { manifest } = run;
    const pair = scatterModels({ run, modelA: useCorpusStore.getState().modelA, modelB: useCorpusStore.getState().modelB });
    const figures = [{
      title: 'NLL by token position over the corpus',
      caption: 'Mean NLL per quarter-octave position bin over the documents reaching it, with its 95% interval (documents as the sampled units).',
      svg: await svgOf(corpusCurveFigure(curveBuffers(run))),
    }];
    if (pair) {
      const name = (key: string) => manifest.models.find((m) => m.key === key)?.name ?? key;
      const points = scatterPoints(run, pair[0], pair[1]);
      const buffer = { modelKey: 'documents', modelName: `${name(pair[0])} vs ${name(pair[1])}`, x: Float64Array.from(points.x), y: Float64Array.from(points.y), rows: points.x.length };
      figures.push({
        title: `Bits per byte per document: ${name(pair[0])} (x) against ${name(pair[1])} (y)`,
        caption: 'One point per document; below the diagonal the second model does better.',
        svg: await svgOf(corpusScatterFigure(name(pair[0]), name(pair[1]), points.names)(points.x.length ? [buffer] : [])),
      });
    }
    const html = reportHtml({
      title: `Corpus ${manifest.corpus.path.split(/[\\/]/).filter(Boolean).pop() ?? manifest.corpus.path}: ${manifest.models.map((m) => m.name).join(', ')}`,
      subtitle: `Corpus run ${manifest.id} · ${manifest.status} · ${manifest.corpus.documents} documents · backend ${manifest.backend.name}`,
      tables: tables(run),
      figures,
      settings: settings(run),
      generatedBy: `Made by TTT Workbench on ${new Date().toISOString()}.`,
    });
    downloadText(`report-corpus-${runId}.html`, html, 'text/html');
  });
}
