/**
 * A stage of Llama decoder layers in three WGSL dispatches per layer and chunk, for the webgpu backend: the math of
 * transformer.ts `forwardStage` (ref: modeling_llama.py LlamaDecoderLayer.forward) with every step between two
 * layers' key/value caches fused, tested against it (transformer.test.ts on webgpu: the parity fixtures, any
 * chunking, windows shorter and longer than a chunk, grouped-query attention, pipeline stages).
 *
 * Why: op by op a layer is some 40 small TF.js ops (norms, RoPE, splits, transposes, concatenations, the SwiGLU's
 * pieces), each a dispatch of tens of microseconds on WebGPU; fusing attention alone leaves them. A query needs the
 * keys and values of the tokens before it, so a layer cannot be one dispatch; it is three:
 *   K  rmsNorm(x)·W_k, RoPE, after the cached keys: the layer's next key cache
 *   V  rmsNorm(x)·W_v, after the cached values: the next value cache
 *   D  rmsNorm, q = ·W_q, RoPE, causal (windowed) attention over the old cache and the new rows with an online
 *      softmax, o_proj, residual, rmsNorm, SwiGLU MLP, residual; after the stage's last layer also the final norm
 *      and the head, so the logits come out of it.
 * Each workgroup takes TB consecutive tokens, so each weight read serves TB of them, and in the attention a thread
 * walks one head's keys once for up to 4 neighbouring queries. The first layer of the first stage reads the
 * embedding table by token id itself. Not differentiable: training keeps the tensor form. Where TB tokens' arrays
 * do not fit the device's workgroup memory (on a 32 KiB device, hidden sizes past ~2,700), the model keeps the
 * attention-only kernel of attention-webgpu.ts.
 *
 * Glossary (transformer.ts): T tokens in the chunk, C hidden size, I intermediate size, H query heads, G key/value
 * heads (R = H/G), D head size, V vocabulary, P cached keys, S = P + T, W the window (0: every earlier key),
 * L rows of the next cache that the K and V kernels write, TB tokens per workgroup.
 */
import * as tf from '@tensorflow/tfjs-core';
import { runFusedProgram } from '../core/webgpu-program.js';
import type { LlamaLayerWeights } from './transformer.js';

/** Threads per workgroup. */
const threads = 64;

/** Tokens per workgroup at most: each weight read serves this many tokens. */
const maxTokensPerGroup = 8;

export interface LlamaShape {
  readonly C: number;
  readonly I: number;
  readonly H: number;
  readonly G: number;
  readonly D: number;
  readonly V: number;
  readonly eps: number;
}

/**
 * Tokens per workgroup whose arrays fit the device's workgroup memory (`bytes`): per token the residual row, its
 * norm, q (then the attention's output) and a tile of hidden units; 0 when not even one token's do.
 */
export function llamaTokensPerGroup(s: LlamaShape, bytes: number): number {
  const perToken = 2 * s.C + s.H * s.D + threads + 1;
  return Math.min(maxTokensPerGroup, Math.floor(bytes / 4 / perToken));
}

/**
 * A layer's weights flat in one tensor, in the kernels' order (one storage binding instead of seven: WebGPU
 * guarantees 8 per shader): input norm, W_qkv, W_o, post-attention norm, W_gate, W_up, W_down, and for the stage's
 * last layer when it holds the head, the final norm and the head [C, V].
 */
export function packLlamaLayer(lw: LlamaLayerWeights, head?: { norm: tf.Tensor1D; weight: tf.Tensor2D }): tf.Tensor1D {
  return tf.tidy(() => {
    const parts = [lw.inputNorm, lw.qkv, lw.oProj, lw.postAttentionNorm, lw.mlpGate, lw.mlpUp, lw.mlpDown, ...(head ? [head.norm, head.weight] : [])];
    return tf.concat(parts.map((t) => tf.reshape(t, [-1]))) as tf.Tensor1D;
  });
}

