/**
 * The corpus view's layout of engine numbers: chart buffers (each model's mean and band), the scatter's pairing by
 * document, the per-document table and its CSV, the scatter's model choice, and pushed progress into the store.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { StoreApi } from 'zustand';
import type { CorpusRun } from '../../engine/protocol.js';
import { getSeries } from '../series/buffers.js';
import { fakeTransport } from '../../test/helpers/fake-transport.js';
import { useDocumentsStore } from '../stores/documents.js';
import { useViewStore } from '../stores/view.js';
import { connect } from './connect.js';
import { applyCorpusProgress, chooseScatterModel, scatterModels, setCorpusRuns, useCorpusStore } from '../stores/corpus.js';
import { corpusCurveKey, corpusScatterKey, corpusTable, curveBuffers, evaluateCorpus, resumeCorpusRun, scatterPoints } from './corpus.js';
import { corpusDocumentsCsv } from './corpus-report.js';

const reset = <S>(store: StoreApi<S>) => store.setState(store.getInitialState(), true);
beforeEach(() => [useCorpusStore, useDocumentsStore, useViewStore].forEach((store) => reset(store as StoreApi<unknown>)));

const model = (key: string, name: string) => ({
  key, dir: `/m/${name}`, name, family: 'ttt', architecture: 'TTT-Linear', hash: 'abc', window: null, documentsDone: 2, documentsFailed: 0,
  tokens: 10, bytes: 10, nllSum: 5, bitsPerByte: 0.7, files: {},
});
const row = (document: number, name: string, bitsPerByte: number | null, worker = 'local') => ({ document, name, tokens: 5, bytes: 4, nllSum: 2, bitsPerByte, seconds: 0.1, worker });
const curve = (mean: (number | null)[]) => ({
  position: mean.map((_, i) => i + 1), start: mean.map((_, i) => i + 1), end: mean.map((_, i) => i + 2), tokens: mean.map(() => 3), documents: mean.map(() => 2),
  meanNll: mean, standardError: mean.map(() => 0.1), ciLow: mean.map((m) => (m === null ? null : m - 0.2)), ciHigh: mean.map((m) => (m === null ? null : m + 0.2)),
});

const run: CorpusRun = {
  manifest: {
    format: 'ttt-workbench-corpus/1', id: 'x', status: 'finished', createdAt: '2026-01-01T00:00:00Z', finishedAt: null,
    corpus: { path: '/c/books', format: 'folder', documents: 3, bytes: 30, skipped: [] },
    settings: { chunkTokens: 512, maxTokens: null, window: null, executor: 'local, 2 jobs', store: null },
    backend: { name: 'wasm', threads: 1, tfjsVersion: '4', detail: '' }, versions: {}, bins: { ladder: 'quarter-octave', note: '' },
    models: [model('0-a', 'a'), model('1-b', 'b')], failures: [],
  },
  models: [
    { key: '0-a', curve: curve([1, 2]), documents: [row(0, 'd0', 1.5, 'local'), row(2, 'd,2', 1.25)] },
    { key: '1-b', curve: curve([3, null]), documents: [row(0, 'd0', 1.0, 'host:7'), row(1, 'd1', 0.5), row(2, 'd,2', null)] },
  ],
};

describe('corpus view data', () => {
  it('gives each model its mean and its band, with missing bins as gaps', () => {
    const buffers = curveBuffers(run);
    expect(buffers.map((b) => [b.modelKey, b.modelName])).toEqual([
      ['0-a', 'a'], ['0-a:high', 'a 95% high'], ['0-a:low', 'a 95% low'], ['1-b', 'b'], ['1-b:high', 'b 95% high'], ['1-b:low', 'b 95% low'],
    ]);
    expect(Array.from(buffers[1].y)).toEqual([1.2, 2.2]);
    expect(Array.from(buffers[3].y)).toEqual([3, NaN]);
  });

  it('pairs documents both models finished, and tables every document any model finished', () => {
    expect(scatterPoints(run, '0-a', '1-b')).toEqual({ names: ['d0'], x: [1.5], y: [1.0] });
    expect(scatterPoints(run, '1-b', '1-b')).toEqual({ names: ['d0', 'd1'], x: [1.0, 0.5], y: [1.0, 0.5] });
    expect(corpusTable(run)).toEqual([
      { document: 0, name: 'd0', bytes: 4, bitsPerByte: [1.5, 1.0], workers: 'local, host:7' },
      { document: 1, name: 'd1', bytes: 4, bitsPerByte: [null, 0.5], workers: 'local' },
      { document: 2, name: 'd,2', bytes: 4, bitsPerByte: [1.25, null], workers: 'local' },
    ]);
    const csv = corpusDocumentsCsv(run).trim().split('\n');
    expect(csv[0]).toBe('model,document,name,tokens,bytes,nll_sum,bits_per_byte,seconds,worker');
    expect(csv).toHaveLength(6);
    expect(csv[2]).toBe('a,2,"d,2",5,4,2,1.25,0.1,local');
    expect(csv[5]).toBe('b,2,"d,2",5,4,2,,0.1,local');
  });

  it('compares the first two models until others are chosen', () => {
    expect(scatterModels({ run, modelA: null, modelB: null })).toEqual(['0-a', '1-b']);
    useCorpusStore.setState({ run });
    chooseScatterModel('B', '0-a');
    expect(scatterModels(useCorpusStore.getState())).toEqual(['0-a', '0-a']);
    chooseScatterModel('A', 'gone');
    expect(scatterModels(useCorpusStore.getState())).toEqual(['0-a', '0-a']);
  });

  it('keeps each run\'s last progress and its status in the list', () => {
    setCorpusRuns([{ id: 'r', status: 'queued', createdAt: '', corpus: 'c', format: 'folder', documents: 2, models: [] }]);
    applyCorpusProgress({
      runId: 'r', status: 'running', done: 1, failed: 0, total: 4, tokensDone: 10, tokensPerSecond: 5, elapsedSeconds: 2,
      workers: [{ worker: 'local 1', model: '0-a', document: 1, name: 'd1', tokensDone: 3, tokensTotal: 9, documentsDone: 1 }], finished: [], failures: [],
    });
    expect(useCorpusStore.getState().runs[0].status).toBe('running');
    expect(useCorpusStore.getState().progress.r.workers[0].worker).toBe('local 1');
  });
});

describe('corpus commands', () => {
  it('start an evaluation, open its view, and draw it again when the engine pushes finished documents', async () => {
    const answers = {
      listCorpusRuns: () => ({ runs: useCorpusStore.getState().runs }), startCorpusEval: () => ({ runId: 'c1' }), getCorpusRun: () => run, resumeCorpusEval: () => ({ runId: 'c1' }),
    };
    const { transport, calls, notify } = fakeTransport(answers);
    const stop = connect(transport);
    useCorpusStore.setState({ path: ' /c/books ', documents: 3 });
    useDocumentsStore.setState({ selectedModels: ['/m/a', '/m/b'] });
    await evaluateCorpus();
    expect(calls.find((c) => c.method === 'startCorpusEval')?.params).toEqual({ corpus: '/c/books', models: ['/m/a', '/m/b'], documents: 3 });
    expect(useViewStore.getState().screen).toBe('corpusRun');
    expect(useCorpusStore.getState()).toMatchObject({ runId: 'c1', run: null }); // queued: nothing to read yet
    const progress = {
      runId: 'c1', status: 'running' as const, done: 1, failed: 0, total: 6, tokensDone: 5, tokensPerSecond: 5, elapsedSeconds: 1, workers: [], failures: [],
      finished: [{ ...row(0, 'd0', 1.5), model: '0-a' }],
    };
    notify('corpusProgress', progress);
    await new Promise((r) => setTimeout(r, 0));
    expect(calls.filter((c) => c.method === 'getCorpusRun')).toHaveLength(1);
    expect(useCorpusStore.getState().run).toBe(run);
    expect(getSeries(corpusCurveKey('c1'))).toHaveLength(6);
    expect(Array.from(getSeries(corpusScatterKey('c1'))[0].x)).toEqual([1.5]);
    // progress with nothing newly finished reads nothing again
    notify('corpusProgress', { ...progress, finished: [] });
    await new Promise((r) => setTimeout(r, 0));
    expect(calls.filter((c) => c.method === 'getCorpusRun')).toHaveLength(1);

    // the run ends cancelled; resumed, it is queued again with the jobs asked for
    notify('runFinished', { runId: 'c1', status: 'cancelled' });
    expect(useCorpusStore.getState().runs[0].status).toBe('cancelled');
    useCorpusStore.setState({ jobs: 2 });
    await resumeCorpusRun('c1');
    expect(calls.at(-1)).toEqual({ method: 'resumeCorpusEval', params: { runId: 'c1', jobs: 2 } });
    expect(useCorpusStore.getState().runs[0].status).toBe('queued');
    stop();
  });
});
