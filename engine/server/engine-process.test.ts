import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tiny-models.js';
import { EngineProcess, type EngineState } from './engine-process.js';
import { until } from '../../test/helpers/until.js';

const root = join(import.meta.dirname, '..', '..');
const work = tempDir('ttt-engine-process-');
afterAll(() => work.cleanup());

describe('engine process supervisor', () => {
  it('runs the real engine over stdio, restarts it when it dies, and keeps answering', async () => {
    const states: EngineState[] = [];
    const pids: number[] = [];
    const engine = new EngineProcess({
      // plain Node here; the desktop app runs the same command with Electron's binary as Node
      spawn: () => {
        const child = spawn(process.execPath, [join(root, 'bin', 'ttt-workbench.js'), 'serve', '--stdio', '--data', work.dir, '--backend', 'cpu'], { stdio: 'pipe' });
        pids.push(child.pid!);
        return child;
      },
      onState: (state) => states.push(state),
      onNotification: () => undefined,
      restartDelaysMs: [0],
    });
    engine.start();
    try {
      expect((await engine.call('info', {})).runsDir).toBe(join(work.dir, 'runs'));
      process.kill(pids[0], 'SIGKILL');
      await until(() => states.filter((s) => s.status === 'ready').length === 2);
      expect(states.map((s) => s.status)).toEqual(['starting', 'ready', 'crashed', 'starting', 'ready']);
      expect(states[2].message).toMatch(/^the engine stopped \(SIGKILL\).*restarting it$/);
      expect((await engine.call('listRuns', {})).runs).toEqual([]);
      expect(pids).toHaveLength(2);
    } finally {
      await engine.stop();
    }
    expect(states.at(-1)?.status).toBe('ready'); // a requested stop is not a crash
  });

  it('gives up after repeated crashes and says why', async () => {
    const states: EngineState[] = [];
    const engine = new EngineProcess({
      spawn: () => spawn(process.execPath, ['-e', 'process.stderr.write("cannot load the wasm backend\\n"); process.exit(3)'], { stdio: 'pipe' }),
      onState: (state) => states.push(state),
      onNotification: () => undefined,
      restartDelaysMs: [0, 0],
    });
    engine.start();
    await until(() => states.some((s) => s.status === 'failed'));
    expect(states.map((s) => s.status)).toEqual(['starting', 'crashed', 'starting', 'crashed', 'starting', 'failed']);
    expect(states.at(-1)?.message).toMatch(/exit code 3\): cannot load the wasm backend; it kept stopping/);
    await expect(engine.call('info', {})).rejects.toThrow(/not running/);
  });
});