/** Offsets of the parts of a packed layer (`packLlamaLayer`). */
function layerOffsets(s: LlamaShape): Record<'n1' | 'qkv' | 'o' | 'n2' | 'gate' | 'up' | 'down' | 'fn' | 'head', number> {
  const { C, I, H, G, D } = s;
  const qkv = C, o = qkv + C * (H + 2 * G) * D, n2 = o + H * D * C, gate = n2 + C, up = gate + C * I, down = up + C * I, fn = down + I * C;
  return { n1: 0, qkv, o, n2, gate, up, down, fn, head: fn + C };
}

/**
 * Per-chunk numbers the kernels read from one small upload (no dispatch): RoPE's cos and sin [T, D/2] at positions
 * `position` … `position` + T − 1 (float32 angles, as HF's inv_freq ⊗ positions) and the token ids as floats.
 */
export function llamaChunkAux(invFreq: Float32Array, position: number, T: number, ids: Int32Array | null): tf.Tensor1D {
  const half = invFreq.length;
  const aux = new Float32Array(2 * T * half + T);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround((position + t) * invFreq[i]);
      aux[t * half + i] = Math.cos(angle);
      aux[(T + t) * half + i] = Math.sin(angle);
    }
  }
  if (ids) aux.set(ids, 2 * T * half);
  return tf.tensor1d(aux);
}

export interface LlamaLayerRun {
  /** [T, C] the stage's input, or the embedding table [V, C] when `embed` (the ids are in `aux`). */
  readonly x: tf.Tensor2D;
  readonly embed: boolean;
  readonly aux: tf.Tensor1D;
  readonly layer: tf.Tensor1D;
  /** The stage's last layer holds the head: the kernel returns logits [T, V]. */
  readonly head: boolean;
  /** The cache before the chunk: [G, P, D] each. */
  readonly k: tf.Tensor3D;
  readonly v: tf.Tensor3D;
  readonly T: number;
  readonly window: number | null;
  /** Tokens per workgroup (`llamaTokensPerGroup`). */
  readonly tokensPerGroup: number;
  /** Bound where a cache is empty (WebGPU cannot bind an empty buffer); rank 3 like a cache, so the same compiled kernel serves. */
  readonly placeholder: tf.Tensor3D;
}

/** One layer: its output ([T, C], or logits [T, V]) and its next cache (the last W − 1 keys and values, or all). */
export function llamaLayerFused(s: LlamaShape, run: LlamaLayerRun): { y: tf.Tensor2D; k: tf.Tensor3D; v: tf.Tensor3D } {
  const { G, D } = s, { T, window, tokensPerGroup: TB } = run;
  const P = run.k.shape[1], S = P + T;
  const keep = window === null ? S : Math.min(S, window - 1);
  // the next cache holds the chunk's new rows unless the window is shorter than the chunk; then the kernels write
  // all S rows for the attention and the cache is cut from them
  const L = keep >= T ? keep : S;
  const cached = (t: tf.Tensor3D) => (P === 0 ? run.placeholder : t);
  const groups = Math.ceil(T / TB);
  // embedding and head are uniforms, not constants: one compiled kernel of each kind per layer shape (compiling
  // takes seconds on a software adapter)
  const uniforms = { tokens: T, keys: S, rows: L, embed: run.embed ? 1 : 0, head: run.head ? 1 : 0, window: window ?? 0 };
  const rows = (kind: 'k' | 'v') => tf.reshape(runFusedProgram({
    key: `llama-cache:${shapeKey(s, TB)}`,
    inputs: ['X', 'AUX', 'LW', 'CACHE'],
    uniforms: { ...uniforms, kind: kind === 'k' ? 0 : 1 },
    code: cacheSource(s, TB),
    workgroups: groups,
    threads,
    outputSize: G * L * D,
  }, [run.x, run.aux, run.layer, cached(kind === 'k' ? run.k : run.v)]), [G, L, D]) as tf.Tensor3D;
  const k = rows('k'), v = rows('v');
  const out = runFusedProgram({
    key: `llama-decoder:${shapeKey(s, TB)}`,
    inputs: ['X', 'AUX', 'LW', 'CK', 'CV', 'NK', 'NV'],
    uniforms,
    code: decoderSource(s, TB),
    workgroups: groups,
    threads,
    outputSize: T * (run.head ? s.V : s.C),
  }, [run.x, run.aux, run.layer, cached(run.k), cached(run.v), k, v]);
  const y = tf.reshape(out, [T, run.head ? s.V : s.C]) as tf.Tensor2D;
  if (L === keep) return { y, k, v };
  const cut = (t: tf.Tensor3D) => tf.slice(t, [0, S - keep, 0], [G, keep, D]);
  return { y, k: cut(k), v: cut(v) };
}

