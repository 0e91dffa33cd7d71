/**
 * Finite-difference gradient checking, shared by the backend tests.
 *
 * Typical use: for an op y = f(x), pick a random projection r (same size as y), take the scalar loss
 * L(x) = sum(r * f(x)) = dot(r, f(x)); its analytic gradient is the op's backward applied to dy = r. Then
 *   assertGradient('conv2d dx', (x) => dot(r, forward(x)), x, backward(r))
 * compares it with central differences (L(x + eps e_i) - L(x - eps e_i)) / (2 eps).
 * Everything here is float64 and backend-agnostic.
 */
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.js';

/** Seeded uniform [0, 1) generator (mulberry32), so every test is deterministic. */
export function makeRng(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/** n uniform float32 values in [lo, hi), deterministic in seed (inputs for native-vs-reference tests). */
export function randomFloat32(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
}

/** n uniform values in [lo, hi), deterministic in seed. */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const rng = makeRng(seed);
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng();
  return a;
}

/**
 * n values in [lo, hi) whose magnitudes are at least `gap` away from 0 (for kinks at 0 such as ReLU's),
 * deterministic in seed.
 */
export function randomAwayFromZero(n: number, seed: number, gap = 0.05, hi = 1): Float64Array {
  const rng = makeRng(seed);
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const m = gap + (hi - gap) * rng();
    a[i] = rng() < 0.5 ? -m : m;
  }
  return a;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `dot: length mismatch ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export interface GradcheckOptions {
  /** Finite-difference step (absolute); default 1e-5. */
  eps?: number;
  /** Bound on the relative error max_i |a_i - n_i| / max_i max(|a_i|, |n_i|); default 1e-6. */
  tol?: number;
  /** Check only these coordinates of x (default: all). */
  indices?: readonly number[];
}

export interface GradcheckResult {
  /** max_i |analytic_i - numeric_i| over the checked coordinates. */
  maxAbsErr: number;
  /** max_i max(|analytic_i|, |numeric_i|): the scale of the gradient. */
  scale: number;
  /** maxAbsErr / scale (0 when both gradients vanish). */
  relErr: number;
  /** Coordinate of the largest discrepancy. */
  worst: number;
  numeric: Float64Array;
}

/**
 * Central differences of the scalar function f at x, at the given coordinates (all by default).
 * x is perturbed IN PLACE and restored after each evaluation, so f must read x afresh on every call.
 * Unchecked coordinates of the result are NaN.
 */
export function numericGradient(
  f: (x: Float64Array) => number, x: Float64Array, eps = 1e-5, indices?: readonly number[],
): Float64Array {
  const g = new Float64Array(x.length).fill(Number.NaN);
  const idx = indices ?? Array.from({ length: x.length }, (_, i) => i);
  for (const i of idx) {
    const x0 = x[i]!;
    x[i] = x0 + eps;
    const fp = f(x);
    x[i] = x0 - eps;
    const fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/** Compares an analytic gradient of f at x with central differences; returns the figures, asserts nothing. */
export function gradcheck(
  f: (x: Float64Array) => number, x: Float64Array, analytic: ArrayLike<number>, options: GradcheckOptions = {},
): GradcheckResult {
  const eps = options.eps ?? 1e-5;
  assert.equal(analytic.length, x.length, `gradcheck: analytic gradient has ${analytic.length} entries, x has ${x.length}`);
  const idx = options.indices ?? Array.from({ length: x.length }, (_, i) => i);
  const numeric = numericGradient(f, x, eps, idx);
  let maxAbsErr = 0;
  let scale = 0;
  let worst = -1;
  for (const i of idx) {
    const a = analytic[i]!;
    const n = numeric[i]!;
    const err = Math.abs(a - n);
    if (!(err <= maxAbsErr)) {  // also catches NaN
      maxAbsErr = err;
      worst = i;
    }
    scale = Math.max(scale, Math.abs(a), Math.abs(n));
  }
  const relErr = maxAbsErr === 0 ? 0 : maxAbsErr / scale;
  return { maxAbsErr, scale, relErr, worst, numeric };
}

/** gradcheck + assertion: fails with the worst coordinate when relErr > tol (default 1e-6), or when the gradient is all zero. */
export function assertGradient(
  name: string, f: (x: Float64Array) => number, x: Float64Array, analytic: ArrayLike<number>,
  options: GradcheckOptions = {},
): GradcheckResult {
  const tol = options.tol ?? 1e-6;
  const r = gradcheck(f, x, analytic, options);
  assert.ok(r.scale > 0, `${name}: gradient is identically zero, the check would be vacuous`);
  assert.ok(
    r.relErr <= tol,
    `${name}: relative gradient error ${r.relErr.toExponential(3)} > ${tol} (max abs err ${r.maxAbsErr.toExponential(3)} ` +
      `at coordinate ${r.worst}: analytic ${analytic[r.worst]}, numeric ${r.numeric[r.worst]}; scale ${r.scale.toExponential(3)})`,
  );
  return r;
}

/** Asserts |a_i - b_i| <= atol + rtol * |b_i| for all i, naming the first offender. */
export function assertClose(
  actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-12, rtol = 1e-12, name = 'arrays',
): void {
  assert.equal(actual.length, expected.length, `${name}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${name}: element ${i} is ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
    }
  }
}
