/**
 * The TTT inner loop over whole, aligned mini-batches as one WGSL dispatch per layer and chunk, for the webgpu
 * backend: the kernel of ttt-scan.ts (same math, same statistics) laid out for a GPU, behind the signature of the
 * dual form in ttt.ts and tested against it (test/webgpu.test.ts: every parity fixture, full, decoding and any
 * chunking; ttt-fused-webgpu.test.ts: outputs, weights, statistics and metrics against the tensor form).
 *
 * Why: op by op, the dual form issues some 30 small TF.js ops per mini-batch of 16 tokens per layer, one mini-batch
 * after another, and on WebGPU each op is a dispatch of tens of microseconds. Here one workgroup per head walks the
 * run's mini-batches in order (the paper's ttt-lm-kernels fuse the same loop in CUDA), keeping its weights and work
 * arrays in the result buffer past the part it returns, with barriers between the steps of a mini-batch:
 *   rope(XK), rope(XQ), target = XV − rope(XK)
 *   Z1 = [XK; XQ]·W1 + b1, A = η ⊙ (XQ·XKᵀ + 1)                          (+ for TTT-MLP:)
 *   X2 = gelu(Z1), Z2 = X2·W2 + b2, ∇2 = ∇ of ½‖LN(Z2) − target‖², ∇1 = (∇2·W2ᵀ) ⊙ gelu′(Z1)
 *   (TTT-Linear: ∇1 = ∇ of ½‖LN(Z1) − target‖²)
 *   Z̄1 = XQ·W1 + b1 − A·∇1;  W1 −= (η_last ⊙ XK)ᵀ·∇1, b1 −= Σ_j η_last,j ∇1_j
 *   X̄2 = gelu(Z̄1), Z̄2 = X̄2·W2 + b2 − (η ⊙ (X̄2·X2ᵀ + 1))·∇2;  W2, b2 likewise
 *   out = XQ + LN(Z̄_last)
 * with the losses of the mini-batch's last token (at W_0, before and after) and the weight metrics' per-head sums
 * taken on the way; their means and norms over heads are a few tensor ops after the dispatch.
 *
 * Glossary (ttt.ts): T tokens of the run (a multiple of K), n = T/K, H heads of f features, F1 the first inner
 * layer's width (f or 4f), C = H·f, η_ij = token_eta_i · lr_j for j ≤ i.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type FusedProgram, runFusedProgram } from '../core/webgpu-program.js';
import type { InnerParams } from './ttt.js';

/** Threads per workgroup (one workgroup per head). */
const threads = 64;

/** What a layer's fused runs share, made once when the model is built on webgpu. */
export interface FusedLayerConstants {
  /** cos [K, f], sin [K, f], token_eta [K], ttt_norm weight [H, f] and bias [H, f], flat. */
  readonly consts: tf.Tensor1D;
  /** W_0 packed as `packParams` packs (for ttt_loss_init and the distances to W_0). */
  readonly init: tf.Tensor1D;
  /** ‖W_0‖_F per weight matrix (W1, and W2 for TTT-MLP), for cos(W, W_0). */
  readonly initNorms: tf.Tensor1D;
}

/** Packs a layer's constants with tensor ops (WebGPU cannot read tensors back synchronously under Node). */
export function fusedLayerConstants(
  rope: { readonly cos: tf.Tensor2D; readonly sin: tf.Tensor2D }, tokenEta: tf.Tensor1D, lnWeight: tf.Tensor3D, lnBias: tf.Tensor3D, init: InnerParams,
): FusedLayerConstants {
  return tf.tidy(() => {
    const flat = (t: tf.Tensor) => tf.reshape(t, [-1]);
    const consts = tf.concat([flat(rope.cos), flat(rope.sin), tokenEta, flat(lnWeight), flat(lnBias)]) as tf.Tensor1D;
    const matrices = init.W2 ? [init.W1, init.W2] : [init.W1];
    return { consts, init: packParams(init), initNorms: tf.stack(matrices.map((w) => tf.sqrt(tf.sum(tf.square(w))))) as tf.Tensor1D };
  });
}

