import { describe, expect, it } from 'vitest';
import type { BackendInfo } from '../../engine/protocol.js';
import { backendChoiceLabel, backendDetails, formatLayerRanges, formatStages, summarizeStages } from './placement.js';

const wasm: BackendInfo = { name: 'wasm', threads: 1, tfjsVersion: '4.22.0', detail: 'WebAssembly (XNNPACK)' };
const lavapipe = { vendor: 'mesa', architecture: 'software', description: 'llvmpipe (LLVM 15.0.6)', software: true };

describe('where a model runs, as text', () => {
  it('writes stages as their layer ranges, last layer included', () => {
    expect(formatStages([{ start: 0, end: 2 }, { start: 2, end: 4 }])).toBe('2 stages: layers 0–1 | 2–3');
    expect(formatStages([{ start: 0, end: 1 }, { start: 1, end: 2 }])).toBe('2 stages: layers 0 | 1');
    expect(formatStages([{ start: 0, end: 12 }])).toBe('1 stage: layers 0–11');
    expect(formatLayerRanges([{ start: 0, end: 1 }])).toBe('layer 0');
  });

  it('sums up a run\'s stages, naming models only where their counts differ', () => {
    const two = [{ start: 0, end: 1 }, { start: 1, end: 2 }];
    expect(summarizeStages([{ name: 'a', stages: two }, { name: 'b', stages: two }])).toBe('2 stages');
    expect(summarizeStages([{ name: 'a', stages: two }, { name: 'b', stages: [{ start: 0, end: 2 }] }])).toBe('a 2 stages, b 1 stage');
    expect(summarizeStages([{ name: 'a' }])).toBeNull();
  });

  it('describes a backend with its adapter, threads and versions', () => {
    expect(backendDetails(wasm)).toBe('wasm: WebAssembly (XNNPACK), 1 thread per stage, TF.js 4.22.0');
    expect(backendDetails({ ...wasm, name: 'webgpu', detail: 'Dawn for Node', adapter: lavapipe }))
      .toBe('webgpu: Dawn for Node, llvmpipe (LLVM 15.0.6) (mesa), a software adapter, TF.js 4.22.0');
  });

  it('labels the backend choices: unavailable ones with their reason, software adapters as such', () => {
    expect(backendChoiceLabel({ name: 'tensorflow', available: false, reason: 'tfjs-node is not installed', defaultStages: 1 }))
      .toBe('tensorflow — unavailable: tfjs-node is not installed');
    expect(backendChoiceLabel({ name: 'webgpu', available: true, reason: null, adapter: lavapipe, defaultStages: 1 })).toBe('webgpu — llvmpipe (LLVM 15.0.6) (software)');
    expect(backendChoiceLabel({ name: 'wasm', available: true, reason: null, defaultStages: 2 })).toBe('wasm');
  });
});
