import { beforeEach, describe, expect, it } from 'vitest';
import type { StoreApi } from 'zustand';
import { forgetAggregates } from '../series/aggregates.js';
import { clearSeries, getRange, getSeries, seriesKey } from '../series/buffers.js';
import { chartKeys, chooseLayer, openTokensAt, showRunTab } from './analysis.js';
import { refineChart } from './charts.js';
import { changePerplexityUnit } from './perplexity.js';
import { comparisonCsv } from './comparison.js';
import { seriesCsv } from './export.js';
import { useAnalysisStore } from '../stores/analysis.js';
import { useConnectionStore } from '../stores/connection.js';
import { useDocumentsStore } from '../stores/documents.js';
import { useRunsStore } from '../stores/runs.js';
import { setBackendChoice, setStagesChoice, useSettingsStore } from '../stores/settings.js';
import { useViewStore } from '../stores/view.js';
import { fakeTransport } from '../../test/helpers/fake-transport.js';
import { connect } from './connect.js';
import { openBookAt } from './library.js';
import { cancelRun, openRun, resumeRun, runAnalysis } from './runs.js';

const stores = [useAnalysisStore, useConnectionStore, useDocumentsStore, useRunsStore, useSettingsStore, useViewStore] as const;

const flush = () => new Promise((r) => setTimeout(r, 0));
const bookInfo = { path: '/b/a.txt', name: 'a.txt', bytes: 100, sha256: 'x', encoding: 'utf-8', tokens: 100, tokenizer: 'bytes', preview: 'In the beginning', builtin: true };
const modelInfo = { dir: '/m/tiny', name: 'tiny', family: 'ttt', architecture: 'TTT-Linear', layers: 2, heads: 4, hiddenSize: 64, vocabSize: 256, tokenizer: 'bytes', details: {}, builtin: true };
const manifest = {
  format: 'ttt-workbench-run/1', id: 'r1', status: 'finished', createdAt: '2026-01-01T00:00:00Z', finishedAt: null,
  book: { path: '/b/a.txt', name: 'a.txt', sha256: 'x', bytes: 100, tokens: 100 }, settings: { maxTokens: null, chunkTokens: 512, window: null, innerLoop: false },
  backend: { name: 'wasm', threads: 1, tfjsVersion: '4.22.0', detail: '' }, versions: {}, error: null,
  models: [{ key: '0-tiny', name: 'tiny', predictedTokens: 99, files: { nll: 'models/0-tiny/tokens.arrow' } }],
};

/** A runProgress notification of one model at `tokensDone` of 100. */
const progressOf = (runId: string, tokensDone: number) => ({
  runId, fraction: tokensDone / 100, etaSeconds: 5, elapsedSeconds: 1,
  models: [{ model: '0-tiny', status: 'running' as const, tokensDone, tokensTotal: 100, tokensPerSecond: 10, etaSeconds: 5, bitsPerByte: null }],
});
const noBins = { index: [], x: [], sum: {}, count: {} };
/** Aggregates of the one-model manifest: perplexity 1, 2 and 4 in three bins; inner loop of two layers. */
const aggregates = (runId: string) => ({
  runId, complete: true,
  models: [{
    model: '0-tiny',
    tokens: {
      smoothed: { index: [0, 1, 2], x: [1, 10, 100], sum: { nll: [0, 2 * Math.log(2), 4 * Math.log(4)], bytes: [1, 2, 4] }, count: { nll: [1, 2, 4], bytes: [1, 2, 4] } },
      raw: noBins,
    },
    innerLoop: [0, 1].map(() => ({
      index: [3, 5], x: [15, 31],
      sum: { init: [1, 2], before: [0.8, 1.4], after: [0.6, 1], reduction: [0.2, 0.4], ratio: [0.75, 1.42] },
      count: { init: [1, 2], before: [1, 2], after: [1, 2], reduction: [1, 2], ratio: [1, 2] },
    })).map((bins, layer) => ({ ...bins, x: bins.x.map((x) => x + layer) })),
    hiddenState: [], modelState: [],
  }],
});

const reset = <S>(store: StoreApi<S>) => store.setState(store.getInitialState(), true);

beforeEach(() => {
  stores.forEach((store) => reset(store as StoreApi<unknown>));
  clearSeries();
  forgetAggregates();
});