const shapeKey = (s: LlamaShape, TB: number) => `C${s.C}:I${s.I}:H${s.H}:G${s.G}:D${s.D}:V${s.V}:eps${s.eps}:TB${TB}`;

/**
 * What both kernels share: shapes, offsets, how a token's input row is read, RoPE's tables, and the rmsNorm of
 * the workgroup's TB rows of `xr` into `xn` (blocks.ts rmsNorm: x·rsqrt(mean(x²) + eps)·weight).
 */
function commonSource(s: LlamaShape, TB: number): string {
  const o = layerOffsets(s);
  return `
const C = ${s.C}; const I = ${s.I}; const H = ${s.H}; const G = ${s.G}; const R = ${s.H / s.G}; const D = ${s.D}; const HALF = ${s.D / 2};
const V = ${s.V}; const HD = ${s.H * s.D}; const QKV = ${(s.H + 2 * s.G) * s.D}; const EPS = ${s.eps.toExponential()};
const NT = ${threads}; const TB = ${TB};
const O_N1 = ${o.n1}; const O_QKV = ${o.qkv}; const O_O = ${o.o}; const O_N2 = ${o.n2}; const O_GATE = ${o.gate}; const O_UP = ${o.up};
const O_DOWN = ${o.down}; const O_FN = ${o.fn}; const O_HEAD = ${o.head};

var<workgroup> xr: array<f32, ${TB * s.C}>; // the workgroup's tokens' rows of the residual stream
var<workgroup> xn: array<f32, ${TB * s.C}>; // their norms
var<workgroup> scl: array<f32, TB>;

// the chunk's token t, column c: the stage's input, or the embedding of its token id
fn xAt(t: i32, c: i32) -> f32 {
  if (uniforms.embed != 0) { return X[i32(AUX[2 * uniforms.tokens * HALF + t]) * C + c]; }
  return X[t * C + c];
}
fn ropeCos(t: i32, i: i32) -> f32 { return AUX[t * HALF + i]; }
fn ropeSin(t: i32, i: i32) -> f32 { return AUX[(uniforms.tokens + t) * HALF + i]; }

// xr rows of tokens t0 … t0+TB−1 (zeros past the chunk)
fn loadRows(t0: i32, lid: i32) {
  for (var e = lid; e < TB * C; e += NT) {
    let b = e / C;
    var x = 0.0;
    if (t0 + b < uniforms.tokens) { x = xAt(t0 + b, e % C); }
    xr[e] = x;
  }
  workgroupBarrier();
}

fn normRows(w: i32, lid: i32) {
  if (lid < TB) {
    var ss = 0.0;
    for (var c = 0; c < C; c++) { ss += xr[lid * C + c] * xr[lid * C + c]; }
    scl[lid] = inverseSqrt(ss / f32(C) + EPS);
  }
  workgroupBarrier();
  for (var e = lid; e < TB * C; e += NT) { xn[e] = (xr[e] * scl[e / C]) * LW[w + e % C]; }
  workgroupBarrier();
}

// columns a and b = a + HALF of xn·W_qkv for the TB tokens, rotated by RoPE when asked (rotate_half pairs)
fn projectPair(a: i32, i: i32, t0: i32, rope: bool, ya: ptr<function, array<f32, TB>>, yb: ptr<function, array<f32, TB>>) {
  for (var b = 0; b < TB; b++) { (*ya)[b] = 0.0; (*yb)[b] = 0.0; }
  for (var c = 0; c < C; c++) {
    let wa = LW[O_QKV + c * QKV + a];
    let wb = LW[O_QKV + c * QKV + a + HALF];
    for (var b = 0; b < TB; b++) {
      (*ya)[b] += xn[b * C + c] * wa;
      (*yb)[b] += xn[b * C + c] * wb;
    }
  }
  if (rope) {
    for (var b = 0; b < TB; b++) {
      let t = min(t0 + b, uniforms.tokens - 1);
      let co = ropeCos(t, i); let si = ropeSin(t, i);
      let ra = (*ya)[b] * co - (*yb)[b] * si;
      let rb = (*yb)[b] * co + (*ya)[b] * si;
      (*ya)[b] = ra; (*yb)[b] = rb;
    }
  }
}
`;
}

