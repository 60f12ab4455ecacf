/**
 * Hostile JSON-RPC at both doors: a real `serve --stdio` child process and a real WebSocket server get thousands of
 * malformed, mistyped and oversized frames (method names from Object.prototype among them). The engine must stay
 * up, answer every request-shaped frame with a JSON-RPC error (a notification, having no id, gets nothing), show
 * no stack trace, and answer a normal request afterwards. A foreign-Origin page, a wrong or missing token, many
 * connections at once and a malformed static URL are tried on the WebSocket server too.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { seededRandom } from '../engine/core/random.js';
import { selectBackend } from '../engine/core/backend.js';
import { methods } from '../engine/protocol.js';
import { EngineService } from '../engine/server/engine-service.js';
import { maxFrameBytes } from '../engine/server/rpc-server.js';
import { serveWebSocket } from '../engine/server/websocket-transport.js';
import { repoRoot } from './helpers/fixtures.js';
import { tempDir } from './helpers/tiny-models.js';

const work = tempDir('ttt-fuzz-');
afterAll(() => work.cleanup());

/** A frame and what must come back: nothing (a notification), or an error with this id (null: none could be read). */
interface Probe {
  readonly frame: string;
  readonly answer: 'none' | string | null;
}

const prototypeNames = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__defineGetter__', '__lookupSetter__'];
const methodNames = Object.keys(methods);
const wrongParams: unknown[] = [5, 'x', [1, 2], true, { runId: 5 }, { runId: {} }, { junk: 1 }, { book: 7, models: 'x' }, { dir: [] }, { path: null },
  { runId: 'a', model: 3, series: 'nll' }, { runId: 'a', model: 'b', series: 'nope' }, { runIds: [] }, { runId: 'a', model: 'b', start: -1, count: 1e9 }];

