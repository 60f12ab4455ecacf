/** The workbench in web mode (`scripts/web.ts`) and a headless Debian Chromium, for end-to-end tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..');

export interface WebMode {
  /** The web server; the engine runs in a child process of it. */
  readonly child: ChildProcess;
  readonly url: string;
  /** The ids of the engine processes it started so far (from its `web: engine process started (pid N)` lines). */
  enginePids(): number[];
}

/**
 * Starts web mode with these models and book (none given: the shipped ones) and more of its options, and resolves
 * with the URL of the one line it prints. Also used by the scripts that time the UI (scripts/live-run.ts,
 * large-run.ts, readme-pictures.ts).
 */
export async function startWeb(dataDir: string, models: readonly string[] = [], book?: string, options: readonly string[] = []): Promise<WebMode> {
  const args = ['--import', 'tsx', 'scripts/web.ts', '--port', '0', '--data', dataDir, ...models.flatMap((m) => ['--model', m]), ...(book ? ['--book', book] : []), ...options];
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /^Workbench ready: (http:\/\/127\.0\.0\.1:\d+\/\?token=\w+)\n$/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`web mode exited with ${code}: ${err || out}`)));
  });
  const enginePids = () => [...err.matchAll(/^web: engine process started \(pid (\d+)\)$/gm)].map((m) => Number(m[1]));
  return { child, url, enginePids };
}

export async function stopWeb(web: WebMode | null): Promise<void> {
  if (!web || web.child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    web.child.once('exit', () => resolve());
    web.child.kill('SIGTERM');
  });
}
