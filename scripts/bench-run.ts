/**
 * One benchmark measurement in a fresh process (so peak RSS is this run's alone, its stage workers included: they
 * are threads of this process): analyse N tokens of a book with one model and print one JSON line. Used by
 * bench.ts; not meant to be run by hand.
 *
 *   node --import tsx scripts/bench-run.ts BOOK MODEL TOKENS BACKEND INNER_LOOP STAGES CHUNK [WINDOW]
 *
 * STAGES, CHUNK and WINDOW may be empty for the engine's defaults (WINDOW: a Transformer's attention window). `tokensPerSecond` is the steady rate, after a warm-up of
 * the first 2,048 tokens (as the reference warms up on 256 before it is timed), read from the run's own
 * throughput series; `overallTokensPerSecond` is the whole run's.
 */

/** Tokens analysed before the rate is taken: compiling the JavaScript hot paths and growing the wasm heaps. */
const warmupTokens = 2048;
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { analyzeBook } from '../engine/analysis/analyze.js';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../engine/core/backend.js';
import { countDispatches, fusedKernelsOn } from '../engine/core/webgpu-program.js';
import { loadModel } from '../engine/io/load-model.js';
import { runChunk } from '../engine/models/model.js';
import { applyKernelSwitch } from '../engine/runtime/kernel-switch.js';

const [book, model, tokens, backendName, innerLoop, stages, chunk, window] = process.argv.slice(2);
applyKernelSwitch();
const backend = await selectBackend(backendName);

/**
 * On webgpu: the dispatches one chunk of `chunkTokens` takes in this thread (the run's stage workers are out of
 * reach), per 1,000 tokens, with the run's inner-loop settings. Dispatch counts do not depend on the token values.
 */
async function dispatchesPer1000(chunkTokens: number): Promise<{ perThousand: number; fused: boolean } | undefined> {
  if (backend.name !== 'webgpu') return undefined;
  const { model: lm } = await loadModel(model, { window: window ? Number(window) : undefined });
  // the families with fused kernels (the delta family runs op by op everywhere)
  const fused = fusedKernelsOn() && lm.family !== 'delta';
  try {
    const ids = Int32Array.from({ length: chunkTokens }, (_, i) => (i * 7919 + 13) % lm.vocabSize);
    const state = lm.initialState();
    const traced = innerLoop !== 'false';
    const { result, dispatches } = await countDispatches(async () => runChunk(lm, ids, state, { innerLoopStats: traced, weightTrace: traced }));
    await result.logits.data(); // the queue drained: nothing of this chunk is left running
    tf.dispose([result as unknown as tf.TensorContainer, state as unknown as tf.TensorContainer]);
    return { perThousand: Math.round((dispatches / chunkTokens) * 1000), fused };
  } finally {
    lm.dispose();
  }
}
const runDir = mkdtempSync(join(tmpdir(), 'ttt-bench-'));
const started = performance.now();
try {
  const { manifest } = await analyzeBook({
    book, models: [model], runDir, backend, maxTokens: Number(tokens), innerLoop: innerLoop !== 'false',
    stages: stages ? Number(stages) : undefined, chunkTokens: chunk ? Number(chunk) : undefined,
    window: window ? Number(window) : undefined,
  });
  const m = manifest.models[0];
  if (m.status !== 'finished') throw new Error(m.error ?? m.status);
  const series = tableFromIPC(readFileSync(join(runDir, m.files.throughput)));
  const position = series.getChild('position')!.toArray() as Int32Array, elapsed = series.getChild('elapsed_s')!.toArray() as Float64Array;
  const from = Math.max(0, position.findIndex((p) => p >= warmupTokens)), to = position.length - 1;
  const steady = to > from ? (position[to] - position[from]) / (elapsed[to] - elapsed[from]) : m.tokensPerSecond ?? 0;
  const dispatches = await dispatchesPer1000(Math.min(manifest.settings.chunkTokens, Number(tokens)));
  process.stdout.write(`${JSON.stringify({
    model: m.architecture, tokens: m.tokensDone, seconds: +((performance.now() - started) / 1000).toFixed(2),
    tokensPerSecond: Math.round(steady), overallTokensPerSecond: Math.round(m.tokensPerSecond ?? 0), peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    bitsPerByte: m.bitsPerByte, backend: manifest.backend, stages: m.stages ?? [], chunkTokens: manifest.settings.chunkTokens,
    innerLoop: innerLoop !== 'false', fused: dispatches?.fused, dispatchesPer1000: dispatches?.perThousand,
  })}\n`);
} catch (error) {
  // one line: an error from inside TF.js's wasm would otherwise print the whole wasm glue source
  process.stderr.write(`bench: ${(error as Error).message.split('\n')[0]}\n`);
  process.exitCode = 1;
} finally {
  rmSync(runDir, { recursive: true, force: true });
}
