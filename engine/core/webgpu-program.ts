/**
 * Our own WGSL compute programs on TensorFlow.js's WebGPU backend: a fused kernel (the TTT inner loop over a chunk,
 * Mamba's selective scan) runs as one dispatch on the backend's device, reading TF.js tensors and writing one new
 * float32 tensor, so it sits in a model's tensor code like any op. On WebGPU every TF.js op is a dispatch of a few
 * tens of microseconds; a loop of small ops per token or per mini-batch is bound by that, not by arithmetic.
 *
 * The program's code is a WGSL `fn main(index: i32)` (index: the invocation's global index) that reads its inputs by name (`array<f32>`, flat, row-major) and writes
 * `result` (`array<f32>`, read-write: a kernel may also keep its work arrays there, past the part it returns).
 * `workgroupId.x`, `localIndex` and friends are in scope. Sizes are baked into the code as constants, so `key` must
 * name every one of them.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface FusedProgram {
  /** Names every constant baked into `code` (shapes, flags): programs are compiled once per key. */
  readonly key: string;
  /** Input names, in the order of the tensors given to `runFusedProgram`. */
  readonly inputs: readonly string[];
  /** Integers the code reads as `uniforms.<name>`: what varies from call to call without a new compile. */
  readonly uniforms?: Readonly<Record<string, number>>;
  /** WGSL: `fn main(index: i32) { … }` and any helpers it calls. */
  readonly code: string;
  /** Workgroups along x (at most 65,535), and threads per workgroup. */
  readonly workgroups: number;
  readonly threads: number;
  /** Floats of `result`. */
  readonly outputSize: number;
}

/** What tfjs-backend-webgpu's `runWebGPUProgram` needs of a program (its WebGPUProgram interface, in part). */
interface BackendProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  shaderKey: string;
  readonly dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  readonly uniforms?: string;
  getUserCode(): string;
}

type ProgramUniform = { type: 'int32'; data: number[] }[];

interface WebGPUBackendLike {
  runWebGPUProgram(program: BackendProgram, inputs: tf.TensorInfo[], outputDtype: 'float32', uniforms?: ProgramUniform, ...rest: unknown[]): tf.TensorInfo;
}

function webgpuBackend(): WebGPUBackendLike {
  const backend = tf.backend() as unknown as Partial<WebGPUBackendLike>;
  if (tf.getBackend() !== 'webgpu' || typeof backend.runWebGPUProgram !== 'function') {
    throw new Error(`a fused WebGPU program needs the webgpu backend (the backend is ${tf.getBackend()})`);
  }
  return backend as WebGPUBackendLike;
}

/** Runs `program` once over `inputs` (float32 tensors); returns `result` as a [outputSize] tensor. */
export function runFusedProgram(program: FusedProgram, inputs: readonly tf.Tensor[]): tf.Tensor1D {
  if (inputs.length !== program.inputs.length) throw new Error(`${program.key}: ${program.inputs.length} inputs named, ${inputs.length} given`);
  for (const [i, t] of inputs.entries()) if (t.dtype !== 'float32') throw new Error(`${program.key}: input ${program.inputs[i]} is ${t.dtype}, not float32`);
  const uniformNames = Object.keys(program.uniforms ?? {});
  const backendProgram: BackendProgram = {
    variableNames: [...program.inputs],
    outputShape: [program.outputSize],
    shaderKey: `fused:${program.key}`,
    dispatchLayout: { x: [0] },
    dispatch: [program.workgroups, 1, 1],
    workgroupSize: [program.threads, 1, 1],
    uniforms: uniformNames.map((name) => `${name} : i32,`).join(' '),
    getUserCode: () => program.code,
  };
  const info = webgpuBackend().runWebGPUProgram(backendProgram, [...inputs], 'float32', uniformNames.map((name) => ({ type: 'int32', data: [program.uniforms![name]] })));
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor1D;
}

/** The webgpu device's workgroup memory per workgroup (maxComputeWorkgroupStorageSize; WebGPU guarantees 16 KiB). */
export function workgroupStorageBytes(): number {
  const device = (tf.backend() as unknown as { device?: { limits?: { maxComputeWorkgroupStorageSize?: number } } }).device;
  return device?.limits?.maxComputeWorkgroupStorageSize ?? 16384;
}

let fusedAllowed = true;

/**
 * Turns the fused programs off (the op-by-op form, for comparison) or back on in this thread. Entry points set it
 * from `TTT_WORKBENCH_FUSED=0` (runtime/kernel-switch.ts).
 */
export function allowFusedKernels(on: boolean): void {
  fusedAllowed = on;
}

/** Whether fused programs were left on (they run only on the webgpu backend). */
export function fusedKernelsAllowed(): boolean {
  return fusedAllowed;
}

/** Whether fused programs run: the webgpu backend is active and they were not turned off. */
export function fusedKernelsOn(): boolean {
  return fusedAllowed && tf.getBackend() === 'webgpu';
}

/**
 * Counts the WebGPU dispatches (one per program TF.js runs, ours included) while `work` runs, for the bench's
 * dispatches per 1,000 tokens.
 */
export async function countDispatches<T>(work: () => Promise<T>): Promise<{ result: T; dispatches: number }> {
  const backend = webgpuBackend() as WebGPUBackendLike & Record<string, unknown>;
  const original = backend.runWebGPUProgram;
  let dispatches = 0;
  backend.runWebGPUProgram = function counted(this: WebGPUBackendLike, program, inputs, dtype, uniforms, ...rest) {
    if (program.outputShape.every((d) => d > 0)) dispatches++; // an empty output dispatches nothing
    return original.call(this, program, inputs, dtype, uniforms, ...rest);
  };
  try {
    return { result: await work(), dispatches };
  } finally {
    backend.runWebGPUProgram = original;
  }
}
