/**
 * Backends listed and described without being started: what the app's backend choice shows, and what a run on a
 * picked backend records before its workers start that backend themselves.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backendOrder, describeBackend, probeBackends, selectBackend, useWebGPUProbe } from './backend.js';
import { probeWebGPU } from './webgpu-adapter.js';

const lavapipe = { vendor: 'mesa', architecture: 'software', description: 'llvmpipe (LLVM 15.0.6, 256 bits)', software: true };
// Fake adapter answers: the machine's real one (a GPU, lavapipe or none) must not decide these tests.
const noAdapter = () => useWebGPUProbe(async () => ({ ok: false, reason: 'Dawn found no Vulkan, Metal or D3D12 adapter' }));
const softwareAdapter = () => useWebGPUProbe(async () => ({ ok: true, fromDawn: true, adapter: lavapipe }));

beforeAll(async () => {
  await selectBackend('wasm');
});
afterEach(() => useWebGPUProbe(probeWebGPU));

describe('probeBackends', () => {
  it('lists every backend in order with a one-line reason for each one that cannot start, leaving the active one be', async () => {
    noAdapter();
    const listed = await probeBackends();
    expect(listed.map((b) => b.name)).toEqual([...backendOrder]);
    expect(listed.filter((b) => b.name === 'wasm' || b.name === 'cpu')).toEqual([
      { name: 'wasm', available: true, reason: null }, { name: 'cpu', available: true, reason: null },
    ]);
    expect(listed.find((b) => b.name === 'webgpu')).toEqual({ name: 'webgpu', available: false, reason: 'Dawn found no Vulkan, Metal or D3D12 adapter' });
    for (const b of listed.filter((x) => !x.available)) expect(b.reason).toMatch(/^[^\n]+$/);
    // where tfjs-node is not installed, that is what the reason says (not Node's module-resolution message)
    const tensorflow = listed.find((b) => b.name === 'tensorflow')!;
    if (!tensorflow.available) expect(tensorflow.reason).toMatch(/^@tensorflow\/tfjs-node(-gpu)? is not installed$/);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('lists a software WebGPU adapter as available (to be picked by name) without starting WebGPU here', async () => {
    softwareAdapter();
    expect((await probeBackends()).find((b) => b.name === 'webgpu')).toEqual({ name: 'webgpu', available: true, reason: null, adapter: lavapipe });
    const info = await describeBackend('webgpu');
    expect(info).toMatchObject({ name: 'webgpu', detail: 'Dawn for Node; fused WGSL kernels', adapter: lavapipe });
    expect(tf.findBackendFactory('webgpu')).toBeNull(); // tfjs-backend-webgpu was never loaded in this thread
    expect(tf.getBackend()).toBe('wasm');
  });
});

describe('describeBackend', () => {
  it('describes a backend for a run without activating it', async () => {
    noAdapter();
    expect(await describeBackend('cpu')).toMatchObject({ name: 'cpu', threads: 1, detail: 'plain JavaScript', tfjsVersion: tf.version_core });
    expect(tf.getBackend()).toBe('wasm');
  });

  it('refuses unknown and unavailable backends in one line naming the available ones', async () => {
    noAdapter();
    await expect(describeBackend('tpu')).rejects.toThrow(/^backend "tpu" is not available \(unknown backend name\); available: tensorflow, webgpu, wasm, cpu$/);
    await expect(describeBackend('webgpu')).rejects.toThrow(/^backend "webgpu" is not available \(Dawn found no Vulkan, Metal or D3D12 adapter\); available: (tensorflow, )?wasm, cpu$/);
  });
});
