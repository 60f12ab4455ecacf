#!/usr/bin/env node
// The CLI starts from the engine compiled to JavaScript (dist/engine, made by `npm run build:engine`, which
// `npm install` and `npm ci` run as `prepare`) while that build is newer than every engine source; otherwise (no
// build, or a source edited since) from the TypeScript sources through tsx's loader, so a checkout always runs.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The compiled cli.js when dist/engine is at least as new as every engine source, else null. */
function compiledCli() {
  try {
    const built = Date.parse(readFileSync(join(root, 'dist', 'engine', 'BUILT'), 'utf8').trim());
    const engine = join(root, 'engine');
    for (const file of readdirSync(engine, { recursive: true, encoding: 'utf8' })) {
      if (file.endsWith('.ts') && !file.endsWith('.test.ts') && statSync(join(engine, file)).mtimeMs > built) return null;
    }
    return join(root, 'dist', 'engine', 'cli.js');
  } catch {
    return null;
  }
}

const compiled = process.env.TTT_FROM_SOURCES === '1' ? null : compiledCli();
let cli;
if (compiled) {
  cli = await import(compiled);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../engine/cli.ts');
}
process.exitCode = await cli.main(process.argv.slice(2));
