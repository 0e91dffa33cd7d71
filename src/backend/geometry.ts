/**
 * Argument validation and output geometry of every backend op, computed once here and handed to each backend
 * (as tfjs does): the reference kernels and the oneDNN backend refuse the same bad input with the same
 * EmsegError ('invalid-option', path = the op and argument) and agree on every output shape by construction.
 */
import { EmsegError } from '../errors.js';
import { type FloatArray, type Shape, formatShape, numel } from '../tensor/tensor.js';
import type {
  Conv3dParams, ConvParams, CrossEntropyTarget, LrnParams, Padding, Padding3, Pair, Pool3dParams, PoolParams, SigmoidTarget,
  Triple,
} from './backend.js';

export type I2 = readonly [number, number];
export type I3 = readonly [number, number, number];
export type I4 = readonly [number, number, number, number];
export type I5 = readonly [number, number, number, number, number];
export type I6 = readonly [number, number, number, number, number, number];

function invalid(what: string, message: string): EmsegError {
  return new EmsegError('invalid-option', what, message);
}

/** A 4-d NCHW shape of positive integers. */
export function dims4(shape: Shape, what: string): [number, number, number, number] {
  if (!Array.isArray(shape) && !ArrayBuffer.isView(shape)) throw invalid(what, 'expected a shape array');
  if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw invalid(what, `expected a 4-d NCHW shape of positive integers, got ${formatShape(shape)}`);
  }
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}

/** A 5-d NCDHW shape of positive integers (3-d ops). */
export function dims5(shape: Shape, what: string): [number, number, number, number, number] {
  if (!Array.isArray(shape) && !ArrayBuffer.isView(shape)) throw invalid(what, 'expected a shape array');
  if (shape.length !== 5 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw invalid(what, `expected a 5-d NCDHW shape of positive integers, got ${formatShape(shape)}`);
  }
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!, shape[4]!];
}

/** A tensor shape a backend can store: 4-d NCHW (2-d ops) or 5-d NCDHW (3-d ops). */
export function storableDims(shape: Shape, what: string): I4 | I5 {
  if (Array.isArray(shape) && shape.length === 5) return dims5(shape, what);
  return dims4(shape, what);
}

export function pair(p: Pair, what: string, min: number): I2 {
  if (!p || p.length !== 2 || !p.every((v) => Number.isInteger(v) && v >= min)) {
    throw invalid(what, `expected two integers >= ${min}, got [${p ? [...p].join(', ') : p}]`);
  }
  return [p[0], p[1]];
}

export function triple(p: Triple, what: string, min: number): I3 {
  if (!p || p.length !== 3 || !p.every((v) => Number.isInteger(v) && v >= min)) {
    throw invalid(what, `expected three integers [d, h, w] >= ${min}, got [${p ? [...p].join(', ') : p}]`);
  }
  return [p[0], p[1], p[2]];
}

export function padding3(p: Padding3, what: string): I6 {
  if (!p || p.length !== 6 || !p.every((v) => Number.isInteger(v) && v >= 0)) {
    throw invalid(what, 'padding must be [front, top, left, back, bottom, right] non-negative integers, got ' +
      `[${p ? [...p].join(', ') : p}]`);
  }
  return [p[0], p[1], p[2], p[3], p[4], p[5]];
}

export function padding(p: Padding, what: string): I4 {
  if (!p || p.length !== 4 || !p.every((v) => Number.isInteger(v) && v >= 0)) {
    throw invalid(what, `padding must be [top, left, bottom, right] non-negative integers, got [${p ? [...p].join(', ') : p}]`);
  }
  return [p[0], p[1], p[2], p[3]];
}

/**
 * Output extent of a convolution / pooling window along one axis:
 * floor((size + padBegin + padEnd - d*(k-1) - 1) / s) + 1, which must be >= 1.
 */
export function windowOutSize(size: number, k: number, s: number, d: number, padBegin: number, padEnd: number,
  what: string): number {
  const span = size + padBegin + padEnd - d * (k - 1) - 1;
  const out = span < 0 ? 0 : Math.floor(span / s) + 1;
  if (out < 1) {
    throw invalid(what, `input extent ${size} (padding ${padBegin}+${padEnd}) is smaller than the dilated kernel ` +
      `extent ${d * (k - 1) + 1}; output size would be ${out}`);
  }
  return out;
}