/**
 * K or V (uniforms.kind 0 or 1): the rows of the next cache. Cached rows are copied by all threads; a workgroup
 * projects its TB tokens' new rows, each thread taking pairs of columns (RoPE pairs feature i with i + D/2).
 */
function cacheSource(s: LlamaShape, TB: number): string {
  return `${commonSource(s, TB)}
fn main(index: i32) {
  let T = uniforms.tokens; let S = uniforms.keys; let L = uniforms.rows;
  let P = S - T;
  let lid = i32(localIndex);
  let t0 = i32(workgroupId.x) * TB;
  let kind = uniforms.kind;
  // rows 0 … L−T−1 come from the cache: key j = S − L + r
  let copies = (L - T) * G * D;
  for (var e = i32(workgroupId.x) * NT + lid; e < copies; e += i32(numWorkgroups.x) * NT) {
    let g = e / ((L - T) * D); let r = (e / D) % (L - T); let d = e % D;
    result[(g * L + r) * D + d] = CACHE[(g * P + S - L + r) * D + d];
  }
  loadRows(t0, lid);
  normRows(O_N1, lid);
  let col0 = HD + kind * G * D;
  for (var p = lid; p < G * HALF; p += NT) {
    let g = p / HALF; let i = p % HALF;
    var ya: array<f32, TB>; var yb: array<f32, TB>;
    projectPair(col0 + g * D + i, i, t0, kind == 0, &ya, &yb);
    for (var b = 0; b < TB; b++) {
      if (t0 + b < T) {
        let row = (g * L + L - T + t0 + b) * D;
        result[row + i] = ya[b];
        result[row + i + HALF] = yb[b];
      }
    }
  }
}
`;
}

