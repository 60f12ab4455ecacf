/** The native menus, as a plain template (built into a Menu by main; tests read it as data). */
import type { MenuItemConstructorOptions } from 'electron';
import type { AppCommand } from './api.js';

export interface MenuActions {
  readonly isMac: boolean;
  readonly recentBooks: readonly string[];
  send(command: AppCommand): void;
  chooseBooks(): void;
  chooseModelFolder(): void;
  clearRecentBooks(): void;
}

const fileName = (path: string) => path.split(/[\\/]/).pop() ?? path;

export function menuTemplate(actions: MenuActions): MenuItemConstructorOptions[] {
  const recent: MenuItemConstructorOptions[] = actions.recentBooks.length
    ? [
        ...actions.recentBooks.map((path) => ({ label: fileName(path), sublabel: path, click: () => actions.send({ type: 'openBook', path }) })),
        { type: 'separator' },
        { label: 'Clear Recent', click: () => actions.clearRecentBooks() },
      ]
    : [{ label: 'No Recent Books', enabled: false }];
  const template: MenuItemConstructorOptions[] = [
    {
      label: 'File',
      submenu: [
        { label: 'Open Book…', accelerator: 'CmdOrCtrl+O', click: () => actions.chooseBooks() },
        { label: 'Open Recent', submenu: recent },
        { label: 'Add Model Folder…', accelerator: 'CmdOrCtrl+Shift+O', click: () => actions.chooseModelFolder() },
        { type: 'separator' },
        actions.isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { label: 'Library', accelerator: 'CmdOrCtrl+1', click: () => actions.send({ type: 'show', screen: 'library' }) },
        { label: 'Models', accelerator: 'CmdOrCtrl+2', click: () => actions.send({ type: 'show', screen: 'models' }) },
        { label: 'Runs', accelerator: 'CmdOrCtrl+3', click: () => actions.send({ type: 'show', screen: 'runs' }) },
        { label: 'Corpus', accelerator: 'CmdOrCtrl+4', click: () => actions.send({ type: 'show', screen: 'corpus' }) },
        { label: 'Probes', accelerator: 'CmdOrCtrl+5', click: () => actions.send({ type: 'show', screen: 'probes' }) },
        { type: 'separator' },
        { role: 'reload' },
        { role: 'toggleDevTools' },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    {
      label: 'Run',
      submenu: [{ label: 'Run Analysis', accelerator: 'CmdOrCtrl+Enter', click: () => actions.send({ type: 'runAnalysis' }) }],
    },
    { role: 'windowMenu' },
  ];
  return actions.isMac ? [{ role: 'appMenu' }, ...template] : template;
}
