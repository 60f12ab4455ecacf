/**
 * The Redis connection BullMQ runs on. BullMQ 6 ships no Redis driver: it takes ioredis, node-redis or a client
 * shaped like Bun's built-in `RedisClient`. When ioredis is installed it is used; otherwise this small RESP2
 * client, in Bun's shape (`send(command, args)`, `connected`, `connect()`, `close()`, `duplicate()`, `onconnect`,
 * `onclose`), which BullMQ's own Bun adapter (bullmq/dist/…/bun-redis-client.js) wraps: commands are pipelined
 * on one socket and answered in order; password, user, database and TLS (rediss://) come from the URL.
 * Reconnecting after a dropped connection is the adapter's (it duplicates the client and connects again).
 */
import { createRequire } from 'node:module';
import { createBunRedisClient } from 'bullmq';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

type Reply = string | number | null | Reply[];

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

/** Thrown by the parser when the buffer ends inside a reply. */
const incomplete = Symbol('incomplete');

export class RespClient {
  connected = false;
  onconnect: (() => void) | null = null;
  onclose: ((error?: Error) => void) | null = null;
  onerror: ((error: Error) => void) | null = null;
  private socket: Socket | null = null;
  private buffer: Buffer = Buffer.alloc(0);
  private readonly pending: Pending[] = [];

  constructor(readonly url: string) {}

  async connect(): Promise<void> {
    if (this.connected) return;
    const u = new URL(this.url);
    const port = Number(u.port || 6379);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = u.protocol === 'rediss:' ? tlsConnect({ host, port, servername: host }, () => resolve(s)) : netConnect({ host, port }, () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    this.socket = socket;
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', (error) => this.onerror?.(error));
    socket.on('close', (hadError) => {
      const error = new Error('Connection closed');
      this.connected = false;
      this.socket = null;
      for (const p of this.pending.splice(0)) p.reject(error);
      this.onclose?.(hadError ? error : undefined);
    });
    const password = decodeURIComponent(u.password);
    const user = decodeURIComponent(u.username);
    if (password) await this.command('AUTH', user ? [user, password] : [password]);
    const db = u.pathname.replace(/^\//, '');
    if (db) await this.command('SELECT', [db]);
    this.connected = true;
    this.onconnect?.();
  }

  send(command: string, args: readonly unknown[]): Promise<Reply> {
    if (!this.connected) return Promise.reject(new Error('Connection is closed.'));
    return this.command(command, args);
  }

  close(): void {
    this.socket?.end();
    this.socket?.destroy();
  }

  /** What BullMQ checks a client instance by (connect, disconnect, duplicate). */
  disconnect(): void {
    this.close();
  }


  async duplicate(): Promise<RespClient> {
    const copy = new RespClient(this.url);
    await copy.connect();
    return copy;
  }

  private command(command: string, args: readonly unknown[]): Promise<Reply> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new Error('Connection is closed.'));
    const parts = [command, ...args].map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8')));
    const frames: Buffer[] = [Buffer.from(`*${parts.length}\r\n`)];
    for (const p of parts) frames.push(Buffer.from(`$${p.length}\r\n`), p, Buffer.from('\r\n'));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      socket.write(Buffer.concat(frames));
    });
  }

  private onData(data: Buffer): void {
    this.buffer = this.buffer.length === 0 ? data : Buffer.concat([this.buffer, data]);
    while (this.buffer.length > 0) {
      let parsed: { value: Reply | Error; end: number };
      try {
        parsed = parseReply(this.buffer, 0);
      } catch (error) {
        if (error === incomplete) return;
        throw error;
      }
      this.buffer = this.buffer.subarray(parsed.end);
      const waiter = this.pending.shift();
      if (parsed.value instanceof Error) waiter?.reject(parsed.value);
      else waiter?.resolve(parsed.value);
    }
  }
}

function lineEnd(buffer: Buffer, at: number): number {
  const end = buffer.indexOf('\r\n', at);
  if (end < 0) throw incomplete;
  return end;
}

/** One RESP2 reply starting at `at`; errors inside arrays (from EXEC) become Error values. */
function parseReply(buffer: Buffer, at: number): { value: Reply | Error; end: number } {
  if (at >= buffer.length) throw incomplete;
  const type = String.fromCharCode(buffer[at]);
  const end = lineEnd(buffer, at + 1);
  const line = buffer.toString('utf8', at + 1, end);
  switch (type) {
    case '+':
      return { value: line, end: end + 2 };
    case '-':
      return { value: new Error(line), end: end + 2 };
    case ':':
      return { value: Number(line), end: end + 2 };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: end + 2 };
      if (buffer.length < end + 2 + length + 2) throw incomplete;
      return { value: buffer.toString('utf8', end + 2, end + 2 + length), end: end + 2 + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: end + 2 };
      const items: (Reply | Error)[] = [];
      let next = end + 2;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, next);
        items.push(item.value);
        next = item.end;
      }
      return { value: items as Reply[], end: next };
    }
    default:
      throw new Error(`redis: unexpected reply type "${type}"`);
  }
}

/** Ends a client made by `redisClient` (BullMQ leaves clients it was given open). */
export function endRedisClient(client: unknown): void {
  (client as { disconnect?: () => void }).disconnect?.();
}

/** A new connection to `url` for BullMQ: an ioredis client when ioredis is installed, else a `RespClient`. */
export function redisClient(url: string): unknown {
  try {
    const require = createRequire(import.meta.url);
    const mod = require('ioredis') as { default?: new (url: string, options: object) => unknown } & (new (url: string, options: object) => unknown);
    const Redis = mod.default ?? mod;
    return new Redis(url, { maxRetriesPerRequest: null });
  } catch {
    return createBunRedisClient(new RespClient(url) as unknown as Parameters<typeof createBunRedisClient>[0]);
  }
}
