/** `uploadFile` over the in-memory RPC pair: a book in pieces, a model folder's files, the limit and bad input. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RpcClient } from '../protocol.js';
import { tempDir, writeTinyModel } from '../../test/helpers/tiny-models.js';
import { EngineService } from './engine-service.js';
import { createRpcServer } from './rpc-server.js';

const work = tempDir();
afterAll(() => work.cleanup());
const dataDir = join(work.dir, 'data');
const service = new EngineService({
  dataDir, uploadLimits: { bookBytes: 1000 },
  backend: { name: 'cpu', threads: 1, tfjsVersion: '4.22.0', detail: 'test' },
});
const server = createRpcServer(service.handlers, () => undefined);
const client: RpcClient = new RpcClient((frame) => void server.handle(frame).then((r) => r && client.receive(r)));

/** Sends `bytes` as the renderer does, in pieces of `piece` bytes; returns the last answer. */
async function upload(kind: 'book' | 'model', name: string, bytes: Buffer, piece: number, folder?: string) {
  let last = null;
  for (let offset = 0; offset < bytes.length || offset === 0; offset += piece) {
    last = await client.call('uploadFile', { kind, name, ...(folder ? { folder } : {}), size: bytes.length, offset, data: bytes.subarray(offset, offset + piece).toString('base64') });
    if (bytes.length === 0) break;
  }
  return last!;
}

describe('uploadFile', () => {
  it('keeps a book sent in pieces in <dataDir>/books, whole only once the last piece is in, and opens it', async () => {
    const text = Buffer.from('In the beginning was the Word, and the Word was with God. '.repeat(12));
    const first = await client.call('uploadFile', { kind: 'book', name: 'john.txt', size: text.length, offset: 0, data: text.subarray(0, 300).toString('base64') });
    expect(first).toEqual({ path: join(dataDir, 'books', 'john.txt'), received: 300, done: false });
    expect(existsSync(first.path)).toBe(false);
    const last = await upload('book', 'john.txt', text, 300);
    expect(last.done).toBe(true);
    expect(readFileSync(last.path)).toEqual(text);
    const { book } = await client.call('openBook', { path: last.path });
    expect(book).toMatchObject({ name: 'john.txt', bytes: text.length });
  });

  it('refuses a book over the limit at the first piece, in one line naming the file', async () => {
    const big = Buffer.alloc(1001, 0x61);
    await expect(client.call('uploadFile', { kind: 'book', name: 'big.txt', size: big.length, offset: 0, data: big.subarray(0, 10).toString('base64') }))
      .rejects.toThrow(/^big\.txt: 1001 bytes is over web mode's upload limit of 1000 bytes for a book; open it by its path/);
    expect(existsSync(join(dataDir, 'books', 'big.txt.part'))).toBe(false);
  });

  it('refuses names with folders, and pieces out of order', async () => {
    await expect(client.call('uploadFile', { kind: 'book', name: '../evil.txt', size: 1, offset: 0, data: 'YQ==' })).rejects.toThrow(/not a plain file name/);
    await expect(client.call('uploadFile', { kind: 'model', name: 'config.json', folder: '..', size: 1, offset: 0, data: 'YQ==' })).rejects.toThrow(/not a plain folder name/);
    await expect(client.call('uploadFile', { kind: 'book', name: 'gap.txt', size: 10, offset: 5, data: 'YQ==' })).rejects.toThrow(/expected the piece at byte 0, got one at 5/);
  });

  it('puts a model folder\'s files in <dataDir>/models/<folder>, which addModel then takes', async () => {
    const source = writeTinyModel(work.dir, 'ttt-linear', 'source-model');
    let dir = '';
    for (const file of ['config.json', 'model.safetensors']) {
      const { path, done } = await upload('model', file, readFileSync(join(source, file)), 4096, 'my-model');
      expect(done).toBe(true);
      dir = join(path, '..');
    }
    expect(dir).toBe(join(dataDir, 'models', 'my-model'));
    const { model } = await client.call('addModel', { dir });
    expect(model).toMatchObject({ name: 'my-model', family: 'ttt' });
  });
});
