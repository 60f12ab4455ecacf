/**
 * Web mode's stand-in for native dialogs: the browser cannot hand the engine a file path, so the person types
 * one (the engine runs on this machine). The desktop app uses native dialogs instead.
 */
import { type FormEvent, memo, useEffect, useRef, useState } from 'react';
import { addModelAt, openBookAt } from '../commands/library.js';
import { closeDialog, useViewStore } from '../stores/view.js';

const texts = {
  openBook: { title: 'Open book', label: 'Path of a text file on this machine', placeholder: '/home/me/books/moby-dick.txt', submit: 'Open' },
  addModel: { title: 'Add model', label: 'Path of a model folder (config.json + safetensors)', placeholder: '/home/me/models/ttt-linear-125m', submit: 'Add' },
} as const;

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
