/** Comparing one op's outputs on two backends (native vs the float64 reference), shared by the native tests. */
import assert from 'node:assert/strict';
import type { Backend } from '../../src/backend/backend.js';
import type { FloatArray, Tensor } from '../../src/tensor/tensor.js';

/** Largest absolute difference over the largest magnitude of `want` (absolute when `want` is all zero). */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i]! - want[i]!));
    den = Math.max(den, Math.abs(want[i]!));
  }
  return den === 0 ? num : num / den;
}

/** The tensor's values on the host; the tensor is disposed. */
export function host(t: Tensor): FloatArray {
  const a = t.toArray();
  t.dispose();
  return a;
}

export type Outputs = Record<string, FloatArray | number[] | number | null>;

/** Runs `fn` on both backends and compares every output within relative error `tol`. */
export function compareBackends(name: string, reference: Backend, native: Backend, fn: (be: Backend) => Outputs,
  tol: number): void {
  const want = fn(reference);
  const got = fn(native);
  for (const key of Object.keys(want)) {
    const w = want[key];
    const g = got[key];
    if (w === null || g === null) {
      assert.equal(g === null, w === null, `${name} ${key}: null mismatch`);
      continue;
    }
    const wa = typeof w === 'number' ? [w] : w!;
    const ga = typeof g === 'number' ? [g] : g!;
    assert.equal(ga.length, wa.length, `${name} ${key}: length`);
    const e = relErr(ga, wa);
    assert.ok(e <= tol, `${name} ${key}: relative error ${e.toExponential(2)} > ${tol}`);
  }
}
