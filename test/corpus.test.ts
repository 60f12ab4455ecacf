/**
 * Corpus evaluation on this machine: the same corpus read from a folder, JSON Lines, Parquet and Arrow gives the
 * same sums; the per-bin means equal those computed from each document's own `analyze` run; a cancelled run
 * resumes without recomputing a finished document.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../engine/cli.js';
import type { BackendInfo } from '../engine/core/backend.js';
import { analyzeBook } from '../engine/analysis/analyze.js';
import { readCorpus } from '../engine/corpus/read.js';
import { evaluateCorpus, localExecutor } from '../engine/corpus/eval.js';
import { StagePipeline } from '../engine/runtime/pipeline.js';
import { writeTestCorpus, type TestCorpus } from './helpers/corpus.js';

const work = mkdtempSync(join(tmpdir(), 'ttt-corpus-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

const backend = { name: 'wasm' } as BackendInfo;
const readTable = (path: string) => tableFromIPC(readFileSync(path));
const column = (path: string, name: string) => Array.from(readTable(path).getChild(name)!.toArray() as ArrayLike<number>);

let corpus: TestCorpus;
const models: string[] = [];
beforeAll(async () => {
  corpus = writeTestCorpus(work, 20);
  for (const arch of ['ttt-linear', 'transformer']) {
    const dir = join(work, arch);
    expect((await run(['init', '--arch', arch, '--preset', 'tiny', '--seed', '1', '--out', dir])).code).toBe(0);
    models.push(dir);
  }
});

describe('corpus readers', () => {
  it('read the same documents from a folder, JSONL, Parquet and Arrow, skipping bad ones with a line each', async () => {
    for (const path of [corpus.folder, corpus.jsonl, corpus.parquet, corpus.arrow]) {
      const read = await readCorpus(path);
      expect(read.documents.map((d) => d.text), path).toEqual(corpus.texts);
      expect(read.documents.map((d) => d.name), path).toEqual(corpus.names);
      expect(read.skipped.map((s) => s.name), path).toEqual(['book-05a.txt', 'book-09a.txt']);
      expect(read.skipped[0].reason).toMatch(/book-05a\.txt: the file is empty$/);
      expect(read.skipped[1].reason).toMatch(/book-09a\.txt: looks like a binary file, not text \(a NUL character at byte offset 2\)$/);
    }
    const firstFive = await readCorpus(corpus.parquet, { maxDocuments: 5 });
    expect(firstFive.documents.map((d) => d.name)).toEqual(corpus.names.slice(0, 5));
    const bad = join(work, 'bad.jsonl');
    writeFileSync(bad, '{"text": "fine text here"}\n{oops\n{"body": "no text field"}\n{"text": "lone \\ud800 surrogate"}\n');
    const read = await readCorpus(bad);
    expect(read.documents).toHaveLength(1);
    expect(read.skipped.map((s) => s.reason)).toEqual([
      expect.stringMatching(/^bad\.jsonl:2: not valid JSON/),
      'bad.jsonl:3: has no "text" field',
      'bad.jsonl:4: not valid Unicode: a lone surrogate at character 5',
    ]);
    await expect(readCorpus(corpus.parquet, { textField: 'body' })).rejects.toThrow(/corpus\.parquet: has no "body" column \(columns: text, short_book_title, publication_date\); choose one with --text-field$/);
  });
});

describe('ttt-workbench eval', () => {
  it('refuses a missing corpus, a missing text column and a bad --redis URL in one line', async () => {
    const cases: [string[], RegExp][] = [
      [['eval', join(work, 'nope'), '--model', models[0], '--out', join(work, 'x')], /^ttt-workbench eval: \S+nope: no such file$/],
      [['eval', corpus.jsonl, '--model', models[0], '--out', join(work, 'x'), '--text-field', 'body'], /corpus\.jsonl: holds no usable document \(22 skipped: book-00\.txt: has no "body" field\)$/],
      [['eval', corpus.folder, '--model', models[0], '--out', join(work, 'x'), '--redis', 'http://:pw@host'], /option --redis=http:\/\/:\*\*\*@host: the scheme must be redis:\/\/ or rediss:\/\/ \(TLS\), not http:\/\/$/],
      [['worker', '--redis', 'redis://:pw@[bad'], /^ttt-workbench worker: option --redis=redis:\/\/:\*\*\*@\[bad: not a URL/],
    ];
    for (const [argv, pattern] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.stderr.split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
  });

  it('gives the same sums from a folder, JSONL and Parquet', async () => {
    const outs: Record<string, string> = {};
    for (const [form, path, jobs] of [['folder', corpus.folder, '2'], ['jsonl', corpus.jsonl, '1'], ['parquet', corpus.parquet, '2']] as const) {
      outs[form] = join(work, `eval-${form}`);
      const r = await run(['eval', path, '--model', models[0], '--model', models[1], '--out', outs[form], '--backend', 'wasm', '--jobs', jobs, '--chunk', '64']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/skipped .*book-05a\.txt: the file is empty/);
      expect(r.stdout).toMatch(/ttt-linear\s+20\/20 documents\s+\d+ tokens\s+\d\.\d{4} bits\/byte/);
    }
    const manifest = JSON.parse(readFileSync(join(outs.folder, 'manifest.json'), 'utf8')) as {
      status: string; models: { key: string; window: number | null; nllSum: number; bytes: number; bitsPerByte: number }[]; corpus: { skipped: unknown[] };
    };
    expect(manifest.status).toBe('finished');
    expect(manifest.corpus.skipped).toHaveLength(2);
    expect(manifest.models.map((m) => m.window)).toEqual([null, 2048]); // the Transformer on its trained context
    const files = (out: string, key: string) => ({ bins: join(out, 'models', key, 'bins.arrow'), documents: join(out, 'models', key, 'documents.arrow') });
    for (const m of manifest.models) {
      const folder = files(outs.folder, m.key);
      for (const form of ['jsonl', 'parquet']) {
        const other = files(outs[form], m.key);
        for (const c of ['bin_start', 'bin_end', 'tokens', 'documents', 'nll_sum', 'nll_squared_sum', 'mean_nll', 'standard_error']) {
          expect(column(other.bins, c), `${form} ${m.key} ${c}`).toEqual(column(folder.bins, c));
        }
        expect(column(other.documents, 'nll_sum')).toEqual(column(folder.documents, 'nll_sum'));
      }
    }

  }, 300_000);

  it('has per-bin means equal to those of each document\'s own analyze run', async () => {
    const out = join(work, 'eval-folder');
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { models: { key: string }[] };
    // each document on its own through analyze (one set of stage workers for all of them: starting workers is
    // most of a tiny document's time), its tokens.arrow binned here
    // one set per model: analyze runs a book's models side by side, each starting its workers in model order
    const shared = await Promise.all(manifest.models.map(() => StagePipeline.start({ backend: 'wasm', stages: 1 })));
    const reused = shared.map((pipeline) => new Proxy(pipeline, { get: (target, key) => (key === 'close' ? async () => undefined : Reflect.get(target, key, target)) }));
    let started = 0;
    const reuse = () => reused[started++ % reused.length];
    const ladder = [...new Set(Array.from({ length: 60 }, (_, k) => Math.floor(2 ** (k / 4))))];
    const binOf = (p: number) => ladder.filter((start) => start <= p).length - 1;
    const sums = manifest.models.map(() => ({ nll: [] as number[], tokens: [] as number[] }));
    const perDocument = manifest.models.map(() => [] as number[]);
    for (const [d, name] of corpus.names.entries()) {
      const runDir = join(work, `analyze-${d}`);
      const analysed = await analyzeBook({
        book: join(corpus.folder, name), models, runDir, backend, innerLoop: false, chunkTokens: 64, startPipeline: async () => reuse(),
      });
      expect(analysed.manifest.status).toBe('finished');
      analysed.manifest.models.forEach((m, i) => {
        const table = readTable(join(runDir, m.files.nll));
        const position = table.getChild('position')!.toArray() as Int32Array;
        const nll = table.getChild('nll')!.toArray() as Float32Array;
        let total = 0;
        const docNll: number[] = [], docTokens: number[] = [];
        for (let t = 0; t < nll.length; t++) {
          const b = binOf(position[t]);
          docNll[b] = (docNll[b] ?? 0) + nll[t];
          docTokens[b] = (docTokens[b] ?? 0) + 1;
          total += nll[t];
        }
        docNll.forEach((x, b) => {
          sums[i].nll[b] = (sums[i].nll[b] ?? 0) + x;
          sums[i].tokens[b] = (sums[i].tokens[b] ?? 0) + docTokens[b];
        });
        perDocument[i].push(total);
      });
    }
    await Promise.all(shared.map((pipeline) => pipeline.close()));
    manifest.models.forEach((m, i) => {
      const { bins, documents } = { bins: join(out, 'models', m.key, 'bins.arrow'), documents: join(out, 'models', m.key, 'documents.arrow') };
      expect(column(bins, 'tokens')).toEqual(sums[i].tokens);
      expect(column(bins, 'bin_start')).toEqual(ladder.slice(0, sums[i].tokens.length));
      const means = column(bins, 'mean_nll');
      expect(means).toHaveLength(sums[i].nll.length);
      means.forEach((mean, b) => expect(mean, `${m.key} bin ${b}`).toBeCloseTo(sums[i].nll[b] / sums[i].tokens[b], 10));
      column(documents, 'nll_sum').forEach((x, d) => expect(x, `${m.key} document ${d}`).toBeCloseTo(perDocument[i][d], 8));
      const low = column(bins, 'ci_low'), high = column(bins, 'ci_high');
      means.forEach((mean, b) => expect(low[b] <= mean && mean <= high[b]).toBe(true));
    });
  }, 300_000);

  it('stops on cancel and resumes without recomputing a finished document', async () => {
    const read = await readCorpus(corpus.jsonl, { maxDocuments: 6 });
    const outDir = join(work, 'eval-cancel');
    const controller = new AbortController();
    const first = await evaluateCorpus({
      corpus: read, models: [models[0]], outDir, backend, chunkTokens: 64, executor: localExecutor({ backend: 'wasm', jobs: 1 }), signal: controller.signal,
      log: (line) => line.startsWith('[2/') && controller.abort(),
    });
    expect(first.manifest.status).toBe('cancelled');
    expect(first.computed).toBe(2);
    const lines: string[] = [];
    const store = join(work, 'store');
    const second = await evaluateCorpus({
      corpus: read, models: [models[0]], outDir, backend, chunkTokens: 64, executor: localExecutor({ backend: 'wasm', jobs: 2 }), log: (l) => lines.push(l),
      storeDir: store,
    });
    expect(second.manifest.status).toBe('finished');
    expect(second.computed).toBe(4);
    expect(lines[0]).toBe('resuming: 2 of 6 documents already done');
    // --store: the per-token file of a document computed in this call, as analyze's tokens.arrow
    const last = second.documents.get(second.manifest.models[0].key)![5];
    const nll = column(join(store, second.manifest.models[0].key, '5.arrow'), 'nll');
    expect(nll).toHaveLength(last.tokens - 1);
    expect(nll.reduce((a, b) => a + b, 0)).toBe(last.nllSum);
    const third = await evaluateCorpus({ corpus: read, models: [models[0]], outDir, backend, chunkTokens: 64, executor: localExecutor({ backend: 'wasm' }) });
    expect(third.computed).toBe(0);
    expect(third.bins).toEqual(second.bins);
  });
});
