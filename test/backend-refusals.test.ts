/**
 * One table of bad op arguments, refused identically by every backend (tinygrad-style): the same EmsegError code,
 * the same path (op and argument) and the same message, because both backends validate through src/backend/geometry.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, Conv3dParams, ConvParams, LrnParams, Pool3dParams, PoolParams } from '../src/backend/backend.js';
import { loadOneDnnBackend } from '../src/backend/onednn/index.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { EmsegError } from '../src/errors.js';

const CONV: ConvParams = { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] };
const CONV3: Conv3dParams = { stride: [1, 1, 1], padding: [0, 1, 1, 0, 1, 1], dilation: [1, 1, 1] };
const POOL3: Pool3dParams = { kernel: [1, 2, 2], stride: [1, 2, 2], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] };
const X3_SHAPE = [2, 3, 2, 8, 8];
const W3_SHAPE = [4, 3, 1, 3, 3];
/** A 5-d input of the backend under test (the table's shared input is 4-d); the refusal comes before it is used. */
const x3 = (b: Backend) => b.fromArray(new Float32Array(2 * 3 * 2 * 8 * 8), X3_SHAPE);
const POOL: PoolParams = { kernel: [2, 2], stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] };
const LRN: LrnParams = { region: 'across', size: 5, alpha: 1e-4, beta: 0.75, k: 1 };
const X_SHAPE = [2, 3, 8, 8];
const W_SHAPE = [4, 3, 3, 3];

