/**
 * `npm run web [-- --port P]`: the workbench in a browser. Builds the renderer when its build is missing or
 * older than its sources, starts the engine in this process (JSON-RPC over WebSocket plus the renderer's files
 * over HTTP, on 127.0.0.1 only, behind a random token), and prints exactly one line:
 *   Workbench ready: http://127.0.0.1:P/?token=…
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { shippedAssets } from '../electron/files.js';
import { engineVersions } from '../engine/cli/analyze.js';
import { selectBackend } from '../engine/core/backend.js';
import { EngineService } from '../engine/server/engine-service.js';
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
      backend: { type: 'string' }, 'upload-limit': { type: 'string' }, rebuild: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
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
  const assets = shippedAssets(root);
  const service = new EngineService({
    dataDir: values.data ?? process.env.TTT_WORKBENCH_HOME ?? join(homedir(), '.ttt-workbench'),
    builtinModels: values.model ?? assets.models,
    builtinBooks: values.book ?? assets.books,
    backend: await selectBackend(values.backend),
    versions: engineVersions(),
    ...(uploadLimit ? { uploadLimits: { bookBytes: Math.round(uploadLimit * 1024 * 1024) } } : {}),
  });
  const engine = await serveWebSocket(service, { port, staticDir: rendererDir });
  process.stdout.write(`Workbench ready: ${engine.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  // cancelled runs close their files first, so they stay readable
  service.queue.cancelAll();
  await service.queue.whenIdle();
  await engine.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`web: ${(error as Error).message ?? String(error)}\n`);
    process.exit(1);
  },
);
