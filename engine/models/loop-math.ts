/**
 * What the loop kernels of CPU backends share (ttt-scan.ts, mamba-scan.ts, attention-loop.ts): which backends they run on (and
 * which path a chunk takes, the fused WebGPU kernels included), and a fast exp for non-positive arguments.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedKernelsOn } from '../core/webgpu-program.js';
import type { ForwardOptions } from './model.js';

/** Backends where reading tensors back mid-step is a heap copy, not a stall, so loops over the rows win. */
const loopBackends = new Set(['wasm', 'cpu', 'tensorflow']);

export const loopKernelsAvailable = (): boolean => loopBackends.has(tf.getBackend());

/**
 * How a chunk's scan or attention runs for a forward `form`: `tensor`, the differentiable definition (form `dual`,
 * training, or no kernel for the backend); `loop`, the CPU backends' loops; `fused`, one WGSL dispatch on webgpu.
 */
export type KernelPath = 'tensor' | 'loop' | 'fused';

export function kernelPath(form: ForwardOptions['form']): KernelPath {
  if ((form ?? 'auto') !== 'auto') return 'tensor';
  return loopKernelsAvailable() ? 'loop' : fusedKernelsOn() ? 'fused' : 'tensor';
}

/** 2^k for k = −1075 … 24, by k + 1075. */
const powersOfTwo = Float64Array.from({ length: 1100 }, (_, i) => 2 ** (i - 1075));

/**
 * exp(x) for x ≤ 0 (a scan's Δ·A, a softmax's score − max) to ~1e-8 relative (float32 keeps ~6e-8):
 * x = k·ln 2 + r with |r| ≤ ln 2 / 2, exp(r) by its Taylor series to r⁷, times 2^k from a table. About twice as
 * fast as Math.exp, which is what these loops spend most of their time on.
 */
export function expNonPositive(x: number): number {
  if (!(x > -700 && x <= 0)) return Math.exp(x); // underflow to 0, NaN, or a positive x (never from the callers)
  const k = Math.round(x * Math.LOG2E), r = x - k * Math.LN2;
  return (1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r / 5040))))))) * powersOfTwo[k + 1075];
}
