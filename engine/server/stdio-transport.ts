/**
 * JSON-RPC over stdio for the Electron engine process: one JSON frame per line in, one per line out. A line over
 * `maxFrameBytes` is answered with an error and skipped without being held in memory.
 */
import type { EngineService } from './engine-service.js';
import { createRpcServer, frameTooLarge, maxFrameBytes } from './rpc-server.js';

/** Splits a byte stream into lines of at most `max` bytes; `onLine` gets each, `onTooLarge` each longer one once. */
export function lineSplitter(max: number, onLine: (line: string) => void, onTooLarge: () => void): (chunk: Buffer | string) => void {
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  const take = (piece: Buffer): boolean => {
    if (skipping) return false;
    size += piece.length;
    if (size > max) {
      skipping = true;
      parts = [];
      onTooLarge();
      return false;
    }
    parts.push(piece);
    return true;
  };
  return (chunk) => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (;;) {
      const newline = bytes.indexOf(10, start);
      if (newline < 0) {
        if (start < bytes.length) take(bytes.subarray(start));
        return;
      }
      if (take(bytes.subarray(start, newline))) onLine(Buffer.concat(parts).toString('utf8'));
      parts = [];
      size = 0;
      skipping = false;
      start = newline + 1;
    }
  };
}

export function serveStdio(service: EngineService, input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): Promise<void> {
  let open = true;
  const write = (frame: string) => open && output.write(`${frame}\n`);
  // a reader that went away (EPIPE) ends the session; it must not end the process with an unhandled error
  output.on('error', () => (open = false));
  const unsubscribe = service.subscribe((method, params) => write(JSON.stringify({ jsonrpc: '2.0', method, params })));
  const server = createRpcServer(service.handlers, (method, params) => write(JSON.stringify({ jsonrpc: '2.0', method, params })));
  const onData = lineSplitter(maxFrameBytes, (line) => {
    if (line.trim() === '') return;
    void server.handle(line).then((response) => response && write(response));
  }, () => write(frameTooLarge()));
  input.on('data', onData);
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      unsubscribe();
      server.close();
      resolve();
    };
    input.on('end', finish);
    input.on('close', finish);
    input.on('error', finish);
  });
}
