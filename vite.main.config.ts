/**
 * Electron main-process bundle. Complete on its own for `npm run build`; under `npm start` Electron Forge's
 * Vite plugin merges its dev settings over it. CommonJS `.cjs` because package.json says `"type": "module"`.
 */
import { builtinModules } from 'node:module';
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    outDir: '.vite/build',
    emptyOutDir: false,
    target: 'node20',
    minify: false,
    sourcemap: true,
    lib: { entry: 'electron/main.ts', formats: ['cjs'], fileName: () => 'main.cjs' },
    rollupOptions: { external: ['electron', ...builtinModules.flatMap((m) => [m, `node:${m}`])] },
  },
});
