import { beforeEach, describe, expect, it } from 'vitest';
import type { StoreApi } from 'zustand';
import { type BookInfo, maxStages, type ModelInfo, type RunSummary } from '../../engine/protocol.js';
import { resetAnalysis, setCompare, setFocus, setModel, setTab, toggleSpectrumAt, useAnalysisStore } from './analysis.js';
import { setBackends, setConnectionStatus, setEngineInfo, useConnectionStore } from './connection.js';
import { addBook, addModel, setBooks, setModels, setOpenBook, toggleModel, useDocumentsStore } from './documents.js';
import { addQueuedRun, applyProgress, bumpSeriesVersion, runFraction, setRuns, setRunStatus, useRunsStore } from './runs.js';
import { forgetUnavailableBackend, setBackendChoice, setStagesChoice, useSettingsStore } from './settings.js';
import { closeDialog, dismissBanner, openDialog, setPending, showBanner, showRun, showScreen, useViewStore } from './view.js';

const stores = [useAnalysisStore, useConnectionStore, useDocumentsStore, useRunsStore, useSettingsStore, useViewStore] as const;

const reset = <S>(store: StoreApi<S>) => store.setState(store.getInitialState(), true);

beforeEach(() => {
  stores.forEach((store) => reset(store as StoreApi<unknown>));
});

const book = (name: string, builtin = false): BookInfo => ({
  path: `/books/${name}`, name, bytes: 10, sha256: 'x', encoding: 'utf-8', tokens: 10, tokenizer: 'bytes', preview: '', builtin,
});
const model = (name: string, builtin = false): ModelInfo => ({
  dir: `/models/${name}`, name, family: 'ttt', architecture: 'TTT-Linear', layers: 2, heads: 4, hiddenSize: 64, vocabSize: 256,
  tokenizer: 'bytes', details: {}, builtin,
});
const run = (id: string, status: RunSummary['status'], tokensDone = 0): RunSummary => ({
  id, dir: `/runs/${id}`, status, createdAt: '2026-01-01T00:00:00Z', book: 'a.txt', tokens: 100,
  models: [{ name: 'm1', family: 'ttt', status, tokensDone, bitsPerByte: null }, { name: 'm2', family: 'mamba', status, tokensDone: 0, bitsPerByte: null }],
});
/** Two models side by side, the first at `tokensDone` of 100 and the second at `second`. */
const progress = (runId: string, second: number, tokensDone: number) => ({
  runId, fraction: (tokensDone + second) / 200, etaSeconds: (100 - Math.min(tokensDone, second)) / 50, elapsedSeconds: 1,
  models: [tokensDone, second].map((done, i) => ({
    model: `m${i + 1}`, status: 'running' as const, tokensDone: done, tokensTotal: 100, tokensPerSecond: 50, etaSeconds: (100 - done) / 50, bitsPerByte: null,
  })),
});

describe('documents store', () => {
  it('opens the sample book by default and keeps the open book across reloads of the list', () => {
    setBooks([book('a.txt'), book('sample.txt', true)]);
    expect(useDocumentsStore.getState().openBook).toBe('/books/sample.txt');
    setOpenBook('/books/a.txt');
    setBooks([book('sample.txt', true), book('a.txt')]);
    expect(useDocumentsStore.getState().openBook).toBe('/books/a.txt');
    addBook(book('b.txt'));
    expect(useDocumentsStore.getState()).toMatchObject({ openBook: '/books/b.txt' });
    expect(useDocumentsStore.getState().books.map((b) => b.name)).toEqual(['sample.txt', 'a.txt', 'b.txt']);
  });

  it('selects every shipped model by default, then keeps the person\'s choice', () => {
    setModels([model('demo-1', true), model('mine'), model('demo-2', true)]);
    expect(useDocumentsStore.getState().selectedModels).toEqual(['/models/demo-1', '/models/demo-2']);
    toggleModel('/models/demo-1');
    toggleModel('/models/mine');
    expect(useDocumentsStore.getState().selectedModels).toEqual(['/models/mine', '/models/demo-2']);
    setModels([model('demo-1', true), model('mine'), model('demo-2', true)]);
    expect(useDocumentsStore.getState().selectedModels).toEqual(['/models/mine', '/models/demo-2']);
    addModel(model('added'));
    expect(useDocumentsStore.getState().selectedModels).toEqual(['/models/mine', '/models/demo-2', '/models/added']);
  });
});

