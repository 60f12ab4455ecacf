/**
 * Web mode: books and model folders reach the engine as bytes (protocol `uploadFile`, pieces of at most
 * `uploadPieceBytes`), kept in the app's library folder, then opened or added by the path the engine answers.
 * The desktop app never uploads: it gives the engine paths from native dialogs.
 */
import { uploadPieceBytes } from '../../engine/protocol.js';
import { showScreen } from '../stores/view.js';
import { attempt, request } from './engine.js';
import { addModelAt, openBookAt } from './library.js';

/** A model folder picked or dropped in the browser: its name and its files (config.json, *.safetensors, tokenizer). */
export interface PickedFolder {
  readonly name: string;
  readonly files: readonly File[];
}

const alphabet = new TextEncoder().encode('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

/** Base64 of a few MiB in one pass over a typed array (`btoa` of a binary string is far slower for pieces this size). */
export function base64(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[o++] = alphabet[n >> 18]; out[o++] = alphabet[(n >> 12) & 63]; out[o++] = alphabet[(n >> 6) & 63]; out[o++] = alphabet[n & 63];
  }
  if (i < bytes.length) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8);
    out[o++] = alphabet[n >> 18]; out[o++] = alphabet[(n >> 12) & 63];
    out[o++] = i + 1 < bytes.length ? alphabet[(n >> 6) & 63] : 61; // '='
    out[o++] = 61;
  }
  return new TextDecoder().decode(out);
}

/** Sends one file in pieces; resolves to its path on the engine's machine (errors reject with the engine's line). */
async function sendFile(kind: 'book' | 'model', file: File, folder?: string): Promise<string> {
  let offset = 0;
  for (;;) {
    const piece = new Uint8Array(await file.slice(offset, offset + uploadPieceBytes).arrayBuffer());
    const answer = await request('uploadFile', { kind, name: file.name, ...(folder ? { folder } : {}), size: file.size, offset, data: base64(piece) });
    if (answer.done) return answer.path;
    offset = answer.received;
  }
}

/** Books picked in the file chooser or dropped: each uploaded, then opened; the last one opened is the open book. */
export async function uploadBooks(files: readonly File[]): Promise<void> {
  for (const file of files) {
    const path = await attempt('openBook', () => sendFile('book', file));
    if (!path || !(await openBookAt(path))) return;
  }
  if (files.length) showScreen('library');
}

export async function uploadModel(folder: PickedFolder): Promise<void> {
  if (!folder.files.some((f) => f.name === 'config.json')) {
    await attempt('addModel', () => Promise.reject(new Error(`${folder.name}: a model folder needs its config.json (and *.safetensors, tokenizer files)`)));
    return;
  }
  let dir: string | null = null;
  for (const file of folder.files) {
    const path = await attempt('addModel', () => sendFile('model', file, folder.name));
    if (!path) return;
    dir = path.slice(0, path.length - file.name.length - 1);
  }
  if (dir && (await addModelAt(dir))) showScreen('models');
}

/** The files a model folder needs; other files in a picked folder (READMEs, logs, training runs) stay behind. */
export const isModelFile = (name: string) => name === 'config.json' || name.endsWith('.safetensors') || name === 'model.safetensors.index.json' || name.startsWith('tokenizer') || name === 'special_tokens_map.json';

/** Files chosen with a folder picker (`webkitdirectory`): the folder is the first part of their relative path. */
export function folderOfPicked(files: readonly File[]): PickedFolder | null {
  const first = files[0] as (File & { webkitRelativePath?: string }) | undefined;
  if (!first) return null;
  const name = first.webkitRelativePath?.split('/')[0] || `model-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}`;
  // only the folder's own files, not those of its subfolders (checkpoints, runs)
  const own = files.filter((f) => ((f as File & { webkitRelativePath?: string }).webkitRelativePath ?? f.name).split('/').length <= 2 && isModelFile(f.name));
  return { name, files: own };
}

/** What was dropped on the page in the browser: model folders (dropped as folders, or loose files with a config.json) and books. */
export async function uploadDropped(folders: readonly PickedFolder[], files: readonly File[]): Promise<void> {
  const loose = files.some((f) => f.name === 'config.json')
    ? { models: [{ name: `model-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}`, files: files.filter((f) => isModelFile(f.name)) }], books: [] }
    : { models: [], books: files };
  for (const folder of [...folders, ...loose.models]) await uploadModel({ name: folder.name, files: folder.files.filter((f) => isModelFile(f.name)) });
  await uploadBooks(loose.books);
}
