/**
 * Files a browser sends the engine (protocol `uploadFile`): written piece by piece to `<name>.part` in the app's
 * library folder and renamed to `<name>` when the last piece arrives, so a half-sent file is never opened.
 * Books go to `<dataDir>/books`, a model's files to `<dataDir>/models/<folder>`.
 */
import { appendFile, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import { type MethodParams, type MethodResult, uploadPieceBytes } from '../protocol.js';

export interface UploadLimits {
  /** Largest book, in bytes (default 64 MiB). */
  readonly bookBytes: number;
  /** Largest single file of a model folder, in bytes (default 4 GiB: what `wasm` can hold). */
  readonly modelFileBytes: number;
}

export const defaultUploadLimits: UploadLimits = { bookBytes: 64 * 1024 * 1024, modelFileBytes: 4 * 1024 * 1024 * 1024 };

const formatSize = (bytes: number) => bytes < 1024 ? `${bytes} bytes`
  : bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KiB`
  : `${(bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MiB`;

/** A plain file or folder name: no separators, no `..`, nothing hidden, no control characters. */
function checkName(name: string, what: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[/\\\u0000-\u001f]/.test(name) || name.startsWith('.') || name.trim() !== name || name === '') {
    throw workbenchError('E_UPLOAD', name, `not a plain ${what} name (no folders, no leading dot)`);
  }
}

export async function receiveUpload(dataDir: string, limits: UploadLimits, params: MethodParams<'uploadFile'>): Promise<MethodResult<'uploadFile'>> {
  const { kind, name, folder, offset, data } = params;
  checkName(name, 'file');
  if (kind === 'model') {
    if (!folder) throw workbenchError('E_UPLOAD', name, 'a model file needs the name of its model folder');
    checkName(folder, 'folder');
  }
  const limit = kind === 'book' ? limits.bookBytes : limits.modelFileBytes;
  if (params.size > limit) {
    throw workbenchError('E_UPLOAD', name, `${formatSize(params.size)} is over web mode's upload limit of ${formatSize(limit)} for a ${kind === 'book' ? 'book' : 'model file'}; open it by its path on the engine's machine instead`);
  }
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length > uploadPieceBytes) throw workbenchError('E_UPLOAD', name, `a piece of ${bytes.length} bytes is larger than ${uploadPieceBytes}`);
  if (offset + bytes.length > params.size) throw workbenchError('E_UPLOAD', name, `bytes ${offset}..${offset + bytes.length} run past the file's size of ${params.size}`);
  const dir = kind === 'book' ? join(dataDir, 'books') : join(dataDir, 'models', folder!);
  const path = join(dir, name);
  const partial = `${path}.part`;
  if (offset === 0) {
    await mkdir(dir, { recursive: true });
    await writeFile(partial, bytes);
  } else {
    const have = await stat(partial).then((s) => s.size, () => -1);
    if (have !== offset) throw workbenchError('E_UPLOAD', name, `expected the piece at byte ${Math.max(have, 0)}, got one at ${offset}; send the file again`);
    await appendFile(partial, bytes);
  }
  const received = offset + bytes.length;
  const done = received === params.size;
  if (done) await rename(partial, path);
  return { path, received, done };
}
