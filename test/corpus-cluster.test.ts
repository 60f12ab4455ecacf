/**
 * Corpus evaluation on a cluster: a real Redis (Debian's redis-server, with a password), two workers as separate
 * processes, `eval --redis` on the test corpus; one worker is killed (SIGKILL) in the middle of a job, the other
 * finishes that job once BullMQ finds it stalled, and the result equals the local eval's exactly.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../engine/cli.js';
import type { BackendInfo } from '../engine/core/backend.js';
import { redisConnection } from '../engine/corpus/cluster.js';
import type { DocumentResult } from '../engine/corpus/document.js';
import { evaluateCorpus, localExecutor } from '../engine/corpus/eval.js';
import { readCorpus } from '../engine/corpus/read.js';
import { repoRoot } from './helpers/fixtures.js';
import { writeTestCorpus, type TestCorpus } from './helpers/corpus.js';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
const work = mkdtempSync(join(tmpdir(), 'ttt-cluster-'));
const password = 's3cret';
const children: ChildProcess[] = [];
let url = '';
let corpus: TestCorpus;
const models: string[] = [];

const freePort = () => new Promise<number>((resolve, reject) => {
  const server = createServer();
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    server.close(() => resolve(port));
  });
});

/** Starts a child and resolves once a line of its output matches `ready`; `lines` gathers everything it says. */
function startChild(command: string, args: string[], ready: RegExp, lines: string[]): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (data: Buffer) => {
      buffered += data.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (ready.test(line)) resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${command} exited (${code}) before it was ready:\n${lines.join('\n')}`)));
  });
}

const worker = (lines: string[], queue: string) => startChild(
  process.execPath, [join(repoRoot, 'bin/ttt-workbench.js'), 'worker', '--redis', url, '--queue', queue, '--backend', 'wasm', '--lock-ms', '2000'],
  /^worker \S+ on redis:\/\/:\*\*\*@/, lines,
);

beforeAll(async () => {
  if (!hasRedis) return;
  const port = await freePort();
  await startChild('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', password], /Ready to accept connections/, []);
  url = `redis://:${password}@127.0.0.1:${port}`;
  corpus = writeTestCorpus(work, 20);
  for (const arch of ['ttt-linear', 'mamba']) {
    const dir = join(work, arch);
    expect((await main(['init', '--arch', arch, '--preset', 'tiny', '--seed', '2', '--out', dir], { stdout: () => undefined, stderr: () => undefined }))).toBe(0);
    models.push(dir);
  }
});

it.runIf(!hasRedis && process.env.TTT_REQUIRE_REDIS === '1')('finds redis-server (TTT_REQUIRE_REDIS=1)', () => {
  expect.fail('redis-server is not installed: .ci/run installs Debian\'s redis-server');
});

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!hasRedis)('ttt-workbench eval --redis', () => {
  it('equals the local eval exactly, with a killed worker\'s job finished by the other', async () => {
    const read = await readCorpus(corpus.folder);
    const local = await evaluateCorpus({
      corpus: read, models, outDir: join(work, 'local'), backend: { name: 'wasm' } as BackendInfo, chunkTokens: 64,
      executor: localExecutor({ backend: 'wasm', jobs: 2 }),
    });
    expect(local.manifest.status).toBe('finished');

    const queue = 'test-kill';
    const linesA: string[] = [], linesB: string[] = [];
    const [a, b] = await Promise.all([worker(linesA, queue), worker(linesB, queue)]);
    // kill A as soon as it has started a job: its first job also starts its pipeline, so it is surely mid-job
    const killed = new Promise<string>((resolve) => {
      const check = () => {
        const started = linesA.find((l) => l.startsWith('started job '));
        if (!started) return setTimeout(check, 20);
        a.kill('SIGKILL');
        resolve(started.split(' ')[2].replace(/:$/, ''));
      };
      check();
    });
    const out = join(work, 'cluster');
    const stderr: string[] = [];
    const code = await main(['eval', corpus.folder, '--model', models[0], '--model', models[1], '--out', out, '--redis', url, '--queue', queue, '--chunk', '64', '--backend', 'wasm'], {
      stdout: () => undefined, stderr: (t) => stderr.push(t),
    });
    expect(code, stderr.join('\n')).toBe(0);
    const killedJob = await killed;
    expect(linesA.some((l) => l.startsWith(`finished job ${killedJob}`))).toBe(false);

    // the same sums, bin by bin and document by document
    for (const [key, bins] of local.bins) {
      const clusterBins = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { models: { key: string; nllSum: number }[] };
      expect(clusterBins.models.find((m) => m.key === key)!.nllSum).toBe(local.manifest.models.find((m) => m.key === key)!.nllSum);
      for (const [d, result] of local.documents.get(key)!.entries()) {
        const remote = JSON.parse(readFileSync(join(out, 'results', key, `${d}.json`), 'utf8')) as DocumentResult;
        expect(remote.bins, `${key} document ${d}`).toEqual(result.bins);
        expect(remote.nllSum).toBe(result.nllSum);
      }
      expect(bins.length).toBeGreaterThan(5);
    }
    const [, modelKey, document] = /^[0-9a-f]+-(\d+-[a-z0-9-]+)-(\d+)$/.exec(killedJob)!;
    const finishedBy = (JSON.parse(readFileSync(join(out, 'results', modelKey, `${document}.json`), 'utf8')) as DocumentResult).worker;
    expect(finishedBy).toBe(`${hostname()}:${b.pid}`);
    expect(linesB.some((l) => l.startsWith(`started job ${killedJob}: `)), linesB.join('\n')).toBe(true);

    // a model that differs from the coordinator's is refused in one line, without retries
    const qc = redisConnection(url), ec = redisConnection(url);
    const q = new Queue(queue, { connection: qc.connection });
    // read the events stream from its start (this server holds only this test's): from '$', an idle QueueEvents
    // re-issues its XREAD after each block timeout and misses an event added between two of them
    const events = new QueueEvents(queue, { connection: ec.connection, lastEventId: '0-0' });
    try {
      const job = await q.add('document', {
        document: { index: 0, name: 'x', text: 'some text', sha256: '0' }, model: { key: '0-x', dir: models[0], hash: 'f'.repeat(64) },
        settings: { chunkTokens: 64, maxTokens: null, window: null }, tokensFile: null,
      }, { attempts: 3 });
      await expect(job.waitUntilFinished(events)).rejects.toThrow(/ttt-linear: the model here \(content hash [0-9a-f]{12}\) differs from the coordinator's \(ffffffffffff\); copy the same model to this machine$/);
      expect((await q.getJob(job.id!))!.attemptsMade).toBe(1);
    } finally {
      await events.close();
      await q.close();
      qc.end();
      ec.end();
    }
  }, 300_000);
});
