/** JSON-RPC over stdio for the Electron engine process: one JSON frame per line in, one per line out. */
import { createInterface } from 'node:readline';
import type { EngineService } from './engine-service.js';
import { createRpcServer } from './rpc-server.js';

export function serveStdio(service: EngineService, input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): Promise<void> {
  const write = (frame: string) => output.write(`${frame}\n`);
  const unsubscribe = service.subscribe((method, params) => write(JSON.stringify({ jsonrpc: '2.0', method, params })));
  const server = createRpcServer(service.handlers, (method, params) => write(JSON.stringify({ jsonrpc: '2.0', method, params })));
  const lines = createInterface({ input, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    void server.handle(line).then((response) => response && write(response));
  });
  return new Promise((resolve) => {
    lines.on('close', () => {
      unsubscribe();
      server.close();
      resolve();
    });
  });
}
