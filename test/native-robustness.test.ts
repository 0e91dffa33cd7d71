/**
 * oneDNN backend robustness: bad arguments give JS errors (never a crash), at the backend level and straight at the
 * addon; 1,000 training steps keep memory and the addon's live buffers bounded; primitives are cached (no
 * re-creation in steady state); the FinalizationRegistry safety net frees forgotten tensors without double frees.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Backend, Conv3dParams, ConvParams, PoolParams } from '../src/backend/backend.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import {
  describeNativeTensor, loadOneDnnBackend, nativeInfo, nativeStats,
} from '../src/backend/onednn/index.js';
import { type Addon, loadAddon } from '../src/backend/onednn/addon.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { refused } from './helpers/errors.js';

// The set-up (make test) always builds the addon: a missing addon fails these tests rather than skipping them.
const be: Backend | null = loadOneDnnBackend({ precision: 'float32' });
const addon: Addon | null = loadAddon();

const P1: ConvParams = { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] };
const POOL: PoolParams = { kernel: [2, 2], stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] };
const P3: Conv3dParams = { stride: [1, 1, 1], padding: [0, 1, 1, 0, 1, 1], dilation: [1, 1, 1] };

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

test('nativeInfo reports oneDNN, runtime, ISA, bf16 and threads', () => {
  const info = nativeInfo();
  assert.match(info.version, /^\d+\.\d+\.\d+$/);
  assert.ok(['omp', 'tbb', 'sequential', 'threadpool'].includes(info.cpuRuntime), info.cpuRuntime);
  assert.equal(typeof info.isa, 'string');
  assert.equal(typeof info.bf16, 'boolean');
  assert.ok(info.threads >= 1);
});

test('backend-level validation: bad shapes and params throw before any native call', () => {
  const b = be!;
  const x = b.fromArray(fill(2 * 3 * 8 * 8, 1), [2, 3, 8, 8]);
  const w = fill(4 * 3 * 3 * 3, 2);
  assert.throws(() => b.fromArray(new Float32Array(5), [1, 1, 2, 3]), refused('invalid-option', 'fromArray', /elements/));
  assert.throws(() => b.fromArray(new Float32Array(6), [1, 6]), refused('invalid-option', 'fromArray', /4-d/));
  assert.throws(() => b.conv2d(x, w.subarray(1), [4, 3, 3, 3], null, P1), refused('invalid-option', 'conv2d weights'));
  assert.throws(() => b.conv2d(x, w, [4, 2, 3, 3], null, P1), refused('invalid-option', 'conv2d', /channels/));
  assert.throws(() => b.conv2d(x, w, [4, 3, 3, 3], new Float32Array(3), P1), refused('invalid-option', 'conv2d bias'));
  assert.throws(() => b.conv2d(x, w, [4, 3, 3, 3], null, { ...P1, stride: [0, 1] }), refused('invalid-option', 'conv2d stride'));
  assert.throws(() => b.conv2d(x, w, [4, 3, 3, 3], null, { ...P1, padding: [1, 1, -1, 1] }), refused('invalid-option', 'conv2d', /padding/));
  assert.throws(() => b.conv2d(x, w, [4, 3, 3, 3], null, { ...P1, dilation: [1.5, 1] }), refused('invalid-option', 'conv2d dilation'));
  assert.throws(() => b.conv2d(x, fill(4 * 3 * 99, 3), [4, 3, 9, 11], null, P1), refused('invalid-option', 'conv2d (width)'));
  assert.throws(() => b.maxPool2d(x, { ...POOL, kernel: [20, 2] }, false), refused('invalid-option', 'maxPool2d (height)'));
  assert.throws(() => b.crop(x, 5, 0, 4, 4), refused('invalid-option', 'crop'));
  assert.throws(() => b.concat([]), refused('invalid-option', 'concat'));
  assert.throws(() => b.concatBackward(x, [1, 1]), refused('invalid-option', 'concatBackward'));
  assert.throws(() => b.upsampleNearest(x, 0), refused('invalid-option', 'upsampleNearest'));
  assert.throws(() => b.dropout(x, 1, 1), refused('invalid-option', 'dropout'));
  assert.throws(() => b.softmaxCrossEntropy(x, { labels: new Int32Array(3) }), refused('invalid-option', 'softmaxCrossEntropy'));
  const bad = new Int32Array(2 * 8 * 8);
  bad[5] = 3;
  assert.throws(() => b.softmaxCrossEntropy(x, { labels: bad }), /label 3/);
  const ref = createReferenceBackend('float32');
  const rx = ref.fromArray(new Float32Array(6), [1, 1, 2, 3]);
  assert.throws(() => b.relu(rx), refused('invalid-option', 'relu x'));
  const y = b.relu(x);
  y.dispose();
  assert.throws(() => b.relu(y), refused('invalid-option', 'tensor [2x3x8x8]'));
  y.dispose(); // idempotent
  x.dispose();
});

test('backend-level validation of 3-d convolution: bad shapes and params throw before any native call', () => {
  const b = be!;
  const x = b.fromArray(fill(2 * 3 * 4 * 6 * 6, 1), [2, 3, 4, 6, 6]);
  const x2 = b.fromArray(fill(2 * 3 * 6 * 6, 1), [2, 3, 6, 6]);
  const w = fill(4 * 3 * 9, 2);
  assert.throws(() => b.fromArray(new Float32Array(7), [1, 1, 1, 2, 3]), refused('invalid-option', 'fromArray', /elements/));
  assert.throws(() => b.fromArray(new Float32Array(6), [1, 1, 1, 1, 2, 3]), refused('invalid-option', 'fromArray', /4-d/));
  assert.throws(() => b.conv3d(x, w.subarray(1), [4, 3, 1, 3, 3], null, P3), refused('invalid-option', 'conv3d weights'));
  assert.throws(() => b.conv3d(x, w, [4, 2, 1, 3, 3], null, P3), refused('invalid-option', 'conv3d', /channels/));
  assert.throws(() => b.conv3d(x, w, [4, 3, 1, 3, 3], new Float32Array(3), P3), refused('invalid-option', 'conv3d bias'));
  assert.throws(() => b.conv3d(x, w, [4, 3, 1, 3, 3], null, { ...P3, stride: [1, 1, 0] }), refused('invalid-option', 'conv3d stride'));
  assert.throws(() => b.conv3d(x, w, [4, 3, 1, 3, 3], null, { ...P3, padding: [0, 1, 1, 0, -1, 1] }),
    refused('invalid-option', 'conv3d', /padding/));
  assert.throws(() => b.conv3d(x, w, [4, 3, 1, 3, 3], null, { ...P3, dilation: [1, 1.5, 1] }), refused('invalid-option', 'conv3d dilation'));
  assert.throws(() => b.conv3d(x, fill(4 * 3 * 45, 3), [4, 3, 5, 3, 3], null, P3), refused('invalid-option', 'conv3d (depth)'));
  assert.throws(() => b.conv3d(x2, w, [4, 3, 1, 3, 3], null, P3), refused('invalid-option', 'conv3d input', /5-d/));
  assert.throws(() => b.conv2d(x, w, [4, 3, 3, 3], null, P1), refused('invalid-option', 'conv2d input', /4-d/));
  const POOL3 = { kernel: [1, 2, 2], stride: [1, 2, 2], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] } as const;
  assert.throws(() => b.maxPool3d(x2, POOL3, false), refused('invalid-option', 'maxPool3d input', /5-d/));
  assert.throws(() => b.maxPool3d(x, { ...POOL3, kernel: [5, 2, 2] }, false), refused('invalid-option', 'maxPool3d (depth)'));
  assert.throws(() => b.maxPool3d(x, { ...POOL3, stride: [1, 2, 0] }, false), refused('invalid-option', 'maxPool3d stride'));
  assert.throws(() => b.maxPool2d(x, POOL, false), refused('invalid-option', 'maxPool2d input', /4-d/));
  const pooled = b.maxPool3d(x, POOL3, true);
  assert.throws(() => b.maxPool3dBackward(x, pooled.workspace!, [2, 3, 4, 6, 6], POOL3),
    refused('invalid-option', 'maxPool3dBackward dy (for x [2x3x4x6x6])'));
  assert.throws(() => b.maxPool3dBackward(pooled.y, null as unknown as Tensor, [2, 3, 4, 6, 6], POOL3),
    refused('invalid-option', 'maxPool3dBackward'));
  pooled.y.dispose();
  pooled.workspace!.dispose();
  assert.throws(() => b.conv3dBackwardData(x, w, [4, 3, 1, 3, 3], [2, 3, 4, 6, 6], P3),
    refused('invalid-option', 'conv3dBackwardData dy (for x [2x3x4x6x6])'));
  assert.throws(() => b.conv3dBackwardWeights(x, x, [4, 3, 1, 3, 3], P3, true),
    refused('invalid-option', 'conv3dBackwardWeights dy (for x [2x3x4x6x6])'));
  const y = b.conv3d(x, w, [4, 3, 1, 3, 3], null, P3);
  assert.deepEqual(describeNativeTensor(y).shape, [2, 4, 4, 6, 6]);
  y.dispose();
  x.dispose();
  x2.dispose();
});

test('addon-level validation of 3-d convolution and 5-d tensors: JS errors, never a crash', () => {
  const n = addon!;
  const x = n.fromArray(fill(1 * 2 * 3 * 5 * 5, 4), [1, 2, 3, 5, 5], false);
  const x4 = n.fromArray(fill(1 * 2 * 5 * 5, 4), [1, 2, 5, 5], false);
  const w = fill(3 * 2 * 9, 5);
  const any = n as unknown as Record<string, (...args: unknown[]) => unknown>;
  const S = [1, 1, 1];
  const PAD = [0, 1, 1, 0, 1, 1];
  const cases: [string, unknown[]][] = [
    ['conv3d', []],
    ['conv3d', [x4, w, [3, 2, 1, 3, 3], null, S, PAD, S, false]],
    ['conv3d', [x, w, [3, 2, 3, 3], null, S, PAD, S, false]],
    ['conv3d', [x, w, [3, 2, 1, 3, 3], null, [1, 1], PAD, S, false]],
    ['conv3d', [x, w, [3, 2, 1, 3, 3], null, S, [1, 1, 1, 1], S, false]],
    ['conv3d', [x, w, [3, 2, 1, 3, 3], null, S, PAD, [1, 0, 1], false]],
    ['conv3d', [x, w, [3, 2, 1, 3, 3], null, S, [0, 1, 1, 0, -1, 1], S, false]],
    ['conv3d', [x, w, [3, 4, 1, 3, 3], null, S, PAD, S, false]],
    ['conv3d', [x, w.subarray(1), [3, 2, 1, 3, 3], null, S, PAD, S, false]],
    ['conv3d', [x, fill(3 * 2 * 36, 1), [3, 2, 4, 3, 3], null, S, PAD, S, false]],
    ['conv3dBackwardData', [x, w, [3, 2, 1, 3, 3], [1, 2, 3, 5, 5], S, PAD, S]],
    ['conv3dBackwardData', [x, w, [3, 2, 1, 3, 3], [1, 2, 5, 5], S, PAD, S]],
    ['conv3dBackwardWeights', [x, x, [3, 2, 1, 3, 3], S, PAD, S, true]],
    ['conv3dBackwardWeights', [x4, x4, [3, 2, 1, 3, 3], S, PAD, S, true]],
    ['conv2d', [x, w, [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['maxPool2d', [x, [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], false]],
    ['dropout', [x, 0.5, 3]],
    ['crop', [x, 0, 0, 2, 2]],
    ['maxPool3d', [x4, [1, 2, 2], [1, 2, 2], [0, 0, 0, 0, 0, 0], [1, 1, 1], false]],
    ['maxPool3d', [x, [2, 2], [1, 2, 2], [0, 0, 0, 0, 0, 0], [1, 1, 1], false]],
    ['maxPool3d', [x, [1, 2, 2], [1, 2, 2], [0, 0, 0, 0], [1, 1, 1], false]],
    ['maxPool3d', [x, [4, 2, 2], [1, 2, 2], [0, 0, 0, 0, 0, 0], [1, 1, 1], false]],
    ['maxPool3d', [x, [1, 2, 2], [1, 0, 2], [0, 0, 0, 0, 0, 0], [1, 1, 1], false]],
    ['maxPool3d', [x, [1, 2, 2], [1, 2, 2], [0, 0, 0, 0, 0, 0], [1, 1, 1]]],
    ['maxPool3dBackward', [x, x, [1, 2, 3, 10, 10], [1, 2, 2], [1, 2, 2], [0, 0, 0, 0, 0, 0], [1, 1, 1]]],
    ['fromArray', [new Float32Array(3), [1, 1, 1, 2, 2], false]],
    ['fromArray', [new Float32Array(4), [1, 1, 1, 2, 2, 1], false]],
    ['deconv3d', [x4, w, [3, 2, 1, 3, 3], null, S, PAD, S, false]],
    ['deconv3d', [x, w, [3, 4, 1, 3, 3], null, S, PAD, S, false]],
    ['deconv3d', [x, w, [3, 2, 1, 3, 3], null, S, [9, 1, 1, 9, 1, 1], S, false]],
    ['deconv3dBackwardData', [x, w, [3, 2, 1, 3, 3], [1, 2, 3, 5, 5], S, PAD, S]],
    ['deconv3dBackwardWeights', [x, x, [3, 2, 1, 3, 3], S, PAD, S, true]],
    ['crop3d', [x4, 0, 0, 0, 1, 2, 2]],
    ['crop3d', [x, 3, 0, 0, 1, 2, 2]],
    ['crop3d', [x, 0, 0, 0, 4, 2, 2]],
    ['crop3dBackward', [x, [1, 2, 3, 5, 5], 1, 0, 0]],
    ['crop3dBackward', [x, [1, 2, 5, 5], 0, 0, 0]],
    ['concat', [[x, x4]]],
    ['concatBackward', [x, [1, 2]]],
    ['softmaxCrossEntropy', [x, new Int32Array(5), null]],
    ['sigmoidCrossEntropy', [x, new Float32Array(5), null]],
    ['sigmoidCrossEntropy', [x, new Float32Array(150).fill(2), null]],
    ['sigmoidCrossEntropy', [x, new Float32Array(150), new Float32Array(150).fill(-1)]],
  ];
  for (const [fn, args] of cases) {
    assert.throws(() => any[fn]!(...args), (e: unknown) => e instanceof Error,
      `${fn}(${args.map((a) => typeof a).join(', ')}) should throw`);
  }
  assert.throws(() => n.dropout(x, 0.5, 3), /expected a 4-d tensor, got 5-d \[1,2,3,5,5\]/);
  // a 3-d pooling workspace serves only the backward pass of the same 3-d pooling
  const [py, ws] = n.maxPool3d(x, [1, 2, 2], [1, 2, 2], [0, 0, 0, 0, 0, 0], [1, 1, 1], true);
  assert.deepEqual(n.describe(py).shape, [1, 2, 3, 2, 2]);
  const P0 = [0, 0, 0, 0, 0, 0] as const;
  assert.throws(() => n.toArray(ws!), /workspace/);
  assert.throws(() => n.maxPool3dBackward(py, py, [1, 2, 3, 5, 5], [1, 2, 2], [1, 2, 2], P0, [1, 1, 1]), /workspace/);
  assert.throws(() => n.maxPool3dBackward(py, ws!, [1, 2, 3, 5, 5], [2, 2, 2], [1, 2, 2], P0, [1, 1, 1]), /params differ/);
  assert.throws(() => n.maxPool3dBackward(py, ws!, [1, 2, 3, 5, 6], [1, 2, 2], [1, 2, 2], P0, [1, 1, 1]), /xShape/);
  assert.throws(() => n.maxPool2dBackward(py, ws!, [1, 2, 5, 5], [2, 2], [2, 2], [0, 0, 0, 0], [1, 1]), /4-d/);
  const dx = n.maxPool3dBackward(py, ws!, [1, 2, 3, 5, 5], [1, 2, 2], [1, 2, 2], P0, [1, 1, 1]);
  assert.deepEqual(n.describe(dx).shape, [1, 2, 3, 5, 5]);
  for (const h of [py, ws!, dx]) n.release(h);
  // the process is still healthy, and 5-d tensors round-trip
  assert.deepEqual(n.toArray(x), fill(1 * 2 * 3 * 5 * 5, 4));
  const y = n.conv3d(x, w, [3, 2, 1, 3, 3], null, S as unknown as [number, number, number],
    PAD as unknown as [number, number, number, number, number, number], S as unknown as [number, number, number], true);
  assert.deepEqual(n.describe(y).shape, [1, 3, 3, 5, 5]);
  assert.equal(n.toArray(y).length, 3 * 3 * 25);
  n.release(y);
  n.release(x);
  n.release(x4);
});

test('addon-level validation: garbage arguments throw JS errors, never crash', () => {
  const n = addon!;
  const x = n.fromArray(fill(1 * 2 * 6 * 6, 4), [1, 2, 6, 6], false);
  const w = fill(3 * 2 * 3 * 3, 5);
  const any = n as unknown as Record<string, (...args: unknown[]) => unknown>;
  const cases: [string, unknown[]][] = [
    ['conv2d', []],
    ['conv2d', [x]],
    ['conv2d', [-1, w, [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [1.5, w, [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [NaN, w, [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', ['x', w, [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [{}, w, [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [123456789, w, [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [x, Float64Array.from(w), [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [x, w, [3, 2, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [x, w, [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], 'yes']],
    ['conv2d', [x, w, [3, 2, 3, 3], new Float32Array(2), [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [x, w, [3, 2, 3, 3], null, [0, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [x, w, [3, 2, 3, 3], null, [1, 1], [1, 1, -1, 1], [1, 1], false]],
    ['conv2d', [x, w, [3, 2, 3, 3], null, [1, 1], [1, 1, 1, 1], [0, 1], false]],
    ['conv2d', [x, w, [3, 5, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['conv2d', [x, fill(3 * 2 * 81, 1), [3, 2, 9, 9], null, [1, 1], [0, 0, 0, 0], [1, 1], false]],
    ['conv2dBackwardData', [x, w, [3, 2, 3, 3], [1, 2, 9, 9], [1, 1], [1, 1, 1, 1], [1, 1]]],
    ['conv2dBackwardWeights', [x, x, [3, 2, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], true]],
    ['deconv2d', [x, w, [3, 3, 3, 3], null, [1, 1], [1, 1, 1, 1], [1, 1], false]],
    ['maxPool2d', [x, [2, 2], [2, 2], [0, 0, 0, 0], [1, 1]]],
    ['maxPool2dBackward', [x, x, [1, 2, 12, 12], [2, 2], [2, 2], [0, 0, 0, 0], [1, 1]]],
    ['lrn', [x, true, 0, 1, 1, 1, false]],
    ['lrn', [x, true, 3, Infinity, 1, 1, false]],
    ['lrnBackward', [x, x, x, true, 3, 1, 1, 1]],
    ['add', [x, 99999]],
    ['dropout', [x, 1.5, 3]],
    ['dropout', [x, 0.5, -3]],
    ['crop', [x, 0, 0, 7, 1]],
    ['cropBackward', [x, [1, 2, 4, 4], 0, 0]],
    ['concat', [x]],
    ['concat', [[x, 'y']]],
    ['concatBackward', [x, [1, 2]]],
    ['concatBackward', [x, 2]],
    ['upsampleNearest', [x, 0]],
    ['upsampleNearestBackward', [x, 4]],
    ['softmaxCrossEntropy', [x, new Float32Array(36), null]],
    ['softmaxCrossEntropy', [x, new Int32Array(35), null]],
    ['softmaxCrossEntropy', [x, new Int32Array(36).fill(2), null]],
    ['softmaxCrossEntropy', [x, new Int32Array(36), new Float32Array(36).fill(-1)]],
    ['fromArray', [new Float32Array(3), [1, 1, 2, 2], false]],
    ['fromArray', [new Float32Array(4), [1, 1, 2, -2], false]],
    ['toArray', [0]],
    ['setThreads', [0]],
  ];
  for (const [fn, args] of cases) {
    assert.throws(() => any[fn]!(...args), (e: unknown) => e instanceof Error,
      `${fn}(${args.map((a) => typeof a).join(', ')}) should throw`);
  }
  // a workspace is not an activation, and an activation is not a workspace
  const [py, ws] = n.maxPool2d(x, [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], true);
  assert.throws(() => n.relu(ws!), /workspace/);
  assert.throws(() => n.toArray(ws!), /workspace/);
  assert.throws(() => n.maxPool2dBackward(py, py, [1, 2, 6, 6], [2, 2], [2, 2], [0, 0, 0, 0], [1, 1]), /workspace/);
  assert.throws(() => n.maxPool2dBackward(py, ws!, [1, 2, 6, 6], [3, 3], [2, 2], [0, 0, 0, 0], [1, 1]));
  // releases are idempotent: the second one reports false
  assert.equal(n.release(py), true);
  assert.equal(n.release(py), false);
  assert.equal(n.release(ws!), true);
  assert.equal(n.release(-5), false);
  assert.throws(() => n.relu(py), /released/);
  // the process is still healthy
  const y = n.relu(x);
  assert.equal(n.toArray(y).length, 72);
  n.release(y);
  n.release(x);
});

/** One training step of a small conv+relu+pool+CE stack; disposes everything it creates. */
function trainStep(b: Backend, xd: Float32Array, labels: Int32Array, w1: Float32Array, w2: Float32Array): number {
  const p2: ConvParams = { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] };
  const x = b.fromArray(xd, [1, 1, 32, 32]);
  const a1 = b.conv2d(x, w1, [16, 1, 3, 3], null, { ...P1, relu: true });
  const p = b.maxPool2d(a1, POOL, true);
  const z = b.conv2d(p.y, w2, [2, 16, 1, 1], null, p2);
  const up = b.upsampleNearest(z, 2);
  const ce = b.softmaxCrossEntropy(up, { labels });
  const dz = b.upsampleNearestBackward(ce.dlogits, 2);
  b.conv2dBackwardWeights(p.y, dz, [2, 16, 1, 1], p2, false);
  const dp = b.conv2dBackwardData(dz, w2, [2, 16, 1, 1], p.y.shape, p2);
  const da = b.maxPool2dBackward(dp, p.workspace!, a1.shape, POOL);
  const dr = b.reluBackward(a1, da);
  b.conv2dBackwardWeights(x, dr, [16, 1, 3, 3], P1, false);
  for (const t of [x, a1, p.y, p.workspace!, z, up, ce.dlogits, dz, dp, da, dr] as Tensor[]) t.dispose();
  return ce.loss;
}

