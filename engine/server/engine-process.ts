/**
 * The engine's own process (`ttt-workbench serve --stdio`), seen from whoever runs it (Electron's main, web mode's
 * server): JSON-RPC frames one per line, a typed client, and a supervisor that restarts the process when it dies.
 * Runs are on disk, so a restart loses only the run that was in flight (the engine marks it interrupted) and never
 * finished ones. Plain Node: imports neither electron nor DOM.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import {
  EngineError, errorCodes, type MethodName, type MethodParams, type MethodResult, type NotificationHandler, type NotificationParams, RpcClient,
} from '../protocol.js';

/** `crashed`: the process died and a restart is scheduled; `failed`: it kept dying and the supervisor gave up. */
export type EngineState = NotificationParams<'engineState'>;

export type SpawnEngine = () => Pick<ChildProcessWithoutNullStreams, 'stdin' | 'stdout' | 'stderr' | 'kill' | 'once' | 'pid'>;

export interface EngineProcessOptions {
  readonly spawn: SpawnEngine;
  readonly onState: (state: EngineState) => void;
  readonly onNotification: NotificationHandler;
  /** Waits before each restart; after the last one the supervisor gives up (`failed`). */
  readonly restartDelaysMs?: readonly number[];
  /** A process that stayed up this long resets the restart count. */
  readonly stableAfterMs?: number;
}

const lastLines = (text: string, n = 3) => text.trim().split('\n').slice(-n).join(' ').slice(0, 400);

export class EngineProcess {
  private child: ReturnType<SpawnEngine> | null = null;
  private client: RpcClient | null = null;
  private ready: Promise<void> = Promise.resolve();
  private restarts = 0;
  private stopping = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** The running process's id, or null between a crash and the restart. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  constructor(private readonly options: EngineProcessOptions) {}

  start(): void {
    this.stopping = false;
    const child = this.options.spawn();
    const client = new RpcClient((frame) => child.stdin.write(`${frame}\n`));
    this.child = child;
    this.client = client;
    let stderr = '';
    const startedAt = Date.now();
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => client.receive(line));
    client.onNotification(this.options.onNotification);
    child.stdin.on('error', () => undefined); // EPIPE when the process died mid-write: 'exit' reports it
    this.emit('starting', null);
    this.ready = client.call('info', {}).then(
      () => this.emit('ready', null),
      () => undefined, // the exit handler reports why
    );
    child.once('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      this.client = null;
      client.failAll('the engine process stopped');
      if (this.stopping) return;
      if (Date.now() - startedAt > (this.options.stableAfterMs ?? 60_000)) this.restarts = 0;
      const why = `the engine stopped (${signal ?? `exit code ${code}`})${stderr ? `: ${lastLines(stderr)}` : ''}`;
      const delays = this.options.restartDelaysMs ?? [0, 1000, 3000, 10_000];
      if (this.restarts >= delays.length) return this.emit('failed', `${why}; it kept stopping, so it was not restarted`);
      this.emit('crashed', `${why}; restarting it`);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.restarts++;
        this.start();
      }, delays[this.restarts]);
    });
  }

  /** One request to the engine; waits for a starting engine, fails at once if none is running. */
  async call<M extends MethodName>(method: M, params: MethodParams<M>): Promise<MethodResult<M>> {
    await this.ready;
    if (!this.client) throw new EngineError(errorCodes.internalError, 'the engine is not running (it is being restarted)');
    return this.client.call(method, params);
  }

  /** Ends the process (closing stdin lets the engine cancel and flush the current run first). */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.stdin.end();
    });
  }

  private emit(status: EngineState['status'], message: string | null): void {
    this.options.onState({ status, message, restarts: this.restarts });
  }
}
