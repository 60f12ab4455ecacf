/**
 * Documents domain: the inputs of an analysis. Books in the library (one of them open) and models (some
 * selected). Shipped demo models start selected; a model the person adds is selected as they add it.
 */
import { create } from 'zustand';
import type { BookInfo, ModelInfo } from '../../engine/protocol.js';

export interface DocumentsState {
  readonly books: readonly BookInfo[];
  readonly booksLoaded: boolean;
  /** Path of the book "Run analysis" reads. */
  readonly openBook: string | null;
  readonly models: readonly ModelInfo[];
  readonly modelsLoaded: boolean;
  /** Model folders "Run analysis" runs, in the order the models are listed. */
  readonly selectedModels: readonly string[];
  /** Once the person changed the selection, reloading the list keeps their choice. */
  readonly selectionTouched: boolean;
}

const initialState: DocumentsState = {
  books: [], booksLoaded: false, openBook: null, models: [], modelsLoaded: false, selectedModels: [], selectionTouched: false,
};

export const useDocumentsStore = create<DocumentsState>()(() => initialState);

const inListOrder = (models: readonly ModelInfo[], dirs: Iterable<string>) => {
  const chosen = new Set(dirs);
  return models.filter((m) => chosen.has(m.dir)).map((m) => m.dir);
};

export function setBooks(books: readonly BookInfo[]): void {
  useDocumentsStore.setState((s) => ({
    books,
    booksLoaded: true,
    openBook: s.openBook && books.some((b) => b.path === s.openBook) ? s.openBook : (books.find((b) => b.builtin) ?? books[0])?.path ?? null,
  }));
}

/** A book just opened: listed (once) and made the open book. */
export function addBook(book: BookInfo): void {
  useDocumentsStore.setState((s) => ({ books: [...s.books.filter((b) => b.path !== book.path), book], openBook: book.path }));
}

export function setOpenBook(path: string): void {
  useDocumentsStore.setState({ openBook: path });
}

export function setModels(models: readonly ModelInfo[]): void {
  useDocumentsStore.setState((s) => ({
    models,
    modelsLoaded: true,
    selectedModels: s.selectionTouched ? inListOrder(models, s.selectedModels) : models.filter((m) => m.builtin).map((m) => m.dir),
  }));
}

export function addModel(model: ModelInfo): void {
  useDocumentsStore.setState((s) => {
    const models = [...s.models.filter((m) => m.dir !== model.dir), model];
    return { models, selectedModels: inListOrder(models, [...s.selectedModels, model.dir]), selectionTouched: true };
  });
}

export function toggleModel(dir: string): void {
  useDocumentsStore.setState((s) => {
    const selected = s.selectedModels.includes(dir) ? s.selectedModels.filter((d) => d !== dir) : [...s.selectedModels, dir];
    return { selectedModels: inListOrder(s.models, selected), selectionTouched: true };
  });
}
