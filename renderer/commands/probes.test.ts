import { beforeEach, describe, expect, it } from 'vitest';
import type { StoreApi } from 'zustand';
import type { MethodResult } from '../../engine/protocol.js';
import { copyFigure, interventionFigure, needleFigure } from '../lib/probe-figures.js';
import { clearSeries, getSeries } from '../series/buffers.js';
import { useDocumentsStore } from '../stores/documents.js';
import { setProbeForm, useProbesStore } from '../stores/probes.js';
import { useViewStore } from '../stores/view.js';
import { fakeTransport } from '../../test/helpers/fake-transport.js';
import { useTransport } from './engine.js';
import { seriesCsv } from './export.js';
import { evenDepths, probeBuffers, probeChartKey, probeParams, startProbe } from './probes.js';
import { handleNotification } from './runs.js';

const stores = [useDocumentsStore, useProbesStore, useViewStore] as const;
const reset = <S>(store: StoreApi<S>) => store.setState(store.getInitialState(), true);

const flush = () => new Promise((r) => setTimeout(r, 0));

const summary = { id: 'p1', kind: 'needle' as const, status: 'finished' as const, createdAt: '2026-01-01T00:00:00Z', book: 'a.txt', models: [{ name: 'tiny', status: 'finished' as const }], detail: '', error: null };

/** Two lengths × three depths of one model; the cell (2048, 50%) was not measured. */
const needleAnswer: MethodResult<'probe.get'> = {
  summary, settings: [['Probe', 'needle']],
  view: {
    kind: 'needle', lengths: [1024, 2048], depths: [0, 0.5, 1],
    models: [{ model: '0-tiny', name: 'tiny', keys: 3, bits: [[10, 12, 14], [20, null, 24]], retrieved: [[1, 2 / 3, 1 / 3], [0, null, 0]] }],
  },
};

beforeEach(() => {
  stores.forEach((store) => reset(store as StoreApi<unknown>));
  clearSeries();
});

