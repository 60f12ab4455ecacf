/** The left navigation: screens, how many runs are live, and which engine and backend answer. */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { adapterName, backendDetails } from '../lib/placement.js';
import { type ConnectionState, useConnectionStore } from '../stores/connection.js';
import { type CorpusState, useCorpusStore } from '../stores/corpus.js';
import { isActive, type RunsState, useRunsStore } from '../stores/runs.js';
import { type Screen, showScreen, useViewStore } from '../stores/view.js';

const selectEngine = (s: ConnectionState) => ({ status: s.status, backend: s.backend, transport: s.transport });
const selectActiveRuns = (s: RunsState) => s.runs.filter((r) => isActive(r.status)).length;
const selectActiveCorpusRuns = (s: CorpusState) => s.runs.filter((r) => isActive(r.status)).length;

const items: { screen: Exclude<Screen, 'run' | 'corpusRun'>; label: string; icon: string }[] = [
  { screen: 'library', label: 'Library', icon: '▤' },
  { screen: 'models', label: 'Models', icon: '◇' },
  { screen: 'runs', label: 'Runs', icon: '▷' },
  { screen: 'corpus', label: 'Corpus', icon: '▥' },
  { screen: 'probes', label: 'Probes', icon: '◎' },
];

/** The item a screen belongs to: a run's view is under Runs, a corpus run's under Corpus. */
const itemOf = (screen: Screen) => (screen === 'run' ? 'runs' : screen === 'corpusRun' ? 'corpus' : screen);

export const Sidebar = memo(function Sidebar() {
  const screen = useViewStore((s) => itemOf(s.screen));
  const activeRuns = useRunsStore(selectActiveRuns);
  const activeCorpusRuns = useCorpusStore(selectActiveCorpusRuns);
  const active = (screen: string) => (screen === 'runs' ? activeRuns : screen === 'corpus' ? activeCorpusRuns : 0);
  const { status, backend, transport } = useConnectionStore(useShallow(selectEngine));
  return (
    <nav className="sidebar" aria-label="Workbench" data-testid="sidebar">
      <div className="brand">
        <span className="brand-mark" aria-hidden="true">T³</span>
        <span className="brand-name">TTT Workbench</span>
      </div>
      <ul className="nav">
        {items.map((item) => (
          <li key={item.screen}>
            <button type="button" className="nav-item" aria-current={screen === item.screen ? 'page' : undefined} onClick={() => showScreen(item.screen)}>
              <span className="nav-icon" aria-hidden="true">{item.icon}</span>
              {item.label}
              {active(item.screen) > 0 && <span className="nav-count" aria-label={`${active(item.screen)} active`}>{active(item.screen)}</span>}
            </button>
          </li>
        ))}
      </ul>
      <div className="sidebar-footer" data-testid="engine-status">
        <span className={`dot dot-${status}`} aria-hidden="true" />
        <span className="sidebar-engine">
          <span>{status === 'connected' ? 'Engine ready' : status === 'connecting' ? 'Starting engine' : 'Engine offline'}</span>
          {backend && (
            <span className="muted" title={backendDetails(backend)}>
              {backend.name} backend{backend.threads > 1 ? `, ${backend.threads} threads` : ''}{backend.adapter ? ` · ${adapterName(backend.adapter)}` : ''}{transport === 'websocket' ? ' · web' : ''}
            </span>
          )}
        </span>
      </div>
    </nav>
  );
});
