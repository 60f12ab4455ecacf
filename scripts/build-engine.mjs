#!/usr/bin/env node
/**
 * `npm run build:engine` (also run by `npm install` / `npm ci` as `prepare`): compiles the engine's TypeScript
 * (engine/**\/*.ts, tests left out) to JavaScript in dist/engine, one file per source, so that the CLI, the engine
 * server and their stage workers start without compiling TypeScript at every start (bin/ttt-workbench.js uses the
 * build while it is newer than every source, and the sources through tsx otherwise). esbuild only strips types; the
 * type-check is `npm run typecheck`. Where esbuild is absent (an install without dev dependencies) this says so in
 * one line and leaves the engine to run from its sources.
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'engine');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stdout.write('build-engine: esbuild is not installed; the engine runs from its TypeScript sources (tsx)\n');
  process.exit(0);
}

const sources = readdirSync(join(root, 'engine'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
  .map((f) => join(root, 'engine', f));
const started = Date.now();
rmSync(out, { recursive: true, force: true });
const common = { outdir: out, outbase: join(root, 'engine'), format: 'esm', platform: 'node', target: 'node20', sourcemap: 'inline', sourcesContent: false, logLevel: 'warning' };
// files importing tfjs-core's ESM internals (dist/…, whose own imports lack extensions, which Node's resolver
// refuses) get those internals bundled in, as tsx's loader would load them; every other import stays as it is
const deep = /^@tensorflow\/tfjs-core\/dist\//;
const internals = sources.filter((f) => readFileSync(f, 'utf8').includes("from '@tensorflow/tfjs-core/dist/"));
await esbuild.build({ ...common, entryPoints: sources.filter((f) => !internals.includes(f)), bundle: false });
if (internals.length) {
  await esbuild.build({
    ...common, entryPoints: internals, bundle: true,
    plugins: [{
      name: 'only-tfjs-internals',
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) => {
          if (args.kind === 'entry-point' || deep.test(args.path)) return undefined; // bundled
          if (args.importer.includes(`${'/'}node_modules${'/'}`)) return undefined; // inside tfjs-core's internals
          return { path: args.path, external: true }; // the engine's own modules and packages, as they are
        });
      },
    }],
  });
}
// bin/ttt-workbench.js compares the sources' modification times with this file's
writeFileSync(join(out, 'BUILT'), `${new Date(started).toISOString()}\n`);
process.stdout.write(`build-engine: ${sources.length} files compiled to dist/engine in ${Date.now() - started} ms\n`);
