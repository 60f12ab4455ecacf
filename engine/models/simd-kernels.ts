/**
 * WebAssembly SIMD kernels for the loops of CPU backends that are bound by exp(): Mamba's selective scan
 * (exp(Δ·A) for every token, channel and state) and the masked softmax of windowed attention. In plain JavaScript
 * each exp costs several nanoseconds, one at a time; here four lanes share one polynomial. The module is small
 * enough to be written out below, instruction by instruction (no toolchain, nothing to download), and is compiled
 * once per thread. Where WebAssembly SIMD is missing, `simdKernels()` is null and the callers keep their JavaScript
 * loops (mamba-scan.ts, attention-loop.ts), which compute the same math and against which these are tested.
 *
 * exp(x) here, for x ≤ 0: x clamped below at −87.3 (there the true value is < 1.2e−38: what it multiplies vanishes
 * either way), x = k·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 in two parts), exp(r) by its Taylor series to r⁷ in float32, times
 * 2^k built in the exponent bits: ~2e−7 relative, as float32 rounding. The kernels read and write one memory
 * (`memory`, grown on demand), at byte offsets the wrappers hand out (`arena`).
 */

// ---------------------------------------------------------------------------------------------------------
// A few WebAssembly encodings (https://webassembly.github.io/spec/core/binary/)

