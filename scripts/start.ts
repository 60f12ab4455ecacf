/**
 * `npm start`: the desktop app through Electron Forge, once Electron's binary is there. Installed with
 * ELECTRON_SKIP_BINARY_DOWNLOAD=1 (or behind a proxy that blocked the download), the `electron` package has no
 * binary; then this prints one line saying so, the command that fetches it, and that web mode works meanwhile.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The path of Electron's binary, or null when the package is there without it (or not there at all). */
export function electronBinary(): string | null {
  try {
    const path = createRequire(import.meta.url)('electron') as unknown;
    return typeof path === 'string' && existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

if (!electronBinary()) {
  process.stderr.write('start: Electron\'s binary is not installed (node_modules/electron has no dist/); install it with `node node_modules/electron/install.js` (set ELECTRON_MIRROR behind a proxy); meanwhile `npm run web` runs the same app in a browser\n');
  process.exit(1);
}
const forge = spawn(process.platform === 'win32' ? 'electron-forge.cmd' : 'electron-forge', ['start', ...process.argv.slice(2)], {
  stdio: 'inherit', shell: process.platform === 'win32',
});
forge.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
