/** `ttt-workbench serve`: the engine as a JSON-RPC 2.0 server, over stdio (desktop) or WebSocket (web mode). */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../core/backend.js';
import { workbenchError } from '../core/errors.js';
import { EngineService } from '../server/engine-service.js';
import { serveStdio } from '../server/stdio-transport.js';
import { serveWebSocket } from '../server/websocket-transport.js';
import { engineVersions } from './analyze.js';
import { type Command, intOption, parseCommandArgs } from './args.js';

const help = `Usage: ttt-workbench serve (--stdio | --port P) [options]

Runs the engine as a JSON-RPC 2.0 server (methods and notifications: engine/protocol.ts).

Options:
  --stdio             one JSON frame per line on stdin/stdout (how the desktop app runs the engine)
  --port P            WebSocket on ws://127.0.0.1:P/rpc?token=…; 0 picks a free port. Prints one line
                      "Engine ready: URL" with the access token; connections without it are refused
  --token T           use this access token instead of a random one
  --static DIR        also serve the renderer's files from DIR over HTTP on the same port
  --data DIR          where runs and the library live (default ~/.ttt-workbench or $TTT_WORKBENCH_HOME)
  --model DIR         a model folder always listed (repeatable; the shipped demo models)
  --book FILE         a book always listed (repeatable; the shipped sample book)
  --backend B         tensorflow | webgpu | wasm | cpu (default: the best available)
  --upload-limit MIB  the largest book a browser may upload (uploadFile), in MiB (default 64)
  --checkpoint-seconds S  seconds between an analysis run's state checkpoints, which Resume continues from (default 60)
  -h, --help          show this help`;

export const serveCommand: Command = {
  name: 'serve',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('serve', argv, {
      stdio: { type: 'boolean' }, port: { type: 'string' }, token: { type: 'string' }, static: { type: 'string' },
      data: { type: 'string' }, model: { type: 'string', multiple: true }, book: { type: 'string', multiple: true }, backend: { type: 'string' },
      'upload-limit': { type: 'string' }, 'checkpoint-seconds': { type: 'string' },
    });
    if (values.help) {
      io.stdout(help);
      return 0;
    }
    if (!values.stdio && values.port === undefined) throw workbenchError('E_USAGE', 'serve: give --stdio or --port P (see ttt-workbench serve --help)');
    const uploadLimit = values['upload-limit'] === undefined ? undefined : Number(values['upload-limit']);
    if (uploadLimit !== undefined && !(uploadLimit > 0)) throw workbenchError('E_USAGE', `serve: --upload-limit must be a positive number of MiB, got "${values['upload-limit']}"`);
    const checkpointSeconds = values['checkpoint-seconds'] === undefined ? undefined : Number(values['checkpoint-seconds']);
    if (checkpointSeconds !== undefined && !(checkpointSeconds >= 0)) {
      throw workbenchError('E_USAGE', `serve: --checkpoint-seconds must be a number of seconds, 0 or more, got "${values['checkpoint-seconds']}"`);
    }
    const backend = await selectBackend(values.backend);
    const service = new EngineService({
      dataDir: values.data ?? process.env.TTT_WORKBENCH_HOME ?? join(homedir(), '.ttt-workbench'),
      builtinModels: values.model ?? [],
      builtinBooks: values.book ?? [],
      backend,
      versions: engineVersions(),
      ...(uploadLimit ? { uploadLimits: { bookBytes: Math.round(uploadLimit * 1024 * 1024) } } : {}),
      checkpointSeconds,
    });
    if (values.stdio) {
      await serveStdio(service);
      service.queue.cancelAll();
      await service.queue.whenIdle();
      return 0;
    }
    const engine = await serveWebSocket(service, { port: intOption('serve', values.port, '--port', 0), token: values.token, staticDir: values.static });
    io.stdout(`Engine ready: ${values.static ? engine.url : engine.wsUrl}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    service.queue.cancelAll();
    await service.queue.whenIdle();
    await engine.close();
    return 0;
  },
};
