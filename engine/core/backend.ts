/**
 * Backend selection: the one place that calls `tf.setBackend` (STYLE.md rule 9). Backends are tried in a fixed
 * order of preference; an explicitly requested one that cannot start is an error listing the ones that can.
 */
import * as tf from '@tensorflow/tfjs-core';
import { workbenchError } from './errors.js';
import { installNativeMatMul, loadNativeMatMul, nativeMatMulReason } from './native-matmul.js';
import { type AdapterInfo, installWebGPU, probeWebGPU, type WebGPUProbe } from './webgpu-adapter.js';
import { fusedKernelsAllowed } from './webgpu-program.js';

export const backendOrder = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof backendOrder)[number];

export interface BackendInfo {
  readonly name: BackendName;
  /** Threads the backend computes on (wasm under Node is single-threaded). */
  readonly threads: number;
  readonly tfjsVersion: string;
  readonly detail: string;
  /** The GPU adapter behind `webgpu` (absent for the other backends). */
  readonly adapter?: AdapterInfo;
}

export function isBackendName(name: string): name is BackendName {
  return (backendOrder as readonly string[]).includes(name);
}

let automaticProbe: () => Promise<WebGPUProbe> = probeWebGPU;
/** `automaticProbe`'s answer for `probeBackends`, asked once: the quiet probe starts a child process each time. */
let listedProbe: Promise<WebGPUProbe> | undefined;

/**
 * How automatic selection asks for a WebGPU adapter before starting Dawn in this process. Entry points that own
 * their process's output (the CLI) install runtime/webgpu-quiet-probe.ts, which asks in a child process.
 */
export function useWebGPUProbe(probe: () => Promise<WebGPUProbe>): void {
  automaticProbe = probe;
  listedProbe = undefined;
}

/** Loads a module by a computed name, so optional packages need not be installed for type-checking or bundling. */
async function importOptional(name: string): Promise<unknown> {
  return import(/* @vite-ignore */ name);
}

/**
 * Registers backend `name` with tfjs-core if its package is present; returns why not otherwise. A software WebGPU
 * adapter counts only when `allowSoftware` (the backend was asked for by name): on a CPU it is slower than wasm.
 */
