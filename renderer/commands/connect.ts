/** Wires a transport to the stores: status into the connection store, notifications into the runs store. */
import type { AppCommand, WorkbenchApi } from '../../electron/api.js';
import { useCorpusStore } from '../stores/corpus.js';
import { setConnectionStatus, setEngineInfo, setTransportKind, useConnectionStore } from '../stores/connection.js';
import { showScreen, useViewStore } from '../stores/view.js';
import type { EngineTransport } from '../transport/types.js';
import { loadBackends } from './backends.js';
import { handleCorpusNotification, loadCorpusRuns, refreshCorpusRun } from './corpus.js';
import { attempt, request, useTransport } from './engine.js';
import { addModelAt, loadLibrary, openBookAt } from './library.js';
import { refreshProbes } from './probes.js';
import { handleNotification, loadRun, refreshRuns, runAnalysis } from './runs.js';

/** Everything the screens list, loaded again on every (re)connection: the engine may have restarted. */
export async function loadEverything(): Promise<void> {
  const info = await attempt('info', () => request('info', {}));
  if (info) setEngineInfo(info.engine, info.backend);
  await Promise.all([loadLibrary(), refreshRuns(), refreshProbes(), loadBackends(), loadCorpusRuns()]);
  const { runId } = useViewStore.getState();
  if (runId) await loadRun(runId);
  const corpusRunId = useCorpusStore.getState().runId;
  if (corpusRunId) await refreshCorpusRun(corpusRunId);
}

export function connect(transport: EngineTransport): () => void {
  useTransport(transport);
  setTransportKind(transport.kind);
  const stopStatus = transport.onStatus((status, detail) => {
    const was = useConnectionStore.getState().status;
    setConnectionStatus(status, detail);
    if (status === 'connected' && was !== 'connected') void loadEverything();
  });
  const stopNotifications = transport.onNotification((method, params) => {
    handleNotification(method, params);
    handleCorpusNotification(method, params);
  });
  return () => {
    stopStatus();
    stopNotifications();
    useTransport(null);
  };
}

/** Menu items and drops arrive from main as commands. */
export function listenForAppCommands(api: WorkbenchApi): () => void {
  return api.onCommand((command: AppCommand) => {
    if (command.type === 'openBook') void openBookAt(command.path).then((ok) => ok && showScreen('library'));
    else if (command.type === 'addModel') void addModelAt(command.dir).then((ok) => ok && showScreen('models'));
    else if (command.type === 'show') showScreen(command.screen);
    else if (command.type === 'runAnalysis') void runAnalysis();
  });
}