/** `n` probes from a seeded generator, each of one hostile kind. */
function probes(n: number, seed: number, prefix: string): Probe[] {
  const rng = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.uniform() * xs.length)];
  const garbage = () => Array.from({ length: 1 + Math.floor(rng.uniform() * 40) }, () => String.fromCharCode(32 + Math.floor(rng.uniform() * 95))).join('');
  const out: Probe[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}${i}`;
    switch (i % 10) {
      case 0: out.push({ frame: `{${garbage()}`, answer: null }); break; // not JSON
      case 1: out.push({ frame: JSON.stringify(pick([42, 'text', null, true, [], [{ jsonrpc: '2.0', id, method: 'info' }]])), answer: null }); break; // not an object; a batch
      case 2: out.push({ frame: JSON.stringify({ jsonrpc: pick(['1.0', 2, null, undefined]), id, method: 'info' }), answer: id }); break;
      case 3: out.push({ frame: JSON.stringify({ jsonrpc: '2.0', id, method: pick(prototypeNames) }), answer: id });break;
      case 4: out.push({ frame: JSON.stringify({ jsonrpc: '2.0', id, method: garbage() }), answer: id }); break;
      case 5: out.push({ frame: JSON.stringify({ jsonrpc: '2.0', id, method: pick(methodNames), params: pick(wrongParams) }), answer: id }); break;
      case 6: out.push({ frame: JSON.stringify({ jsonrpc: '2.0', method: pick([...prototypeNames, garbage()]) }), answer: 'none' }); break; // a notification
      case 7: out.push({ frame: JSON.stringify({ jsonrpc: '2.0', id: pick([{}, [], true, null]), method: 'info' }), answer: null }); break; // an id of the wrong type
      case 8: out.push({ frame: JSON.stringify({ jsonrpc: '2.0', id, method: pick(methodNames), params: pick(wrongParams) }).replace(/}$/, ',"__proto__":{"x":1}}'), answer: id }); break;
      default: out.push({ frame: `${'['.repeat(1 + Math.floor(rng.uniform() * 50_000))}`, answer: null }); break; // deep nesting, unterminated
    }
  }
  return out;
}

interface Reply {
  readonly id: string | number | null;
  readonly result?: unknown;
  readonly error?: { code: number; message: string };
}

/** Checks replies against probes: one error per request-shaped probe, with its id; no stack; no result. */
function checkReplies(sent: readonly Probe[], replies: readonly Reply[]): void {
  const expectedIds = new Map<string, number>();
  let expectedNull = 0;
  for (const p of sent) {
    if (p.answer === 'none') continue;
    if (p.answer === null) expectedNull++;
    else expectedIds.set(p.answer, (expectedIds.get(p.answer) ?? 0) + 1);
  }
  const gotIds = new Map<string, number>();
  let gotNull = 0;
  for (const r of replies) {
    expect(r.result, JSON.stringify(r)).toBeUndefined();
    expect(r.error, JSON.stringify(r)).toBeDefined();
    expect(r.error!.message).not.toMatch(/\n|\s+at\s+\S+\s+\(|\.ts:\d+/);
    if (r.id === null) gotNull++;
    else gotIds.set(String(r.id), (gotIds.get(String(r.id)) ?? 0) + 1);
  }
  expect(gotNull).toBe(expectedNull);
  expect(gotIds).toEqual(expectedIds);
}

const isNotification = (r: Record<string, unknown>) => !('id' in r) && 'method' in r;

describe('hostile JSON-RPC', () => {
  it('over stdio: serve --stdio answers every malformed frame with an error and keeps serving', async () => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ttt-workbench.js'), 'serve', '--stdio', '--data', join(work.dir, 'stdio'), '--backend', 'cpu'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const replies: Reply[] = [];
    let buffer = '';
    const waiters: (() => void)[] = [];
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        if (!line.trim()) continue;
        const json = JSON.parse(line) as Record<string, unknown>;
        if (!isNotification(json)) replies.push(json as unknown as Reply);
      }
      waiters.splice(0).forEach((w) => w());
    });
    const waitFor = async (check: () => boolean) => {
      while (!check()) {
        expect(child.exitCode, `the engine exited: ${stderr.slice(-2000)}`).toBeNull();
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 500);
        });
      }
    };
    const sent = probes(6000, Date.now() % 1e9, 's');
    // two oversized frames: a line over the limit is answered (id null) and skipped, not kept in memory
    const huge = `{"jsonrpc":"2.0","id":"huge","method":"info","params":{"x":"${'a'.repeat(maxFrameBytes)}"}}`;
    sent.push({ frame: huge, answer: null }, { frame: huge, answer: null });
    for (let i = 0; i < sent.length; i += 500) {
      child.stdin.write(sent.slice(i, i + 500).map((p) => `${p.frame}\n`).join(''));
      await new Promise((r) => setImmediate(r));
    }
    const expected = sent.filter((p) => p.answer !== 'none').length;
    await waitFor(() => replies.length >= expected);
    // a normal request still works (and proves nothing more was coming for the probes)
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 'final', method: 'listRuns' })}\n`);
    await waitFor(() => replies.some((r) => r.id === 'final'));
    const final = replies.pop()!;
    expect(final.result).toEqual({ runs: [] });
    checkReplies(sent, replies);
    console.log(`stdio: ${sent.length} hostile frames, ${replies.length} errors, engine alive`);
    expect(child.exitCode).toBeNull();
    expect(stderr).not.toMatch(/\s+at\s+/);
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));
    expect(child.exitCode).toBe(0);
  });

  it('over WebSocket: errors for hostile frames, oversized frames close only that socket, foreign pages and bad tokens refused', async () => {
    const backend = await selectBackend('cpu');
    const service = new EngineService({ dataDir: join(work.dir, 'ws'), backend });
    const engine = await serveWebSocket(service, { staticDir: work.dir });
    const open = (url = engine.wsUrl, options: WebSocket.ClientOptions = {}) => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, options);
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    try {
      // refused: a page of another origin (even with the token), a wrong token, no token
      await expect(open(engine.wsUrl, { origin: 'https://evil.example' })).rejects.toThrow('HTTP 403');
      await expect(open(engine.wsUrl, { origin: 'http://127.0.0.1:1' })).rejects.toThrow('HTTP 403');
      await expect(open(engine.wsUrl.replace(/token=\w+/, 'token=wrong'))).rejects.toThrow('HTTP 401');
      await expect(open(engine.wsUrl.replace(/\?token=\w+/, ''))).rejects.toThrow('HTTP 401');
      // accepted: the app's own page, and a client without Origin that has the token
      (await open(engine.wsUrl, { origin: `http://127.0.0.1:${engine.port}` })).close();

      const ws = await open();
      const replies: Reply[] = [];
      ws.on('message', (data) => {
        const json = JSON.parse(data.toString()) as Record<string, unknown>;
        if (!isNotification(json)) replies.push(json as unknown as Reply);
      });
      const sent = probes(6000, (Date.now() + 1) % 1e9, 'w');
      for (const p of sent) ws.send(p.frame);
      const expected = sent.filter((p) => p.answer !== 'none').length;
      const start = Date.now();
      while (replies.length < expected && Date.now() - start < 60_000) await new Promise((r) => setTimeout(r, 50));
      checkReplies(sent, replies);

      // an oversized frame closes that socket with 1009 (message too big); the server goes on
      const big = await open();
      const closed = new Promise<number>((resolve) => big.once('close', (code) => resolve(code)));
      big.send(`{"jsonrpc":"2.0","id":1,"method":"info","params":{"x":"${'a'.repeat(maxFrameBytes)}"}}`);
      expect(await closed).toBe(1009);

      // a malformed static URL is a 400, not a crash
      const status = await new Promise<number>((resolve) => {
        request({ host: '127.0.0.1', port: engine.port, path: '/%E0%A4%A' }, (res) => resolve(res.statusCode ?? 0)).end();
      });
      expect(status).toBe(400);

      // many connections at once, each answered
      const many = await Promise.all(Array.from({ length: 40 }, () => open()));
      const answers = await Promise.all(many.map((c, i) => new Promise<Reply>((resolve) => {
        c.once('message', (data) => resolve(JSON.parse(data.toString()) as Reply));
        c.send(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'listRuns' }));
      })));
      expect(answers.map((a) => a.id)).toEqual(many.map((_, i) => i));
      expect(answers.every((a) => a.error === undefined)).toBe(true);
      many.forEach((c) => c.close());

      // and the first socket still works
      const final = new Promise<Reply>((resolve) => ws.on('message', (data) => {
        const r = JSON.parse(data.toString()) as Reply;
        if (r.id === 'final') resolve(r);
      }));
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'final', method: 'listRuns' }));
      expect((await final).result).toEqual({ runs: [] });
      console.log(`websocket: ${sent.length} hostile frames, ${replies.length} errors, engine alive`);
      ws.close();
    } finally {
      await engine.close();
    }
  });
});
