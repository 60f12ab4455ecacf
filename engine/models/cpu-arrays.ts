/**
 * Plain arrays for the CPU loops of the model files (ttt-scan.ts, mamba-scan.ts, attention-loop.ts): reading a
 * tensor's values without a copy, matrix products of plain arrays, and arrays reused from chunk to chunk.
 * On CPU backends (wasm, cpu, tensorflow) reading a tensor back mid-step is a read of the heap, not a stall
 * (DESIGN.md "Engine backends"), so these loops may mix TF.js ops and JavaScript freely.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeSgemm } from '../core/native-matmul.js';

/** The wasm backend's view of a tensor's memory (absent on other backends, where `dataSync` does not copy anyway). */
interface HeapBackend {
  typedArrayFromHeap?(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * A float32 tensor's values without a copy where the backend allows: on wasm a view of its heap, valid only until
 * the next TF.js call that allocates (read it at once); elsewhere `dataSync`. Never write to it.
 */
export function readNow(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as HeapBackend;
  return (backend.typedArrayFromHeap ? backend.typedArrayFromHeap(t) : t.dataSync()) as Float32Array;
}

/**
 * C = α·op(A)·op(B) + β·C for row-major plain arrays (op = transpose when asked; op(A) is [m, k], op(B) [k, n],
 * C [m, n], all dense; α = 1, β = 0 unless given): through the native BLAS where one is loaded
 * (core/native-matmul.ts), otherwise through TF.js (XNNPACK on wasm), whose product is then added into C here.
 * Arrays may be subarray views.
 */
export function gemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number, A: Float32Array, B: Float32Array, C: Float32Array, alpha = 1, beta = 0,
): void {
  const sgemm = nativeSgemm();
  if (sgemm) {
    sgemm(transA, transB, m, n, k, A, transA ? m : k, B, transB ? k : n, C, n, alpha, beta);
    return;
  }
  const ta = tf.tensor2d(A.subarray(0, m * k), transA ? [k, m] : [m, k]), tb = tf.tensor2d(B.subarray(0, k * n), transB ? [n, k] : [k, n]);
  const product = tf.matMul(ta, tb, transA, transB);
  const P = readNow(product); // read at once: `readNow` is valid until the next TF.js call
  if (alpha === 1 && beta === 0) C.set(P);
  else for (let i = 0; i < m * n; i++) C[i] = alpha * P[i] + (beta === 0 ? 0 : beta * C[i]);
  tf.dispose([ta, tb, product]);
}

/**
 * Arrays the CPU layout reuses from chunk to chunk, by role. Fresh multi-megabyte arrays cost more than their
 * contents here: each new page is zero-filled on first touch (a page fault; expensive in a VM), then collected.
 * Only for arrays nothing else keeps: uploads to wasm copy, but the cpu backend's `tf.tensor` keeps the array it is
 * given (`uploadsCopy` says which).
 */
export class ScratchArrays {
  private readonly arrays = new Map<string, Float32Array>();

  /** An array of `size` floats for `role` (contents left from before). */
  get(role: string, size: number): Float32Array {
    let a = this.arrays.get(role);
    if (!a || a.length < size) this.arrays.set(role, (a = new Float32Array(size)));
    return a.length === size ? a : a.subarray(0, size);
  }

  /** Whether `tf.tensor` copies its values on the active backend, so that an array passed to it may be reused. */
  static uploadsCopy(): boolean {
    return tf.getBackend() === 'wasm';
  }
}