/** Output extent of a transposed convolution along one axis: (size - 1)*s - padBegin - padEnd + d*(k - 1) + 1. */
export function deconvOutSize(size: number, k: number, s: number, d: number, padBegin: number, padEnd: number,
  what: string): number {
  const out = (size - 1) * s - padBegin - padEnd + d * (k - 1) + 1;
  if (out < 1) {
    throw invalid(what, `padding ${padBegin}+${padEnd} crops away the whole output ` +
      `((${size} - 1)*${s} + ${d * (k - 1) + 1} = ${out + padBegin + padEnd} pixels before cropping)`);
  }
  return out;
}

/** Host data that fills `shape` exactly (backends may further require 4-d). */
export function checkFromArray(data: FloatArray, shape: Shape): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw invalid('fromArray', `invalid shape ${formatShape(shape)}`);
  if (!data || data.length !== numel(shape)) {
    throw invalid('fromArray', `${data?.length} elements do not fill shape ${formatShape(shape)} (${numel(shape)})`);
  }
}

/** An array of exactly n numbers. */
export function checkLength(a: ArrayLike<number> | null | undefined, n: number, what: string): void {
  if (!a || typeof a.length !== 'number') throw invalid(what, 'expected an array of numbers');
  if (a.length !== n) throw invalid(what, `expected ${n} elements, got ${a.length}`);
}

/** toArray's optional target: a Float32Array of exactly the tensor's size (both backends refuse anything else). */
export function checkToArrayOut(out: Float32Array | undefined, shape: Shape): void {
  if (out === undefined) return;
  if (!(out instanceof Float32Array)) throw invalid('toArray out', 'expected a Float32Array');
  checkLength(out, numel(shape), 'toArray out');
}

export function sameShape(a: Shape, b: Shape, what: string): void {
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
    throw invalid(what, `shape mismatch ${formatShape(a)} vs ${formatShape(b)}`);
  }
}

/** `actual` must equal the shape the forward pass produced (gradients). */
export function expectShape(actual: Shape, expected: Shape, what: string): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw invalid(what, `expected shape ${formatShape(expected)}, got ${formatShape(actual)}`);
  }
}

/** All the index arithmetic of one convolution or transposed convolution. */
export interface ConvGeometry {
  N: number; Cin: number; H: number; W: number;
  Cout: number; KH: number; KW: number;
  OH: number; OW: number;
  sh: number; sw: number; dh: number; dw: number; pt: number; pl: number;
  /** The same as tuples, as the native addon takes them. */
  x: I4; w: I4; y: I4; stride: I2; pad: I4; dil: I2;
}

/**
 * Geometry of x [N, Cin, H, W] (*) w [Cout, Cin, KH, KW] -> [N, Cout, OH, OW]; `deconv` selects the transposed
 * convolution's output size (its weights are [Cout, Cin, kh, kw] with Cout = the deconv's output channels).
 */
export function convGeometry(xShape: Shape, wShape: Shape, p: ConvParams, deconv: boolean, what: string): ConvGeometry {
  const x = dims4(xShape, `${what} input`);
  const w = dims4(wShape, `${what} weights`);
  if (w[1] !== x[1]) {
    throw invalid(what, `input ${formatShape(xShape)} has ${x[1]} channels but weights ${formatShape(wShape)} ` +
      `expect ${w[1]} (${deconv ? 'deconv weights are [Cout, Cin, kh, kw], Cout = the deconv\'s output channels'
        : 'weights are [Cout, Cin, kh, kw]'})`);
  }
  if (!p) throw invalid(what, 'missing params');
  const stride = pair(p.stride, `${what} stride`, 1);
  const dil = pair(p.dilation, `${what} dilation`, 1);
  const pad = padding(p.padding, what);
  const out = deconv ? deconvOutSize : windowOutSize;
  const OH = out(x[2], w[2], stride[0], dil[0], pad[0], pad[2], `${what} (height)`);
  const OW = out(x[3], w[3], stride[1], dil[1], pad[1], pad[3], `${what} (width)`);
  return { N: x[0], Cin: x[1], H: x[2], W: x[3], Cout: w[0], KH: w[2], KW: w[3], OH, OW,
    sh: stride[0], sw: stride[1], dh: dil[0], dw: dil[1], pt: pad[0], pl: pad[1],
    x, w, y: [x[0], w[0], OH, OW], stride, pad, dil };
}