/** W1, b1 (, W2, b2) flat, one after another: the kernel's layout of the inner weights. */
export function packParams(p: InnerParams): tf.Tensor1D {
  const parts = p.W2 && p.b2 ? [p.W1, p.b1, p.W2, p.b2] : [p.W1, p.b1];
  return tf.concat(parts.map((t) => tf.reshape(t, [-1]))) as tf.Tensor1D;
}

export interface FusedRunInputs {
  /** [rows, 3C]: XQ | XK | XV of the chunk, before RoPE (the run's rows start at `firstRow`). */
  readonly X: tf.Tensor2D;
  /** [rows, H] ttt_lr_eta. */
  readonly lr: tf.Tensor2D;
  readonly firstRow: number;
  /** Tokens of the run: whole mini-batches from a mini-batch boundary. */
  readonly T: number;
  readonly H: number;
  readonly K: number;
  readonly params: InnerParams;
  readonly constants: FusedLayerConstants;
  readonly stats: boolean;
  readonly metrics: boolean;
}

export interface FusedRun {
  /** [T, C] token-major: XQ + LN(Z̄) for every token of the run. */
  readonly out: tf.Tensor2D;
  readonly params: InnerParams;
  /** [n, 3] (init, before, after) losses per mini-batch, when asked (ttt-stats.ts definitions). */
  readonly stats?: tf.Tensor2D;
  /** [n, 4 per weight matrix] ‖W‖, ‖W − W_0‖, ‖W − W_prev‖, cos(W, W_0) after each mini-batch, when asked. */
  readonly metrics?: tf.Tensor2D;
}

/** Runs the fused kernel over one run of whole mini-batches. Call inside `tf.tidy`. */
export function tttFusedRun(inp: FusedRunInputs): FusedRun {
  const { T, H, K, params } = inp;
  const f = params.W1.shape[1], F1 = params.W1.shape[2], C = H * f, n = T / K, mlp = params.W2 !== undefined;
  if (!Number.isInteger(n) || n < 1) throw new Error(`tttFusedRun: ${T} tokens are not whole mini-batches of ${K}`);
  const layout = paramLayout(H, f, F1, mlp);
  const matrices = mlp ? 2 : 1;
  const sizes = { out: T * C, params: layout.size, stats: inp.stats ? n * H * 3 : 0, metrics: inp.metrics ? n * H * matrices * 4 : 0 };
  const scratch = scratchLayout(K, f, F1);
  const returned = sizes.out + sizes.params + sizes.stats + sizes.metrics;
  const program: FusedProgram = {
    // the run's length, its place in the chunk and what it reports are uniforms: one compiled kernel serves every
    // chunk of a layer shape (compiling takes seconds on a software adapter)
    key: `ttt-fused:H${H}:f${f}:F${F1}:K${K}:${mlp ? 'mlp' : 'linear'}`,
    inputs: ['X', 'LR', 'CST', 'P', 'P0'],
    uniforms: { n, firstRow: inp.firstRow, stats: inp.stats ? 1 : 0, metrics: inp.metrics ? 1 : 0 },
    code: kernelSource({ H, f, F1, K, mlp, layout, scratch }),
    workgroups: H,
    threads,
    outputSize: returned + H * scratch.size,
  };
  const result = runFusedProgram(program, [inp.X, inp.lr, inp.constants.consts, packParams(params), inp.constants.init]);
  const at = (offset: number, size: number) => tf.slice(result, [offset], [size]);
  const p0 = sizes.out;
  const w = (name: keyof typeof layout.offsets, like: tf.Tensor3D) => tf.reshape(at(p0 + layout.offsets[name], like.size), like.shape) as tf.Tensor3D;
  const next: InnerParams = {
    W1: w('W1', params.W1), b1: w('b1', params.b1),
    ...(params.W2 && params.b2 ? { W2: w('W2', params.W2), b2: w('b2', params.b2) } : {}),
  };
  const run: { -readonly [K in keyof FusedRun]: FusedRun[K] } = { out: tf.reshape(at(0, sizes.out), [T, C]), params: next };
  // per head → the layer: the losses averaged over heads, the norms' squares summed over heads
  if (inp.stats) run.stats = tf.mean(tf.reshape(at(p0 + sizes.params, sizes.stats), [n, H, 3]), 1) as tf.Tensor2D;
  if (inp.metrics) {
    const sums = tf.sum(tf.reshape(at(p0 + sizes.params + sizes.stats, sizes.metrics), [n, H, matrices, 4]), 1); // [n, M, 4]
    const [sq, sqInit, sqPrev, dot] = tf.unstack(sums, 2);
    const norm = tf.sqrt(sq);
    const cos = tf.div(dot, tf.mul(norm, inp.constants.initNorms));
    run.metrics = tf.reshape(tf.stack([norm, tf.sqrt(sqInit), tf.sqrt(sqPrev), cos], 2), [n, matrices * 4]);
  }
  return run;
}

