/** The preload script: one CommonJS file, as sandboxed preloads cannot load ES modules or other files. */
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    outDir: '.vite/build',
    emptyOutDir: false,
    target: 'node20',
    minify: false,
    rollupOptions: {
      input: 'electron/preload.ts',
      external: ['electron'],
      output: { format: 'cjs', entryFileNames: 'preload.cjs', inlineDynamicImports: true },
    },
  },
});