/** The rest of a layer for TB tokens per workgroup (see the file's comment). */
function decoderSource(s: LlamaShape, TB: number): string {
  const perThread = (n: number) => Math.ceil(n / threads);
  // a thread's keys serve this many queries of one head: each key and value row read once for all of them
  const queriesPerThread = Math.min(4, TB);
  return `${commonSource(s, TB)}
const CPT = ${perThread(s.C)}; const QB = ${queriesPerThread}; const NB = ${Math.ceil(TB / queriesPerThread)};

var<workgroup> qa: array<f32, ${TB * s.H * s.D}>;  // q after RoPE, then the attention's output
var<workgroup> hid: array<f32, ${TB * threads}>; // a tile of the MLP's hidden units

// where key index j (0 … S−1) of head g starts: in the new rows if they hold it, else in the old cache
fn newRow(g: i32, j: i32) -> i32 { return (g * uniforms.rows + j - uniforms.keys + uniforms.rows) * D; }
fn oldRow(g: i32, j: i32) -> i32 { return (g * (uniforms.keys - uniforms.tokens) + j) * D; }

// softmax(q·Kᵀ/√D)·V for the queries of QB neighbouring tokens b0 … b0+QB−1 of the workgroup (those inside the
// chunk) and head h, over their keys: one thread walks the keys once for all of them, each query with its running
// maximum and sum (flash attention's online softmax), reading q from and writing the output to qa
fn attend(t0: i32, b0: i32, h: i32) {
  let S = uniforms.keys; let W = uniforms.window;
  let n = min(min(QB, TB - b0), uniforms.tokens - t0 - b0); // queries of the workgroup inside the chunk
  let pos0 = S - uniforms.tokens + t0 + b0; // key index of the first query's token
  var first = 0;
  if (W > 0) { first = max(0, pos0 - W + 1); }
  let g = h / R; // repeat_kv
  let scale = 1.0 / sqrt(f32(D));
  var q: array<f32, QB * D>;
  var acc: array<f32, QB * D>;
  var m: array<f32, QB>;
  var l: array<f32, QB>;
  for (var i = 0; i < QB; i++) {
    m[i] = -3.0e38; l[i] = 0.0;
    for (var d = 0; d < D; d++) { q[i * D + d] = qa[(b0 + min(i, n - 1)) * HD + h * D + d]; acc[i * D + d] = 0.0; }
  }
  for (var j = first; j < pos0 + n; j++) {
    let fresh = j >= S - uniforms.rows;
    var k0 = oldRow(g, j);
    if (fresh) { k0 = newRow(g, j); }
    var s: array<f32, QB>;
    for (var i = 0; i < QB; i++) { s[i] = 0.0; }
    for (var d = 0; d < D; d++) {
      var kd = 0.0;
      if (fresh) { kd = NK[k0 + d]; } else { kd = CK[k0 + d]; }
      for (var i = 0; i < QB; i++) { s[i] += q[i * D + d] * kd; }
    }
    // query i sees keys pos0 + i − W + 1 … pos0 + i
    var p: array<f32, QB>;
    var carry: array<f32, QB>;
    for (var i = 0; i < QB; i++) {
      let seen = j <= pos0 + i && (W == 0 || j > pos0 + i - W);
      let si = select(-3.0e38, s[i] * scale, seen);
      let mNew = max(m[i], si);
      carry[i] = exp(m[i] - mNew);
      p[i] = select(0.0, exp(si - mNew), seen);
      l[i] = l[i] * carry[i] + p[i];
      m[i] = mNew;
    }
    for (var d = 0; d < D; d++) {
      var vd = 0.0;
      if (fresh) { vd = NV[k0 + d]; } else { vd = CV[k0 + d]; }
      for (var i = 0; i < QB; i++) { acc[i * D + d] = acc[i * D + d] * carry[i] + p[i] * vd; }
    }
  }
  for (var i = 0; i < n; i++) {
    for (var d = 0; d < D; d++) { qa[(b0 + i) * HD + h * D + d] = acc[i * D + d] / l[i]; }
  }
}

fn main(index: i32) {
  let T = uniforms.tokens;
  let lid = i32(localIndex);
  let t0 = i32(workgroupId.x) * TB;

  loadRows(t0, lid);
  normRows(O_N1, lid);

  // q = xn·W_q with RoPE, a pair of features per thread
  for (var p = lid; p < H * HALF; p += NT) {
    let h = p / HALF; let i = p % HALF;
    var ya: array<f32, TB>; var yb: array<f32, TB>;
    projectPair(h * D + i, i, t0, true, &ya, &yb);
    for (var b = 0; b < TB; b++) {
      qa[b * HD + h * D + i] = ya[b];
      qa[b * HD + h * D + i + HALF] = yb[b];
    }
  }
  workgroupBarrier();

  // neighbouring threads take neighbouring tokens of one head: they read the same keys, a row apart
  for (var p = lid; p < NB * H; p += NT) {
    let h = p / NB; let b = (p % NB) * QB;
    if (t0 + b < T) { attend(t0, b, h); }
  }
  workgroupBarrier();

  // h + o_proj(attention)
  for (var c = lid; c < C; c += NT) {
    var y: array<f32, TB>;
    for (var b = 0; b < TB; b++) { y[b] = 0.0; }
    for (var e = 0; e < HD; e++) {
      let w = LW[O_O + e * C + c];
      for (var b = 0; b < TB; b++) { y[b] += qa[b * HD + e] * w; }
    }
    for (var b = 0; b < TB; b++) { xr[b * C + c] += y[b]; }
  }
  workgroupBarrier();
  normRows(O_N2, lid);

  // + down(silu(xn·W_gate) ⊙ xn·W_up), NT hidden units at a time
  var down: array<f32, ${perThread(s.C) * TB}>;
  for (var e = 0; e < CPT * TB; e++) { down[e] = 0.0; }
  for (var i0 = 0; i0 < I; i0 += NT) {
    // two hidden units per thread (lid and lid + NT/2 of the tile), so each xn value loaded serves four products
    let u0 = min(i0 + lid % (NT / 2), I - 1);
    let u1 = min(i0 + lid % (NT / 2) + NT / 2, I - 1);
    var g0: array<f32, TB>; var v0: array<f32, TB>; var g1: array<f32, TB>; var v1: array<f32, TB>;
    for (var b = 0; b < TB; b++) { g0[b] = 0.0; v0[b] = 0.0; g1[b] = 0.0; v1[b] = 0.0; }
    if (lid < NT / 2) {
      for (var c = 0; c < C; c++) {
        let wg0 = LW[O_GATE + c * I + u0]; let wu0 = LW[O_UP + c * I + u0];
        let wg1 = LW[O_GATE + c * I + u1]; let wu1 = LW[O_UP + c * I + u1];
        for (var b = 0; b < TB; b++) {
          let x = xn[b * C + c];
          g0[b] += x * wg0; v0[b] += x * wu0;
          g1[b] += x * wg1; v1[b] += x * wu1;
        }
      }
      for (var b = 0; b < TB; b++) {
        hid[b * NT + lid] = (g0[b] / (1.0 + exp(-g0[b]))) * v0[b];
        hid[b * NT + lid + NT / 2] = (g1[b] / (1.0 + exp(-g1[b]))) * v1[b];
      }
    }
    workgroupBarrier();
    let count = min(NT, I - i0);
    for (var k = 0; k < count; k++) {
      var hb: array<f32, TB>;
      for (var b = 0; b < TB; b++) { hb[b] = hid[b * NT + k]; }
      for (var e = 0; e < CPT; e++) {
        let c = min(lid + e * NT, C - 1); // columns past C compute a copy that is not kept
        let w = LW[O_DOWN + (i0 + k) * C + c];
        for (var b = 0; b < TB; b++) { down[e * TB + b] += hb[b] * w; }
      }
    }
    workgroupBarrier();
  }
  for (var e = 0; e < CPT; e++) {
    let c = lid + e * NT;
    if (c < C) {
      for (var b = 0; b < TB; b++) { xr[b * C + c] += down[e * TB + b]; }
    }
  }
  workgroupBarrier();

  if (uniforms.head == 0) {
    for (var e = lid; e < TB * C; e += NT) {
      if (t0 + e / C < T) { result[t0 * C + e] = xr[e]; }
    }
  } else {
    normRows(O_FN, lid);
    for (var v = lid; v < V; v += NT) {
      var y: array<f32, TB>;
      for (var b = 0; b < TB; b++) { y[b] = 0.0; }
      for (var c = 0; c < C; c++) {
        let w = LW[O_HEAD + c * V + v];
        for (var b = 0; b < TB; b++) { y[b] += xn[b * C + c] * w; }
      }
      for (var b = 0; b < TB; b++) {
        if (t0 + b < T) { result[(t0 + b) * V + v] = y[b]; }
      }
    }
  }
}
`;
}
