/**
 * The renderer bundle, shared by the desktop app (loaded from file://, hence relative `base`) and web mode
 * (served by the engine over HTTP). JSX goes through esbuild directly: no React-refresh preamble, which a
 * strict CSP would block. plotly.js is copied in as a prebuilt script instead of being bundled.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const root = dirname(fileURLToPath(import.meta.url));
const plotlyFile = createRequire(import.meta.url).resolve('plotly.js-dist-min/plotly.min.js');
const plotlyUrl = 'vendor/plotly.min.js';

function vendorPlotly(): Plugin {
  return {
    name: 'ttt-workbench:vendor-plotly',
    configureServer(server) {
      server.middlewares.use(`/${plotlyUrl}`, (_req, res) => {
        res.setHeader('content-type', 'text/javascript');
        createReadStream(plotlyFile).pipe(res);
      });
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: plotlyUrl, source: readFileSync(plotlyFile) });
    },
    transformIndexHtml: () => [{ tag: 'script', attrs: { src: `./${plotlyUrl}` }, injectTo: 'head' }],
  };
}

export default defineConfig({
  root,
  base: './',
  esbuild: { jsx: 'automatic' },
  plugins: [vendorPlotly()],
  build: {
    outDir: '.vite/renderer/main_window',
    emptyOutDir: true,
    target: 'es2022',
  },
});
