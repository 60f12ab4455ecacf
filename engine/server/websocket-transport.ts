/**
 * JSON-RPC over WebSocket on 127.0.0.1 for web mode, behind a random access token (a connection without it is
 * refused), plus plain HTTP for the renderer's static files when a folder is given.
 *
 * A web page the user visits elsewhere must not drive the engine: a connection from a browser (which always sends
 * `Origin`) is accepted only from this server's own page; one without `Origin` (Node's `ws`, scripts) only with
 * the token, like every connection. Frames over `maxFrameBytes` close the socket (1009); at most `maxClients`
 * connections are served at once.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { WebSocketServer } from 'ws';
import { createRpcServer, maxFrameBytes, type RpcEndpoint } from './rpc-server.js';

export interface WebSocketEngine {
  readonly port: number;
  readonly token: string;
  /** Where a browser opens the app (static folder given) or connects (ws URL). */
  readonly url: string;
  readonly wsUrl: string;
  close(): Promise<void>;
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.woff2': 'font/woff2', '.map': 'application/json',
};

/** Connections served at once: a page and a few tools; more is a runaway client. */
export const maxClients = 64;

const sameToken = (given: string | null, token: string): boolean =>
  given !== null && given.length === token.length && timingSafeEqual(Buffer.from(given), Buffer.from(token));

/**
 * Why a WebSocket upgrade may not connect, as an HTTP status (401: no or a wrong token; 403: a browser page of
 * another origin), or null when it may: the token, and a browser's Origin only from this server's own page.
 */
export function refusesUpgrade(req: IncomingMessage, token: string, port: number): 401 | 403 | null {
  let url: URL;
  try {
    url = new URL(req.url ?? '', 'http://127.0.0.1');
  } catch {
    return 401;
  }
  if (!sameToken(url.searchParams.get('token'), token)) return 401;
  const origin = req.headers.origin;
  if (origin === undefined || origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`) return null;
  return 403;
}

export async function serveWebSocket(service: RpcEndpoint, options: { port?: number; token?: string; staticDir?: string } = {}): Promise<WebSocketEngine> {
  const token = options.token ?? randomBytes(16).toString('hex');
  let port = options.port ?? 0; // the port listened on, once listening
  const http: Server = createServer((req, res) => {
    if (!options.staticDir) return void res.writeHead(404).end();
    let path: string;
    try {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      path = normalize(url.pathname === '/' ? '/index.html' : decodeURIComponent(url.pathname));
    } catch {
      return void res.writeHead(400).end(); // a malformed URL or escape
    }
    if (path.includes('..') || path.includes('\0')) return void res.writeHead(400).end();
    readFile(join(options.staticDir, path))
      .then((body) => res.writeHead(200, { 'content-type': contentTypes[extname(path)] ?? 'application/octet-stream' }).end(body))
      .catch(() => res.writeHead(404).end());
  });
  const wss = new WebSocketServer({
    server: http,
    path: '/rpc',
    // requests are small but for uploadFile's pieces (uploadPieceBytes, 4 MiB as ~5.6 MiB of base64)
    maxPayload: maxFrameBytes,
    verifyClient: ({ req }: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
      const refused = refusesUpgrade(req, token, port);
      if (refused !== null) return done(false, refused, refused === 401 ? 'Unauthorized' : 'Forbidden');
      if (wss.clients.size >= maxClients) return done(false, 503, 'Too many connections');
      done(true);
    },
  });
  // a refused or broken handshake is that client's problem, never the server's
  wss.on('error', () => undefined);
  wss.on('connection', (socket) => {
    // an oversized or malformed frame closes this socket (ws sends 1009 / 1002); it must not end the engine
    socket.on('error', () => socket.terminate());
    const send = (frame: string) => socket.readyState === socket.OPEN && socket.send(frame);
    const notify = (method: string, params: unknown) => send(JSON.stringify({ jsonrpc: '2.0', method, params }));
    const unsubscribe = service.subscribe(notify);
    const server = createRpcServer(service.handlers, notify);
    socket.on('message', (data) => void server.handle(data.toString()).then((response) => response && send(response)));
    socket.on('close', () => {
      unsubscribe();
      server.close();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = http.address();
  port = typeof address === 'object' && address ? address.port : options.port ?? 0;
  return {
    port,
    token,
    url: `http://127.0.0.1:${port}/?token=${token}`,
    wsUrl: `ws://127.0.0.1:${port}/rpc?token=${token}`,
    close: () => new Promise<void>((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close(() => http.close(() => resolve()));
    }),
  };
}