/** All the index arithmetic of one 3-d convolution. */
export interface Conv3dGeometry {
  N: number; Cin: number; D: number; H: number; W: number;
  Cout: number; KD: number; KH: number; KW: number;
  OD: number; OH: number; OW: number;
  sd: number; sh: number; sw: number; dd: number; dh: number; dw: number; pf: number; pt: number; pl: number;
  /** The same as tuples, as the native addon takes them. */
  x: I5; w: I5; y: I5; stride: I3; pad: I6; dil: I3;
}

/** Geometry of x [N, Cin, D, H, W] (*) w [Cout, Cin, KD, KH, KW] -> [N, Cout, OD, OH, OW]. */
export function conv3dGeometry(xShape: Shape, wShape: Shape, p: Conv3dParams, what: string): Conv3dGeometry {
  const x = dims5(xShape, `${what} input`);
  const w = dims5(wShape, `${what} weights`);
  if (w[1] !== x[1]) {
    throw invalid(what, `input ${formatShape(xShape)} has ${x[1]} channels but weights ${formatShape(wShape)} ` +
      `expect ${w[1]} (weights are [Cout, Cin, kd, kh, kw])`);
  }
  if (!p) throw invalid(what, 'missing params');
  const stride = triple(p.stride, `${what} stride`, 1);
  const dil = triple(p.dilation, `${what} dilation`, 1);
  const pad = padding3(p.padding, what);
  const axes = ['depth', 'height', 'width'] as const;
  const [OD, OH, OW] = axes.map((axis, a) =>
    windowOutSize(x[2 + a]!, w[2 + a]!, stride[a]!, dil[a]!, pad[a]!, pad[3 + a]!, `${what} (${axis})`)) as
    [number, number, number];
  return { N: x[0], Cin: x[1], D: x[2], H: x[3], W: x[4], Cout: w[0], KD: w[2], KH: w[3], KW: w[4], OD, OH, OW,
    sd: stride[0], sh: stride[1], sw: stride[2], dd: dil[0], dh: dil[1], dw: dil[2], pf: pad[0], pt: pad[1], pl: pad[2],
    x, w, y: [x[0], w[0], OD, OH, OW], stride, pad, dil };
}

/** Weights of `wShape` and a bias of Cout (or none). */
export function checkWeights(w: FloatArray, wShape: Shape, b: FloatArray | null, what: string): void {
  checkLength(w, numel(wShape), `${what} weights`);
  if (b) checkLength(b, wShape[0]!, `${what} bias`);
}

export interface PoolGeometry {
  N: number; C: number; H: number; W: number; OH: number; OW: number;
  KH: number; KW: number; sh: number; sw: number; dh: number; dw: number; pt: number; pl: number;
  x: I4; y: I4; kernel: I2; stride: I2; pad: I4; dil: I2;
}

export function poolGeometry(xShape: Shape, p: PoolParams, what: string): PoolGeometry {
  const x = dims4(xShape, `${what} input`);
  if (!p) throw invalid(what, 'missing params');
  const kernel = pair(p.kernel, `${what} kernel`, 1);
  const stride = pair(p.stride, `${what} stride`, 1);
  const dil = pair(p.dilation, `${what} dilation`, 1);
  const pad = padding(p.padding, what);
  const OH = windowOutSize(x[2], kernel[0], stride[0], dil[0], pad[0], pad[2], `${what} (height)`);
  const OW = windowOutSize(x[3], kernel[1], stride[1], dil[1], pad[1], pad[3], `${what} (width)`);
  return { N: x[0], C: x[1], H: x[2], W: x[3], OH, OW, KH: kernel[0], KW: kernel[1], sh: stride[0], sw: stride[1],
    dh: dil[0], dw: dil[1], pt: pad[0], pl: pad[1], x, y: [x[0], x[1], OH, OW], kernel, stride, pad, dil };
}

