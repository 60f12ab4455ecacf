/**
 * WebGPU in a plain Node process. Node has no `navigator.gpu`; the optional `webgpu` package (Dawn, with its native
 * binaries inside the npm package) provides one on Vulkan, Metal or D3D12. This module asks Dawn for the adapter
 * tfjs-backend-webgpu would get, says whether it is a software rasteriser (lavapipe/llvmpipe, SwiftShader, WARP:
 * fine for tests, never chosen automatically), and installs `navigator.gpu` and the WebGPU globals only once the
 * webgpu backend is really wanted, before tfjs-backend-webgpu is imported (it looks for `navigator.gpu` at import).
 * Where a `navigator.gpu` already exists (a browser, a future Node) it is used as is.
 */
/** The adapter a run used, as `info` prints it and manifests record it. */
export interface AdapterInfo {
  readonly vendor: string;
  readonly architecture: string;
  readonly description: string;
  /** A CPU implementation of WebGPU (lavapipe, SwiftShader, WARP): only used when asked for by name. */
  readonly software: boolean;
}

// The slice of the WebGPU API used here: the engine's tsconfig has no DOM or @webgpu/types.
export interface GpuAdapterInfoLike {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
  readonly isFallbackAdapter?: boolean;
}
interface GpuAdapterLike {
  readonly info?: GpuAdapterInfoLike;
  readonly isFallbackAdapter?: boolean;
  requestAdapterInfo?(): Promise<GpuAdapterInfoLike>;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapterLike | null>;
}
interface DawnModule {
  create(flags: string[]): GpuLike;
  readonly globals: object;
}
type NavigatorHolder = { navigator?: { gpu?: GpuLike } };

/** What tfjs-backend-webgpu asks for (its WEBGPU_USE_LOW_POWER_GPU flag is off), so the adapter described is the one it gets. */
export const adapterOptions = { powerPreference: 'high-performance' } as const;

/** Descriptions of CPU implementations, for drivers that do not set `isFallbackAdapter`. */
const softwarePattern = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render|\bwarp\b/i;

export type WebGPUProbe =
  | { readonly ok: true; readonly adapter: AdapterInfo; readonly fromDawn: boolean }
  | { readonly ok: false; readonly reason: string };

interface GpuSource {
  readonly gpu: GpuLike;
  /** Dawn's WebGPU globals (GPUBufferUsage, GPUMapMode, …) to install with `navigator.gpu`; null when the process has its own. */
  readonly dawnGlobals: object | null;
}

// Found once per process: Dawn enumerates the devices (hundreds of ms; it also prints its limit warnings) only once.
let source: Promise<GpuSource | string> | undefined;
let probe: Promise<WebGPUProbe> | undefined;

/** Loads a module by a computed name, so the optional `webgpu` package need not be installed for type-checking. */
async function importOptional(name: string): Promise<unknown> {
  return import(/* @vite-ignore */ name);
}

export function processGpu(): GpuLike | undefined {
  return (globalThis as NavigatorHolder).navigator?.gpu;
}

async function findGpu(): Promise<GpuSource | string> {
  const own = processGpu();
  if (own !== undefined) return { gpu: own, dawnGlobals: null };
  let dawn: DawnModule;
  try {
    dawn = (await importOptional('webgpu')) as DawnModule;
  } catch (error) {
    return `the optional package "webgpu" (Dawn) does not load: ${(error as Error).message.split('\n')[0]}`;
  }
  try {
    return { gpu: dawn.create([]), dawnGlobals: dawn.globals };
  } catch (error) {
    return `Dawn did not start: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** Whether an adapter is a CPU implementation: the spec's fallback flag, or a known software driver's name. */
export function isSoftwareAdapter(info: GpuAdapterInfoLike, isFallbackAdapter = false): boolean {
  if (isFallbackAdapter || info.isFallbackAdapter === true || info.architecture === 'software') return true;
  return softwarePattern.test(`${info.vendor ?? ''} ${info.device ?? ''} ${info.description ?? ''}`);
}

async function requestProbe(): Promise<WebGPUProbe> {
  source ??= findGpu();
  const found = await source;
  if (typeof found === 'string') return { ok: false, reason: found };
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await found.gpu.requestAdapter(adapterOptions);
  } catch (error) {
    return { ok: false, reason: `requesting a WebGPU adapter failed: ${(error as Error).message.split('\n')[0]}` };
  }
  if (adapter === null) {
    return { ok: false, reason: found.dawnGlobals === null ? 'navigator.gpu has no adapter' : 'Dawn found no Vulkan, Metal or D3D12 adapter' };
  }
  // `info` is the current spec; `requestAdapterInfo()` is what older implementations have.
  const info = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {};
  const description = info.description || info.device || '';
  return {
    ok: true,
    fromDawn: found.dawnGlobals !== null,
    adapter: Object.freeze({
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      description,
      software: isSoftwareAdapter(info, adapter.isFallbackAdapter),
    }),
  };
}

/** The adapter this process's WebGPU gives TensorFlow.js, or why there is none. Asked once, then remembered. */
export function probeWebGPU(): Promise<WebGPUProbe> {
  probe ??= requestProbe();
  return probe;
}

/**
 * Makes `navigator.gpu` (and Dawn's WebGPU globals) visible to tfjs-backend-webgpu. Call after a successful
 * `probeWebGPU()` and before importing the backend package. Node 20 has no `navigator`; Node 21+ has a
 * `navigator` without `gpu`, which gets one as its own property.
 */
export async function installWebGPU(): Promise<void> {
  source ??= findGpu();
  const found = await source;
  if (typeof found === 'string' || found.dawnGlobals === null) return;
  for (const [name, value] of Object.entries(found.dawnGlobals)) {
    if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  const holder = globalThis as NavigatorHolder;
  if (holder.navigator !== undefined && holder.navigator !== null) {
    Object.defineProperty(holder.navigator, 'gpu', { value: found.gpu, configurable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: found.gpu }, configurable: true, writable: true });
  }
}