type Case = [name: string, run: (b: Backend, x: ReturnType<Backend['fromArray']>, w: Float32Array) => unknown, path: RegExp];
const CASES: Case[] = [
  ['fromArray: wrong element count', (b) => b.fromArray(new Float32Array(5), [1, 1, 2, 3]), /^fromArray/],
  ['toArray: an out array of another size', (b, x) => b.toArray(x, new Float32Array(2 * 3 * 8 * 8 - 1)), /^toArray out$/],
  ['toArray: an out array of another type', (b, x) => b.toArray(x, new Float64Array(2 * 3 * 8 * 8) as unknown as Float32Array), /^toArray out$/],
  ['conv2d: short weights', (b, x, w) => b.conv2d(x, w.subarray(1), W_SHAPE, null, CONV), /^conv2d weights$/],
  ['conv2d: channel mismatch', (b, x, w) => b.conv2d(x, w, [4, 2, 3, 3], null, CONV), /^conv2d$/],
  ['conv2d: zero stride', (b, x, w) => b.conv2d(x, w, W_SHAPE, null, { ...CONV, stride: [0, 1] }), /^conv2d stride$/],
  ['conv2d: negative padding', (b, x, w) => b.conv2d(x, w, W_SHAPE, null, { ...CONV, padding: [1, 1, -1, 1] }), /^conv2d$/],
  ['conv2d: kernel larger than input', (b, x) => b.conv2d(x, new Float32Array(4 * 3 * 99), [4, 3, 9, 11], null,
    { ...CONV, padding: [0, 0, 0, 0] }), /^conv2d \(height\)$/],
  ['conv2d: a 5-d input', (b, _x, w) => b.conv2d(x3(b), w, W_SHAPE, null, CONV), /^conv2d input$/],
  ['conv3d: a 4-d input', (b, x, w) => b.conv3d(x, w, W3_SHAPE, null, CONV3), /^conv3d input$/],
  ['conv3d: 4-d weights', (b, _x, w) => b.conv3d(x3(b), w, W_SHAPE, null, CONV3), /^conv3d weights$/],
  ['conv3d: short weights', (b, _x, w) => b.conv3d(x3(b), w.subarray(1), W3_SHAPE, null, CONV3), /^conv3d weights$/],
  ['conv3d: channel mismatch', (b, _x, w) => b.conv3d(x3(b), w, [4, 2, 1, 3, 3], null, CONV3), /^conv3d$/],
  ['conv3d: 2-d stride', (b, _x, w) => b.conv3d(x3(b), w, W3_SHAPE, null,
    { ...CONV3, stride: [1, 1] as unknown as Conv3dParams['stride'] }), /^conv3d stride$/],
  ['conv3d: 2-d padding', (b, _x, w) => b.conv3d(x3(b), w, W3_SHAPE, null,
    { ...CONV3, padding: [1, 1, 1, 1] as unknown as Conv3dParams['padding'] }), /^conv3d$/],
  ['conv3d: kernel deeper than input', (b) => b.conv3d(x3(b), new Float32Array(4 * 3 * 27), [4, 3, 3, 3, 3], null, CONV3),
    /^conv3d \(depth\)$/],
  ['conv3dBackwardData: dy of another shape', (b, _x, w) => b.conv3dBackwardData(x3(b), w, W3_SHAPE, [2, 3, 2, 9, 8], CONV3),
    /^conv3dBackwardData/],
  ['conv3dBackwardWeights: dy of another shape', (b) => b.conv3dBackwardWeights(x3(b), x3(b), [5, 3, 1, 3, 3], CONV3, true),
    /^conv3dBackwardWeights/],
  ['maxPool3d: a 4-d input', (b, x) => b.maxPool3d(x, POOL3, false), /^maxPool3d input$/],
  ['maxPool3d: kernel deeper than input', (b) => b.maxPool3d(x3(b), { ...POOL3, kernel: [3, 2, 2] }, false), /^maxPool3d \(depth\)$/],
  ['maxPool3d: zero stride', (b) => b.maxPool3d(x3(b), { ...POOL3, stride: [1, 0, 2] }, false), /^maxPool3d stride$/],
  ['maxPool3d: 2-d padding', (b) => b.maxPool3d(x3(b), { ...POOL3, padding: [0, 0, 0, 0] as unknown as Pool3dParams['padding'] },
    false), /^maxPool3d$/],
  ['maxPool3dBackward: dy of another shape', (b) => b.maxPool3dBackward(x3(b), x3(b), X3_SHAPE, POOL3), /^maxPool3dBackward dy/],
  ['deconv3d: a 4-d input', (b, x, w) => b.deconv3d(x, w, W3_SHAPE, null, CONV3), /^deconv3d input$/],
  ['deconv3d: channel mismatch', (b, _x, w) => b.deconv3d(x3(b), w, [4, 2, 1, 3, 3], null, CONV3), /^deconv3d$/],
  ['deconv3d: padding crops everything', (b) => b.deconv3d(x3(b), new Float32Array(3 * 3 * 9), [3, 3, 1, 3, 3], null,
    { ...CONV3, padding: [5, 1, 1, 5, 1, 1] }), /^deconv3d \(depth\)$/],
  ['deconv3d: short bias', (b, _x, w) => b.deconv3d(x3(b), w, W3_SHAPE, new Float32Array(3), CONV3), /^deconv3d bias$/],
  ['deconv3dBackwardData: dy of another shape', (b, _x, w) => b.deconv3dBackwardData(x3(b), w.subarray(0, 81), [3, 3, 1, 3, 3], X3_SHAPE,
    { ...CONV3, stride: [1, 2, 2] }), /^deconv3dBackwardData dy/],
  ['deconv3dBackwardWeights: dy of another shape', (b) => b.deconv3dBackwardWeights(x3(b), x3(b), [3, 3, 2, 2, 2],
    { ...CONV3, padding: [0, 0, 0, 0, 0, 0] }, true), /^deconv3dBackwardWeights dy/],
  ['crop3d: a 4-d input', (b, x) => b.crop3d(x, 0, 0, 0, 1, 4, 4), /^crop3d input$/],
  ['crop3d: outside in depth', (b) => b.crop3d(x3(b), 1, 0, 0, 2, 4, 4), /^crop3d$/],
  ['crop3d: negative left', (b) => b.crop3d(x3(b), 0, 0, -1, 1, 4, 4), /^crop3d$/],
  ['crop3dBackward: window outside xShape', (b) => b.crop3dBackward(x3(b), [2, 3, 2, 8, 8], 1, 0, 0), /^crop3dBackward$/],
  ['concat: 4-d with 5-d', (b, x) => b.concat([x, x3(b)]), /^concat$/],
  ['concat: 5-d of other depths', (b) => b.concat([x3(b), b.fromArray(new Float32Array(2 * 3 * 3 * 64), [2, 3, 3, 8, 8])]),
    /^concat$/],
  ['softmaxCrossEntropy: 5-d label count', (b) => b.softmaxCrossEntropy(x3(b), { labels: new Int32Array(2 * 8 * 8) }),
    /^softmaxCrossEntropy$/],
  ['sigmoidCrossEntropy: target count', (b) => b.sigmoidCrossEntropy(x3(b), { targets: new Float32Array(3) }),
    /^sigmoidCrossEntropy$/],
  ['sigmoidCrossEntropy: target above 1', (b, x) => b.sigmoidCrossEntropy(x, { targets: new Float32Array(2 * 3 * 64).fill(2) }),
    /^sigmoidCrossEntropy$/],
  ['sigmoidCrossEntropy: negative weight', (b, x) => b.sigmoidCrossEntropy(x,
    { targets: new Float32Array(2 * 3 * 64), weights: new Float32Array(2 * 3 * 64).fill(-1) }), /^sigmoidCrossEntropy$/],
  ['maxPool2d: a 5-d input', (b) => b.maxPool2d(x3(b), POOL, false), /^maxPool2d input$/],
  ['deconv2d: padding crops everything', (b, x) => b.deconv2d(x, new Float32Array(3 * 3 * 9), [3, 3, 3, 3], null,
    { ...CONV, padding: [9, 0, 9, 0] }), /^deconv2d \(height\)$/],
  ['maxPool2d: kernel too large', (b, x) => b.maxPool2d(x, { ...POOL, kernel: [20, 2] }, false), /^maxPool2d \(height\)$/],
  ['lrn: bad region', (b, x) => b.lrn(x, { ...LRN, region: 'sideways' as 'across' }, false), /^lrn$/],
  ['crop: outside', (b, x) => b.crop(x, 5, 0, 4, 4), /^crop$/],
  ['crop: negative top', (b, x) => b.crop(x, -1, 0, 4, 4), /^crop$/],
  ['concat: nothing', (b) => b.concat([]), /^concat$/],
  ['concatBackward: channel sum', (b, x) => b.concatBackward(x, [1, 1]), /^concatBackward$/],
  ['upsampleNearest: factor 0', (b, x) => b.upsampleNearest(x, 0), /^upsampleNearest$/],
  ['dropout: rate 1', (b, x) => b.dropout(x, 1, 1), /^dropout$/],
  ['softmaxCrossEntropy: label count', (b, x) => b.softmaxCrossEntropy(x, { labels: new Int32Array(3) }), /^softmaxCrossEntropy$/],
];