describe('runs store', () => {
  it('tracks queued runs, live progress and endings', () => {
    setRuns([run('old', 'finished', 100)]);
    addQueuedRun(run('new', 'queued'));
    expect(useRunsStore.getState().runs.map((r) => r.id)).toEqual(['new', 'old']);
    applyProgress(progress('new', 0, 50));
    expect(useRunsStore.getState().runs[0].status).toBe('running');
    expect(runFraction(useRunsStore.getState().runs[0], useRunsStore.getState().progress.new)).toBeCloseTo(0.25);
    setRunStatus('new', 'cancelled');
    expect(useRunsStore.getState().progress).toEqual({});
    expect(useRunsStore.getState().runs[0].status).toBe('cancelled');
    expect(runFraction(run('done', 'finished', 100), undefined)).toBe(1);
  });

  it('drops stale progress when the list says a run ended, and counts series versions', () => {
    applyProgress(progress('r', 1, 10));
    setRuns([run('r', 'interrupted', 100)]);
    expect(useRunsStore.getState().progress).toEqual({});
    bumpSeriesVersion('r');
    bumpSeriesVersion('r');
    expect(useRunsStore.getState().seriesVersion.r).toBe(2);
  });
});

describe('view and connection stores', () => {
  it('navigates, shows one-line banners and dialogs', () => {
    showRun('r1');
    expect(useViewStore.getState()).toMatchObject({ screen: 'run', runId: 'r1' });
    showScreen('models');
    expect(useViewStore.getState().runId).toBe('r1'); // going back keeps the last run for the next visit
    showBanner('first line\nsecond line');
    expect(useViewStore.getState().banner).toEqual({ tone: 'error', message: 'first line' });
    dismissBanner();
    expect(useViewStore.getState().banner).toBeNull();
    openDialog('openBook');
    setPending('openBook', true);
    expect(useViewStore.getState()).toMatchObject({ dialog: 'openBook', pending: { openBook: true } });
    closeDialog();
    expect(useViewStore.getState().dialog).toBeNull();
  });

  it('counts reconnections, not the first connection', () => {
    setConnectionStatus('connected', null);
    expect(useConnectionStore.getState().reconnects).toBe(0);
    setConnectionStatus('restarting', 'the engine stopped');
    expect(useConnectionStore.getState()).toMatchObject({ status: 'restarting', detail: 'the engine stopped' });
    setConnectionStatus('connected', null);
    expect(useConnectionStore.getState().reconnects).toBe(1);
    setEngineInfo('ttt-workbench 0.1.0', { name: 'wasm', threads: 1, tfjsVersion: '4.22.0', detail: '' });
    expect(useConnectionStore.getState().backend?.name).toBe('wasm');
    const backends = [{ name: 'wasm', available: true, reason: null, defaultStages: 2 }, { name: 'cpu', available: true, reason: null, defaultStages: 2 }] as const;
    setBackends('wasm', backends);
    expect(useConnectionStore.getState()).toMatchObject({ defaultBackend: 'wasm', backends });
  });
});

describe('settings store', () => {
  it('keeps the backend and stages picked for later runs; anything but a whole number of stages is Automatic', () => {
    setBackendChoice('cpu');
    setStagesChoice(2);
    expect(useSettingsStore.getState()).toMatchObject({ backend: 'cpu', stages: 2 });
    for (const bad of [0, -1, 2.5, Number.NaN, null]) {
      setStagesChoice(bad);
      expect(useSettingsStore.getState().stages).toBeNull();
    }
    setStagesChoice(10_000);
    expect(useSettingsStore.getState().stages).toBe(maxStages);
  });

  it('goes back to Automatic when the backend picked can no longer start', () => {
    setBackendChoice('webgpu');
    forgetUnavailableBackend(['webgpu', 'wasm', 'cpu']);
    expect(useSettingsStore.getState().backend).toBe('webgpu');
    forgetUnavailableBackend(['wasm', 'cpu']);
    expect(useSettingsStore.getState().backend).toBeNull();
  });
});

describe('analysis store', () => {
  it('keeps what the analytical views look at, and forgets model-specific choices with a new model', () => {
    setTab('hiddenState');
    setModel('0-a', 1);
    toggleSpectrumAt(300);
    toggleSpectrumAt(15);
    expect(useAnalysisStore.getState()).toMatchObject({ tab: 'hiddenState', model: '0-a', layer: 1, spectraAt: [15, 300] });
    toggleSpectrumAt(300);
    expect(useAnalysisStore.getState().spectraAt).toEqual([15]);
    setCompare('r1|1-b');
    setModel('1-b', 1); // a model is not compared with itself
    expect(useAnalysisStore.getState()).toMatchObject({ compare: null, spectraAt: [] });
    setFocus(42, 'innerLoop');
    expect(useAnalysisStore.getState()).toMatchObject({ focus: 42, returnTo: 'innerLoop' });
    resetAnalysis();
    expect(useAnalysisStore.getState()).toEqual(useAnalysisStore.getInitialState());
  });
});
