/**
 * One safetensors file on disk, read tensor by tensor: the header once, then each tensor's bytes at its offsets
 * into a buffer of its own, decoded to float32, and the buffer dropped. A checkpoint is never in memory whole:
 * at most one tensor's raw bytes and its float32 copy exist at a time, beside whatever the caller keeps.
 */
import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { WorkbenchError, workbenchError } from '../core/errors.js';
import { decodeTensor, parseHeader, readHeaderLength, type SafetensorsHeader, type TensorEntry } from '../core/safetensors.js';

const readAsync = promisify(read);

const littleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Node reads at most 2 GiB per call; a larger tensor is read in pieces of this size. */
const maxReadBytes = 1 << 30;

export interface SafetensorsFile {
  readonly path: string;
  /** File size in bytes. */
  readonly size: number;
  readonly header: SafetensorsHeader;
  /** One tensor as float32, read synchronously: lazy weight maps are read inside synchronous model constructors. */
  readTensorSync(entry: TensorEntry): Float32Array;
  /** One tensor as float32, without blocking the event loop. */
  readTensor(entry: TensorEntry): Promise<Float32Array>;
  close(): void;
}

/** A read failure as one line naming the file; our own errors (truncation) pass through. */
function fileError(path: string, error: unknown): Error {
  if (error instanceof WorkbenchError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? workbenchError('E_FILE_NOT_FOUND', path) : workbenchError('E_FILE_READ', path, code ?? (error as Error).message);
}

/** Fills `into` from `position`, in pieces; a file that ends early is reported as truncated. */
function readFullySync(fd: number, into: Uint8Array, position: number, path: string): void {
  for (let done = 0; done < into.byteLength;) {
    const n = readSync(fd, into, done, Math.min(maxReadBytes, into.byteLength - done), position + done);
    if (n === 0) throw workbenchError('E_SAFETENSORS', path, `truncated: ended at byte ${position + done}`);
    done += n;
  }
}

async function readFully(fd: number, into: Uint8Array, position: number, path: string): Promise<void> {
  for (let done = 0; done < into.byteLength;) {
    const { bytesRead } = await readAsync(fd, into, done, Math.min(maxReadBytes, into.byteLength - done), position + done);
    if (bytesRead === 0) throw workbenchError('E_SAFETENSORS', path, `truncated: ended at byte ${position + done}`);
    done += bytesRead;
  }
}

/** Opens `path` and checks its header, including that every tensor's bytes lie inside the file. */
export function openSafetensors(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw fileError(path, error);
  }
  try {
    const size = fstatSync(fd).size;
    const prefix = new Uint8Array(8);
    if (size >= 8) readFullySync(fd, prefix, 0, path); // else readHeaderLength reports the short file
    const headerBytes = new Uint8Array(readHeaderLength(prefix, path, size));
    readFullySync(fd, headerBytes, 8, path);
    const header = parseHeader(headerBytes, path);
    if (header.dataOffset + header.dataLength > size) {
      throw workbenchError('E_SAFETENSORS', path, `truncated: data needs ${header.dataOffset + header.dataLength} bytes, file has ${size}`);
    }
    // F32 on a little-endian host is read straight into the float32 array (no second copy); other dtypes into a
    // fresh buffer aligned at 0, so decodeTensor takes its whole-array paths
    const target = (entry: TensorEntry) => {
      const direct = littleEndian && entry.dtype === 'F32' ? new Float32Array((entry.end - entry.begin) / 4) : null;
      return { direct, bytes: direct ? new Uint8Array(direct.buffer) : new Uint8Array(entry.end - entry.begin) };
    };
    return {
      path,
      size,
      header,
      readTensorSync(entry) {
        const { direct, bytes } = target(entry);
        try {
          readFullySync(fd, bytes, header.dataOffset + entry.begin, path);
        } catch (error) {
          throw fileError(path, error);
        }
        return direct ?? decodeTensor(entry, bytes, path);
      },
      async readTensor(entry) {
        const { direct, bytes } = target(entry);
        try {
          await readFully(fd, bytes, header.dataOffset + entry.begin, path);
        } catch (error) {
          throw fileError(path, error);
        }
        return direct ?? decodeTensor(entry, bytes, path);
      },
      close: () => closeSync(fd),
    };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}
