import { EmsegError } from '../errors.js';
import type { Backend } from '../backend/backend.js';

export type Shape = readonly number[];
/** Plain host arrays: float32 for real work, float64 for finite-difference checks on the reference backend. */
export type FloatArray = Float32Array | Float64Array;

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeEquals(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: Shape): string {
  return `[${shape.join('x')}]`;
}

/**
 * An activation living in a backend. Its storage is opaque (the oneDNN backend keeps its own blocked layouts);
 * `shape` is always the logical NCHW shape. Memory is released by `dispose()`; backends may also register a
 * finaliser as a safety net, but code paths must dispose explicitly.
 */
export class Tensor {
  private disposed = false;

  constructor(
    readonly shape: Shape,
    readonly backend: Backend,
    readonly storage: unknown,
  ) {}

  get size(): number {
    return numel(this.shape);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Copy out as a plain NCHW host array (float32, or float64 on a float64 reference backend); into `out` when given
   * (a Float32Array of exactly this size), which spares a fresh array per call.
   */
  toArray(out?: Float32Array): FloatArray {
    this.assertAlive();
    return out ? this.backend.toArray(this, out) : this.backend.toArray(this);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.backend.release(this);
  }

  assertAlive(): void {
    if (this.disposed) throw new EmsegError('invalid-option', `tensor ${formatShape(this.shape)}`, 'used after dispose()');
  }
}