const i32 = 0x7f, v128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, end: 0x0b, br: 0x0c, brIf: 0x0d,
  get: 0x20, set: 0x21, tee: 0x22,
  f32Load: 0x2a, i32Const: 0x41,
  i32GeS: 0x4e, i32Add: 0x6a, i32Mul: 0x6c, i32Shl: 0x74,
} as const;
/** SIMD opcodes, after the 0xfd prefix. */
const simd = {
  load: 0x00, store: 0x0b, const: 0x0c, i32Splat: 0x11, f32Splat: 0x13,
  i32LtS: 0x39, i32GeS: 0x3f, and: 0x4e, bitselect: 0x52, f32Nearest: 0x6a,
  i32Shl: 0xab, i32Add: 0xae, i32Sub: 0xb1,
  f32Abs: 0xe0, f32Neg: 0xe1, f32Add: 0xe4, f32Sub: 0xe5, f32Mul: 0xe6, f32Div: 0xe7, f32Min: 0xe8, f32Max: 0xe9, truncSat: 0xf8,
} as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(byte & 0x40)) || (n === -1 && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => vec([...s].map((c) => [c.charCodeAt(0)]));

/** Instruction emitters: each returns its bytes. */
const get = (l: number) => [op.get, ...uleb(l)];
const set = (l: number) => [op.set, ...uleb(l)];
const tee = (l: number) => [op.tee, ...uleb(l)];
const int = (n: number) => [op.i32Const, ...sleb(n)];
const s = (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm];
const v4 = (values: readonly number[], type: 'f32' | 'i32') => {
  const bytes = new Uint8Array(16), view = new DataView(bytes.buffer);
  values.forEach((x, i) => (type === 'f32' ? view.setFloat32(i * 4, x, true) : view.setInt32(i * 4, x, true)));
  return s(simd.const, ...bytes);
};
const splatF = (x: number) => v4([x, x, x, x], 'f32');
const splatI = (x: number) => v4([x, x, x, x], 'i32');
/** v128.load / store at the address on the stack (alignment hint 4 bytes: rows of floats need not be 16-aligned). */
const vload = () => s(simd.load, 2, 0);
const vstore = () => s(simd.store, 2, 0);
const fload = () => [op.f32Load, 2, 0];
/** `for (i = from; i < to; i += step) body`: `to` and `step` are instruction sequences (an i32 each). */
function forLoop(i: number, from: number[], to: number[], step: number[], body: number[]): number[] {
  return [
    ...from, ...set(i),
    op.block, 0x40, op.loop, 0x40,
    ...get(i), ...to, op.i32GeS, op.brIf, 1,
    ...body,
    ...get(i), ...step, op.i32Add, ...set(i), op.br, 0,
    op.end, op.end,
  ];
}

/** The constants of `exp4`, each splat to four lanes, held in v128 locals from `c` on (`expConstants` sets them). */
const expValues = [-87.3, Math.LOG2E, 0.693359375, -2.12194440e-4, 1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1];
const expLocals = expValues.length + 1; // and the integer 127

/** Sets the locals c … c + expLocals − 1 to exp4's constants, once, before the loops (not rebuilt per use). */
function expConstants(c: number): number[] {
  return [...expValues.flatMap((v, i) => [...splatF(v), ...set(c + i)]), ...splatI(127), ...set(c + expValues.length)];
}

/**
 * exp of the f32x4 on the stack, leaving it there; `x`, `k` are v128 scratch locals, `c` the first of the constant
 * locals. Arguments are clamped below at −87.3 only: every caller passes x ≤ 0 or masks the lane away.
 */
function exp4(x: number, k: number, c: number): number[] {
  const [floor, log2e, ln2Hi, ln2Lo] = [c, c + 1, c + 2, c + 3], taylor = [c + 4, c + 5, c + 6, c + 7, c + 8, c + 9, c + 10, c + 10];
  return [
    ...get(floor), ...s(simd.f32Max), ...tee(x),
    ...get(log2e), ...s(simd.f32Mul), ...s(simd.f32Nearest), ...set(k),
    // r = x − k·ln2_hi − k·ln2_lo (ln2_hi has few bits, so k·ln2_hi is exact)
    ...get(x), ...get(k), ...get(ln2Hi), ...s(simd.f32Mul), ...s(simd.f32Sub),
    ...get(k), ...get(ln2Lo), ...s(simd.f32Mul), ...s(simd.f32Sub), ...set(x),
    // Horner: ((r/5040 + 1/720) r + …) r + 1
    ...get(taylor[0]),
    ...taylor.slice(1).flatMap((t) => [...get(x), ...s(simd.f32Mul), ...get(t), ...s(simd.f32Add)]),
    // × 2^k: (k + 127) << 23 as float bits
    ...get(k), ...s(simd.truncSat), ...get(c + expValues.length), ...s(simd.i32Add), ...int(23), ...s(simd.i32Shl),
    ...s(simd.f32Mul),
  ];
}

// ---------------------------------------------------------------------------------------------------------
// The kernels

/**
 * scan(T, Di, N, u, delta, At, BC, strideBC, D, ht, y): the selective scan (mamba-scan.ts `selectiveScanLoop`)
 * four channels at a time, for Di a multiple of 4. Byte offsets: u, delta, y [T, Di]; At, ht [N, Di] (A and h
 * transposed, so that four channels of one state are adjacent); BC rows of `strideBC` floats holding B [N] then
 * C [N]; D [Di]. ht is updated in place. y sums D u + Σ_n h C in the loop's order.
 */
function scanFunction(): { params: number; locals: [number, number][]; body: number[] } {
  const [T, Di, N, u, delta, At, BC, strideBC, D, ht, y] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [t, d, n, off, bc, row, rowBytes] = [11, 12, 13, 14, 15, 16, 17]; // i32
  const [vdt, vdu, acc, hn, ex, ek, c] = [18, 19, 20, 21, 22, 23, 24]; // v128 (c on: exp's constants)
  const body = [
    ...expConstants(c),
    ...get(Di), ...int(2), op.i32Shl, ...set(rowBytes),
    ...forLoop(t, int(0), get(T), int(1), [
      ...get(t), ...get(strideBC), op.i32Mul, ...int(2), op.i32Shl, ...get(BC), op.i32Add, ...set(bc),
      ...forLoop(d, int(0), get(rowBytes), int(16), [
        ...get(t), ...get(rowBytes), op.i32Mul, ...get(d), op.i32Add, ...set(off),
        ...get(delta), ...get(off), op.i32Add, ...vload(), ...tee(vdt),
        ...get(u), ...get(off), op.i32Add, ...vload(), ...tee(vdu), ...s(simd.f32Mul), ...set(vdu), // Δ u (vdu held u a moment)
        // acc = D u
        ...get(D), ...get(d), op.i32Add, ...vload(), ...get(u), ...get(off), op.i32Add, ...vload(), ...s(simd.f32Mul), ...set(acc),
        ...forLoop(n, int(0), get(N), int(1), [
          ...get(n), ...get(rowBytes), op.i32Mul, ...get(d), op.i32Add, ...set(row), // byte offset of [n, d…d+3]
          // a = exp(Δ_t A[n, d…d+3])
          ...get(vdt), ...get(At), ...get(row), op.i32Add, ...vload(), ...s(simd.f32Mul), ...exp4(ex, ek, c),
          // h = a ⊙ h + Δ_t u_t B_t[n]
          ...get(ht), ...get(row), op.i32Add, ...vload(), ...s(simd.f32Mul),
          ...get(vdu), ...get(bc), ...get(n), ...int(2), op.i32Shl, op.i32Add, ...fload(), ...s(simd.f32Splat), ...s(simd.f32Mul), ...s(simd.f32Add), ...set(hn),
          ...get(ht), ...get(row), op.i32Add, ...get(hn), ...vstore(),
          // acc += h C_t[n]
          ...get(acc), ...get(hn), ...get(bc), ...get(N), ...get(n), op.i32Add, ...int(2), op.i32Shl, op.i32Add, ...fload(), ...s(simd.f32Splat),
          ...s(simd.f32Mul), ...s(simd.f32Add), ...set(acc),
        ]),
        ...get(y), ...get(off), op.i32Add, ...get(acc), ...vstore(),
      ]),
    ]),
  ];
  return { params: 11, locals: [[7, i32], [6 + expLocals, v128]], body };
}

/**
 * softmax(n, stride, first, W, S, P, sums): for each query lane i < stride of a block, keys j < n of which it sees
 * those with 0 ≤ (first + i) − j < W (`first + i`: the query's own key), scores S [n, stride] (keys-major) →
 * unnormalised weights P [n, stride] = exp(S − max over the keys it sees), 0 elsewhere, and their sums [stride].
 * stride a multiple of 4.
 */
function softmaxFunction(): { params: number; locals: [number, number][]; body: number[] } {
  const [n, stride, first, W, S, P, sums] = [0, 1, 2, 3, 4, 5, 6];
  const [i, j, at] = [7, 8, 9]; // i32: byte offset of the lane group, key, byte offset of (j, i)
  const [query, max, sum, valid, e, ex, ek, wide, c] = [10, 11, 12, 13, 14, 15, 16, 17, 18]; // v128 (c on: exp's constants)
  const validMask = [
    // diff = query − j; valid = diff ≥ 0 & diff < W
    ...get(query), ...get(j), ...s(simd.i32Splat), ...s(simd.i32Sub), ...tee(valid),
    ...splatI(0), ...s(simd.i32GeS), ...get(valid), ...get(wide), ...s(simd.i32LtS), ...s(simd.and), ...set(valid),
  ];
  const address = [...get(j), ...get(stride), op.i32Mul, ...int(2), op.i32Shl, ...get(i), op.i32Add, ...set(at)];
  const body = [
    ...expConstants(c),
    ...get(W), ...s(simd.i32Splat), ...set(wide),
    ...forLoop(i, int(0), [...get(stride), ...int(2), op.i32Shl], int(16), [
      // the lanes' own keys: first + i/4 + (0, 1, 2, 3)
      ...get(first), ...get(i), ...int(2), 0x76 /* i32.shr_u */, op.i32Add, ...s(simd.i32Splat), ...v4([0, 1, 2, 3], 'i32'), ...s(simd.i32Add), ...set(query),
      ...splatF(-Infinity), ...set(max),
      ...forLoop(j, int(0), get(n), int(1), [
        ...validMask, ...address,
        ...get(max), ...get(S), ...get(at), op.i32Add, ...vload(), ...splatF(-Infinity), ...get(valid), ...s(simd.bitselect), ...s(simd.f32Max), ...set(max),
      ]),
      ...splatF(0), ...set(sum),
      ...forLoop(j, int(0), get(n), int(1), [
        ...validMask, ...address,
        ...get(S), ...get(at), op.i32Add, ...vload(), ...get(max), ...s(simd.f32Sub), ...exp4(ex, ek, c), ...get(valid), ...s(simd.and), ...set(e),
        ...get(P), ...get(at), op.i32Add, ...get(e), ...vstore(),
        ...get(sum), ...get(e), ...s(simd.f32Add), ...set(sum),
      ]),
      ...get(sums), ...get(i), op.i32Add, ...get(sum), ...vstore(),
    ]),
  ];
  return { params: 7, locals: [[3, i32], [9 + expLocals, v128]], body };
}

/**
 * softplus(rows, cols, Z, bias, out): out = softplus(Z + bias) = max(v, 0) + log1p(exp(−|v|)) for Z, out
 * [rows, cols] and bias [cols], cols a multiple of 4 (torch's softplus, whose threshold 20 changes < 3e−9).
 * log1p(e) for e ∈ (0, 1] as 2·atanh(e / (2 + e)) by its series to the 13th power (≤ 4e−8 relative).
 */
function softplusFunction(): { params: number; locals: [number, number][]; body: number[] } {
  const [rows, cols, Z, bias, out] = [0, 1, 2, 3, 4];
  const [r, col, at] = [5, 6, 7]; // i32: row, byte offset in the row, byte offset of the row
  const [v, e, q, q2, ex, ek, c] = [8, 9, 10, 11, 12, 13, 14]; // v128 (c on: exp's constants)
  const series = [1 / 13, 1 / 11, 1 / 9, 1 / 7, 1 / 5, 1 / 3, 1];
  const body = [
    ...expConstants(c),
    ...forLoop(r, int(0), get(rows), int(1), [
      ...get(r), ...get(cols), op.i32Mul, ...int(2), op.i32Shl, ...set(at),
      ...forLoop(col, int(0), [...get(cols), ...int(2), op.i32Shl], int(16), [
        ...get(Z), ...get(at), op.i32Add, ...get(col), op.i32Add, ...vload(), ...get(bias), ...get(col), op.i32Add, ...vload(), ...s(simd.f32Add), ...tee(v),
        ...s(simd.f32Abs), ...s(simd.f32Neg), ...exp4(ex, ek, c), ...tee(e),
        ...get(e), ...splatF(2), ...s(simd.f32Add), ...s(simd.f32Div), ...tee(q), ...get(q), ...s(simd.f32Mul), ...set(q2),
        // 2q·(1 + q²/3 + q⁴/5 + …), Horner in q²
        ...splatF(series[0]),
        ...series.slice(1).flatMap((k) => [...get(q2), ...s(simd.f32Mul), ...splatF(k), ...s(simd.f32Add)]),
        ...get(q), ...s(simd.f32Mul), ...splatF(2), ...s(simd.f32Mul),
        ...get(v), ...splatF(0), ...s(simd.f32Max), ...s(simd.f32Add), ...set(v),
        ...get(out), ...get(at), op.i32Add, ...get(col), op.i32Add, ...get(v), ...vstore(),
      ]),
    ]),
  ];
  return { params: 5, locals: [[3, i32], [7 + expLocals, v128]], body };
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const functions = [scanFunction(), softmaxFunction(), softplusFunction()];
  const types = functions.map((f) => [0x60, ...vec(new Array(f.params).fill([i32])), 0]);
  const imports = [[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]];
  const exports = [[...name('scan'), 0x00, 0], [...name('softmax'), 0x00, 1], [...name('softplus'), 0x00, 2]];
  const code = functions.map((f) => {
    const body = [...vec(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.body, op.end];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)), ...section(2, vec(imports)), ...section(3, vec(functions.map((_, k) => uleb(k)))),
    ...section(7, vec(exports)), ...section(10, vec(code)),
  ]);
}

