import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { assertGradient, gradcheck } from './helpers/gradcheck.js';
import { refused } from './helpers/errors.js';

test('storage: fromArray copies and converts to the precision, toArray copies out, release drops the array', () => {
  const be32 = createReferenceBackend();
  assert.equal(be32.precision, 'float32');
  assert.equal(be32.name, 'reference');
  const src = Float64Array.of(0.1, 2, 3, 4);
  const t = be32.fromArray(src, [1, 1, 2, 2]);
  src[0] = 99;
  const out = t.toArray();
  assert.ok(out instanceof Float32Array);
  assert.equal(out[0], Math.fround(0.1));
  out[1] = 77;
  assert.equal(t.toArray()[1], 2, 'toArray returns a copy');
  t.dispose();
  assert.equal(t.storage, null);
  assert.throws(() => t.toArray(), refused('invalid-option', 'tensor [1x1x2x2]'));

  const be64 = createReferenceBackend('float64');
  const u = be64.fromArray(Float32Array.of(0.5, 1.5), [1, 2, 1, 1]);
  assert.ok(u.toArray() instanceof Float64Array);
  assert.throws(() => be64.fromArray(new Float64Array(3), [1, 1, 2, 2]), refused('invalid-option', 'fromArray'));
  // tensors of another backend instance are rejected by name
  const v = be32.fromArray(Float32Array.of(1, 2), [1, 2, 1, 1]);
  assert.throws(() => be64.add(u, v), refused('invalid-option', 'add b'));
  assert.throws(() => createReferenceBackend('bfloat16' as 'float32'), refused('invalid-option', 'createReferenceBackend'));
});

test('gradcheck helper: accepts the true gradient, rejects a wrong one', () => {
  const f = (x: Float64Array) => x[0]! * x[0]! * x[1]! + Math.sin(x[1]!);
  const x = Float64Array.of(0.7, -0.3);
  const g = [2 * 0.7 * -0.3, 0.49 + Math.cos(-0.3)];
  const r = assertGradient('true', f, x, g);
  assert.ok(r.relErr < 1e-8);
  assert.deepEqual([...x], [0.7, -0.3], 'x is restored');
  assert.throws(() => assertGradient('wrong', f, x, [g[0]!, g[1]! * (1 + 1e-4)]), /wrong: relative gradient error .* at coordinate 1/);
  assert.throws(() => assertGradient('zero', () => 1, x, [0, 0]), /identically zero/);
  assert.equal(gradcheck(f, x, g, { indices: [1] }).numeric[0], Number.NaN);
});
