import { describe, expect, it } from 'vitest';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from './float16.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';

const sample = [
  { name: 'b.weight', shape: [2, 3], data: Float32Array.from([0, 1, -2.5, 3.25, 1e-3, -65504]) },
  { name: 'a.bias', shape: [3], data: Float32Array.from([0.1, -0.2, 7]) },
];

describe('safetensors', () => {
  it('round-trips F32 exactly, with names sorted and a metadata header', () => {
    const bytes = writeSafetensors(sample, 'F32');
    const { header, tensors } = readSafetensors(bytes, 'sample.safetensors');
    expect([...header.entries.keys()]).toEqual(['a.bias', 'b.weight']);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(tensors.get('b.weight')!.shape).toEqual([2, 3]);
    expect(Array.from(tensors.get('b.weight')!.data)).toEqual(Array.from(sample[0].data));
    expect((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8).toBe(0);
  });

  it.each(['F16', 'BF16'] as const)('round-trips %s within its precision', (dtype) => {
    const { tensors, header } = readSafetensors(writeSafetensors(sample, dtype), 'x');
    expect(header.entries.get('a.bias')!.dtype).toBe(dtype);
    const tolerance = dtype === 'F16' ? 1e-3 : 1e-2;
    sample[1].data.forEach((v, i) => expect(Math.abs(tensors.get('a.bias')!.data[i] - v)).toBeLessThanOrEqual(Math.abs(v) * tolerance));
  });

  it('rounds half floats to nearest even and keeps specials', () => {
    expect(float16ToFloat32(float32ToFloat16(1 + 2 ** -11))).toBe(1); // tie → even
    expect(float16ToFloat32(float32ToFloat16(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
    expect(float16ToFloat32(float32ToFloat16(65504))).toBe(65504);
    expect(float16ToFloat32(float32ToFloat16(1e6))).toBe(Infinity);
    expect(float16ToFloat32(float32ToFloat16(2 ** -24))).toBe(2 ** -24); // smallest subnormal
    expect(Number.isNaN(float16ToFloat32(float32ToFloat16(NaN)))).toBe(true);
    expect(bfloat16ToFloat32(float32ToBfloat16(1.00390625))).toBe(1); // tie → even
    expect(bfloat16ToFloat32(float32ToBfloat16(-3.5))).toBe(-3.5);
  });

  it('rejects truncated files, bad headers and unknown dtypes with the file named', () => {
    const good = writeSafetensors(sample, 'F32');
    expect(() => readSafetensors(good.subarray(0, good.length - 4), 'm.safetensors')).toThrow(/m\.safetensors: .*truncated/);
    expect(() => readSafetensors(good.subarray(0, 5), 'm.safetensors')).toThrow(/shorter than its 8-byte header/);
    const badJson = new Uint8Array(good);
    badJson[9] = 0x7b; // '{' where a '"' was: the header no longer parses
    expect(() => readSafetensors(badJson, 'm.safetensors')).toThrow(/header is not JSON/);
    const hugeHeader = new Uint8Array(good);
    new DataView(hugeHeader.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => readSafetensors(hugeHeader, 'm.safetensors')).toThrow(/implausible header length/);
    const text = JSON.stringify({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } });
    const file = new Uint8Array(8 + text.length + 8);
    new DataView(file.buffer).setBigUint64(0, BigInt(text.length), true);
    file.set(new TextEncoder().encode(text), 8);
    expect(() => readSafetensors(file, 'ints.safetensors')).toThrow('ints.safetensors: tensor w has dtype I64; supported: F32, F16, BF16');
    const wrongSize = JSON.stringify({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } });
    const file2 = new Uint8Array(8 + wrongSize.length + 8);
    new DataView(file2.buffer).setBigUint64(0, BigInt(wrongSize.length), true);
    file2.set(new TextEncoder().encode(wrongSize), 8);
    expect(() => readSafetensors(file2, 'w.safetensors')).toThrow(/tensor w holds 8 bytes, its shape \[3\] and F32 need 12/);
  });
});
