/**
 * Matrix products through a native BLAS for the wasm backend (DESIGN.md "Engine backends"): TF.js `wasm` under Node
 * runs XNNPACK on one thread at ~25–30 GFLOP/s, while OpenBLAS's `cblas_sgemm` reaches 2–4× that on one core of the
 * same machine, and more than that on the small products of the TTT scan (no tensor bookkeeping). The library is
 * reached through koffi (an FFI package with its binaries inside), found at its usual system paths: Debian's
 * `libopenblas0-pthread`, then macOS's Accelerate. Where neither loads, everything stays on XNNPACK and
 * `nativeMatMulReason()` says why in one line.
 *
 * Two users, one product: `installNativeMatMul` replaces the wasm backend's BatchMatMul kernel (every `tf.matMul`
 * of float32 tensors, batched ones included, broadcasting a batch of one) reading and writing the wasm heap in
 * place, and `nativeSgemm` hands the same function to code that multiplies plain arrays (models/cpu-arrays.ts `gemm`).
 * Results equal XNNPACK's to float32 rounding (both accumulate in float32, in different orders).
 * OpenBLAS is told to use one thread: the engine runs one pipeline stage per core, each its own worker thread.
 */
import * as tf from '@tensorflow/tfjs-core';

/** C = α·op(A)·op(B) + β·C for row-major A, B, C (op = transpose when asked), as cblas_sgemm; α = 1, β = 0 unless given. */
export type Sgemm = (
  transA: boolean, transB: boolean, m: number, n: number, k: number, A: Float32Array, lda: number, B: Float32Array, ldb: number, C: Float32Array, ldc: number,
  alpha?: number, beta?: number,
) => void;

/** Where the BLAS is looked for, in order (koffi.load takes the first that opens). */
const libraries = [
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0',
  '/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0',
  'libopenblas.so.0',
  '/System/Library/Frameworks/Accelerate.framework/Accelerate',
];

interface Koffi {
  load(path: string): { func(signature: string): (...args: unknown[]) => unknown };
}

const [rowMajor, noTrans, trans] = [101, 111, 112];

let loaded: { sgemm: Sgemm; library: string } | null = null;
const notLoaded = 'not loaded yet';
let reason = notLoaded;
let enabled = true;
let attempted: Promise<void> | null = null;

async function load(): Promise<void> {
  let koffi: Koffi;
  try {
    const name = 'koffi'; // a computed name: bundlers leave the optional native package alone
    const mod = (await import(/* @vite-ignore */ name)) as { default?: Koffi } & Koffi;
    koffi = mod.default ?? mod;
  } catch (error) {
    reason = `koffi cannot load (${(error as Error).message.split('\n')[0]})`;
    return;
  }
  for (const library of libraries) {
    let lib: ReturnType<Koffi['load']>;
    try {
      lib = koffi.load(library);
    } catch {
      continue;
    }
    try {
      const call = lib.func('void cblas_sgemm(int, int, int, int, int, int, float, float *, int, float *, int, float, float *, int)');
      try {
        lib.func('void openblas_set_num_threads(int)')(1);
      } catch {
        // Accelerate has no thread setting
      }
      const sgemm: Sgemm = (transA, transB, m, n, k, A, lda, B, ldb, C, ldc, alpha = 1, beta = 0) =>
        void call(rowMajor, transA ? trans : noTrans, transB ? trans : noTrans, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
      loaded = { sgemm, library };
      reason = '';
      return;
    } catch (error) {
      reason = `${library} has no cblas_sgemm (${(error as Error).message.split('\n')[0]})`;
    }
  }
  if (reason === notLoaded) reason = `no BLAS library found (looked for ${libraries.join(', ')}; on Debian: apt-get install libopenblas0-pthread)`;
}

/** Loads the BLAS once per thread; resolves either way (`nativeSgemm()` is then null and the reason is kept). */
export function loadNativeMatMul(): Promise<void> {
  return (attempted ??= load());
}

/** The native product, or null where no BLAS loaded (or it was turned off). */
export function nativeSgemm(): Sgemm | null {
  return enabled && loaded ? loaded.sgemm : null;
}

/** One line for `info` and the manifest: which library computes wasm's matrix products, and why XNNPACK does. */
export function nativeMatMulReason(): string {
  if (!enabled) return 'XNNPACK (the native BLAS is turned off)';
  return loaded ? `cblas_sgemm of ${loaded.library}` : `XNNPACK (no native BLAS: ${reason})`;
}

/** Turns the native path off and on again (for comparing it with the plain one in one process). */
export function useNativeMatMul(on: boolean): void {
  enabled = on;
}

/** The parts of tfjs-backend-wasm's BackendWasm this kernel uses. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** BatchMatMul through `sgemm` where the batch dimensions are equal or one side's is 1; otherwise `original`. */
function batchMatMul(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const sgemm = nativeSgemm();
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    if (!sgemm || a.dtype !== 'float32' || b.dtype !== 'float32') return original(args);
    const ra = a.shape.length, rb = b.shape.length;
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(outerA), batchB = tf.util.sizeFromShape(outerB);
    const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
    if (k !== kb || !(sameOuter || (batchA === 1 && ra <= rb) || (batchB === 1 && rb <= ra))) return original(args);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput([...outer, m, n], 'float32');
    // views taken after makeOutput, which may grow (and so move) the heap
    const A = backend.typedArrayFromHeap(a) as Float32Array, B = backend.typedArrayFromHeap(b) as Float32Array;
    const C = backend.typedArrayFromHeap(out) as Float32Array;
    const batch = Math.max(batchA, batchB);
    const lda = transposeA ? m : k, ldb = transposeB ? k : n;
    for (let i = 0; i < batch; i++) {
      const Ai = batchA === 1 ? A : A.subarray(i * m * k, (i + 1) * m * k);
      const Bi = batchB === 1 ? B : B.subarray(i * k * n, (i + 1) * k * n);
      sgemm(transposeA, transposeB, m, n, k, Ai, lda, Bi, ldb, batch === 1 ? C : C.subarray(i * m * n, (i + 1) * m * n), n);
    }
    return out;
  };
}

let installed = false;

/**
 * Loads the BLAS and, where it loads, routes the wasm backend's BatchMatMul through it (once per thread; a no-op
 * where wasm is not registered). Returns `nativeMatMulReason()`.
 */
export async function installNativeMatMul(): Promise<string> {
  await loadNativeMatMul();
  if (loaded && !installed) {
    const config = tf.getKernel('BatchMatMul', 'wasm');
    if (config) {
      installed = true;
      tf.unregisterKernel('BatchMatMul', 'wasm');
      tf.registerKernel({ ...config, kernelFunc: batchMatMul(config.kernelFunc) });
    }
  }
  return nativeMatMulReason();
}