test('leak test: 1,000 training steps keep rss, live buffers and the primitive cache bounded', () => {
  const b = be!;
  const xd = fill(32 * 32, 7);
  const labels = new Int32Array(32 * 32).map((_, i) => (i % 5 === 0 ? -1 : i % 2));
  const w1 = fill(16 * 9, 8);
  const w2 = fill(32, 9);
  for (let i = 0; i < 50; i++) trainStep(b, xd, labels, w1, w2);
  const s0 = nativeStats();
  const rss0 = process.memoryUsage().rss;
  let loss = 0;
  for (let i = 0; i < 1000; i++) loss = trainStep(b, xd, labels, w1, w2);
  const s1 = nativeStats();
  const rss1 = process.memoryUsage().rss;
  assert.ok(Number.isFinite(loss));
  assert.equal(s1.tensors, s0.tensors, 'live tensors');
  assert.equal(s1.liveBuffers, s0.liveBuffers, 'live buffers');
  assert.equal(s1.liveBytes, s0.liveBytes, 'live bytes');
  assert.ok(s1.pooledBuffers <= s0.pooledBuffers + 2, `pool grew: ${s0.pooledBuffers} -> ${s1.pooledBuffers}`);
  assert.equal(s1.cachedPrimitives, s0.cachedPrimitives, 'primitives were re-created in steady state');
  const grow = (rss1 - rss0) / 2 ** 20;
  assert.ok(grow < 40, `rss grew by ${grow.toFixed(1)} MiB over 1,000 steps`);
});

