/** View domain: which screen shows, the run being looked at, chart options, the banner and the open dialog. */
import { create } from 'zustand';

/** `corpus`: the Evaluate corpus page; `corpusRun`: one corpus run's view (its id is in the corpus store). */
export type Screen = 'library' | 'models' | 'runs' | 'run' | 'corpus' | 'corpusRun' | 'probes';
export type PerplexityMode = 'smoothed' | 'raw';
/** The per-token curve's unit: perplexity, nats or bits per token, or bits per byte (comparable across tokenizers). */
export type PerplexityUnit = 'perplexity' | 'nats' | 'bits' | 'bitsPerByte';

export interface Banner {
  readonly tone: 'error' | 'info';
  readonly message: string;
}

export interface ViewState {
  readonly screen: Screen;
  readonly runId: string | null;
  readonly perplexityMode: PerplexityMode;
  readonly perplexityUnit: PerplexityUnit;
  /** The per-token curve's y axis is logarithmic (perplexity spans decades near the start of a book). */
  readonly perplexityLogY: boolean;
  readonly banner: Banner | null;
  /** The in-page path dialogs web mode uses where the desktop app shows native ones. */
  readonly dialog: 'openBook' | 'addModel' | null;
  /** Commands in flight by name (`openBook`, `runAnalysis` …), for busy buttons. */
  readonly pending: Readonly<Record<string, boolean>>;
}

const initialState: ViewState = {
  screen: 'library', runId: null, perplexityMode: 'smoothed', perplexityUnit: 'perplexity', perplexityLogY: true, banner: null, dialog: null, pending: {},
};

export const useViewStore = create<ViewState>()(() => initialState);

export function showScreen(screen: Exclude<Screen, 'run' | 'corpusRun'>): void {
  useViewStore.setState({ screen });
}

export function showRun(runId: string): void {
  useViewStore.setState({ screen: 'run', runId });
}

export function showCorpusRunScreen(): void {
  useViewStore.setState({ screen: 'corpusRun' });
}

export function setPerplexityMode(perplexityMode: PerplexityMode): void {
  useViewStore.setState({ perplexityMode });
}

export function setPerplexityUnit(perplexityUnit: PerplexityUnit): void {
  useViewStore.setState({ perplexityUnit });
}

export function togglePerplexityLogY(): void {
  useViewStore.setState((s) => ({ perplexityLogY: !s.perplexityLogY }));
}

/** Banners are one line: the first line of the message, at most 300 characters. */
export function showBanner(message: string, tone: Banner['tone'] = 'error'): void {
  useViewStore.setState({ banner: { tone, message: message.split('\n')[0].slice(0, 300) } });
}

export function dismissBanner(): void {
  useViewStore.setState({ banner: null });
}

export function openDialog(dialog: NonNullable<ViewState['dialog']>): void {
  useViewStore.setState({ dialog });
}

export function closeDialog(): void {
  useViewStore.setState({ dialog: null });
}

export function setPending(name: string, busy: boolean): void {
  useViewStore.setState((s) => ({ pending: { ...s.pending, [name]: busy } }));
}
