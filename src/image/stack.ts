/**
 * Arrays of pixels and their sample types: what io reads and writes, and what metrics, segment, train and infer
 * compute on. Kept here, below io, so code that only computes on pixels never depends on file formats.
 */

/** Pixel storage of a stack of 2-D sections, slice-major then row-major: (x, y, z) is at z*W*H + y*W + x. */
export type StackData = Uint8Array | Uint16Array | Uint32Array | Float32Array;

export interface ImageStack<T extends StackData = StackData> {
  width: number;
  height: number;
  depth: number;
  data: T;
}

/** One section of a stack, as a view (no copy). */
export function sliceOf<T extends StackData>(stack: ImageStack<T>, z: number): T {
  const n = stack.width * stack.height;
  return stack.data.subarray(z * n, (z + 1) * n) as T;
}

export type SampleType = 'uint8' | 'uint16' | 'uint32' | 'float32';

/** A 2-D grey slice: enough for writers, which accept any producer of these. */
export interface SliceLike<T extends StackData = StackData> {
  width: number;
  height: number;
  data: T;
}

export function sampleTypeOf(data: StackData): SampleType {
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Uint32Array) return 'uint32';
  return 'float32';
}

export function allocate(type: SampleType, length: number): StackData {
  switch (type) {
    case 'uint8':
      return new Uint8Array(length);
    case 'uint16':
      return new Uint16Array(length);
    case 'uint32':
      return new Uint32Array(length);
    case 'float32':
      return new Float32Array(length);
  }
}

/** A colour picture (overlays, segmentation pictures). */
export interface RgbaImage {
  width: number;
  height: number;
  /** Row-major RGBA, 4 bytes per pixel. */
  data: Uint8Array;
}

/** Bytes one sample of each type takes. */
export const BYTES_PER_SAMPLE: Readonly<Record<SampleType, number>> = { uint8: 1, uint16: 2, uint32: 4, float32: 4 };

/** Full scale of an integer type (8-bit 255, 16-bit 65535, 32-bit 2^32-1); 1 for float. */
export function fullScale(type: SampleType): number {
  return type === 'uint8' ? 255 : type === 'uint16' ? 65535 : type === 'uint32' ? 4294967295 : 1;
}

/**
 * Raw intensities: the integer range divided by its full scale, float copied as is. Network input goes through
 * image/intensity instead, which checks that this scaling fits the data (12-bit data in 16 bits, float 0..255).
 */
export function toFloat32(data: StackData): Float32Array {
  if (data instanceof Float32Array) return data.slice();
  const max = fullScale(sampleTypeOf(data));
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! / max;
  return out;
}

/** Stack version of toFloat32. */
export function stackToFloat32(stack: ImageStack): ImageStack<Float32Array> {
  return { width: stack.width, height: stack.height, depth: stack.depth, data: toFloat32(stack.data) };
}
