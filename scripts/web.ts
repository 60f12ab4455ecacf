/**
 * `npm run web [-- --port P]`: the workbench in a browser, shaped like the desktop app. Builds the renderer when its
 * build is missing or older than its sources, serves its files over HTTP and JSON-RPC over a WebSocket (127.0.0.1
 * only, behind a random token), and runs the engine as a child process (`ttt-workbench serve --stdio`, as
 * Electron's main does), relaying frames between the pages and the child and restarting the child when it dies:
 * the pages stay connected and show the engine's state. Prints exactly one line on stdout:
 *   Workbench ready: http://127.0.0.1:P/?token=…
 * and on stderr one line per engine process started: `web: engine process started (pid N)`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { shippedAssets } from '../electron/files.js';
import { BackendName } from '../engine/protocol.js';
import { bridgeEngineProcess } from '../engine/server/engine-bridge.js';
import { serveWebSocket } from '../engine/server/websocket-transport.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rendererDir = join(root, '.vite', 'renderer', 'main_window');

const help = `Usage: npm run web -- [options]

Options:
  --port P        port on 127.0.0.1 (default: a free one)
  --data DIR      where runs and the library live (default ~/.ttt-workbench or $TTT_WORKBENCH_HOME)
  --model DIR     a model folder to list as shipped (repeatable; default: assets/models/*)
  --book FILE     a book to list as the sample (repeatable; default: assets/books/*)
  --backend B     tensorflow | webgpu | wasm | cpu (default: the best available)
  --upload-limit MIB  the largest book the browser may upload, in MiB (default 64)
  --checkpoint-seconds S  seconds between a run's state checkpoints, which Resume continues from (default 60)
  --rebuild       build the renderer even if its build looks current
  -h, --help      show this help`;

function newestMtime(path: string): number {
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  return Math.max(info.mtimeMs, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

/** The renderer's build is current when it is newer than every file it is built from. */
function rendererIsCurrent(): boolean {
  const built = join(rendererDir, 'index.html');
  if (!existsSync(built)) return false;
  const sources = [join(root, 'renderer'), join(root, 'index.html'), join(root, 'vite.renderer.config.ts'), join(root, 'engine', 'protocol.ts'), join(root, 'electron', 'api.ts')];
  return statSync(built).mtimeMs >= Math.max(...sources.map(newestMtime));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' }, data: { type: 'string' }, model: { type: 'string', multiple: true }, book: { type: 'string', multiple: true },
      backend: { type: 'string' }, 'upload-limit': { type: 'string' }, 'checkpoint-seconds': { type: 'string' }, rebuild: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${help}\n`);
    return 0;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number, got "${values.port}"`);
  const uploadLimit = values['upload-limit'] === undefined ? undefined : Number(values['upload-limit']);
  if (uploadLimit !== undefined && !(uploadLimit > 0)) throw new Error(`--upload-limit must be a positive number of MiB, got "${values['upload-limit']}"`);
  if (values.rebuild || !rendererIsCurrent()) {
    const { build } = await import('vite');
    // Always a production bundle: started from the test runner, NODE_ENV is "test", and Vite would bundle
    // React's development build (several times slower to render, e.g. the token heatmap).
    const nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      await build({ configFile: join(root, 'vite.renderer.config.ts'), logLevel: 'warn', mode: 'production' });
    } finally {
      if (nodeEnv === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = nodeEnv;
    }
  }
  if (values.backend !== undefined && !BackendName.safeParse(values.backend).success) {
    throw new Error(`--backend must be one of ${BackendName.options.join(', ')}, got "${values.backend}"`);
  }
  const assets = shippedAssets(root);
  const args = [
    'serve', '--stdio', '--data', values.data ?? process.env.TTT_WORKBENCH_HOME ?? join(homedir(), '.ttt-workbench'),
    ...(values.model ?? assets.models).flatMap((m) => ['--model', m]), ...(values.book ?? assets.books).flatMap((b) => ['--book', b]),
    ...(values.backend ? ['--backend', values.backend] : []), ...(uploadLimit ? ['--upload-limit', String(uploadLimit)] : []),
    ...(values['checkpoint-seconds'] !== undefined ? ['--checkpoint-seconds', values['checkpoint-seconds']] : []),
  ];
  const bridge = bridgeEngineProcess(() => {
    const child = spawn(process.execPath, [join(root, 'bin', 'ttt-workbench.js'), ...args], { cwd: root, stdio: 'pipe' });
    process.stderr.write(`web: engine process started (pid ${child.pid})\n`);
    return child;
  }, {
    onState: (state) => state.status === 'crashed' || state.status === 'failed' ? process.stderr.write(`web: ${state.message}\n`) : undefined,
  });
  const server = await serveWebSocket(bridge, { port, staticDir: rendererDir });
  process.stdout.write(`Workbench ready: ${server.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  // closing the engine's stdin cancels its run, which closes its files first, so they stay readable
  await bridge.stop();
  await server.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`web: ${(error as Error).message ?? String(error)}\n`);
    process.exit(1);
  },
);