describe('probe commands', () => {
  it('asks for the form\'s probe of the selected models over the open book, leaving defaults to the engine', () => {
    const form = useProbesStore.getState().form;
    expect(probeParams(form, '/b/a.txt', ['/m/tiny'])).toEqual({ kind: 'needle', book: '/b/a.txt', models: ['/m/tiny'] });
    expect(probeParams({ ...form, maxLength: 4096, depths: 3, keys: 2 }, '/b', ['/m'])).toEqual({ kind: 'needle', book: '/b', models: ['/m'], maxLength: 4096, depths: [0, 0.5, 1], keys: 2 });
    expect(probeParams({ ...form, kind: 'intervene', at: 64, intervention: 'transplant', donor: '/b/other.txt' }, '/b', ['/m']))
      .toEqual({ kind: 'intervene', book: '/b', models: ['/m'], at: 64, interventions: ['transplant'], donor: '/b/other.txt' });
    expect(probeParams({ ...form, kind: 'copy', spanTokens: 16, maxTokens: 4096 }, '/b', ['/m'])).toEqual({ kind: 'copy', book: '/b', models: ['/m'], spanTokens: 16, maxTokens: 4096 });
    expect(probeParams({ ...form, minLength: 256, maxLength: 1024 }, '/b', ['/m'])).toEqual({ kind: 'needle', book: '/b', models: ['/m'], lengths: [256, 512, 1024] });
    expect(evenDepths(6)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('starts a probe, follows it, and when it finishes shows its heatmap cells as the engine sent them', async () => {
    const fake = fakeTransport({
      'probe.start': () => ({ runId: 'p1' }),
      'probe.list': () => ({ probes: [summary] }),
      'probe.get': () => needleAnswer,
    });
    useTransport(fake.transport);
    useDocumentsStore.setState({ openBook: '/b/a.txt', selectedModels: ['/m/tiny'] });
    setProbeForm({ keys: 3 });
    await startProbe();
    expect(fake.calls[0]).toEqual({ method: 'probe.start', params: { kind: 'needle', book: '/b/a.txt', models: ['/m/tiny'], keys: 3 } });
    expect(useProbesStore.getState().probes[0]).toMatchObject({ id: 'p1', status: 'queued' });

    handleNotification('probe.progress', { runId: 'p1', kind: 'needle', model: 'tiny', status: 'running', tokensDone: 50, tokensTotal: 200, stage: 'L 1024' });
    expect(useProbesStore.getState().probes[0].status).toBe('running');
    expect(useProbesStore.getState().progress.p1.tokensDone).toBe(50);

    handleNotification('probe.finished', { runId: 'p1', kind: 'needle', status: 'finished', error: null });
    await flush();
    await flush();
    expect(useProbesStore.getState().progress.p1).toBeUndefined();
    expect(useProbesStore.getState().shown).toMatchObject({ id: 'p1', kind: 'needle', models: [{ model: '0-tiny', name: 'tiny' }] });
    const series = getSeries(probeChartKey('p1', 'needle/0-tiny'));
    expect(series.map((s) => s.modelKey)).toEqual(['bits', 'accuracy']);
    expect(Array.from(series[0].x)).toEqual([0, 50, 100, 0, 50, 100]);
    expect(Array.from(series[0].y)).toEqual([1024, 1024, 1024, 2048, 2048, 2048]);
    expect(Array.from(series[0].color!)).toEqual([10, 12, 14, 20, NaN, 24]);

    // the heatmap puts each cell where it belongs, a gap where none was measured; hover carries both numbers
    const heat = needleFigure('accuracy')(series).data[0] as unknown as { z: (number | null)[][]; x: string[]; y: string[]; customdata: unknown[][][] };
    expect(heat.x).toEqual(['0%', '50%', '100%']);
    expect(heat.y).toEqual(['1024', '2048']);
    expect(heat.z).toEqual([[1, 2 / 3, 1 / 3], [0, null, 0]]);
    expect(heat.customdata[0][1]).toEqual([12, (2 / 3) * 100]);
    // the CSV is one row per measure and cell
    const csv = seriesCsv(probeChartKey('p1', 'needle/0-tiny'), { series: 'measure', x: 'depth_percent', y: 'context_tokens', color: 'value' }).trim().split('\n');
    expect(csv[0]).toBe('measure,depth_percent,context_tokens,value,points_from_rows');
    expect(csv).toHaveLength(13);
    expect(csv[6]).toBe('Key bits,100,2048,24,18');
  });

  it('draws a copy curve with its first readings dotted, and each intervention\'s ΔNLL with t marked', () => {
    const copy = probeBuffers('c1', {
      kind: 'copy', spanTokens: 8, models: [{ model: '0-m', name: 'm', distances: [4, 16], second: [1.5, null], first: [2, 2.1] }],
    }).get(probeChartKey('c1', 'copy'))!;
    const traces = copyFigure(copy).data as { name: string; x: number[]; y: number[]; line: { dash: string } }[];
    expect(traces.map((t) => [t.name, t.line.dash])).toEqual([['m', 'solid'], ['m (first occurrence)', 'dot']]);
    expect(traces[0].y).toEqual([1.5, NaN]);
    const charts = probeBuffers('i1', {
      kind: 'intervene', at: 64,
      interventions: [
        { intervention: 'frozen', models: [{ model: '0-t', name: 't', x: [1, 64, 65], delta: [0, 0, 0.5], rows: 3 }], skipped: [{ name: 'mamba', reason: 'no inner loop' }] },
        { intervention: 'reset', models: [{ model: '0-t', name: 't', x: [1, 64, 65], delta: [0, 0, 2], rows: 3 }], skipped: [] },
      ],
    });
    expect([...charts.keys()]).toEqual([probeChartKey('i1', 'intervene/frozen'), probeChartKey('i1', 'intervene/reset')]);
    const figure = interventionFigure(64, 'state reset')(charts.get(probeChartKey('i1', 'intervene/reset'))!);
    expect((figure.data[0] as { y: number[] }).y).toEqual([0, 0, 2]);
    expect(figure.layout.shapes?.[0]).toMatchObject({ x0: 64, x1: 64, yref: 'paper' });
  });

  it('says why a probe failed, in one line', async () => {
    useTransport(fakeTransport({ 'probe.list': () => ({ probes: [] }) }).transport);
    handleNotification('probe.finished', { runId: 'p2', kind: 'copy', status: 'failed', error: 'option length=99999: longer than the book (100 tokens)' });
    expect(useViewStore.getState().banner).toEqual({ tone: 'error', message: 'Probe failed: option length=99999: longer than the book (100 tokens)' });
    await flush();
    expect(useProbesStore.getState().shown).toBeNull();
  });
});
