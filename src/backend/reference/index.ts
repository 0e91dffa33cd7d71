/**
 * The plain-TypeScript reference backend: the ground truth every native kernel is compared against.
 * Storage is a plain NCHW Float32Array or Float64Array (by precision); in float64 mode everything is computed and
 * returned in float64 (that is what finite-difference checks use). Kernels favour clarity over speed.
 * One file per kernel family; see each file's header for the exact semantics (oneDNN 2.x conventions).
 */
import { EmsegError } from '../../errors.js';
import { checkFromArray, checkToArrayOut } from '../geometry.js';
import type { Backend } from '../backend.js';
import type { FloatArray, Shape, Tensor } from '../../tensor/tensor.js';
import { type RefContext, type RefPrecision, createContext } from './util.js';
import * as conv from './conv.js';
import * as pool from './pool.js';
import * as elementwise from './elementwise.js';
import * as deconv from './deconv.js';
import * as lrn from './lrn.js';
import * as shapeOps from './shape.js';
import * as loss from './loss.js';

export type { RefPrecision } from './util.js';
export { transposeOI } from './deconv.js';
export { deconvOutSize } from '../geometry.js';
export { mulberry32 } from './elementwise.js';

export function createReferenceBackend(precision: RefPrecision = 'float32'): Backend {
  if (precision !== 'float32' && precision !== 'float64') {
    throw new EmsegError('invalid-option', 'createReferenceBackend', `precision must be 'float32' or 'float64', got '${String(precision)}'`);
  }
  let ctx!: RefContext;
  const backend: Backend = {
    name: 'reference',
    precision,

    fromArray(data: FloatArray, shape: Shape): Tensor {
      checkFromArray(data, shape);
      const copy = ctx.alloc(data.length);
      copy.set(data);
      return ctx.wrap(copy, shape);
    },
    toArray(t: Tensor, out?: Float32Array): FloatArray {
      checkToArrayOut(out, t.shape);
      const data = ctx.data(t, 'toArray');
      if (!out) return data.slice();
      out.set(data);
      return out;
    },
    release(t: Tensor): void {
      // Drop the reference so the array can be collected even if the (disposed) Tensor object lingers.
      (t as { storage: unknown }).storage = null;
    },

    conv2d: (x, w, wShape, b, p) => conv.conv2d(ctx, x, w, wShape, b, p),
    conv2dBackwardData: (dy, w, wShape, xShape, p) => conv.conv2dBackwardData(ctx, dy, w, wShape, xShape, p),
    conv2dBackwardWeights: (x, dy, wShape, p, withBias) => conv.conv2dBackwardWeights(ctx, x, dy, wShape, p, withBias),

    conv3d: (x, w, wShape, b, p) => conv.conv3d(ctx, x, w, wShape, b, p),
    conv3dBackwardData: (dy, w, wShape, xShape, p) => conv.conv3dBackwardData(ctx, dy, w, wShape, xShape, p),
    conv3dBackwardWeights: (x, dy, wShape, p, withBias) => conv.conv3dBackwardWeights(ctx, x, dy, wShape, p, withBias),

    deconv2d: (x, w, wShape, b, p) => deconv.deconv2d(ctx, x, w, wShape, b, p),
    deconv2dBackwardData: (dy, w, wShape, xShape, p) => deconv.deconv2dBackwardData(ctx, dy, w, wShape, xShape, p),
    deconv2dBackwardWeights: (x, dy, wShape, p, withBias) =>
      deconv.deconv2dBackwardWeights(ctx, x, dy, wShape, p, withBias),

    maxPool2d: (x, p, training) => pool.maxPool2d(ctx, x, p, training),
    maxPool2dBackward: (dy, ws, xShape, p) => pool.maxPool2dBackward(ctx, dy, ws, xShape, p),
    deconv3d: (x, w, wShape, b, p) => deconv.deconv3d(ctx, x, w, wShape, b, p),
    deconv3dBackwardData: (dy, w, wShape, xShape, p) => deconv.deconv3dBackwardData(ctx, dy, w, wShape, xShape, p),
    deconv3dBackwardWeights: (x, dy, wShape, p, withBias) =>
      deconv.deconv3dBackwardWeights(ctx, x, dy, wShape, p, withBias),
    maxPool3d: (x, p, training) => pool.maxPool3d(ctx, x, p, training),
    maxPool3dBackward: (dy, ws, xShape, p) => pool.maxPool3dBackward(ctx, dy, ws, xShape, p),

    lrn: (x, p, training) => lrn.lrn(ctx, x, p, training),
    lrnBackward: (x, dy, ws, p) => lrn.lrnBackward(ctx, x, dy, ws, p),

    relu: (x) => elementwise.relu(ctx, x),
    reluBackward: (y, dy) => elementwise.reluBackward(ctx, y, dy),
    add: (a, b) => elementwise.add(ctx, a, b),
    dropout: (x, rate, seed) => elementwise.dropout(ctx, x, rate, seed),
    dropoutBackward: (dy, mask) => elementwise.dropoutBackward(ctx, dy, mask),

    crop: (x, top, left, h, w) => shapeOps.crop(ctx, x, top, left, h, w),
    cropBackward: (dy, xShape, top, left) => shapeOps.cropBackward(ctx, dy, xShape, top, left),
    crop3d: (x, front, top, left, d, h, w) => shapeOps.crop3d(ctx, x, front, top, left, d, h, w),
    crop3dBackward: (dy, xShape, front, top, left) => shapeOps.crop3dBackward(ctx, dy, xShape, front, top, left),
    concat: (xs) => shapeOps.concat(ctx, xs),
    concatBackward: (dy, channels) => shapeOps.concatBackward(ctx, dy, channels),
    upsampleNearest: (x, factor) => shapeOps.upsampleNearest(ctx, x, factor),
    upsampleNearestBackward: (dy, factor) => shapeOps.upsampleNearestBackward(ctx, dy, factor),

    softmax: (x) => loss.softmax(ctx, x),
    softmaxCrossEntropy: (logits, target) => loss.softmaxCrossEntropy(ctx, logits, target),
    sigmoid: (x) => loss.sigmoid(ctx, x),
    sigmoidCrossEntropy: (logits, target) => loss.sigmoidCrossEntropy(ctx, logits, target),
  };
  ctx = createContext(backend, precision);
  return backend;
}