describe('renderer commands', () => {
  it('loads everything on connecting and keeps runs in step with notifications', async () => {
    const fake = fakeTransport({
      info: () => ({ engine: 'ttt-workbench', backend: manifest.backend }),
      listBooks: () => ({ books: [bookInfo] }),
      listModels: () => ({ models: [modelInfo] }),
      listBackends: () => ({ default: 'wasm', backends: [] }),
      listRuns: () => ({ runs: useRunsStore.getState().runs }), // the engine lists what the page knows of
      startAnalysis: () => ({ runId: 'r1' }),
      cancel: () => ({ cancelled: true }),
      getRun: () => ({ manifest: { ...manifest, status: 'running' } }),
      watchRun: () => aggregates('r1'),
    });
    connect(fake.transport);
    fake.setStatus('connected');
    await flush();
    expect(useDocumentsStore.getState()).toMatchObject({ openBook: '/b/a.txt', selectedModels: ['/m/tiny'] });
    expect(useConnectionStore.getState().backend?.name).toBe('wasm');

    await runAnalysis();
    expect(fake.calls.find((c) => c.method === 'startAnalysis')?.params).toEqual({ book: '/b/a.txt', models: ['/m/tiny'] });
    expect(useRunsStore.getState().runs[0]).toMatchObject({ id: 'r1', status: 'queued', book: 'a.txt' });
    // the first run of an empty app opens itself, and fills in as the engine reports
    expect(useViewStore.getState()).toMatchObject({ screen: 'run', runId: 'r1' });

    fake.notify('runProgress', progressOf('r1', 50));
    expect(useRunsStore.getState().runs[0].status).toBe('running');
    await flush();
    expect(fake.calls.map((c) => c.method)).toContain('watchRun');
    expect(getSeries(seriesKey('r1', 'perplexity-smoothed-perplexity')).map((s) => Array.from(s.y))).toEqual([[1, 2, 4]]);
    // a pushed update changes only the bins it names
    const update = aggregates('r1');
    update.complete = false;
    update.models[0].tokens.smoothed = { index: [2], x: [120], sum: { nll: [8 * Math.log(2)], bytes: [8] }, count: { nll: [8], bytes: [8] } };
    fake.notify('runData', update);
    expect(getSeries(seriesKey('r1', 'perplexity-smoothed-perplexity')).map((s) => Array.from(s.y))).toEqual([[1, 2, 2]]);
    await cancelRun('r1');
    expect(fake.calls.at(-1)).toEqual({ method: 'cancel', params: { runId: 'r1' } });
    fake.notify('runFinished', { runId: 'r1', status: 'cancelled' });
    expect(useRunsStore.getState().runs[0].status).toBe('cancelled');
    fake.notify('runFailed', { runId: 'r1', message: 'out of memory' });
    expect(useViewStore.getState().banner?.message).toBe('Run failed: out of memory');
  });

  it('keeps a run just started in the list when an older listing of the runs answers last', async () => {
    const summary = { id: 'r1', dir: '', status: 'queued' as const, createdAt: manifest.createdAt, book: 'a.txt', tokens: 100, models: [] };
    let answerFirstListing: (value: { runs: unknown[] }) => void = () => undefined;
    let listings = 0;
    const fake = fakeTransport({
      info: () => ({ engine: 'ttt-workbench', backend: manifest.backend }),
      listBooks: () => ({ books: [bookInfo] }), listModels: () => ({ models: [modelInfo] }), listBackends: () => ({ default: 'wasm', backends: [] }),
      // the listing made on connecting, before any run, answers only at the end (a slow folder scan)
      listRuns: () => (++listings === 1 ? new Promise((resolve) => { answerFirstListing = resolve; }) : { runs: [summary] }),
      startAnalysis: () => ({ runId: 'r1' }),
      getRun: () => ({ manifest }),
      watchRun: () => aggregates('r1'),
    });
    connect(fake.transport);
    fake.setStatus('connected');
    await flush();
    await runAnalysis();
    await flush();
    answerFirstListing({ runs: [] });
    await flush();
    expect(useRunsStore.getState().runs.map((r) => r.id)).toEqual(['r1']);
  });

  it('reloads the runs when the engine is back after a restart, and resumes an interrupted run', async () => {
    const summary = (status: 'running' | 'interrupted' | 'queued') => ({
      id: 'r1', dir: '/runs/r1', status, createdAt: manifest.createdAt, book: 'a.txt', tokens: 100,
      models: [{ name: 'tiny', family: 'ttt' as const, status, tokensDone: 40, bitsPerByte: null }],
    });
    let listed = summary('running');
    let refuse = false;
    const fake = fakeTransport({
      info: () => ({ engine: 'ttt-workbench', backend: manifest.backend }),
      listBooks: () => ({ books: [] }), listModels: () => ({ models: [] }), listBackends: () => ({ default: 'wasm', backends: [] }),
      listRuns: () => ({ runs: [listed] }),
      resumeRun: ({ runId }: { runId: string }) => {
        if (refuse) throw new Error(`run ${runId}: its book changed since it ran`);
        listed = summary('queued');
        return { runId };
      },
    });
    connect(fake.transport);
    fake.setStatus('connected');
    await flush();
    expect(useRunsStore.getState().runs[0].status).toBe('running');
    // the engine process died with the run; once a new one answers, the list says what became of it
    listed = summary('interrupted');
    fake.setStatus('restarting');
    await flush();
    expect(useRunsStore.getState().runs[0].status).toBe('running');
    fake.setStatus('connected');
    await flush();
    expect(useRunsStore.getState().runs[0].status).toBe('interrupted');

    await resumeRun('r1');
    expect(fake.calls.filter((c) => c.method === 'resumeRun')).toEqual([{ method: 'resumeRun', params: { runId: 'r1' } }]);
    expect(useRunsStore.getState().runs[0].status).toBe('queued');
    refuse = true;
    await resumeRun('r1');
    expect(useViewStore.getState().banner?.message).toBe('run r1: its book changed since it ran');
  });

  it('lists the engine\'s backends on connecting, runs where the settings say, and shows where each model runs', async () => {
    const lavapipe = { vendor: 'mesa', architecture: 'software', description: 'llvmpipe', software: true };
    const backends = [
      { name: 'tensorflow', available: false, reason: 'the optional package @tensorflow/tfjs-node is not installed', defaultStages: 1 },
      { name: 'webgpu', available: true, reason: null, adapter: lavapipe, defaultStages: 1 },
      { name: 'wasm', available: true, reason: null, defaultStages: 2 },
      { name: 'cpu', available: true, reason: null, defaultStages: 2 },
    ];
    const runs: unknown[] = [];
    const fake = fakeTransport({
      info: () => ({ engine: 'ttt-workbench', backend: manifest.backend }),
      listBackends: () => ({ default: 'wasm', backends }),
      listBooks: () => ({ books: [bookInfo] }),
      listModels: () => ({ models: [modelInfo] }),
      listRuns: () => ({ runs }),
      startAnalysis: () => ({ runId: 'r2' }),
    });
    setBackendChoice('tensorflow'); // picked before, and now it cannot start
    connect(fake.transport);
    fake.setStatus('connected');
    await flush();
    expect(useConnectionStore.getState()).toMatchObject({ defaultBackend: 'wasm', backends });
    expect(useSettingsStore.getState().backend).toBeNull();

    await runAnalysis();
    expect(fake.calls.find((c) => c.method === 'startAnalysis')?.params).toEqual({ book: '/b/a.txt', models: ['/m/tiny'] });
    setBackendChoice('cpu');
    setStagesChoice(2);
    await runAnalysis();
    expect(fake.calls.filter((c) => c.method === 'startAnalysis').at(-1)?.params).toEqual({ book: '/b/a.txt', models: ['/m/tiny'], backend: 'cpu', stages: 2 });

    // when a model starts, the engine's list (with its stages) is fetched again, once per model
    const stages = [{ start: 0, end: 1 }, { start: 1, end: 2 }];
    runs.push({
      id: 'r2', dir: '/runs/r2', status: 'running', createdAt: '2026-01-01T00:00:00Z', book: 'a.txt', tokens: 100, backend: { ...manifest.backend, name: 'cpu' },
      models: [{ name: 'tiny', family: 'ttt', status: 'running', tokensDone: 0, bitsPerByte: null, stages }],
    });
    const listed = () => fake.calls.filter((c) => c.method === 'listRuns').length;
    const before = listed();
    for (const tokensDone of [10, 20]) fake.notify('runProgress', progressOf('r2', tokensDone));
    await flush();
    expect(listed()).toBe(before + 1);
    expect(useRunsStore.getState().runs[0]).toMatchObject({ id: 'r2', backend: { name: 'cpu' }, models: [{ stages }] });
  });

  it('puts perplexity curves in the series buffers and reports failures in the banner', async () => {
    const fake = fakeTransport({
      getRun: () => ({ manifest }),
      watchRun: () => aggregates('r1'),
      getSeries: () => ({ x: [10, 100], columns: { nll: [Math.log(2), Math.log(4)], bytes: [1, 2] }, rows: 50, downsampled: true }),
    });
    connect(fake.transport);
    await openRun('r1');
    // drawn from the run's aggregates, without asking for series
    expect(fake.calls.map((c) => c.method)).toEqual(['getRun', 'watchRun']);
    const key = seriesKey('r1', 'perplexity-smoothed-perplexity');
    const [curve] = getSeries(key);
    expect(Array.from(curve.y)).toEqual([1, 2, 4]);
    expect(curve.x).toBeInstanceOf(Float64Array);
    expect(useRunsStore.getState().seriesVersion.r1).toBe(1);
    // a zoom asks the engine for the stored rows of that range; in bits per byte, NLL over bytes
    await changePerplexityUnit('bitsPerByte');
    expect(Array.from(getSeries(seriesKey('r1', 'perplexity-smoothed-bitsPerByte'))[0].y)).toEqual([0, 1, 2]);
    refineChart(seriesKey('r1', 'perplexity-smoothed-bitsPerByte'), [10, 100]);
    await flush();
    expect(fake.calls.at(-1)?.params).toEqual({ runId: 'r1', model: '0-tiny', series: 'nll', reduce: 'logmean', points: 40, start: 10, end: 100 });
    expect(Array.from(getSeries(seriesKey('r1', 'perplexity-smoothed-bitsPerByte'))[0].y)).toEqual([1, 1]);
    expect(await openBookAt('/nope.txt')).toBe(false);
    expect(useViewStore.getState().banner).toEqual({ tone: 'error', message: 'openBook failed' });
  });

  it('loads the inner loop of the chosen layer, refines a chart on zoom, and links a chart position to the text', async () => {
    const ttt = { ...manifest.models[0], layers: 2, architecture: 'TTT-Linear', files: { nll: 'a', innerLoop: 'b', hiddenState: 'c' } };
    const fake = fakeTransport({
      getRun: () => ({ manifest: { ...manifest, models: [ttt] } }),
      watchRun: () => aggregates('r1'),
      getSeries: () => ({ x: [15, 31], columns: { init: [1, 1], before: [0.8, 0.7], after: [0.6, 0.5], reduction: [0.2, 0.2], ratio: [0.75, 0.71] }, rows: 2, downsampled: false }),
    });
    connect(fake.transport);
    await openRun('r1');
    await showRunTab('innerLoop');
    expect(fake.calls.filter((c) => c.method === 'getSeries')).toEqual([]); // drawn from the aggregates
    const key = chartKeys.innerLoop('r1', '0-tiny', 0);
    expect(getSeries(key).map((s) => s.modelName)).toEqual(['ttt_loss_init (W₀)', 'ttt_loss_before', 'ttt_loss_after']);
    expect(getSeries(key).map((s) => Array.from(s.y))).toEqual([[1, 1], [0.8, 0.7], [0.6, 0.5]]);
    expect(getSeries(chartKeys.reduction('r1', '0-tiny', 0)).map((s) => s.axis)).toEqual([undefined, 'y2']);
    await chooseLayer(1);
    expect(Array.from(getSeries(chartKeys.innerLoop('r1', '0-tiny', 1))[0].x)).toEqual([16, 32]);

    refineChart(chartKeys.innerLoop('r1', '0-tiny', 1), [10, 40]);
    await flush();
    expect(fake.calls.at(-1)?.params).toMatchObject({ layer: 1, start: 10, end: 40 });
    expect(getRange(chartKeys.innerLoop('r1', '0-tiny', 1))).toEqual([10, 40]);
    expect(seriesCsv(chartKeys.innerLoop('r1', '0-tiny', 1), { series: 'loss', x: 'position', y: 'ttt_loss' }).split('\n').slice(0, 2))
      .toEqual(['loss,position,ttt_loss,points_from_rows', 'ttt_loss_init (W₀),15,1,2']);

    openTokensAt(22.4, 'init');
    expect(useAnalysisStore.getState()).toMatchObject({ tab: 'tokens', focus: 22, returnTo: 'innerLoop', model: '0-tiny' });
  });

  it('writes the bits-per-byte table as CSV, one column per position range', () => {
    const csv = comparisonCsv({
      book: { name: 'a.txt', sha256: 'x', bytes: 100 },
      ranges: [{ label: '0–1k', start: 0, end: 1024 }, { label: '1k–8k', start: 1024, end: 8192 }],
      rows: [{ runId: 'r1', model: '0-tiny', name: 'tiny, "v2"', architecture: 'TTT-Linear', tokenizer: 'bytes', status: 'finished', bytes: 99, bitsPerByte: 7.5, ranges: [7.5, null] }],
      curves: [],
    });
    expect(csv).toBe('run,model,architecture,tokenizer,bytes,bits_per_byte,bits_per_byte_0–1k,bits_per_byte_1k–8k\nr1,"tiny, ""v2""",TTT-Linear,bytes,99,7.5,7.5,\n');
  });
});
