/**
 * One benchmark measurement in a fresh process (so peak RSS is this run's alone): analyse N tokens of a book
 * with one model and print one JSON line. Used by bench.ts; not meant to be run by hand.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeBook } from '../engine/analysis/analyze.js';
import { selectBackend } from '../engine/core/backend.js';

const [book, model, tokens, backendName, innerLoop] = process.argv.slice(2);
const backend = await selectBackend(backendName);
const runDir = mkdtempSync(join(tmpdir(), 'ttt-bench-'));
const started = performance.now();
try {
  const { manifest } = await analyzeBook({ book, models: [model], runDir, backend, maxTokens: Number(tokens), innerLoop: innerLoop !== 'false' });
  const m = manifest.models[0];
  if (m.status !== 'finished') throw new Error(m.error ?? m.status);
  process.stdout.write(`${JSON.stringify({
    model: m.architecture, tokens: m.tokensDone, seconds: +((performance.now() - started) / 1000).toFixed(2),
    tokensPerSecond: Math.round(m.tokensPerSecond ?? 0), peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    bitsPerByte: m.bitsPerByte, backend: backend.name, threads: backend.threads, innerLoop: innerLoop !== 'false',
  })}\n`);
} finally {
  rmSync(runDir, { recursive: true, force: true });
}