test('activations stay in the primitives\' layouts between layers (no plain round trips)', () => {
  const b = be!;
  const x = b.fromArray(fill(1 * 32 * 16 * 16, 10), [1, 32, 16, 16]);
  const a1 = b.conv2d(x, fill(48 * 32 * 9, 11), [48, 32, 3, 3], null, { ...P1, relu: true });
  const a2 = b.conv2d(a1, fill(48 * 48 * 9, 12), [48, 48, 3, 3], null, { ...P1, relu: true });
  const p = b.maxPool2d(a2, POOL, false);
  const l1 = describeNativeTensor(a1).layout;
  assert.equal(describeNativeTensor(x).layout, 'f32:abcd');
  assert.equal(describeNativeTensor(a2).layout, l1, 'consecutive convs share a layout');
  assert.equal(describeNativeTensor(p.y).layout, l1, 'pooling keeps its input layout');
  // the values are still right when read back
  assert.equal(p.y.toArray().length, 48 * 8 * 8);
  for (const t of [x, a1, a2, p.y]) t.dispose();
});

test('FinalizationRegistry frees forgotten tensors; explicit release is not freed twice', async () => {
  const b = be!;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const before = nativeStats().tensors;
  (() => {
    for (let i = 0; i < 20; i++) b.fromArray(new Float32Array(64), [1, 1, 8, 8]); // never disposed
    for (let i = 0; i < 20; i++) b.fromArray(new Float32Array(64), [1, 1, 8, 8]).dispose();
  })();
  assert.equal(nativeStats().tensors, before + 20);
  for (let i = 0; i < 20 && nativeStats().tensors > before; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(nativeStats().tensors, before, 'forgotten tensors were finalised');
  // tensors still alive are untouched by collections of others
  const keep = b.fromArray(new Float32Array(64).fill(3), [1, 1, 8, 8]);
  gc();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(keep.toArray()[5], 3);
  keep.dispose();
});
