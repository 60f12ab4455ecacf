/**
 * Asks whether this machine has a WebGPU adapter in a short-lived child process whose stderr is dropped. Dawn
 * prints limit warnings (and the Vulkan loader its complaints) on stderr when it starts; automatic backend
 * selection should not put them on every command's output when the answer is "no GPU, use wasm". The CLI installs
 * this probe (core/backend.ts `useWebGPUProbe`); Dawn then starts in-process only when a hardware adapter exists.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { adapterOptions, type GpuAdapterInfoLike, isSoftwareAdapter, probeWebGPU, processGpu, type WebGPUProbe } from '../core/webgpu-adapter.js';

// A child that asks Dawn for the adapter and prints what it found as one JSON line (null: none).
const childProbeScript = `
const { create } = await import(process.argv[1]);
const adapter = await create([]).requestAdapter(${JSON.stringify(adapterOptions)});
const info = adapter === null ? null : (adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {});
process.stdout.write(JSON.stringify(info === null ? null : {
  vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
  isFallbackAdapter: adapter.isFallbackAdapter === true || info.isFallbackAdapter === true,
}));
process.exit(0);`;

/** The same answer as `probeWebGPU`; a process that already has `navigator.gpu` (a browser) is asked directly. */
export async function probeWebGPUQuietly(): Promise<WebGPUProbe> {
  if (processGpu() !== undefined) return probeWebGPU();
  let entry: string;
  try {
    entry = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return { ok: false, reason: 'the optional package "webgpu" (Dawn) is not installed' };
  }
  const output = await new Promise<string | null>((done) => {
    // ELECTRON_RUN_AS_NODE: inside Electron's engine process execPath is Electron itself
    execFile(process.execPath, ['--input-type=module', '-e', childProbeScript, entry], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, timeout: 20_000 },
      (error, stdout) => done(error ? null : stdout));
  });
  if (output === null) return { ok: false, reason: 'Dawn did not start (the WebGPU probe failed)' };
  const info = JSON.parse(output) as (GpuAdapterInfoLike & { isFallbackAdapter: boolean }) | null;
  if (info === null) return { ok: false, reason: 'Dawn found no Vulkan, Metal or D3D12 adapter' };
  return {
    ok: true, fromDawn: true,
    adapter: Object.freeze({
      vendor: info.vendor ?? '', architecture: info.architecture ?? '', description: info.description || info.device || '',
      software: isSoftwareAdapter(info, info.isFallbackAdapter),
    }),
  };
}

