/**
 * The webgpu backend against the parity fixtures of the baselines (the TTT ones run on webgpu in
 * engine/models/ttt.test.ts): full forward, decoding from position 32 and chunk invariance, then `info` naming the adapter. In CI this runs on lavapipe (Mesa's software Vulkan, ~4 GFLOP/s),
 * forced with `--backend webgpu` since a software adapter is never chosen automatically; most of the time goes
 * into compiling each kernel's shader once.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeBook } from '../engine/analysis/analyze.js';
import { readManifest } from '../engine/analysis/run-store.js';
import { main } from '../engine/cli.js';
import { computeLogits } from '../engine/cli/logits.js';
import { type BackendInfo, selectBackend } from '../engine/core/backend.js';
import { isSoftwareAdapter } from '../engine/core/webgpu-adapter.js';
import { loadModel } from '../engine/io/load-model.js';
import type { CausalLM } from '../engine/models/model.js';
import { logitsInChunks } from './helpers/chunks.js';
import { describeDiff, fixtureDir, maxAbsDiff, readGolden } from './helpers/fixtures.js';
import { sampleText, tempDir, writeTinyModel } from './helpers/tiny-models.js';
import { webgpuTestsRun } from './helpers/webgpu.js';

const tolerance = 1e-4;
const decodeFrom = 32;

describe('WebGPU adapters', () => {
  it('tells software adapters (never picked automatically) from hardware ones', () => {
    // as Dawn describes lavapipe on Debian, with and without the spec's fallback flag
    const lavapipe = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)' };
    expect(isSoftwareAdapter({ ...lavapipe, isFallbackAdapter: true })).toBe(true);
    expect(isSoftwareAdapter({ ...lavapipe, architecture: '' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'google', description: 'SwiftShader Device (Subzero)' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'ampere' }, true)).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3' })).toBe(false);
    expect(isSoftwareAdapter({ vendor: 'amd', architecture: 'rdna-3', description: 'AMD Radeon 780M Graphics (RADV PHOENIX)' })).toBe(false);
    expect(isSoftwareAdapter({ vendor: 'apple', architecture: 'metal-3', description: 'Apple M2' })).toBe(false);
  });
});

describe.skipIf(!webgpuTestsRun)('models on webgpu', () => {
  let backend: BackendInfo;
  beforeAll(async () => {
    backend = await selectBackend('webgpu');
  });

  it('runs on a described adapter', () => {
    expect(tf.getBackend()).toBe('webgpu');
    expect(backend.adapter).toBeDefined();
    expect(typeof backend.adapter!.software).toBe('boolean');
  });

  it('records the adapter in an analysis run\'s manifest', async () => {
    const work = tempDir();
    try {
      const book = join(work.dir, 'genesis.txt');
      writeFileSync(book, sampleText);
      const runDir = join(work.dir, 'run');
      const models = [writeTinyModel(work.dir, 'ttt-linear')];
      const { manifest } = await analyzeBook({ book, models, runDir, backend, chunkTokens: 32, maxTokens: 64 });
      expect(manifest.status, manifest.error ?? '').toBe('finished');
      expect((await readManifest(runDir)).backend).toEqual(backend);
    } finally {
      work.cleanup();
    }
  });

  // the TTT fixtures run on webgpu in engine/models/ttt.test.ts, through the fused kernel and op by op
  for (const name of ['llama', 'mamba']) {
    describe(name, () => {
      const golden = readGolden(name);
      const ids = Int32Array.from(golden.input_ids);
      const V = golden.logits_shape[1];
      let model: CausalLM;
      let whole: Float32Array | undefined;
      beforeAll(async () => {
        model = (await loadModel(fixtureDir(name))).model;
      });
      afterAll(() => model?.dispose());

      it('matches the reference logits (full forward)', async () => {
        whole = await computeLogits(model, ids);
        const d = maxAbsDiff(whole, golden.logits, V);
        expect(d.max, describeDiff(d)).toBeLessThanOrEqual(tolerance);
      });

      it(`matches the reference decoding logits (prefill ${decodeFrom}, then token by token)`, async () => {
        const logits = await computeLogits(model, ids, decodeFrom);
        // TTT fixtures hold the reference's own decoding rows (positions P-1 onwards); the baselines' streaming
        // path must reproduce their full forward
        const d = golden.decode_logits === undefined
          ? maxAbsDiff(logits, golden.logits, V)
          : maxAbsDiff(logits, golden.decode_logits, V, golden.decode_prefill! - 1, 0, golden.decode_logits_shape![0]);
        expect(golden.decode_prefill ?? decodeFrom).toBe(decodeFrom);
        expect(d.max, describeDiff(d)).toBeLessThanOrEqual(tolerance);
      });

      const windowLogits = golden.window_logits;
      if (windowLogits !== undefined) {
        it(`matches the reference sliding-window logits (window ${golden.window}), full and decoding`, async () => {
          const windowed = (await loadModel(fixtureDir(name), { window: golden.window })).model;
          try {
            for (const decode of [ids.length, decodeFrom]) {
              const d = maxAbsDiff(await computeLogits(windowed, ids, decode), windowLogits, V);
              expect(d.max, `decode from ${decode}: ${describeDiff(d)}`).toBeLessThanOrEqual(tolerance);
            }
          } finally {
            windowed.dispose();
          }
        });
      }

      it('gives the same logits for any chunking (1, 7, 16 and a mix)', async () => {
        whole ??= await computeLogits(model, ids);
        for (const sizes of [[1], [7], [16], [5, 11, 16, 21]]) {
          const d = maxAbsDiff(await logitsInChunks(model, ids, sizes), whole, V);
          expect(d.max, `chunks ${sizes}: ${describeDiff(d)}`).toBeLessThanOrEqual(tolerance);
        }
      });
    });
  }
});

describe.skipIf(!webgpuTestsRun)('ttt-workbench info --backend webgpu', () => {
  it('names the adapter, and whether it is a software one', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t) };
    const args = ['info', '--model', fixtureDir('ttt-linear-mamba-backbone'), '--backend', 'webgpu'];
    expect(await main(args, io), err.join('\n')).toBe(0);
    expect(out.join('\n')).toMatch(/backend\s+webgpu/);
    expect(out.join('\n')).toMatch(/adapter\s+\S.*\((hardware|software)\)/);
    out.length = 0;
    expect(await main([...args, '--json'], io), err.join('\n')).toBe(0);
    const info = JSON.parse(out.join('\n')) as { backend: BackendInfo };
    expect(info.backend.name).toBe('webgpu');
    expect(Object.keys(info.backend.adapter ?? {}).sort()).toEqual(['architecture', 'description', 'software', 'vendor']);
  });
});
