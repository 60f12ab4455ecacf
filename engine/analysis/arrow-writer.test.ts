import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tiny-models.js';
import { ArrowAppender } from './arrow-writer.js';
import { clearColumnCache, decodeCount, readColumns } from './column-cache.js';

const work = tempDir();
afterAll(() => work.cleanup());

const rows = (start: number, n: number) => ({ position: Int32Array.from({ length: n }, (_, i) => start + i), nll: Float32Array.from({ length: n }, (_, i) => (start + i) / 10) });

describe('ArrowAppender', () => {
  it('gathers small appends into large record batches, in order, flushing the rest on close', async () => {
    const path = join(work.dir, 'batched.arrow');
    const appender = new ArrowAppender(path, { batchRows: 100 });
    for (let chunk = 0; chunk < 25; chunk++) appender.append(rows(chunk * 10, 10));
    expect(appender.rows).toBe(250);
    await appender.close();
    const table = tableFromIPC(readFileSync(path));
    expect(table.batches.map((b) => b.numRows)).toEqual([100, 100, 50]);
    expect(Array.from(table.getChild('position')!.toArray() as Int32Array)).toEqual(Array.from({ length: 250 }, (_, i) => i));
  });

  it('writes one batch per append by default', async () => {
    const path = join(work.dir, 'plain.arrow');
    const appender = new ArrowAppender(path);
    for (let chunk = 0; chunk < 3; chunk++) appender.append(rows(chunk * 5, 5));
    await appender.close();
    expect(tableFromIPC(readFileSync(path)).batches.length).toBe(3);
  });
});

describe('the decoded-column cache', () => {
  it('decodes a file once, and again only when the file changed', async () => {
    clearColumnCache();
    const path = join(work.dir, 'cached.arrow');
    const write = async (n: number) => {
      const appender = new ArrowAppender(path);
      appender.append(rows(0, n));
      await appender.close();
    };
    await write(10);
    const before = decodeCount();
    expect((await readColumns(path)).rows).toBe(10);
    expect((await readColumns(path)).rows).toBe(10);
    expect(decodeCount() - before).toBe(1);
    await new Promise((r) => setTimeout(r, 20)); // a distinct mtime
    await write(12);
    expect((await readColumns(path)).rows).toBe(12);
    expect(decodeCount() - before).toBe(2);
  });
});
