/**
 * Web mode's stand-in for native dialogs: the browser cannot hand the engine a file path, so the person picks
 * files (or drops them on the window) and their bytes are uploaded to the engine, or types the path of a file
 * already on the engine's machine. The desktop app uses native dialogs instead.
 */
import { type ChangeEvent, type FormEvent, memo, useEffect, useRef, useState } from 'react';
import { addModelAt, openBookAt } from '../commands/library.js';
import { folderOfPicked, uploadBooks, uploadModel } from '../commands/uploads.js';
import { closeDialog, useViewStore } from '../stores/view.js';

const texts = {
  openBook: {
    title: 'Open book', pick: 'Pick a plain-text file on this computer, or drop it on the window.',
    label: 'Or the path of a text file on the engine\'s machine', placeholder: '/home/me/books/moby-dick.txt', submit: 'Open',
  },
  addModel: {
    title: 'Add model', pick: 'Pick a model folder (config.json, *.safetensors, tokenizer files) or its files, or drop them on the window.',
    label: 'Or the path of a model folder on the engine\'s machine', placeholder: '/home/me/models/ttt-linear-125m', submit: 'Add',
  },
} as const;

/** The pickers: hidden file inputs behind plain buttons (one for books; a folder and a files picker for models). */
const Pickers = memo(function Pickers({ dialog }: { dialog: 'openBook' | 'addModel' }) {
  const files = useRef<HTMLInputElement>(null);
  const folder = useRef<HTMLInputElement>(null);
  const picked = (event: ChangeEvent<HTMLInputElement>) => {
    const chosen = [...(event.target.files ?? [])];
    event.target.value = '';
    if (!chosen.length) return;
    if (dialog === 'openBook') return void uploadBooks(chosen);
    const model = folderOfPicked(chosen);
    if (model) void uploadModel(model);
  };
  return (
    <div className="dialog-pickers">
      <input ref={files} type="file" multiple hidden onChange={picked} data-testid="file-input" />
      <button type="button" className="button" onClick={() => files.current?.click()}>{dialog === 'openBook' ? 'Choose file…' : 'Choose files…'}</button>
      {dialog === 'addModel' && (
        <>
          <input ref={folder} type="file" hidden onChange={picked} {...{ webkitdirectory: '' }} data-testid="folder-input" />
          <button type="button" className="button" onClick={() => folder.current?.click()}>Choose folder…</button>
        </>
      )}
    </div>
  );
});

export const PathDialog = memo(function PathDialog() {
  const dialog = useViewStore((s) => s.dialog);
  const busy = useViewStore((s) => (dialog ? s.pending[dialog] === true : false));
  const [path, setPath] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    setPath('');
    input.current?.focus();
  }, [dialog]);
  if (!dialog) return null;
  const text = texts[dialog];
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (path.trim()) void (dialog === 'openBook' ? openBookAt(path) : addModelAt(path));
  };
  return (
    <div className="dialog-backdrop" onMouseDown={(e) => e.target === e.currentTarget && closeDialog()}>
      <form role="dialog" aria-modal="true" aria-labelledby="path-dialog-title" className="dialog" onSubmit={submit} data-testid="path-dialog"
        onKeyDown={(e) => e.key === 'Escape' && closeDialog()}>
        <h2 id="path-dialog-title">{text.title}</h2>
        <p className="muted">{text.pick}</p>
        <Pickers dialog={dialog} />
        <label className="field">
          <span>{text.label}</span>
          <input ref={input} type="text" value={path} placeholder={text.placeholder} spellCheck={false} onChange={(e) => setPath(e.target.value)} />
        </label>
        <div className="dialog-actions">
          <button type="button" className="button" onClick={closeDialog}>Cancel</button>
          <button type="submit" className="button button-primary" disabled={busy || !path.trim()}>{busy ? 'Working…' : text.submit}</button>
        </div>
      </form>
    </div>
  );
});