async function register(name: BackendName, allowSoftware: boolean): Promise<string | null> {
  try {
    switch (name) {
      case 'tensorflow':
        try {
          await importOptional('@tensorflow/tfjs-node-gpu');
        } catch {
          await importOptional('@tensorflow/tfjs-node');
        }
        return null;
      case 'webgpu': {
        // chosen automatically, only a hardware adapter will do: ask quietly first, so a machine without one
        // never has Dawn starting (and writing its warnings) in this process
        if (!allowSoftware) {
          const quiet = await automaticProbe();
          if (!quiet.ok) return quiet.reason;
          if (quiet.adapter.software) return `only a software adapter (${quiet.adapter.description || quiet.adapter.vendor}), used only when webgpu is asked for by name`;
        }
        const probe = await probeWebGPU();
        if (!probe.ok) return probe.reason;
        if (probe.adapter.software && !allowSoftware) {
          return `only a software adapter (${probe.adapter.description || probe.adapter.vendor}), used only when webgpu is asked for by name`;
        }
        // tfjs-backend-webgpu registers itself at import only if navigator.gpu exists by then
        await installWebGPU();
        await importOptional('@tensorflow/tfjs-backend-webgpu');
        return tf.findBackendFactory('webgpu') === null ? 'tfjs-backend-webgpu found no navigator.gpu' : null;
      }
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

async function activate(name: BackendName, allowSoftware: boolean): Promise<string | null> {
  const reason = await register(name, allowSoftware);
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
 * `webgpu` is only chosen automatically when a hardware adapter exists; asked for by name, a software one will do.
 */
export async function selectBackend(requested?: string, options: { nativeMatMul?: boolean } = {}): Promise<BackendInfo> {
  const nativeMatMul = options.nativeMatMul ?? true;
  // PROD silences tfjs's console advice ("install tfjs-node"); our own `info` says which backend runs and why.
  tf.env().set('PROD', true);
  const tried: string[] = [];
  if (requested !== undefined) {
    if (!isBackendName(requested)) throw workbenchError('E_BACKEND', requested, 'unknown backend name', backendOrder);
    const reason = await activate(requested, true);
    if (reason !== null) {
      const available: string[] = [];
      for (const name of backendOrder) if (name !== requested && (await register(name, true)) === null) available.push(name);
      throw workbenchError('E_BACKEND', requested, reason, available);
    }
    return describe(requested, undefined, nativeMatMul);
  }
  for (const name of backendOrder) {
    const reason = await activate(name, false);
    if (reason === null) return describe(name, undefined, nativeMatMul);
    tried.push(`${name}: ${reason}`);
  }
  throw workbenchError('E_BACKEND', 'any', tried.join('; '), []);
}

/**
 * `known`: the adapter answer already in hand (`describeBackend`), so Dawn need not start in this process.
 * `nativeMatMul`: on wasm, route matrix products through a native BLAS where one loads (core/native-matmul.ts);
 * activated here when wasm is the active backend of this thread, only looked for otherwise.
 */
async function describe(name: BackendName, known?: WebGPUProbe, nativeMatMul = true): Promise<BackendInfo> {
  // wasm tells its threads only once initialised in this thread; a worker's wasm under Node has one
  const threads = await threadsOf(name).catch(() => 1);
  if (name === 'webgpu') {
    const probe = known ?? (await probeWebGPU());
    if (probe.ok) {
      // what the run's numbers came from: the fused kernels and the op-by-op form round differently
      const kernels = fusedKernelsAllowed() ? 'fused WGSL kernels' : 'op by op (TTT_WORKBENCH_FUSED=0)';
      const detail = `${probe.fromDawn ? 'Dawn for Node' : "the process's navigator.gpu"}; ${kernels}`;
      return Object.freeze({ name, threads, tfjsVersion: tf.version_core, detail, adapter: probe.adapter });
    }
  }
  let wasm = 'WebAssembly (XNNPACK)';
  if (name === 'wasm' && nativeMatMul) {
    const matMul = tf.engine().backendName === 'wasm' ? await installNativeMatMul() : await loadNativeMatMul().then(nativeMatMulReason);
    wasm = `WebAssembly, matrix products by ${matMul}`;
  }
  const detail = name === 'tensorflow' ? 'TensorFlow C library (tfjs-node)' : name === 'wasm' ? wasm : name === 'cpu' ? 'plain JavaScript' : 'WebGPU';
  return Object.freeze({ name, threads, tfjsVersion: tf.version_core, detail });
}

/** Whether a backend could start in a fresh TensorFlow.js (a run's stage worker), as `probeBackends` finds it. */
export interface BackendAvailability {
  readonly name: BackendName;
  readonly available: boolean;
  /** Why it cannot start, in one line; null when it can. */
  readonly reason: string | null;
  /** The adapter `webgpu` would get. A software one is available, but only ever used when picked by name. */
  readonly adapter?: AdapterInfo;
}

/**
 * Every backend in `backendOrder` with whether it can start here, without activating any in this thread: runs
 * start their own TensorFlow.js, on the backend picked, in their workers. Packages are only imported; should one
 * make itself the active backend on import (tfjs-node may), the one active before is put back. WebGPU is asked for
 * its adapter as automatic selection asks (out of process under the CLI's quiet probe).
 */
export async function probeBackends(): Promise<BackendAvailability[]> {
  const active: string | undefined = tf.engine().backendName;
  const found: BackendAvailability[] = [];
  for (const name of backendOrder) {
    if (name === 'webgpu') {
      listedProbe ??= automaticProbe();
      const probe = await listedProbe;
      found.push(probe.ok ? { name, available: true, reason: null, adapter: probe.adapter } : { name, available: false, reason: probe.reason });
    } else {
      const reason = await register(name, true);
      found.push({ name, available: reason === null, reason: reason === null ? null : readableReason(reason) });
    }
  }
  if (active && tf.engine().backendName !== active) await tf.setBackend(active);
  return found;
}

/** Node's "Cannot find package 'X' imported from /path/…" says, to a person choosing a backend, that X is not installed. */
function readableReason(reason: string): string {
  const missing = /^Cannot find (?:package|module) '((?:@[^/']+\/)?[^/']+)/.exec(reason);
  return missing ? `${missing[1]} is not installed` : reason;
}

/**
 * What a run's workers will report when they start `requested` by name (a software WebGPU adapter included),
 * found without starting it in this thread; E_BACKEND listing the available ones when it cannot start here.
 */
export async function describeBackend(requested: string): Promise<BackendInfo> {
  if (!isBackendName(requested)) throw workbenchError('E_BACKEND', requested, 'unknown backend name', backendOrder);
  const backends = await probeBackends();
  const chosen = backends.find((b) => b.name === requested);
  if (!chosen?.available) {
    throw workbenchError('E_BACKEND', requested, chosen?.reason ?? 'it cannot start', backends.filter((b) => b.available).map((b) => b.name));
  }
  return describe(requested, requested === 'webgpu' ? await listedProbe : undefined);
}
