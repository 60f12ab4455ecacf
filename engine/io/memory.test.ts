import { describe, expect, it } from 'vitest';
import { presetConfig } from '../models/init.js';
import { registryEntry } from '../models/registry.js';
import { assertFitsBackend, backendFits, backendLimits, bytesNeeded, estimateMemory, type MemoryInput, wasmHeapMax } from './memory.js';

const describeConfig = (config: Record<string, unknown>) => registryEntry(config, 'config.json').describe(config, 'config.json');
const GiB = 2 ** 30;

/** The 125m preset's TTT-Linear (Mamba backbone): 768 wide, 12 layers, Llama-2 vocabulary, tied head. */
const ttt125m: MemoryInput = { description: describeConfig(presetConfig('ttt-linear', '125m')), parameters: 110_424_144, tiedHead: true };

describe('memory estimate', () => {
  it('counts float32 weights with the tied head copy, a chunk of activations and twice the carried state', () => {
    const e = estimateMemory(ttt125m);
    const C = 768, V = 32000, I = 2048, L = 12, H = 12, f = 64;
    expect(e.weights).toBe(4 * (110_424_144 + V * C));
    expect(e.activations).toBe(4 * 512 * (L * (40 * C + 6 * I) + 3 * V));
    expect(e.state).toBe(4 * 2 * L * (H * (f * f + f) + 3 * C * 2));
    // near the wasm heap measured for this model and chunk (2.37 GB after the first 512-token chunk)
    expect(bytesNeeded(e, 'wasm') / GiB).toBeGreaterThan(2.0);
    expect(bytesNeeded(e, 'wasm') / GiB).toBeLessThan(2.6);
    expect(bytesNeeded(e, 'cpu')).toBe(e.weights + e.activations + e.state + e.runtime);
  });

  it('scales activations with the chunk and counts a pipeline stage\'s own layers', () => {
    const whole = estimateMemory({ ...ttt125m, chunkTokens: 64 });
    expect(whole.activations).toBe(estimateMemory(ttt125m).activations / 8);
    const middle = estimateMemory({ ...ttt125m, layers: 6, head: false });
    expect(middle.activations).toBe(4 * 512 * 6 * (40 * 768 + 6 * 2048));
    expect(middle.weights).toBe(4 * 110_424_144);
  });

  it('gives each family its state: Llama its KV cache for the window, Mamba its SSM state', () => {
    const llama = describeConfig(presetConfig('transformer', 'tiny'));
    const kv = (window: number) => estimateMemory({ description: llama, parameters: 1e5, tiedHead: true, window }).state;
    expect(kv(256)).toBe(4 * 2 * 2 * (2 * 4 * 16 * 256)); // twice, L=2, K and V, 4 heads × 16 × 256 tokens
    expect(kv(512)).toBe(2 * kv(256));
    const mamba = describeConfig(presetConfig('mamba', 'tiny'));
    expect(estimateMemory({ description: mamba, parameters: 1e5, tiedHead: true }).state).toBe(4 * 2 * 2 * 128 * (16 + 3));
  });

  it('knows the limits: a wasm heap of 4 GiB less a page, the machine for cpu and tensorflow, none for webgpu', () => {
    expect(wasmHeapMax).toBe(4 * GiB - 65536);
    const limits = backendLimits(16 * GiB);
    expect([limits.wasm.limit, limits.cpu.limit, limits.tensorflow.limit, limits.webgpu.limit]).toEqual([wasmHeapMax, 16 * GiB, 16 * GiB, null]);
    expect(backendFits(estimateMemory(ttt125m), limits).map((f) => f.fits)).toEqual([true, null, true, true]);
  });

  it('refuses a model too big for the backend in one line, naming an available backend and a chunk that would fit', () => {
    // a 1.3B-sized model: 5.2 GB of weights cannot fit one wasm heap at any chunk size
    const big: MemoryInput = { ...ttt125m, parameters: 1.3e9 };
    const limits = backendLimits(32 * GiB);
    const refusal = (input: MemoryInput, available?: ('wasm' | 'cpu' | 'tensorflow')[]) => {
      try {
        assertFitsBackend('/models/ttt-1.3b', input, 'wasm', { limits, available });
      } catch (error) {
        return (error as Error).message;
      }
      return null;
    };
    const message = refusal(big, ['wasm', 'cpu'])!;
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(/^\/models\/ttt-1\.3b: needs about 1\d\.\d\d GiB on backend "wasm", which has at most 4\.00 GiB \(one WebAssembly heap\); backend "cpu" would fit it \(32\.00 GiB: the machine's memory\)$/);
    expect(refusal(big)).toMatch(/backend "tensorflow" would fit it/); // first in order when availability is unknown
    // the 125m model with huge chunks: a smaller chunk is the cheaper fix
    expect(refusal({ ...ttt125m, chunkTokens: 4096 }, ['wasm', 'cpu'])).toMatch(/backend "cpu" would fit it .*; or chunks of 1024 tokens would fit "wasm"$/);
    expect(refusal(ttt125m)).toBeNull();
    // nothing fits: say so
    expect(refusal({ ...ttt125m, parameters: 40e9 }, ['wasm', 'cpu'])).toMatch(/; no other backend here has room for it$/);
  });
});
