/** Library: the books an analysis can read, with token counts and a preview; one of them is open. */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { chooseBook } from '../commands/library.js';
import { EmptyState } from '../components/EmptyState.js';
import { PageHeader } from '../components/PageHeader.js';
import { formatBytes, formatTokens } from '../lib/format.js';
import { type DocumentsState, setOpenBook, useDocumentsStore } from '../stores/documents.js';
import { useViewStore } from '../stores/view.js';

const selectLibrary = (s: DocumentsState) => ({ books: s.books, loaded: s.booksLoaded, openBook: s.openBook });

export const LibraryView = memo(function LibraryView() {
  const { books, loaded, openBook } = useDocumentsStore(useShallow(selectLibrary));
  const opening = useViewStore((s) => s.pending.openBook === true);
  return (
    <section className="view" data-testid="library-view" aria-labelledby="library-title">
      <PageHeader
        title="Library"
        subtitle="Books to read with the models. The open book is what “Run analysis” reads."
        actions={<button type="button" className="button button-primary" onClick={() => void chooseBook()} disabled={opening}>Open book</button>}
      />
      <h2 id="library-title" className="visually-hidden">Books</h2>
      {!loaded ? (
        <EmptyState title="Loading books…" loading />
      ) : books.length === 0 ? (
        <EmptyState title="No books yet">
          Open a plain-text file (a novel, a manual, a codebase dump): each byte is one token for byte-level models.
        </EmptyState>
      ) : (
        <ul className="cards" aria-label="Books">
          {books.map((book) => {
            const open = book.path === openBook;
            return (
              <li key={book.path} className={`card${open ? ' card-selected' : ''}`} aria-label={book.name} data-testid="book-card">
                <div className="card-head">
                  <h3 className="card-title" title={book.path}>{book.name}</h3>
                  {book.builtin && <span className="badge">Sample</span>}
                  {open ? <span className="badge badge-accent">Open</span> : (
                    <button type="button" className="button button-small" onClick={() => setOpenBook(book.path)} aria-label={`Use ${book.name}`}>Use</button>
                  )}
                </div>
                <p className="card-meta">
                  {formatTokens(book.tokens)} <span className="muted">({book.tokenizer})</span> · {formatBytes(book.bytes)} · {book.encoding}
                </p>
                <p className="preview">{book.preview}</p>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
});