/**
 * A group of whole mini-batches as fused runs that end where a weight snapshot is asked for (`snapshotAt`, by
 * mini-batch index within the group), joined: what `tttScanRun` returns for the CPU, with `out` a tensor.
 */
export function tttFusedGroup(
  inp: FusedRunInputs & { readonly snapshotAt?: (index: number) => boolean },
): FusedRun & { readonly snapshots: { index: number; weights: Record<string, tf.Tensor3D> }[] } {
  const n = inp.T / inp.K;
  const runs: FusedRun[] = [];
  const snapshots: { index: number; weights: Record<string, tf.Tensor3D> }[] = [];
  let params = inp.params;
  for (let done = 0; done < n;) {
    let count = n - done;
    for (let i = 0; i < count; i++) if (inp.snapshotAt?.(done + i)) count = i + 1;
    const run = tttFusedRun({ ...inp, firstRow: inp.firstRow + done * inp.K, T: count * inp.K, params });
    runs.push(run);
    params = run.params;
    done += count;
    if (inp.snapshotAt?.(done - 1)) snapshots.push({ index: done - 1, weights: { W1: tf.clone(params.W1), ...(params.W2 ? { W2: tf.clone(params.W2) } : {}) } });
  }
  const join = <T extends tf.Tensor>(parts: (T | undefined)[]) => (parts.length === 1 ? parts[0] : parts[0] && (tf.concat(parts as T[], 0) as T));
  return { out: join(runs.map((r) => r.out))!, params, stats: join(runs.map((r) => r.stats)), metrics: join(runs.map((r) => r.metrics)), snapshots };
}

interface ParamLayout {
  readonly offsets: { readonly W1: number; readonly b1: number; readonly W2: number; readonly b2: number };
  readonly size: number;
}

/** Offsets of W1 [H, f, F1], b1 [H, F1] (, W2 [H, F1, f], b2 [H, f]) in a packed parameter buffer. */
function paramLayout(H: number, f: number, F1: number, mlp: boolean): ParamLayout {
  const W1 = 0, b1 = H * f * F1, W2 = b1 + H * F1, b2 = W2 + H * F1 * f;
  return { offsets: { W1, b1, W2, b2 }, size: mlp ? b2 + H * f : W2 };
}

/** One head's work arrays in the result buffer, past what the kernel returns. */
function scratchLayout(K: number, f: number, F1: number) {
  const names = [
    ['XK', K * f], ['XQ', K * f], ['TGT', K * f], ['Z1', 2 * K * F1], ['A', K * K], ['G1', K * F1],
    ['X2', K * F1], ['GG', K * F1], ['X2B', K * F1], ['Z2', K * f], ['G2', K * f], ['ROW', F1], ['ROW2', f],
  ] as const;
  const offsets: Record<string, number> = {};
  let size = 0;
  for (const [name, length] of names) {
    offsets[name] = size;
    size += length;
  }
  return { offsets: offsets as Record<(typeof names)[number][0], number>, size };
}

interface KernelShape {
  readonly H: number; readonly f: number; readonly F1: number; readonly K: number; readonly mlp: boolean;
  readonly layout: ParamLayout;
  readonly scratch: ReturnType<typeof scratchLayout>;
}

/**
 * The WGSL of the kernel. `result` holds, in order: out [T, C], the weights after the run (packed), the losses
 * [n, H, 3], the metric sums [n, H, matrices, 4], then each head's work arrays. The weights are copied there first
 * and updated in place.
 */