export interface Pool3dGeometry {
  N: number; C: number; D: number; H: number; W: number; OD: number; OH: number; OW: number;
  KD: number; KH: number; KW: number; sd: number; sh: number; sw: number; dd: number; dh: number; dw: number;
  pf: number; pt: number; pl: number;
  x: I5; y: I5; kernel: I3; stride: I3; pad: I6; dil: I3;
}

export function pool3dGeometry(xShape: Shape, p: Pool3dParams, what: string): Pool3dGeometry {
  const x = dims5(xShape, `${what} input`);
  if (!p) throw invalid(what, 'missing params');
  const kernel = triple(p.kernel, `${what} kernel`, 1);
  const stride = triple(p.stride, `${what} stride`, 1);
  const dil = triple(p.dilation, `${what} dilation`, 1);
  const pad = padding3(p.padding, what);
  const axes = ['depth', 'height', 'width'] as const;
  const [OD, OH, OW] = axes.map((axis, a) =>
    windowOutSize(x[2 + a]!, kernel[a]!, stride[a]!, dil[a]!, pad[a]!, pad[3 + a]!, `${what} (${axis})`)) as
    [number, number, number];
  return { N: x[0], C: x[1], D: x[2], H: x[3], W: x[4], OD, OH, OW, KD: kernel[0], KH: kernel[1], KW: kernel[2],
    sd: stride[0], sh: stride[1], sw: stride[2], dd: dil[0], dh: dil[1], dw: dil[2], pf: pad[0], pt: pad[1], pl: pad[2],
    x, y: [x[0], x[1], OD, OH, OW], kernel, stride, pad, dil };
}

export function checkLrnParams(p: LrnParams, what: string): void {
  if (!p || (p.region !== 'across' && p.region !== 'within')) {
    throw invalid(what, `region must be 'across' or 'within', got '${String(p?.region)}'`);
  }
  if (!Number.isInteger(p.size) || p.size < 1) throw invalid(what, `size must be a positive integer, got ${p.size}`);
  for (const key of ['alpha', 'beta', 'k'] as const) {
    if (!Number.isFinite(p[key])) throw invalid(what, `${key} must be finite, got ${p[key]}`);
  }
}

export function checkDropout(rate: number, seed: number): void {
  if (!(rate >= 0 && rate < 1)) throw invalid('dropout', `rate must be in [0, 1), got ${rate}`);
  if (!Number.isFinite(seed)) throw invalid('dropout', `seed must be a finite number, got ${seed}`);
}

/** Shape of a 3-d transposed convolution of x [N, Cin, D, H, W] by w [Cout, Cin, kd, kh, kw]: [N, Cout, OD, OH, OW]. */
export function deconv3dOutShape(xShape: Shape, wShape: Shape, p: Conv3dParams, what: string): I5 {
  const x = dims5(xShape, `${what} input`);
  const w = dims5(wShape, `${what} weights`);
  if (w[1] !== x[1]) {
    throw invalid(what, `input ${formatShape(xShape)} has ${x[1]} channels but weights ${formatShape(wShape)} ` +
      `expect ${w[1]} (deconv weights are [Cout, Cin, kd, kh, kw], Cout = the deconv's output channels)`);
  }
  if (!p) throw invalid(what, 'missing params');
  const stride = triple(p.stride, `${what} stride`, 1);
  const dil = triple(p.dilation, `${what} dilation`, 1);
  const pad = padding3(p.padding, what);
  const axes = ['depth', 'height', 'width'] as const;
  const [OD, OH, OW] = axes.map((axis, a) =>
    deconvOutSize(x[2 + a]!, w[2 + a]!, stride[a]!, dil[a]!, pad[a]!, pad[3 + a]!, `${what} (${axis})`)) as
    [number, number, number];
  return [x[0], w[0], OD, OH, OW];
}

/**
 * Geometry of a 3-d transposed convolution x [N, Cin, D, H, W] -> y [N, Cout, OD, OH, OW] as the convolution it is
 * the adjoint of: conv3dGeometry of y's shape by the transposed weights [Cin, Cout, kd, kh, kw] (whose output is x's
 * shape). Returns that geometry and y's shape.
 */