test('every backend refuses the same bad arguments with the same EmsegError', () => {
  const backends = [createReferenceBackend('float32'), loadOneDnnBackend({ precision: 'float32' })];
  const w = new Float32Array(4 * 3 * 3 * 3);
  const inputs = backends.map((b) => b.fromArray(new Float32Array(2 * 3 * 8 * 8), X_SHAPE));
  for (const [name, run, path] of CASES) {
    const errors = backends.map((b, i) => {
      try {
        run(b, inputs[i]!, w);
      } catch (err) {
        return err;
      }
      return assert.fail(`${name}: ${b.name} accepted it`);
    });
    for (const err of errors) {
      assert.ok(err instanceof EmsegError, `${name}: ${String(err)}`);
      assert.equal(err.code, 'invalid-option', name);
      assert.match(err.path, path, name);
    }
    assert.equal((errors[0] as Error).message, (errors[1] as Error).message, name);
  }
  for (const x of inputs) x.dispose();
});

test('bf16 with the reference backend is refused naming --bf16, not run as float32 under bf16\'s name', async () => {
  const { createBackend } = await import('../src/backend/index.js');
  assert.throws(() => createBackend({ kind: 'reference', precision: 'bfloat16' }),
    (e) => e instanceof EmsegError && e.code === 'invalid-option' && e.path === '--bf16');
  assert.ok(createBackend({ kind: 'reference', precision: 'float32' }));
});
