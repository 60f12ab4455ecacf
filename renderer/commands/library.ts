/** Opening books and adding models: native dialogs on the desktop; in the browser, uploads (uploads.ts) or a path. */
import type { WorkbenchApi } from '../../electron/api.js';
import { addBook, addModel, setBooks, setModels } from '../stores/documents.js';
import { closeDialog, openDialog, showBanner, showScreen } from '../stores/view.js';
import { attempt, request } from './engine.js';

const desktop = (): WorkbenchApi | undefined => (globalThis as { workbench?: WorkbenchApi }).workbench;

export async function loadLibrary(): Promise<void> {
  await attempt('loadLibrary', async () => {
    const [{ books }, { models }] = await Promise.all([request('listBooks', {}), request('listModels', {})]);
    setBooks(books);
    setModels(models);
  });
}

export async function openBookAt(path: string): Promise<boolean> {
  const opened = await attempt('openBook', () => request('openBook', { path: path.trim() }));
  if (!opened) return false;
  addBook(opened.book);
  closeDialog();
  return true;
}

export async function addModelAt(dir: string): Promise<boolean> {
  const added = await attempt('addModel', () => request('addModel', { dir: dir.trim() }));
  if (!added) return false;
  addModel(added.model);
  closeDialog();
  return true;
}

/** "Open book": the native file dialog on the desktop; a path on the engine's machine in the browser. */
export async function chooseBook(): Promise<void> {
  const api = desktop();
  if (!api) return openDialog('openBook');
  for (const path of await api.chooseBooks()) await openBookAt(path);
}

export async function chooseModel(): Promise<void> {
  const api = desktop();
  if (!api) return openDialog('addModel');
  const dir = await api.chooseModelFolder();
  if (dir) await addModelAt(dir);
}

/**
 * Files and folders dropped on the window: books open, model folders are added. On the desktop main classifies
 * their paths; in the browser their bytes are uploaded (`drop` reads the entries taken during the event).
 */
export async function dropFiles(files: readonly File[], drop?: () => Promise<void>): Promise<void> {
  const api = desktop();
  if (!api) return drop?.();
  const { books, models, rejected } = await api.classifyPaths(files.map((f) => api.pathForFile(f)).filter(Boolean));
  for (const path of books) await openBookAt(path);
  for (const dir of models) await addModelAt(dir);
  if (models.length && !books.length) showScreen('models');
  else if (books.length) showScreen('library');
  if (rejected.length) showBanner(`Not a book or a model folder: ${rejected.join(', ')}`);
}
