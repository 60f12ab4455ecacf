/**
 * Three tfjs-backend-wasm kernels replaced by equivalents that do not copy whole tensors, which a gradient tape
 * does all the time:
 * - Identity (every tensor the tape saves for the backward pass is cloned) copies its input into a new buffer;
 *   here it shares the data with a reference count, as the wasm Reshape and the cpu backend's Identity do (tensors
 *   are immutable, so sharing is safe).
 * - Slice first copies its *whole* input out of the wasm heap into a fresh JS buffer (`readSync`), then copies the
 *   slice back; SplitV (the gradient of every concat) calls it once per piece. A slice that is one contiguous run
 *   of memory is copied here straight from heap to heap; other slices go to the original kernel.
 * The results are bit-identical; only time and memory change (a TTT or Mamba backward step saves thousands of
 * tensors, many of them megabytes).
 */
import * as tf from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackend {
  incRef(dataId: tf.DataId): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: tf.DataId): boolean;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

function identity(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string') return original(args);
    (args.backend as unknown as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/** A contiguous slice copied heap to heap, or null when the slice is not one contiguous run. */
function contiguousSlice(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo | null {
  if (x.dtype === 'string' || !tf.slice_util.isSliceContinous(x.shape, begin, size)) return null;
  const offset = tf.slice_util.computeFlatOffset(begin, tf.util.computeStrides(x.shape));
  const out = backend.makeOutput(size, x.dtype);
  // views taken after makeOutput, which may grow (and so move) the heap
  backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(x).subarray(offset, offset + tf.util.sizeFromShape(size)));
  return out;
}

function slice(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
    const [b, s] = tf.slice_util.parseSliceParams(x, begin, size);
    return contiguousSlice(args.backend as unknown as WasmBackend, x, b, s) ?? original(args);
  };
}

function splitV(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const backend = args.backend as unknown as WasmBackend;
    const begin = x.shape.map(() => 0);
    const pieces: tf.TensorInfo[] = [];
    for (const n of sizes) {
      const size = x.shape.map((d, i) => (i === ax ? n : d));
      const piece = contiguousSlice(backend, x, [...begin], size);
      if (!piece) {
        for (const p of pieces) backend.disposeData(p.dataId);
        return original(args);
      }
      pieces.push(piece);
      begin[ax] += n;
    }
    return pieces;
  };
}

let installed = false;

/** Replaces the kernels above on the wasm backend (once per process; a no-op where wasm is not registered). */
export function installWasmTrainingKernels(): void {
  if (installed) return;
  installed = true;
  const replacements: [string, (original: tf.KernelFunc) => tf.KernelFunc][] = [['Identity', identity], ['Slice', slice], ['SplitV', splitV]];
  for (const [name, replace] of replacements) {
    const config = tf.getKernel(name, 'wasm');
    if (!config) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...config, kernelFunc: replace(config.kernelFunc) });
  }
}
