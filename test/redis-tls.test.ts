/**
 * A `rediss://` (TLS) URL with a password: a real redis-server on a TLS port with a self-signed certificate, and a
 * BullMQ queue through the engine's connection (engine/corpus/cluster.ts) adding a job and reading it back. The
 * certificate is trusted the way a user trusts their own CA (NODE_EXTRA_CA_CERTS), so the client runs in a child
 * process; without it the same connection is refused, which shows the connection really is TLS.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/fixtures.js';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const work = mkdtempSync(join(tmpdir(), 'ttt-redis-tls-'));
const cert = join(work, 'cert.pem');
let server: ChildProcess | null = null;
let url = '';

const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => {
    const { port } = s.address() as { port: number };
    s.close(() => resolve(port));
  });
});

/** A queue on `url` through the engine's Redis connection: add a job, count the waiting ones, print the count. */
const client = `
import { Queue } from 'bullmq';
import { redisConnection } from ${JSON.stringify(join(repoRoot, 'engine/corpus/cluster.ts'))};
const { connection, end } = redisConnection(process.argv[1]);
const queue = new Queue('tls-check', { connection });
await queue.add('ping', { hello: 'tls' });
console.log('waiting', await queue.getWaitingCount());
await queue.close();
end();
`;

const runClient = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', client, url], {
  cwd: repoRoot, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000,
});

beforeAll(async () => {
  if (!hasRedis || !hasOpenssl) return;
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(work, 'key.pem'), '-out', cert, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
  expect(made.status, made.stderr).toBe(0);
  const port = await freePort();
  server = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', cert, '--tls-key-file', join(work, 'key.pem'),
    '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no', '--requirepass', 'tls-s3cret', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    server!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Ready to accept connections/.test(out)) resolve();
    });
    server!.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  url = `rediss://:tls-s3cret@localhost:${port}`;
});

afterAll(() => {
  server?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!hasRedis || !hasOpenssl)('a rediss:// URL', () => {
  it('runs a BullMQ queue over TLS with a password, and is refused without trusting the certificate', () => {
    const trusted = runClient({ NODE_EXTRA_CA_CERTS: cert });
    expect(trusted.stderr).toBe('');
    expect(trusted.stdout.trim()).toBe('waiting 1');
    const untrusted = runClient({ NODE_EXTRA_CA_CERTS: '' });
    expect(untrusted.status).not.toBe(0);
    expect(untrusted.stdout).not.toMatch(/waiting/);
  });
});