// ---------------------------------------------------------------------------------------------------------
// The JavaScript side

type Fn = (...args: number[]) => void;

/** The compiled kernels and the memory they work in. */
export interface SimdKernels {
  /** Float32Array views of fresh regions of the memory, one per size, valid until the next `arena` call. */
  arena(...sizes: number[]): Float32Array[];
  /** Byte offset of a view `arena` handed out. */
  offset(view: Float32Array): number;
  readonly scan: Fn;
  readonly softmax: Fn;
  readonly softplus: Fn;
}

let kernels: SimdKernels | null | undefined;
let enabled = true;

/** Turns the kernels off and on again (for comparing them with the JavaScript loops in one process). */
export function useSimdKernels(on: boolean): void {
  enabled = on;
}

/** The parts of the WebAssembly JavaScript API used here (the engine's libs declare its types, not its values). */
interface WebAssemblyApi {
  validate(bytes: Uint8Array<ArrayBuffer>): boolean;
  Module: new (bytes: Uint8Array<ArrayBuffer>) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer; grow(pages: number): number };
}

function compile(): SimdKernels | null {
  const bytes = moduleBytes();
  const api = (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;
  if (!api || !api.validate(bytes)) return null;
  const memory = new api.Memory({ initial: 1 });
  const instance = new api.Instance(new api.Module(bytes), { env: { memory } });
  const exports = instance.exports as unknown as { scan: Fn; softmax: Fn; softplus: Fn };
  return {
    arena(...sizes: number[]): Float32Array[] {
      const bytes = sizes.reduce((total, size) => total + Math.ceil(size / 4) * 16, 0);
      const have = memory.buffer.byteLength;
      if (bytes > have) memory.grow(Math.ceil((bytes - have) / 65536));
      let at = 0;
      return sizes.map((size) => {
        const view = new Float32Array(memory.buffer, at, size);
        at += Math.ceil(size / 4) * 16;
        return view;
      });
    },
    offset: (view) => view.byteOffset,
    scan: exports.scan,
    softmax: exports.softmax,
    softplus: exports.softplus,
  };
}

/** The kernels, compiled on first use in this thread; null where WebAssembly SIMD is not available. */
export function simdKernels(): SimdKernels | null {
  if (kernels === undefined) kernels = compile();
  return enabled ? kernels : null;
}
