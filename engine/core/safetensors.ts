/**
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a JSON
 * header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then the raw bytes.
 * Parsing the header is separate from decoding tensors, so callers can stream one tensor at a time from disk.
 */
import { workbenchError } from './errors.js';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from './float16.js';

export const supportedDtypes = ['F32', 'F16', 'BF16'] as const;
export type SafetensorsDtype = (typeof supportedDtypes)[number];

const bytesPerElement: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface TensorEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Byte range relative to the start of the data section. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly entries: ReadonlyMap<string, TensorEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  /** Absolute byte offset of the data section (8 + header length). */
  readonly dataOffset: number;
  /** Bytes the data section must hold, from the largest `data_offsets` end. */
  readonly dataLength: number;
}

export interface FloatTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const maxHeaderBytes = 100 * 1024 * 1024;

/** Length of the JSON header from the first 8 bytes; throws if the prefix cannot be a safetensors file. */
export function readHeaderLength(prefix: Uint8Array, source: string, fileSize: number): number {
  if (prefix.byteLength < 8 || fileSize < 8) throw workbenchError('E_SAFETENSORS', source, 'file is shorter than its 8-byte header length');
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const length = Number(view.getBigUint64(0, true));
  if (length === 0 || length > maxHeaderBytes) throw workbenchError('E_SAFETENSORS', source, `implausible header length ${length}`);
  if (8 + length > fileSize) throw workbenchError('E_SAFETENSORS', source, `truncated: header needs ${8 + length} bytes, file has ${fileSize}`);
  return length;
}

export function parseHeader(headerBytes: Uint8Array, source: string): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (error) {
    throw workbenchError('E_SAFETENSORS', source, `header is not JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw workbenchError('E_SAFETENSORS', source, 'header is not a JSON object');
  }
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  let dataLength = 0;
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const { dtype, shape, data_offsets: offsets } = entry ?? {};
    if (typeof dtype !== 'string' || !Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2
      || !shape.every((d) => Number.isInteger(d) && d >= 0) || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      throw workbenchError('E_SAFETENSORS', source, `bad header entry for tensor ${name}`);
    }
    const [begin, end] = offsets as number[];
    if (end < begin) throw workbenchError('E_SAFETENSORS', source, `tensor ${name} has data_offsets [${begin}, ${end}]`);
    if (dtype in bytesPerElement) {
      const expected = (shape as number[]).reduce((a, b) => a * b, 1) * bytesPerElement[dtype as SafetensorsDtype];
      if (end - begin !== expected) {
        throw workbenchError('E_SAFETENSORS', source, `tensor ${name} holds ${end - begin} bytes, its shape [${shape.join(', ')}] and ${dtype} need ${expected}`);
      }
    }
    entries.set(name, { name, dtype, shape: shape as number[], begin, end });
    dataLength = Math.max(dataLength, end);
  }
  return { entries, metadata, dataOffset: 8 + headerBytes.byteLength, dataLength };
}

/** True on little-endian hosts (every platform Node and Electron ship for), where F32 bytes are already floats. */
const littleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Decodes one tensor's bytes (exactly `end - begin` of them) into a new float32 array. Whole-array paths for F32
 * (a copy) and BF16 (a shift: bfloat16 is the top half of a float32) keep a 125M model's load under a second.
 */
export function decodeTensor(entry: TensorEntry, bytes: Uint8Array, source: string): Float32Array {
  const dtype = entry.dtype as SafetensorsDtype;
  if (!(dtype in bytesPerElement)) throw workbenchError('E_SAFETENSORS_DTYPE', source, entry.name, entry.dtype);
  const count = (entry.end - entry.begin) / bytesPerElement[dtype];
  const out = new Float32Array(count);
  // typed-array views need aligned offsets; bytes inside a whole file need not be, and then take the slow path
  const aligned = bytes.byteOffset % bytesPerElement[dtype] === 0;
  if (littleEndian && aligned && dtype === 'F32') {
    out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
  } else if (littleEndian && aligned && dtype === 'BF16') {
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    const words = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) words[i] = halves[i] << 16;
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dtype === 'F32') {
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
    } else {
      const decode = dtype === 'F16' ? float16ToFloat32 : bfloat16ToFloat32;
      for (let i = 0; i < count; i++) out[i] = decode(view.getUint16(2 * i, true));
    }
  }
  return out;
}

/** Parses a whole in-memory safetensors file. */
export function readSafetensors(file: Uint8Array, source: string): { header: SafetensorsHeader; tensors: Map<string, FloatTensor> } {
  const headerLength = readHeaderLength(file, source, file.byteLength);
  const header = parseHeader(file.subarray(8, 8 + headerLength), source);
  if (header.dataOffset + header.dataLength > file.byteLength) {
    throw workbenchError('E_SAFETENSORS', source, `truncated: data needs ${header.dataOffset + header.dataLength} bytes, file has ${file.byteLength}`);
  }
  const tensors = new Map<string, FloatTensor>();
  for (const entry of header.entries.values()) {
    const bytes = file.subarray(header.dataOffset + entry.begin, header.dataOffset + entry.end);
    tensors.set(entry.name, { name: entry.name, shape: entry.shape, data: decodeTensor(entry, bytes, source) });
  }
  return { header, tensors };
}

/** Serialises float32 tensors as `dtype`, names sorted as torch's `save_file` writes them. */
export function writeSafetensors(
  tensors: Iterable<FloatTensor>,
  dtype: SafetensorsDtype = 'F32',
  metadata: Record<string, string> = { format: 'pt' },
): Uint8Array {
  const list = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const size = bytesPerElement[dtype];
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of list) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`writeSafetensors: ${t.name} has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + count * size] };
    offset += count * size;
  }
  let headerText = JSON.stringify(header);
  headerText += ' '.repeat((8 - ((8 + headerText.length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const t of list) {
    if (dtype === 'F32' && littleEndian) {
      // the padded header keeps every F32 tensor 4-byte aligned, so the floats are copied as they are
      new Float32Array(out.buffer, at, t.data.length).set(t.data);
      at += 4 * t.data.length;
    } else if (dtype === 'F32') {
      for (let i = 0; i < t.data.length; i++, at += 4) view.setFloat32(at, t.data[i], true);
    } else {
      const encode = dtype === 'F16' ? float32ToFloat16 : float32ToBfloat16;
      for (let i = 0; i < t.data.length; i++, at += 2) view.setUint16(at, encode(t.data[i]), true);
    }
  }
  return out;
}