export function deconv3dGeometry(xShape: Shape, wShape: Shape, p: Conv3dParams, what: string):
  { g: Conv3dGeometry; y: I5; w: I5 } {
  const y = deconv3dOutShape(xShape, wShape, p, what);
  const w = dims5(wShape, `${what} weights`);
  return { g: conv3dGeometry(y, [w[1], w[0], w[2], w[3], w[4]], p, what), y, w };
}

/** The crop window [front, top, left] + d x h x w inside a 5-d x; returns the cropped shape. */
export function crop3dGeometry(xShape: Shape, at: I3, size: I3, what: string): I5 {
  const [N, C, D, H, W] = dims5(xShape, `${what} input`);
  if (!Array.isArray(at) || at.length !== 3 || !at.every((v) => Number.isInteger(v) && v >= 0)) {
    throw invalid(what, `front, top and left must be non-negative integers, got [${String(at)}]`);
  }
  if (!Array.isArray(size) || size.length !== 3 || !size.every((v) => Number.isInteger(v) && v >= 1)) {
    throw invalid(what, `crop size must be positive integers, got [${String(size)}]`);
  }
  if (at[0] + size[0] > D || at[1] + size[1] > H || at[2] + size[2] > W) {
    throw invalid(what, `window [${at.join(', ')}] + ${size.join('x')} does not fit in input ${formatShape(xShape)}`);
  }
  return [N, C, size[0], size[1], size[2]];
}

/** dy of a 3-d crop and the input shape it goes back to; returns the input shape. */
export function crop3dBackwardGeometry(dyShape: Shape, xShape: Shape, at: I3): I5 {
  const what = 'crop3dBackward';
  const [N, C, d, h, w] = dims5(dyShape, `${what} dy`);
  const x = dims5(xShape, `${what} xShape`);
  if (x[0] !== N || x[1] !== C) {
    throw invalid(what, `dy ${formatShape(dyShape)} and x ${formatShape(xShape)} differ in batch or channels`);
  }
  crop3dGeometry(xShape, at, [d, h, w], what);
  return x;
}

/** Targets in [0, 1] and optional weights (>= 0; 0 = ignored), one per element of the logits (4-d or 5-d). */
export function checkSigmoidTarget(logitsShape: Shape, target: SigmoidTarget): void {
  const what = 'sigmoidCrossEntropy';
  const E = numel(storableDims(logitsShape, `${what} logits`));
  const targets = target?.targets;
  if (!(targets instanceof Float32Array)) throw invalid(what, 'targets must be a Float32Array');
  if (targets.length !== E) {
    throw invalid(what, `${targets.length} targets for logits ${formatShape(logitsShape)} (expected one per element, ${E})`);
  }
  const weights = target.weights ?? null;
  if (weights !== null && !((weights as unknown) instanceof Float32Array)) throw invalid(what, 'weights must be a Float32Array');
  if (weights !== null && weights.length !== E) {
    throw invalid(what, `${weights.length} weights for logits ${formatShape(logitsShape)} (expected one per element, ${E})`);
  }
  for (let i = 0; i < E; i++) {
    if (!(targets[i]! >= 0 && targets[i]! <= 1)) throw invalid(what, `target ${targets[i]} at element ${i} is outside [0, 1]`);
    const w = weights ? weights[i]! : 1;
    if (!(w >= 0) || !Number.isFinite(w)) throw invalid(what, `weight ${w} at element ${i} must be finite and >= 0`);
  }
}

/** The crop window [top, left] + h x w inside x; returns the cropped shape. */
export function cropGeometry(xShape: Shape, top: number, left: number, h: number, w: number, what: string): I4 {
  const [N, C, H, W] = dims4(xShape, `${what} input`);
  for (const [name, v] of [['top', top], ['left', left]] as const) {
    if (!Number.isInteger(v) || v < 0) throw invalid(what, `${name} must be a non-negative integer, got ${v}`);
  }
  if (!Number.isInteger(h) || h < 1 || !Number.isInteger(w) || w < 1) {
    throw invalid(what, `crop size must be positive integers, got ${h}x${w}`);
  }
  if (top + h > H || left + w > W) {
    throw invalid(what, `window [${top}, ${left}] + ${h}x${w} does not fit in input ${formatShape(xShape)}`);
  }
  return [N, C, h, w];
}

