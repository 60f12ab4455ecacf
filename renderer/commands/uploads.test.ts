/** Web mode's uploads against a fake engine: pieces in order, a model folder's own files only, errors as the banner. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { StoreApi } from 'zustand';
import { uploadPieceBytes, type MethodName, type MethodParams } from '../../engine/protocol.js';
import { useDocumentsStore } from '../stores/documents.js';
import { useViewStore } from '../stores/view.js';
import { useTransport } from './engine.js';
import { base64, folderOfPicked, uploadBooks, uploadModel } from './uploads.js';

const bookInfo = { path: '/data/books/big.txt', name: 'big.txt', bytes: 1, sha256: 'x', encoding: 'utf-8', tokens: 1, tokenizer: 'bytes', preview: '' };
const modelInfo = { dir: '/data/models/tiny', name: 'tiny', family: 'ttt', architecture: 'TTT-Linear', layers: 2, heads: 4, hiddenSize: 64, vocabSize: 256, tokenizer: 'bytes', details: {} };

/** An engine that keeps uploaded bytes per path, as uploads.ts on the engine side does. */
function fakeEngine(limit = Infinity) {
  const files = new Map<string, Buffer>();
  const calls: { method: MethodName; params: unknown }[] = [];
  useTransport({
    kind: 'websocket',
    async request(method, params) {
      calls.push({ method, params });
      if (method === 'uploadFile') {
        const p = params as MethodParams<'uploadFile'>;
        if (p.size > limit) throw new Error(`${p.name}: over the limit`);
        const path = p.kind === 'book' ? `/data/books/${p.name}` : `/data/models/${p.folder}/${p.name}`;
        const have = files.get(path) ?? Buffer.alloc(0);
        if (have.length !== p.offset) throw new Error(`${p.name}: piece out of order`);
        const next = Buffer.concat([have, Buffer.from(p.data, 'base64')]);
        files.set(path, next);
        return { path, received: next.length, done: next.length === p.size } as never;
      }
      if (method === 'openBook') return { book: { ...bookInfo, path: (params as { path: string }).path } } as never;
      if (method === 'addModel') return { model: { ...modelInfo, dir: (params as { dir: string }).dir } } as never;
      throw new Error(`${method} failed`);
    },
    onNotification: () => () => undefined,
    onStatus: () => () => undefined,
    close: () => undefined,
  });
  return { files, calls };
}

const reset = <S>(store: StoreApi<S>) => store.setState(store.getInitialState(), true);
beforeEach(() => [useDocumentsStore, useViewStore].forEach((s) => reset(s as StoreApi<unknown>)));

const picked = (name: string, body: string, relative: string) => Object.defineProperty(new File([body], name), 'webkitRelativePath', { value: relative });

describe('uploads', () => {
  it('encodes base64 as Node does, at every length mod 3', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 256]) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 97 + 13) & 255));
      expect(base64(bytes)).toBe(bytes.toString('base64'));
    }
  });

  it('sends a book larger than one piece in order, then opens it', async () => {
    const engine = fakeEngine();
    const bytes = Buffer.alloc(uploadPieceBytes + 1000, 7);
    await uploadBooks([new File([new Uint8Array(bytes)], 'big.txt')]);
    expect(engine.calls.filter((c) => c.method === 'uploadFile').map((c) => (c.params as { offset: number }).offset)).toEqual([0, uploadPieceBytes]);
    expect(engine.files.get('/data/books/big.txt')!.equals(bytes)).toBe(true); // (toEqual walks 4 MiB element by element)
    expect(engine.calls.at(-1)).toEqual({ method: 'openBook', params: { path: '/data/books/big.txt' } });
    expect(useDocumentsStore.getState().openBook).toBe('/data/books/big.txt');
  });

  it('shows the engine\'s one-line error for a file over the limit and opens nothing', async () => {
    const engine = fakeEngine(10);
    await uploadBooks([new File(['far more than ten bytes'], 'big.txt')]);
    expect(useViewStore.getState().banner?.message).toBe('big.txt: over the limit');
    expect(engine.calls.map((c) => c.method)).toEqual(['uploadFile']);
  });

  it('uploads a picked model folder\'s own model files into models/<folder> and adds it', async () => {
    const engine = fakeEngine();
    const folder = folderOfPicked([
      picked('config.json', '{}', 'tiny/config.json'), picked('model.safetensors', 'weights', 'tiny/model.safetensors'),
      picked('README.md', 'notes', 'tiny/README.md'), picked('config.json', '{}', 'tiny/checkpoints/config.json'),
    ])!;
    expect(folder.name).toBe('tiny');
    await uploadModel(folder);
    expect([...engine.files.keys()]).toEqual(['/data/models/tiny/config.json', '/data/models/tiny/model.safetensors']);
    expect(engine.calls.at(-1)).toEqual({ method: 'addModel', params: { dir: '/data/models/tiny' } });
  });

  it('refuses a model folder without config.json before sending anything', async () => {
    const engine = fakeEngine();
    await uploadModel({ name: 'weights', files: [new File(['w'], 'model.safetensors')] });
    expect(engine.calls).toEqual([]);
    expect(useViewStore.getState().banner?.message).toMatch(/^weights: a model folder needs its config\.json/);
  });
});
