/**
 * The Probes page's commands: start a probe of the selected models over the open book (the same choice "Run
 * analysis" takes), follow its progress, show a probe run's charts (its results from `probe.get` put into the series
 * buffers as they are: the engine did every sum), and export a probe run as an HTML report.
 */
import type { InterventionKind, MethodResult, NotificationParams, ProbeParams, ProbeView } from '../../engine/protocol.js';
import { formatCount } from '../lib/format.js';
import { copyFigure, firstSuffix, interventionFigure, needleFigure, needleMeasureTitles } from '../lib/probe-figures.js';
import { reportHtml, type ReportFigure, type ReportTable } from '../lib/report-html.js';
import { getSeries, type SeriesBuffer, seriesKey, setSeries } from '../series/buffers.js';
import { useDocumentsStore } from '../stores/documents.js';
import { addQueuedProbe, applyProbeProgress, endProbe, type ProbeForm, type ProbeShown, setProbes, showProbe, useProbesStore } from '../stores/probes.js';
import { showBanner } from '../stores/view.js';
import { attempt, request } from './engine.js';
import { downloadText } from './export.js';
import { svgOf } from './report.js';

/** The series key of one of a probe run's charts (`needle/<model>`, `copy`, `intervene/<intervention>`). */
export const probeChartKey = (runId: string, chart: string): string => seriesKey(`probe:${runId}`, chart);

export const interventionLabels: Record<InterventionKind, string> = { frozen: 'inner loop frozen', reset: 'state reset', transplant: 'state transplanted' };

export async function refreshProbes(): Promise<void> {
  const listed = await attempt('listProbes', () => request('probe.list', {}));
  if (listed) setProbes(listed.probes);
}

const given = <K extends string>(key: K, value: number | string | null) => (value === null ? {} : ({ [key]: value } as Record<K, number | string>));

/** `count` depths evenly from 0 (the start of the context) to 1 (just before the question). */
export const evenDepths = (count: number): number[] => (count <= 1 ? [0] : Array.from({ length: count }, (_, i) => i / (count - 1)));

/** Context lengths: powers of two from `min` up to `max` (the engine's own default when no minimum is asked for). */
export function doublingLengths(min: number, max: number): number[] {
  const lengths: number[] = [];
  for (let L = Math.max(1, Math.floor(min)); L <= max; L *= 2) lengths.push(L);
  return lengths;
}

/** The `probe.start` request for the form's probe of these models over this book (null settings: the engine's defaults). */
export function probeParams(form: ProbeForm, book: string, models: readonly string[]): ProbeParams {
  const inputs = { book, models: [...models] };
  if (form.kind === 'needle') {
    const lengths = form.minLength ? { lengths: doublingLengths(form.minLength, form.maxLength ?? 16384) } : given('maxLength', form.maxLength);
    return { kind: 'needle', ...inputs, ...lengths, ...given('keys', form.keys), ...(form.depths ? { depths: evenDepths(form.depths) } : {}) } as ProbeParams;
  }
  if (form.kind === 'copy') {
    return { kind: 'copy', ...inputs, ...given('spanTokens', form.spanTokens), ...given('maxDistance', form.maxDistance), ...given('maxTokens', form.maxTokens) } as ProbeParams;
  }
  return {
    kind: 'intervene', ...inputs, at: form.at, ...given('maxTokens', form.maxTokens),
    ...(form.intervention ? { interventions: [form.intervention] } : {}),
    ...(form.intervention === 'transplant' ? given('donor', form.donor) : {}),
  } as ProbeParams;
}

export async function startProbe(): Promise<void> {
  const { openBook, selectedModels, models, books } = useDocumentsStore.getState();
  if (!openBook) return showBanner('Open a book first (Library → Open book).');
  if (selectedModels.length === 0) return showBanner('Select at least one model (Models).');
  const { form } = useProbesStore.getState();
  if (form.kind === 'intervene' && form.intervention === 'transplant' && !form.donor) return showBanner('Choose the book whose state is transplanted.');
  const started = await attempt('startProbe', () => request('probe.start', probeParams(form, openBook, selectedModels)));
  if (!started) return;
  addQueuedProbe({
    id: started.runId, kind: form.kind, status: 'queued', createdAt: new Date().toISOString(), detail: '', error: null,
    book: books.find((b) => b.path === openBook)?.name ?? openBook,
    models: selectedModels.map((dir) => ({ name: models.find((m) => m.dir === dir)?.name ?? dir, status: 'queued' as const })),
  });
}

export async function cancelProbe(runId: string): Promise<void> {
  const result = await attempt(`cancel:${runId}`, () => request('cancel', { runId }));
  if (result && !result.cancelled) await refreshProbes();
}

const nan = (values: readonly (number | null)[]) => Float64Array.from(values, (v) => (v === null ? NaN : v));

