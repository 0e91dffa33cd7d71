/**
 * Shared plumbing of the reference backend: storage access, validation and output-size arithmetic.
 * Storage of a reference Tensor is a plain NCHW Float32Array or Float64Array (by the backend's precision).
 */
import type { Backend, Padding, Pair } from '../backend.js';
import { type FloatArray, type Shape, Tensor, formatShape, numel } from '../../tensor/tensor.js';

export type RefPrecision = 'float32' | 'float64';

/** What every kernel needs from the backend instance: allocation in its precision and storage access. */
export interface RefContext {
  readonly backend: Backend;
  readonly precision: RefPrecision;
  /** A zero-filled array of n elements in the backend's precision. */
  alloc(n: number): FloatArray;
  /** A float64 accumulator converted to the backend's precision (returned as is in float64 mode). */
  fromF64(a: Float64Array): FloatArray;
  /** Wrap an array (taken over, not copied) as a Tensor of this backend. */
  wrap(data: FloatArray, shape: Shape): Tensor;
  /** The storage of a live tensor of this backend; `what` names the op and argument for error messages. */
  data(t: Tensor, what: string): FloatArray;
}

export function createContext(backend: Backend, precision: RefPrecision): RefContext {
  const Ctor = precision === 'float64' ? Float64Array : Float32Array;
  return {
    backend,
    precision,
    alloc: (n) => new Ctor(n),
    fromF64: (a) => (precision === 'float64' ? a : Float32Array.from(a)),
    wrap: (data, shape) => {
      if (!(data instanceof Ctor)) throw new Error(`reference: internal error, storage is not ${precision}`);
      if (data.length !== numel(shape)) {
        throw new Error(`reference: internal error, ${data.length} elements for shape ${formatShape(shape)}`);
      }
      return new Tensor([...shape], backend, data);
    },
    data: (t, what) => {
      t.assertAlive();
      const s = t.storage;
      if (t.backend !== backend || !(s instanceof Ctor)) {
        throw new Error(`${what}: tensor ${formatShape(t.shape)} does not belong to this reference backend ` +
          `(${precision}); it comes from backend '${t.backend.name}' (${t.backend.precision})`);
      }
      return s;
    },
  };
}

/** A 4-d NCHW shape, validated. */
export function dims4(shape: Shape, what: string): [number, number, number, number] {
  if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`${what}: expected a 4-d NCHW shape of positive integers, got ${formatShape(shape)}`);
  }
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}

export function checkPair(p: Pair, what: string, min: number): void {
  if (p.length !== 2 || !p.every((v) => Number.isInteger(v) && v >= min)) {
    throw new Error(`${what}: expected two integers >= ${min}, got [${p.join(', ')}]`);
  }
}

export function checkPadding(p: Padding, what: string): void {
  if (p.length !== 4 || !p.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new Error(`${what}: padding must be [top, left, bottom, right] non-negative integers, got [${p.join(', ')}]`);
  }
}

/**
 * Output extent of a convolution / pooling window along one axis:
 * floor((size + padBegin + padEnd - d*(k-1) - 1) / s) + 1. Throws when it is < 1.
 */
export function windowOutSize(
  size: number, k: number, s: number, d: number, padBegin: number, padEnd: number, what: string,
): number {
  const span = size + padBegin + padEnd - d * (k - 1) - 1;
  const out = span < 0 ? 0 : Math.floor(span / s) + 1;
  if (out < 1) {
    throw new Error(`${what}: input extent ${size} (padding ${padBegin}+${padEnd}) is smaller than the ` +
      `dilated kernel extent ${d * (k - 1) + 1}; output size would be ${out}`);
  }
  return out;
}

export function checkLength(a: ArrayLike<number>, n: number, what: string): void {
  if (a.length !== n) throw new Error(`${what}: expected ${n} elements, got ${a.length}`);
}

export function sameShape(a: Shape, b: Shape, what: string): void {
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
    throw new Error(`${what}: shape mismatch ${formatShape(a)} vs ${formatShape(b)}`);
  }
}