/** dy of a crop and the input shape it goes back to; returns the input shape. */
export function cropBackwardGeometry(dyShape: Shape, xShape: Shape, top: number, left: number): I4 {
  const what = 'cropBackward';
  const [N, C, h, w] = dims4(dyShape, `${what} dy`);
  const x = dims4(xShape, `${what} xShape`);
  if (x[0] !== N || x[1] !== C) {
    throw invalid(what, `dy ${formatShape(dyShape)} and x ${formatShape(xShape)} differ in batch or channels`);
  }
  cropGeometry(xShape, top, left, h, w, what);
  return x;
}

/** Inputs (all 4-d or all 5-d) that agree outside the channel axis; returns the concatenated shape. */
export function concatGeometry(shapes: readonly Shape[]): I4 | I5 {
  const what = 'concat';
  if (!Array.isArray(shapes) || shapes.length === 0) throw invalid(what, 'needs at least one tensor');
  const first = storableDims(shapes[0]!, `${what} input 0`);
  let C = 0;
  shapes.forEach((s, k) => {
    const d = storableDims(s, `${what} input ${k}`);
    if (d.length !== first.length || d.some((v, a) => a !== 1 && v !== first[a])) {
      throw invalid(what, `input ${k} ${formatShape(s)} differs from input 0 ${formatShape(shapes[0]!)} outside the ` +
        `channel axis (shapes: ${shapes.map((t) => formatShape(t)).join(', ')})`);
    }
    C += d[1];
  });
  const out = [...first] as [number, number, ...number[]];
  out[1] = C;
  return out as unknown as I4 | I5;
}

/** Channel counts that add up to dy's; returns dy's dimensions (4-d or 5-d). */
export function concatBackwardGeometry(dyShape: Shape, channels: readonly number[]): I4 | I5 {
  const what = 'concatBackward';
  const dy = storableDims(dyShape, `${what} dy`);
  if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => Number.isInteger(c) && c >= 1)) {
    throw invalid(what, `channel counts must be positive integers, got [${String(channels)}]`);
  }
  const total = channels.reduce((a, c) => a + c, 0);
  if (total !== dy[1]) {
    throw invalid(what, `channel counts [${channels.join(', ')}] sum to ${total} but dy ${formatShape(dyShape)} has ${dy[1]}`);
  }
  return dy;
}

function checkFactor(factor: number, what: string): void {
  if (!Number.isInteger(factor) || factor < 1) throw invalid(what, `factor must be a positive integer, got ${factor}`);
}

/** Shape of x upsampled by an integer factor. */
export function upsampleGeometry(xShape: Shape, factor: number): I4 {
  checkFactor(factor, 'upsampleNearest');
  const [N, C, H, W] = dims4(xShape, 'upsampleNearest input');
  return [N, C, H * factor, W * factor];
}

/** Shape the gradient of an upsampling goes back to. */
export function upsampleBackwardGeometry(dyShape: Shape, factor: number): I4 {
  const what = 'upsampleNearestBackward';
  checkFactor(factor, what);
  const [N, C, OH, OW] = dims4(dyShape, `${what} dy`);
  if (OH % factor !== 0 || OW % factor !== 0) {
    throw invalid(what, `dy ${formatShape(dyShape)} is not a multiple of the factor ${factor}`);
  }
  return [N, C, OH / factor, OW / factor];
}

/** Labels (Int32Array) and optional weights (Float32Array) with one entry per pixel (voxel, 5-d) of the logits. */
export function checkCrossEntropyTarget(logitsShape: Shape, target: CrossEntropyTarget): void {
  const what = 'softmaxCrossEntropy';
  const d = storableDims(logitsShape, `${what} logits`);
  const P = numel(d) / d[1];
  const labels = target?.labels;
  if (!(labels instanceof Int32Array)) throw invalid(what, 'labels must be an Int32Array');
  if (labels.length !== P) {
    throw invalid(what, `${labels.length} labels for logits ${formatShape(logitsShape)} (expected N*H*W = ${P})`);
  }
  const weights = target.weights ?? null;
  if (weights === null) return;
  if (!((weights as unknown) instanceof Float32Array)) throw invalid(what, 'weights must be a Float32Array');
  if (weights.length !== P) {
    throw invalid(what, `${weights.length} weights for logits ${formatShape(logitsShape)} (expected N*H*W = ${P})`);
  }
}