/** Each chart's traces, by chart key, as the view's numbers stand: no sums, only typed arrays. */
export function probeBuffers(runId: string, view: ProbeView): Map<string, SeriesBuffer[]> {
  const charts = new Map<string, SeriesBuffer[]>();
  if (view.kind === 'needle') {
    const cells = view.lengths.flatMap((length) => view.depths.map((depth) => ({ length, depth })));
    const x = Float64Array.from(cells, (c) => Math.round(c.depth * 1000) / 10); // depth in %, for the axis and the CSV
    const y = Float64Array.from(cells, (c) => c.length);
    for (const m of view.models) {
      const rows = cells.length * m.keys;
      charts.set(probeChartKey(runId, `needle/${m.model}`), [
        { modelKey: 'bits', modelName: needleMeasureTitles.bits, x, y, color: nan(m.bits.flat()), rows },
        { modelKey: 'accuracy', modelName: needleMeasureTitles.accuracy, x, y, color: nan(m.retrieved.flat()), rows },
      ]);
    }
  } else if (view.kind === 'copy') {
    charts.set(probeChartKey(runId, 'copy'), view.models.flatMap((m) => [
      { modelKey: m.model, modelName: m.name, x: Float64Array.from(m.distances), y: nan(m.second), rows: m.distances.length },
      { modelKey: `${m.model}${firstSuffix}`, modelName: `${m.name} (first occurrence)`, x: Float64Array.from(m.distances), y: nan(m.first), rows: m.distances.length },
    ]));
  } else {
    for (const i of view.interventions) {
      charts.set(probeChartKey(runId, `intervene/${i.intervention}`), i.models.map((m) => ({ modelKey: m.model, modelName: m.name, x: Float64Array.from(m.x), y: nan(m.delta), rows: m.rows })));
    }
  }
  return charts;
}

/** A probe run's answer put where the charts read it: its numbers into the series buffers, what it is into the store's shape. */
function receiveProbe(runId: string, { summary, settings, view }: MethodResult<'probe.get'>): ProbeShown {
  if (view) for (const [key, buffers] of probeBuffers(runId, view)) setSeries(key, buffers);
  const models = view?.kind === 'intervene' ? view.interventions[0]?.models ?? [] : view?.models ?? [];
  return {
    id: runId, kind: summary.kind, settings, models: models.map((m) => ({ model: m.model, name: m.name })),
    at: view?.kind === 'intervene' ? view.at : null,
    interventions: view?.kind === 'intervene' ? view.interventions.map((i) => i.intervention) : [],
  };
}

/** Shows a probe run: its charts' data into the buffers, then the page draws them. */
export async function openProbe(runId: string): Promise<void> {
  const got = await attempt('openProbe', () => request('probe.get', { runId }));
  if (got) showProbe(receiveProbe(runId, got));
}

export function handleProbeProgress(progress: NotificationParams<'probe.progress'>): void {
  applyProbeProgress(progress);
}

export function handleProbeFinished({ runId, status, error }: NotificationParams<'probe.finished'>): void {
  endProbe(runId, status, error);
  if (status === 'failed' && error) showBanner(`Probe failed: ${error}`);
  void refreshProbes();
  // the probe started last shows itself when it finishes; others do when nothing else is being looked at
  const { shown, started } = useProbesStore.getState();
  if (status === 'finished' && (!shown || shown.id === runId || started === runId)) void openProbe(runId);
}

/** The report's figures: each chart of the probe, as the page draws it. */
async function probeFigures(shown: ProbeShown): Promise<ReportFigure[]> {
  const figures: ReportFigure[] = [];
  if (shown.kind === 'needle') {
    for (const m of shown.models) {
      const series = getSeries(probeChartKey(shown.id, `needle/${m.model}`));
      for (const measure of ['bits', 'accuracy'] as const) {
        figures.push({ title: `${m.name}: needle retrieval, ${needleMeasureTitles[measure].toLowerCase()}`, svg: await svgOf(needleFigure(measure)(series)) });
      }
    }
  } else if (shown.kind === 'copy') {
    figures.push({ title: 'Copy distance', caption: 'NLL of a repeated span against the distance back to its first occurrence.', svg: await svgOf(copyFigure(getSeries(probeChartKey(shown.id, 'copy')))) });
  } else if (shown.at !== null) {
    for (const kind of shown.interventions) {
      const figure = interventionFigure(shown.at, interventionLabels[kind]);
      figures.push({ title: `ΔNLL, ${interventionLabels[kind]} at t = ${shown.at.toLocaleString('en')}`, svg: await svgOf(figure(getSeries(probeChartKey(shown.id, `intervene/${kind}`)))) });
    }
  }
  return figures;
}

/** The needle cells as a table: one row per model, context length and depth. */
function needleTable(shown: ProbeShown, view: ProbeView): ReportTable[] {
  if (view.kind !== 'needle') return [];
  const rows = view.models.flatMap((m) => view.lengths.flatMap((length, r) => view.depths.map((depth, c) => [
    m.name, formatCount(length), `${Math.round(depth * 100)}%`, m.bits[r][c]?.toFixed(2) ?? '—', m.retrieved[r][c] === null ? '—' : `${Math.round(m.retrieved[r][c]! * 100)}%`,
  ])));
  return [{ caption: `Needle retrieval (${shown.models.length} models)`, head: ['Model', 'Context', 'Depth', 'Key bits', 'Greedy retrieved'], numeric: [1, 2, 3, 4], rows }];
}

export async function exportProbeReport(runId: string): Promise<void> {
  await attempt('exportProbeReport', async () => {
    const got = await request('probe.get', { runId });
    const { summary, view } = got;
    const shown = receiveProbe(runId, got);
    const html = reportHtml({
      title: `${summary.book}: ${summary.kind} probe of ${summary.models.map((m) => m.name).join(', ')}`,
      subtitle: `Probe run ${summary.id} · ${summary.status} · ${summary.detail}`,
      tables: view ? needleTable(shown, view) : [],
      figures: await probeFigures(shown),
      settings: shown.settings,
      generatedBy: `Made by TTT Workbench on ${new Date().toISOString()}.`,
    });
    downloadText(`probe-report-${runId}.html`, html, 'text/html');
  });
}
