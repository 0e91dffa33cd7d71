/**
 * Shared plumbing of the reference backend: storage access (validation and geometry are ../geometry.ts, shared).
 * Storage of a reference Tensor is a plain NCHW Float32Array or Float64Array (by the backend's precision).
 */
import { EmsegError } from '../../errors.js';
import type { Backend } from '../backend.js';
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
      if (!(data instanceof Ctor)) throw new EmsegError('internal', 'reference', `storage is not ${precision}`);
      if (data.length !== numel(shape)) {
        throw new EmsegError('internal', 'reference', `${data.length} elements for shape ${formatShape(shape)}`);
      }
      return new Tensor([...shape], backend, data);
    },
    data: (t, what) => {
      t.assertAlive();
      const s = t.storage;
      if (t.backend !== backend || !(s instanceof Ctor)) {
        throw new EmsegError('invalid-option', what, `tensor ${formatShape(t.shape)} does not belong to this reference ` +
          `backend (${precision}); it comes from backend '${t.backend.name}' (${t.backend.precision})`);
      }
      return s;
    },
  };
}
