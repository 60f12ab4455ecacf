/**
 * JSON-RPC over WebSocket on 127.0.0.1 for web mode, behind a random access token (a connection without it is
 * refused), plus plain HTTP for the renderer's static files when a folder is given.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { WebSocketServer } from 'ws';
import type { EngineService } from './engine-service.js';
import { createRpcServer } from './rpc-server.js';

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

export async function serveWebSocket(service: EngineService, options: { port?: number; token?: string; staticDir?: string } = {}): Promise<WebSocketEngine> {
  const token = options.token ?? randomBytes(16).toString('hex');
  const http: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (!options.staticDir) return void res.writeHead(404).end();
    const path = normalize(url.pathname === '/' ? '/index.html' : decodeURIComponent(url.pathname));
    if (path.includes('..')) return void res.writeHead(400).end();
    readFile(join(options.staticDir, path))
      .then((body) => res.writeHead(200, { 'content-type': contentTypes[extname(path)] ?? 'application/octet-stream' }).end(body))
      .catch(() => res.writeHead(404).end());
  });
  const wss = new WebSocketServer({
    server: http,
    path: '/rpc',
    // requests are small but for uploadFile's pieces (uploadPieceBytes, 4 MiB as ~5.6 MiB of base64)
    maxPayload: 16 * 1024 * 1024,
    verifyClient: ({ req }: { req: IncomingMessage }) => new URL(req.url ?? '', 'http://127.0.0.1').searchParams.get('token') === token,
  });
  wss.on('connection', (socket) => {
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
  const port = typeof address === 'object' && address ? address.port : options.port ?? 0;
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
