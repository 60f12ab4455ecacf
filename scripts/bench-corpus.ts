/**
 * `npm run bench -- --corpus`: documents/s and tokens/s of corpus evaluation (engine/corpus) with 1 and 2 local
 * jobs, and through the cluster path on this machine (Debian's redis-server on a free port, two
 * `ttt-workbench worker` processes), on documents cut from the book, with a random model at the preset.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendInfo } from '../engine/core/backend.js';
import { redisExecutor } from '../engine/corpus/cluster.js';
import { evaluateCorpus, type Executor, localExecutor } from '../engine/corpus/eval.js';
import type { Corpus, CorpusDocument } from '../engine/corpus/read.js';
import { createHash } from 'node:crypto';

export interface CorpusBenchOptions {
  readonly book: string;
  readonly model: string;
  readonly backend: string;
  readonly root: string;
  readonly documents?: number;
  readonly documentChars?: number;
}

const freePort = () => new Promise<number>((resolve, reject) => {
  const server = createServer();
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    server.close(() => resolve(port));
  });
});

function waitFor(child: ChildProcess, ready: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (data: Buffer) => {
      text += data.toString();
      if (ready.test(text)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${child.spawnargs.join(' ')} exited (${code}): ${text.split('\n').slice(-3).join(' ')}`)));
  });
}

export async function benchCorpus(options: CorpusBenchOptions): Promise<void> {
  const text = readFileSync(options.book, 'utf8');
  const count = options.documents ?? 16, chars = options.documentChars ?? 4096;
  const documents: CorpusDocument[] = Array.from({ length: count }, (_, index) => {
    const body = text.slice(10_000 + index * 50_000, 10_000 + index * 50_000 + chars);
    return { index, name: `doc-${index}`, text: body, bytes: Buffer.byteLength(body), sha256: createHash('sha256').update(body).digest('hex') };
  });
  const corpus: Corpus = { path: options.book, format: 'folder', documents, skipped: [] };
  const work = mkdtempSync(join(tmpdir(), 'ttt-bench-corpus-'));
  const backend = { name: options.backend } as BackendInfo;
  const run = async (what: string, executor: Executor) => {
    const started = performance.now();
    const result = await evaluateCorpus({ corpus, models: [options.model], outDir: join(work, what.replace(/\W+/g, '-')), backend, executor });
    const seconds = (performance.now() - started) / 1000;
    const tokens = result.manifest.models[0].tokens;
    process.stdout.write(`  ${(count / seconds).toFixed(2).padStart(7)} documents/s  ${Math.round(tokens / seconds).toLocaleString('en-US').padStart(7)} tokens/s  ` +
      `${count} documents, ${tokens.toLocaleString('en-US')} tokens in ${seconds.toFixed(1)} s (${what})\n`);
  };
  const children: ChildProcess[] = [];
  try {
    process.stdout.write(`corpus: ${count} documents of ${chars.toLocaleString('en-US')} characters, backend ${options.backend}, times include starting each job's worker thread, load average ${loadavg()[0].toFixed(2)}\n`);
    await run('local, 1 job', localExecutor({ backend: options.backend, jobs: 1 }));
    await run('local, 2 jobs', localExecutor({ backend: options.backend, jobs: 2 }));
    if (spawnSync('redis-server', ['--version']).status !== 0) {
      process.stdout.write('  cluster: not measured (no redis-server; apt-get install redis-server)\n');
      return;
    }
    const port = await freePort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(redis);
    await waitFor(redis, /Ready to accept connections/);
    const url = `redis://127.0.0.1:${port}`;
    const workers = [0, 1].map(() => spawn(process.execPath, [join(options.root, 'bin/ttt-workbench.js'), 'worker', '--redis', url, '--backend', options.backend], { stdio: ['ignore', 'pipe', 'pipe'] }));
    children.push(...workers);
    await Promise.all(workers.map((w) => waitFor(w, /^worker \S+ on /m)));
    await run('cluster: Redis and 2 worker processes on this machine', redisExecutor({ url }));
  } finally {
    for (const child of children.reverse()) child.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
}