function kernelSource(s: KernelShape): string {
  const { H, f, F1, K, mlp, layout, scratch } = s;
  const C = H * f, matrices = mlp ? 2 : 1;
  const o = scratch.offsets;
  const rowLoss = (name: string, buffer: string, base: string) => `
// the loss of the mini-batch's last token (XK row K-1 against its target) through the weights in ${buffer}
fn ${name}(h: i32, lid: i32, sc: i32) -> f32 {
  for (var c = lid; c < F1; c += NT) {
    var z = ${buffer}[${base} + PB1 + h * F1 + c];
    for (var a = 0; a < F; a++) { z += result[sc + S_XK + (K - 1) * F + a] * ${buffer}[${base} + PW1 + (h * F + a) * F1 + c]; }
    result[sc + S_ROW + c] = z;
  }
  wait();
  var zs = S_ROW;
  if (MLP) {
    for (var d = lid; d < F; d += NT) {
      var z = ${buffer}[${base} + PB2 + h * F + d];
      for (var c = 0; c < F1; c++) { z += gelu(result[sc + S_ROW + c]) * ${buffer}[${base} + PW2 + (h * F1 + c) * F + d]; }
      result[sc + S_ROW2 + d] = z;
    }
    wait();
    zs = S_ROW2;
  }
  var loss = 0.0;
  if (lid == 0) { loss = lnLoss(h, sc + zs, sc + S_TGT + (K - 1) * F); }
  wait();
  return loss;
}`;
  return `
const H = ${H}; const F = ${f}; const F1 = ${F1}; const K = ${K}; const C = ${C};
const NT = ${threads}; const MLP = ${mlp}; const M = ${matrices};
const C_COS = 0; const C_SIN = ${K * f}; const C_ETA = ${2 * K * f}; const C_LNW = ${2 * K * f + K}; const C_LNB = ${2 * K * f + K + H * f};
const PW1 = ${layout.offsets.W1}; const PB1 = ${layout.offsets.b1}; const PW2 = ${layout.offsets.W2}; const PB2 = ${layout.offsets.b2}; const PSIZE = ${layout.size};
const SCR = ${scratch.size};
const S_XK = ${o.XK}; const S_XQ = ${o.XQ}; const S_TGT = ${o.TGT}; const S_Z1 = ${o.Z1}; const S_A = ${o.A}; const S_G1 = ${o.G1};
const S_X2 = ${o.X2}; const S_GG = ${o.GG}; const S_X2B = ${o.X2B}; const S_Z2 = ${o.Z2}; const S_G2 = ${o.G2}; const S_ROW = ${o.ROW}; const S_ROW2 = ${o.ROW2};

var<workgroup> red: array<vec4<f32>, NT>;
// where the parts of result start: they follow the run's length, a uniform (set first thing in main)
var<private> O_P: i32; var<private> O_ST: i32; var<private> O_MT: i32; var<private> O_SC: i32;
var<private> METRICS: bool;

fn wait() { storageBarrier(); workgroupBarrier(); }

// gelu(x) = x·sigmoid(2u), u = √(2/π)(x + 0.044715x³): blocks.ts geluTanh, safe for any x
fn gelu(x: f32) -> f32 { return x / (1.0 + exp(-1.5957691216057308 * (x + 0.044715 * x * x * x))); }
// ref: ttt.py gelu_bwd, with tanh(v) = 2·sigmoid(2v) − 1 as blocks.ts geluTanhGrad
fn geluGrad(x: f32) -> f32 {
  let x2 = x * x;
  let t = 2.0 / (1.0 + exp(-2.0 * 0.79788456 * x * (1.0 + 0.044715 * x2))) - 1.0;
  return 0.5 * x * (1.0 - t * t) * (0.79788456 + 0.1070322243 * x2) + 0.5 * (1.0 + t);
}

fn lr(row: i32, h: i32) -> f32 { return LR[row * H + h]; }

// mean and standard deviation (ε 1e-6) of one row of F values at result[z0…], as layer norm takes them
fn moments(z0: i32) -> vec2<f32> {
  var mean = 0.0;
  for (var i = 0; i < F; i++) { mean += result[z0 + i]; }
  mean /= f32(F);
  var variance = 0.0;
  for (var i = 0; i < F; i++) { let d = result[z0 + i] - mean; variance += d * d; }
  return vec2<f32>(mean, sqrt(variance / f32(F) + 1e-6));
}

// ‖LN(z) − target‖² / F for one row of F values at result[z0…], result[t0…] (ttt-stats.ts lnFusedL2Bwd's loss)
fn lnLoss(h: i32, z0: i32, t0: i32) -> f32 {
  let ms = moments(z0);
  let mean = ms.x; let sd = ms.y;
  var err = 0.0;
  for (var i = 0; i < F; i++) {
    let y = CST[C_LNW + h * F + i] * ((result[z0 + i] - mean) / sd) + CST[C_LNB + h * F + i];
    let d = y - result[t0 + i];
    err += d * d;
  }
  return err / f32(F);
}

// ∇_z ½‖LN(z) − target‖² of one row into result[g0…]; returns the row's loss. ref: ttt.py ln_fused_l2_bwd
fn lnBackward(h: i32, z0: i32, t0: i32, g0: i32) -> f32 {
  let ms = moments(z0);
  let mean = ms.x; let sd = ms.y;
  var s1 = 0.0; var s2 = 0.0; var err = 0.0;
  for (var i = 0; i < F; i++) {
    let xHat = (result[z0 + i] - mean) / sd;
    let gamma = CST[C_LNW + h * F + i];
    let diff = gamma * xHat + CST[C_LNB + h * F + i] - result[t0 + i];
    err += diff * diff;
    let gy = diff * gamma;
    s1 += gy; s2 += gy * xHat;
    result[g0 + i] = gy;
  }
  for (var i = 0; i < F; i++) {
    let xHat = (result[z0 + i] - mean) / sd;
    result[g0 + i] = (f32(F) * result[g0 + i] - s1 - xHat * s2) / (f32(F) * sd);
  }
  return err / f32(F);
}

// the workgroup's sum of each thread's vec4; every thread gets it
fn workgroupSum(mine: vec4<f32>, lid: i32) -> vec4<f32> {
  red[lid] = mine;
  workgroupBarrier();
  var total = vec4<f32>(0.0);
  for (var i = 0; i < NT; i++) { total += red[i]; }
  workgroupBarrier();
  return total;
}
${rowLoss('lossAtInit', 'P0', '0') + rowLoss('lossNow', 'result', 'O_P')}

// W −= (η_last ⊙ X)ᵀ·∇ for W at result[w0…] ([rows, cols]) and b at result[b0…] ([cols]), X at result[x0…] ([K, rows]),
// ∇ at result[g0…] ([K, cols]); returns this thread's part of the metric sums (‖W‖², ‖W − W_0‖², ‖W − W_prev‖², W·W_0)
fn update(h: i32, lid: i32, row0: i32, x0: i32, g0: i32, w0: i32, b0: i32, init0: i32, rows: i32, cols: i32) -> vec4<f32> {
  let etaLast = CST[C_ETA + K - 1];
  var sums = vec4<f32>(0.0);
  for (var idx = lid; idx < rows * cols; idx += NT) {
    let a = idx / cols; let c = idx % cols;
    var d = 0.0;
    for (var r = 0; r < K; r++) { d += (etaLast * lr(row0 + r, h) * result[x0 + r * rows + a]) * result[g0 + r * cols + c]; }
    let before = result[w0 + idx];
    let w = before - d;
    result[w0 + idx] = w;
    if (METRICS) {
      let wInit = P0[init0 + idx];
      sums += vec4<f32>(w * w, (w - wInit) * (w - wInit), (w - before) * (w - before), w * wInit);
    }
  }
  for (var c = lid; c < cols; c += NT) {
    var d = 0.0;
    for (var r = 0; r < K; r++) { d += etaLast * lr(row0 + r, h) * result[g0 + r * cols + c]; }
    result[b0 + c] = result[b0 + c] - d;
  }
  return sums;
}

// A[i, j] = η_ij · (Σ_a L[i, a]·R[j, a] + 1) for j ≤ i, else 0; L at result[l0…], R at result[r0…] ([K, width])
fn causalWeights(h: i32, lid: i32, row0: i32, sc: i32, l0: i32, r0: i32, width: i32) {
  for (var idx = lid; idx < K * K; idx += NT) {
    let i = idx / K; let j = idx % K;
    var v = 0.0;
    if (j <= i) {
      var acc = 0.0;
      for (var a = 0; a < width; a++) { acc += result[l0 + i * width + a] * result[r0 + j * width + a]; }
      v = CST[C_ETA + i] * lr(row0 + j, h) * (acc + 1.0);
    }
    result[sc + S_A + idx] = v;
  }
}

// result[o…] = X·W + b for X at result[x0…] ([rows, inner]), W at result[w0…] ([inner, cols]), b at result[b0…]
fn affine(lid: i32, x0: i32, rows: i32, inner: i32, w0: i32, b0: i32, cols: i32, o: i32) {
  for (var idx = lid; idx < rows * cols; idx += NT) {
    let r = idx / cols; let c = idx % cols;
    var z = 0.0;
    for (var a = 0; a < inner; a++) { z += result[x0 + r * inner + a] * result[w0 + a * cols + c]; }
    result[o + idx] = z + result[b0 + c];
  }
}

// Z −= A·∇ for Z at result[z0…] and ∇ at result[g0…] ([K, cols]), A at result[a0…] ([K, K], zero above the diagonal)
fn subtractCausal(lid: i32, a0: i32, g0: i32, cols: i32, z0: i32) {
  for (var idx = lid; idx < K * cols; idx += NT) {
    let i = idx / cols; let c = idx % cols;
    var s = 0.0;
    for (var j = 0; j <= i; j++) { s += result[a0 + i * K + j] * result[g0 + j * cols + c]; }
    result[z0 + idx] = result[z0 + idx] - s;
  }
}

fn main(index: i32) {
  let N = uniforms.n;
  let R0 = uniforms.firstRow;
  METRICS = uniforms.metrics != 0;
  O_P = N * K * C;
  O_ST = O_P + PSIZE;
  O_MT = O_ST + select(0, N * H * 3, uniforms.stats != 0);
  O_SC = O_MT + select(0, N * H * M * 4, METRICS);
  let h = i32(workgroupId.x);
  let lid = i32(localIndex);
  let sc = O_SC + h * SCR;
  // this head's weights, updated in place through the run
  for (var i = lid; i < F * F1; i += NT) { result[O_P + PW1 + h * F * F1 + i] = P[PW1 + h * F * F1 + i]; }
  for (var i = lid; i < F1; i += NT) { result[O_P + PB1 + h * F1 + i] = P[PB1 + h * F1 + i]; }
  if (MLP) {
    for (var i = lid; i < F1 * F; i += NT) { result[O_P + PW2 + h * F1 * F + i] = P[PW2 + h * F1 * F + i]; }
    for (var i = lid; i < F; i += NT) { result[O_P + PB2 + h * F + i] = P[PB2 + h * F + i]; }
  }
  wait();
  for (var m = 0; m < N; m++) {
    let row0 = R0 + m * K;
    // RoPE at each token's position in its mini-batch: x·cos + swapPairs(x)·sin; the reconstruction target
    for (var idx = lid; idx < K * F; idx += NT) {
      let r = idx / F; let i = idx % F;
      let x0 = (row0 + r) * 3 * C + h * F;
      let cs = CST[C_COS + idx]; let sn = CST[C_SIN + idx];
      let q = X[x0 + i] * cs + X[x0 + (i ^ 1)] * sn;
      let k = X[x0 + C + i] * cs + X[x0 + C + (i ^ 1)] * sn;
      result[sc + S_XQ + idx] = q;
      result[sc + S_XK + idx] = k;
      result[sc + S_TGT + idx] = X[x0 + 2 * C + i] - k;
    }
    wait();
    // Z1 = [XK; XQ]·W1 + b1 (XK and XQ are adjacent rows), and A = η ⊙ (XQ·XKᵀ + 1)
    affine(lid, sc + S_XK, 2 * K, F, O_P + PW1 + h * F * F1, O_P + PB1 + h * F1, F1, sc + S_Z1);
    causalWeights(h, lid, row0, sc, sc + S_XQ, sc + S_XK, F);
    wait();
    var before = 0.0;
    if (MLP) {
      for (var idx = lid; idx < K * F1; idx += NT) {
        let z = result[sc + S_Z1 + idx];
        result[sc + S_X2 + idx] = gelu(z);
        result[sc + S_GG + idx] = geluGrad(z);
      }
      wait();
      affine(lid, sc + S_X2, K, F1, O_P + PW2 + h * F1 * F, O_P + PB2 + h * F, F, sc + S_Z2);
      wait();
      if (lid < K) {
        let loss = lnBackward(h, sc + S_Z2 + lid * F, sc + S_TGT + lid * F, sc + S_G2 + lid * F);
        if (lid == K - 1) { red[0] = vec4<f32>(loss); }
      }
      wait();
      before = red[0].x;
      for (var idx = lid; idx < K * F1; idx += NT) {
        let r = idx / F1; let c = idx % F1;
        var g = 0.0;
        for (var d = 0; d < F; d++) { g += result[sc + S_G2 + r * F + d] * result[O_P + PW2 + (h * F1 + c) * F + d]; }
        result[sc + S_G1 + idx] = g * result[sc + S_GG + idx];
      }
    } else {
      if (lid < K) {
        let loss = lnBackward(h, sc + S_Z1 + lid * F1, sc + S_TGT + lid * F, sc + S_G1 + lid * F1);
        if (lid == K - 1) { red[0] = vec4<f32>(loss); }
      }
      wait();
      before = red[0].x;
    }
    wait();
    // Z̄1 = XQ·W1 + b1 − A·∇1, over XQ·W1 + b1 in the lower half of Z1
    subtractCausal(lid, sc + S_A, sc + S_G1, F1, sc + S_Z1 + K * F1);
    let sums1 = workgroupSum(update(h, lid, row0, sc + S_XK, sc + S_G1, O_P + PW1 + h * F * F1, O_P + PB1 + h * F1, PW1 + h * F * F1, F, F1), lid);
    wait();
    var zBar = sc + S_Z1 + K * F1;
    var sums2 = vec4<f32>(0.0);
    if (MLP) {
      for (var idx = lid; idx < K * F1; idx += NT) { result[sc + S_X2B + idx] = gelu(result[zBar + idx]); }
      wait();
      // Z̄2 = X̄2·W2 + b2 − (η ⊙ (X̄2·X2ᵀ + 1))·∇2, with W2 and b2 before their update
      affine(lid, sc + S_X2B, K, F1, O_P + PW2 + h * F1 * F, O_P + PB2 + h * F, F, sc + S_Z2);
      causalWeights(h, lid, row0, sc, sc + S_X2B, sc + S_X2, F1);
      wait();
      subtractCausal(lid, sc + S_A, sc + S_G2, F, sc + S_Z2);
      wait();
      sums2 = workgroupSum(update(h, lid, row0, sc + S_X2, sc + S_G2, O_P + PW2 + h * F1 * F, O_P + PB2 + h * F, PW2 + h * F1 * F, F1, F), lid);
      zBar = sc + S_Z2;
    }
    wait();
    // out = XQ + LN(Z̄), token-major
    if (lid < K) {
      let z0 = zBar + lid * F; // Z̄1 rows of TTT-Linear (F1 = F) or Z̄2 rows of TTT-MLP
      let ms = moments(z0);
      let mean = ms.x; let sd = ms.y;
      let o0 = (m * K + lid) * C + h * F;
      for (var c = 0; c < F; c++) {
        result[o0 + c] = result[sc + S_XQ + lid * F + c] + CST[C_LNW + h * F + c] * ((result[z0 + c] - mean) / sd) + CST[C_LNB + h * F + c];
      }
    }
    if (METRICS && lid == 0) {
      let m0 = O_MT + ((m * H + h) * M) * 4;
      result[m0] = sums1.x; result[m0 + 1] = sums1.y; result[m0 + 2] = sums1.z; result[m0 + 3] = sums1.w;
      if (MLP) { result[m0 + 4] = sums2.x; result[m0 + 5] = sums2.y; result[m0 + 6] = sums2.z; result[m0 + 7] = sums2.w; }
    }
    wait();
    if (uniforms.stats != 0) { // not STATS: barriers need a condition the uniformity analysis knows is uniform
      let atInit = lossAtInit(h, lid, sc);
      let after = lossNow(h, lid, sc);
      if (lid == 0) {
        let s0 = O_ST + (m * H + h) * 3;
        result[s0] = atInit; result[s0 + 1] = before; result[s0 + 2] = after;
      }
      wait();
    }
  }
}
`;
}
