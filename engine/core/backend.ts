/**
 * Backend selection: the one place that calls `tf.setBackend` (STYLE.md rule 9). Backends are tried in a fixed
 * order of preference; an explicitly requested one that cannot start is an error listing the ones that can.
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from './errors.js';

export const backendOrder = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof backendOrder)[number];

export interface BackendInfo {
  readonly name: BackendName;
  /** Threads the backend computes on (wasm under Node is single-threaded). */
  readonly threads: number;
  readonly tfjsVersion: string;
  readonly detail: string;
}

export function isBackendName(name: string): name is BackendName {
  return (backendOrder as readonly string[]).includes(name);
}

/** Loads a module by a computed name, so optional packages need not be installed for type-checking or bundling. */
async function importOptional(name: string): Promise<unknown> {
  return import(/* @vite-ignore */ name);
}

/** Registers backend `name` with tfjs-core if its package is present; returns why not otherwise. */
async function register(name: BackendName): Promise<string | null> {
  try {
    switch (name) {
      case 'tensorflow':
        try {
          await importOptional('@tensorflow/tfjs-node-gpu');
        } catch {
          await importOptional('@tensorflow/tfjs-node');
        }
        return null;
      case 'webgpu':
        // WebGPU needs an adapter and is wired up by the GPU issue; until then it is never available.
        if (typeof (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu === 'undefined') return 'no WebGPU adapter in this process';
        await importOptional('@tensorflow/tfjs-backend-webgpu');
        return null;
      case 'wasm':
        await importOptional('@tensorflow/tfjs-backend-wasm');
        return null;
      case 'cpu':
        await importOptional('@tensorflow/tfjs-backend-cpu');
        return null;
    }
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  }
}

async function activate(name: BackendName): Promise<string | null> {
  const reason = await register(name);
  if (reason !== null) return reason;
  try {
    const ok = await tf.setBackend(name);
    await tf.ready();
    return ok && tf.getBackend() === name ? null : 'it failed to initialise';
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  }
}

async function threadsOf(name: BackendName): Promise<number> {
  if (name !== 'wasm') return 1;
  const wasm = (await importOptional('@tensorflow/tfjs-backend-wasm')) as { getThreadsCount?: () => number };
  return wasm.getThreadsCount?.() ?? 1;
}

/**
 * Starts `requested`, or the first backend in `backendOrder` that starts when none is requested.
 * `webgpu` is only chosen automatically when a hardware adapter exists (never in this build).
 */
export async function selectBackend(requested?: string): Promise<BackendInfo> {
  // PROD silences tfjs's console advice ("install tfjs-node"); our own `info` says which backend runs and why.
  tf.env().set('PROD', true);
  const tried: string[] = [];
  if (requested !== undefined) {
    if (!isBackendName(requested)) throw workbenchError('E_BACKEND', requested, 'unknown backend name', backendOrder);
    const reason = await activate(requested);
    if (reason !== null) {
      const available: string[] = [];
      for (const name of backendOrder) if (name !== requested && (await register(name)) === null) available.push(name);
      throw workbenchError('E_BACKEND', requested, reason, available);
    }
    return describe(requested);
  }
  for (const name of backendOrder) {
    const reason = await activate(name);
    if (reason === null) return describe(name);
    tried.push(`${name}: ${reason}`);
  }
  throw workbenchError('E_BACKEND', 'any', tried.join('; '), []);
}

async function describe(name: BackendName): Promise<BackendInfo> {
  const threads = await threadsOf(name);
  const detail = name === 'tensorflow' ? 'TensorFlow C library (tfjs-node)' : name === 'wasm' ? 'WebAssembly (XNNPACK)' : name === 'cpu' ? 'plain JavaScript' : 'WebGPU';
  return Object.freeze({ name, threads, tfjsVersion: tf.version_core, detail });
}
