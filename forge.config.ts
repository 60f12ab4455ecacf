/**
 * Electron Forge: `npm start` (Vite dev server for the renderer, watch builds of main and preload) and
 * `electron-forge package`. Installers are made by electron-builder (`npm run dist`, electron-builder.yml).
 */
import { MakerZIP } from '@electron-forge/maker-zip';
import { VitePlugin } from '@electron-forge/plugin-vite';
import type { ForgeConfig } from '@electron-forge/shared-types';

/** What a packaged app needs besides the Vite bundles: the engine runs from its sources in a child process. */
const packaged = ['/.vite', '/bin', '/engine', '/assets', '/node_modules', '/package.json'];

const config: ForgeConfig = {
  packagerConfig: {
    name: 'TTT Workbench',
    executableName: 'ttt-workbench',
    asar: false,
    ignore: (file: string) => !!file && (!packaged.some((p) => file === p || file.startsWith(`${p}/`)) || file.endsWith('.test.ts')),
  },
  makers: [new MakerZIP({})],
  plugins: [
    new VitePlugin({
      build: [
        { entry: 'electron/main.ts', config: 'vite.main.config.ts', target: 'main' },
        { entry: 'electron/preload.ts', config: 'vite.preload.config.ts', target: 'preload' },
      ],
      renderer: [{ name: 'main_window', config: 'vite.renderer.config.ts' }],
    }),
  ],
};

export default config;
