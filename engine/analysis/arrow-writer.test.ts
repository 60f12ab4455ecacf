import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tiny-models.js';
import { ArrowAppender, partsDirOf, readArrowTable, segmentCover } from './arrow-writer.js';
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

describe('ArrowAppender keep (resume)', () => {
  it('starts a file with the kept rows, on disk at once, replacing what an earlier writer left', async () => {
    const path = join(work.dir, 'kept.arrow');
    const earlier = new ArrowAppender(path, { batchRows: 1000 });
    earlier.append(rows(1, 50));
    await earlier.close();
    const appender = new ArrowAppender(path, { batchRows: 1000, flushMs: 60_000, keep: rows(1, 20) });
    // a crash now keeps them: the segment is written, the old whole file gone
    expect(existsSync(path)).toBe(false);
    expect((await readArrowTable(path)).numRows).toBe(20);
    appender.append(rows(21, 5));
    await appender.close();
    expect(Array.from(tableFromIPC(readFileSync(path)).getChild('position')!.toArray() as Int32Array)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });
});

describe('crash safety', () => {
  const positions = (table: { getChild(n: string): { toArray(): unknown } | null }) => Array.from(table.getChild('position')!.toArray() as Int32Array);

  it('keeps every flushed row in complete Arrow segments while the writer runs, merged eight at a time', async () => {
    const path = join(work.dir, 'live.arrow');
    const appender = new ArrowAppender(path, { batchRows: 4 });
    for (let chunk = 0; chunk < 75; chunk++) {
      appender.append(rows(chunk * 4, 4));
      // no final file yet; every segment on disk is a complete Arrow file, and together they hold every flushed row
      expect(existsSync(path)).toBe(false);
      const names = readdirSync(partsDirOf(path));
      for (const name of names) expect(() => tableFromIPC(readFileSync(join(partsDirOf(path), name)))).not.toThrow();
      expect(positions(await readArrowTable(path))).toEqual(Array.from({ length: (chunk + 1) * 4 }, (_, i) => i));
    }
    // 75 flushes = 64 + 8 + 3: one segment of 64, one of 8, three single ones
    expect(readdirSync(partsDirOf(path)).sort()).toEqual(['00000000-00000063.arrow', '00000064-00000071.arrow', '00000072-00000072.arrow', '00000073-00000073.arrow', '00000074-00000074.arrow']);
    await appender.close();
    expect(existsSync(partsDirOf(path))).toBe(false);
    expect(positions(tableFromIPC(readFileSync(path)))).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('reads each flush once when a merge was interrupted before deleting its sources', async () => {
    expect(segmentCover(['00000000-00000000.arrow', '00000000-00000007.arrow', '00000001-00000001.arrow', '00000008-00000008.arrow', 'x.tmp'])).toEqual(['00000000-00000007.arrow', '00000008-00000008.arrow']);
    const path = join(work.dir, 'overlap.arrow');
    const appender = new ArrowAppender(path, { batchRows: 2 });
    for (let chunk = 0; chunk < 7; chunk++) appender.append(rows(chunk * 2, 2));
    const parts = partsDirOf(path);
    // a merge that wrote 0-7 and died: the sources 0..6 are still there
    for (let chunk = 7; chunk < 8; chunk++) appender.append(rows(chunk * 2, 2));
    expect(readdirSync(parts)).toEqual(['00000000-00000007.arrow']);
    copyFileSync(join(parts, '00000000-00000007.arrow'), join(parts, '00000003-00000003.arrow'));
    expect(positions(await readArrowTable(path))).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });

  it('fails a write on a full disk with one line and keeps the segments written before', async () => {
    const path = join(work.dir, 'full.arrow');
    const appender = new ArrowAppender(path, { batchRows: 2 });
    appender.append(rows(0, 2));
    process.env.TTT_WORKBENCH_DISK_LIMIT = '0';
    try {
      expect(() => appender.append(rows(2, 2))).toThrow(/^no space left on the device for .*full\.arrow$/);
      await expect(appender.close()).rejects.toThrow(/full\.arrow/);
    } finally {
      delete process.env.TTT_WORKBENCH_DISK_LIMIT;
    }
    expect(readdirSync(partsDirOf(path))).toEqual(['00000000-00000000.arrow']);
    expect(positions(await readArrowTable(path))).toEqual([0, 1]);
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
