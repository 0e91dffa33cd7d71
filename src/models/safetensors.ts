import { readFileSync } from 'node:fs';
import { EmsegError } from '../errors.js';
import type { FloatArray } from '../tensor/tensor.js';
import { numel } from '../tensor/tensor.js';
import { fromFloat16Array, toFloat16Bits } from './float16.js';

/**
 * The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data).
 * Written by hand: the format is a few lines, and the npm packages for it are either unmaintained or
 * pull in a Hugging Face hub client; we only need F32/F64/F16 tensors plus string metadata. F16 tensors are read
 * into Float32Arrays (weights stored at half size; computation stays in fp32).
 */

export interface NamedTensor {
  shape: number[];
  data: FloatArray;
}

const DTYPES = { F32: Float32Array, F64: Float64Array, F16: Uint16Array } as const;

/** How tensors are stored: as they are (F32/F64), or F32 data as F16 (half the bytes, ~3 significant digits). */
export type StoredPrecision = 'as-is' | 'f16';
const MAX_HEADER = 100 * 1024 * 1024;

export function encodeSafetensors(tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {},
  precision: StoredPrecision = 'as-is'): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const stored = new Map<string, Float32Array | Float64Array | Uint16Array>();
  let offset = 0;
  for (const [name, t] of tensors) {
    const data = precision === 'f16' ? Uint16Array.from(t.data, toFloat16Bits) : t.data;
    stored.set(name, data);
    const bytes = data.byteLength;
    const dtype = data instanceof Uint16Array ? 'F16' : data instanceof Float64Array ? 'F64' : 'F32';
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keep the data 8-byte aligned
  const jsonBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + jsonBytes.length + offset);
  out.writeBigUInt64LE(BigInt(jsonBytes.length), 0);
  jsonBytes.copy(out, 8);
  let at = 8 + jsonBytes.length;
  for (const data of stored.values()) {
    Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, at);
    at += data.byteLength;
  }
  return out;
}

export function decodeSafetensors(buf: Buffer, source: string): { tensors: Map<string, NamedTensor>;
  metadata: Record<string, string> } {
  const fail = (why: string): never => {
    throw new EmsegError('invalid-model', source, `not a valid safetensors file (${why})`);
  };
  if (buf.length < 8) fail('shorter than its 8-byte header length');
  const headerLength = Number(buf.readBigUInt64LE(0));
  if (headerLength > MAX_HEADER || 8 + headerLength > buf.length) fail(`header length ${headerLength} exceeds the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  } catch {
    return fail('header is not JSON');
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, NamedTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const Ctor = DTYPES[dtype as keyof typeof DTYPES];
    if (!Ctor) fail(`tensor "${name}" has unsupported dtype ${dtype}`);
    const [begin, end] = offsets;
    if (!(begin >= 0 && end >= begin && dataStart + end <= buf.length)) fail(`tensor "${name}" lies outside the file`);
    if (end - begin !== numel(shape) * Ctor.BYTES_PER_ELEMENT) fail(`tensor "${name}" size does not match its shape`);
    const bytes = buf.subarray(dataStart + begin, dataStart + end);
    const data = new Ctor(bytes.length / Ctor.BYTES_PER_ELEMENT);
    new Uint8Array(data.buffer).set(bytes); // copy: aligned, and independent of the file buffer
    const values = data instanceof Uint16Array ? fromFloat16Array(data) : data;
    checkFinite(values, name, source);
    tensors.set(name, { shape, data: values });
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string> | undefined) ?? {} };
}

/** NaN or infinite weights would give a flat or NaN map with no error: refused at load, naming the tensor. */
function checkFinite(data: FloatArray, name: string, source: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new EmsegError('non-finite', source, `tensor "${name}" holds ${data[i]} at index ${i}; the weights are damaged or training diverged`);
    }
  }
}

export function readSafetensors(path: string) {
  return decodeSafetensors(readFileSync(path), path);
}
