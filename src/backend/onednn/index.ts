/**
 * The oneDNN backend: every kernel of `Backend` runs in the native addon (native/*.cc) on oneDNN 2.x primitives.
 *
 * - Activations live natively (numeric handles) in the layouts oneDNN's primitives pick (e.g. nChw16c), so
 *   consecutive layers pass them on without reorders; `toArray` reorders to plain NCHW float32.
 * - Parameters and gradients are plain Float32Arrays (OIHW weights), wrapped zero-copy for the reorder into the
 *   primitive's weight layout (bf16 conversion included). Primitives are cached per shape/params.
 * - `release` returns storage to the addon's buffer pool at once; a FinalizationRegistry is only a safety net for
 *   tensors that were never disposed (it is unregistered on explicit release, and handles are never reused).
 * - precision 'bfloat16': activations and conv compute in bf16, fp32 master weights from JS, fp32 weight gradients
 *   and fp32 loss. Needs avx512_core_bf16 or AMX (checked when the backend is created).
 *
 * Shapes and params are validated here, before any native call; the addon checks its arguments again and throws JS
 * exceptions (never crashes) on anything inconsistent.
 */
import type {
  Backend, ConvOptions, DeconvOptions, ConvParams, CrossEntropyResult, CrossEntropyTarget, LrnParams, Padding, Pair, PoolParams,
} from '../backend.js';
import { type FloatArray, type Shape, Tensor, formatShape, numel } from '../../tensor/tensor.js';
import {
  type Addon, type Handle, type NativeInfo, type NativeStats, NativeCapabilityError, NativeUnavailableError, loadAddon,
  nativeAddonPath,
} from './addon.js';

export { NativeCapabilityError, NativeUnavailableError, nativeAddonPath };
export type { NativeInfo, NativeStats };

export interface OneDnnOptions {
  precision?: 'float32' | 'bfloat16';
  /** OpenMP threads for oneDNN and the native loops (process-wide setting). Default: OpenMP's own (all cores). */
  threads?: number;
}

/** oneDNN version, CPU runtime, effective ISA, bf16 support and thread count (throws NativeUnavailableError). */
export function nativeInfo(): NativeInfo {
  return loadAddon().info();
}

/** Addon memory/caching counters: live tensors and buffers, pooled buffers, cached primitives. */
export function nativeStats(): NativeStats {
  return loadAddon().stats();
}

/** Frees the buffers parked in the addon's pool (live tensors are unaffected). */
export function trimNativePool(): void {
  loadAddon().trimPool();
}

/** Whether the addon can be loaded here (never throws). */
export function nativeAvailable(): boolean {
  try {
    loadAddon();
    return true;
  } catch {
    return false;
  }
}

/** The addon's (process-wide) convolution layout policy as last set: 0 = oneDNN's choice, 1 = nChw16c. */
let currentLayoutPolicy = 0;

/** Opaque storage of a oneDNN-backend tensor. */
class NativeStorage {
  constructor(readonly id: Handle) {}
}

type I2 = readonly [number, number];
type ConvOp = 'conv2d' | 'deconv2d';
type I4 = readonly [number, number, number, number];

function dims4(shape: Shape, what: string): I4 {
  if (!Array.isArray(shape) && !(ArrayBuffer.isView(shape))) throw new Error(`${what}: expected a shape array`);
  if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`${what}: expected a 4-d NCHW shape of positive integers, got ${formatShape(shape)}`);
  }
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}

function pair(p: Pair, what: string, min: number): I2 {
  if (!p || p.length !== 2 || !p.every((v) => Number.isInteger(v) && v >= min)) {
    throw new Error(`${what}: expected two integers >= ${min}, got [${p ? [...p].join(', ') : p}]`);
  }
  return [p[0], p[1]];
}

function padding(p: Padding, what: string): I4 {
  if (!p || p.length !== 4 || !p.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new Error(`${what}: padding must be [top, left, bottom, right] non-negative integers, ` +
      `got [${p ? [...p].join(', ') : p}]`);
  }
  return [p[0], p[1], p[2], p[3]];
}

/** floor((size + pb + pe - d*(k-1) - 1) / s) + 1, which must be >= 1. */
function windowOut(size: number, k: number, s: number, d: number, pb: number, pe: number, what: string): number {
  const span = size + pb + pe - d * (k - 1) - 1;
  const out = span < 0 ? 0 : Math.floor(span / s) + 1;
  if (out < 1) {
    throw new Error(`${what}: input extent ${size} (padding ${pb}+${pe}) is smaller than the dilated kernel extent ` +
      `${d * (k - 1) + 1}`);
  }
  return out;
}

/** (size - 1)*s - pb - pe + d*(k-1) + 1, which must be >= 1. */
function deconvOut(size: number, k: number, s: number, d: number, pb: number, pe: number, what: string): number {
  const out = (size - 1) * s - pb - pe + d * (k - 1) + 1;
  if (out < 1) throw new Error(`${what}: padding ${pb}+${pe} crops away the whole output`);
  return out;
}

function f32(a: FloatArray | null | undefined, n: number, what: string): Float32Array {
  if (!(a instanceof Float32Array) && !(a instanceof Float64Array)) {
    throw new Error(`${what}: expected a Float32Array`);
  }
  if (a.length !== n) throw new Error(`${what}: expected ${n} elements, got ${a.length}`);
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

function sameShape(a: Shape, b: Shape, what: string): void {
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
    throw new Error(`${what}: shape mismatch ${formatShape(a)} vs ${formatShape(b)}`);
  }
}

interface ConvGeom {
  x: I4; w: I4; y: I4; stride: I2; pad: I4; dil: I2;
}

class OneDnnBackend implements Backend {
  readonly name = 'onednn';
  private readonly bf16: boolean;
  private readonly registry: FinalizationRegistry<Handle>;

  constructor(private readonly n: Addon, readonly precision: 'float32' | 'bfloat16') {
    this.bf16 = precision === 'bfloat16';
    const addon = n;
    this.registry = new FinalizationRegistry<Handle>((id) => {
      addon.release(id);
    });
  }

  // ------------------------------------------------------------------ plumbing
  private wrap(id: Handle, shape: Shape): Tensor {
    const t = new Tensor([...shape], this, new NativeStorage(id));
    this.registry.register(t, id, t);
    return t;
  }

  private id(t: Tensor, what: string): Handle {
    if (!(t instanceof Tensor)) throw new Error(`${what}: expected a Tensor`);
    t.assertAlive();
    const s = t.storage;
    if (t.backend !== this || !(s instanceof NativeStorage)) {
      throw new Error(`${what}: tensor ${formatShape(t.shape)} does not belong to this oneDNN backend ` +
        `(${this.precision}); it comes from backend '${t.backend?.name}' (${t.backend?.precision})`);
    }
    return s.id;
  }

  /** The tensor's native layout, e.g. "f32:aBcd16b" (tests and debugging). */
  describe(t: Tensor): { shape: number[]; layout: string; bytes: number; workspace: boolean } {
    return this.n.describe(this.id(t, 'describe'));
  }

  private convGeom(xShape: Shape, wShape: Shape, p: ConvParams, deconv: boolean, what: string): ConvGeom {
    const x = dims4(xShape, `${what} input`);
    const w = dims4(wShape, `${what} weights`);
    if (w[1] !== x[1]) {
      throw new Error(`${what}: input ${formatShape(xShape)} has ${x[1]} channels but weights ${formatShape(wShape)} ` +
        `expect ${w[1]} (weights are [Cout, Cin, kh, kw])`);
    }
    if (!p) throw new Error(`${what}: missing params`);
    const stride = pair(p.stride, `${what} stride`, 1);
    const dil = pair(p.dilation, `${what} dilation`, 1);
    const pad = padding(p.padding, what);
    const out = deconv ? deconvOut : windowOut;
    const oh = out(x[2], w[2], stride[0], dil[0], pad[0], pad[2], `${what} (height)`);
    const ow = out(x[3], w[3], stride[1], dil[1], pad[1], pad[3], `${what} (width)`);
    return { x, w, y: [x[0], w[0], oh, ow], stride, pad, dil };
  }

  // ------------------------------------------------------------------ storage
  fromArray(data: FloatArray, shape: Shape): Tensor {
    const s = dims4(shape, 'fromArray');
    const a = f32(data, numel(s), `fromArray data for ${formatShape(shape)}`);
    return this.wrap(this.n.fromArray(a, s, this.bf16), s);
  }

  toArray(t: Tensor): FloatArray {
    return this.n.toArray(this.id(t, 'toArray'));
  }

  release(t: Tensor): void {
    const s = t.storage;
    if (!(s instanceof NativeStorage)) return;
    this.registry.unregister(t);
    this.n.release(s.id);
  }

  // ------------------------------------------------------------------ convolution
  /**
   * Training runs every convolution in nChw16c: oneDNN 2.6's backward kernels exist only there, so letting the
   * forward pick nhwc (its brgconv choice) costs a reorder per layer and pass. Inference keeps oneDNN's choice,
   * which is faster there. (The addon's policy is process-wide and part of its primitive-cache keys.)
   */
  private layoutFor(training: boolean): void {
    const policy = training ? 1 : 0;
    if (policy !== currentLayoutPolicy) {
      this.n.setLayoutPolicy(policy);
      currentLayoutPolicy = policy;
    }
  }

  conv2d(x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: ConvOptions): Tensor {
    return this.convForward('conv2d', x, w, wShape, b, p);
  }

  conv2dBackwardData(dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: ConvParams): Tensor {
    return this.convBackwardData('conv2d', dy, w, wShape, xShape, p);
  }

  conv2dBackwardWeights(
    x: Tensor, dy: Tensor, wShape: Shape, p: ConvParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null } {
    return this.convBackwardWeights('conv2d', x, dy, wShape, p, withBias);
  }

  // ------------------------------------------------------------------ transposed convolution
  deconv2d(x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: DeconvOptions): Tensor {
    return this.convForward('deconv2d', x, w, wShape, b, p);
  }

  deconv2dBackwardData(dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: ConvParams): Tensor {
    return this.convBackwardData('deconv2d', dy, w, wShape, xShape, p);
  }

  deconv2dBackwardWeights(
    x: Tensor, dy: Tensor, wShape: Shape, p: ConvParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null } {
    return this.convBackwardWeights('deconv2d', x, dy, wShape, p, withBias);
  }

  /** Convolution and transposed convolution share geometry checks and native signatures; only the op differs. */
  private convForward(op: ConvOp, x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: ConvOptions): Tensor {
    this.layoutFor(p.training === true);
    const g = this.convGeom(x.shape, wShape, p, op === 'deconv2d', op);
    const xi = this.id(x, `${op} x`);
    const wa = f32(w, numel(g.w), `${op} weights`);
    const ba = b ? f32(b, g.w[0], `${op} bias`) : null;
    // Transposed convolutions take no fused ReLU (the Backend interface leaves it out of their options).
    return this.wrap(this.n[op](xi, wa, g.w, ba, g.stride, g.pad, g.dil, op === 'conv2d' && p.relu === true), g.y);
  }

  private convBackwardData(op: ConvOp, dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: ConvParams): Tensor {
    const name = `${op}BackwardData` as const;
    this.layoutFor(true);
    const g = this.convGeom(xShape, wShape, p, op === 'deconv2d', name);
    sameShape(dy.shape, g.y, `${name} dy vs the forward output`);
    const dyi = this.id(dy, `${name} dy`);
    const wa = f32(w, numel(g.w), `${name} weights`);
    return this.wrap(this.n[name](dyi, wa, g.w, g.x, g.stride, g.pad, g.dil), g.x);
  }

  private convBackwardWeights(op: ConvOp, x: Tensor, dy: Tensor, wShape: Shape, p: ConvParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null } {
    const name = `${op}BackwardWeights` as const;
    this.layoutFor(true);
    const g = this.convGeom(x.shape, wShape, p, op === 'deconv2d', name);
    sameShape(dy.shape, g.y, `${name} dy vs the forward output`);
    const [dw, db] = this.n[name](this.id(x, `${name} x`), this.id(dy, `${name} dy`), g.w, g.stride, g.pad, g.dil,
      withBias === true);
    return { dw, db };
  }

  // ------------------------------------------------------------------ pooling
  private poolGeom(xShape: Shape, p: PoolParams, what: string) {
    const x = dims4(xShape, `${what} input`);
    if (!p) throw new Error(`${what}: missing params`);
    const kernel = pair(p.kernel, `${what} kernel`, 1);
    const stride = pair(p.stride, `${what} stride`, 1);
    const dil = pair(p.dilation, `${what} dilation`, 1);
    const pad = padding(p.padding, what);
    const oh = windowOut(x[2], kernel[0], stride[0], dil[0], pad[0], pad[2], `${what} (height)`);
    const ow = windowOut(x[3], kernel[1], stride[1], dil[1], pad[1], pad[3], `${what} (width)`);
    return { x, y: [x[0], x[1], oh, ow] as I4, kernel, stride, pad, dil };
  }

  maxPool2d(x: Tensor, p: PoolParams, training: boolean): { y: Tensor; workspace: Tensor | null } {
    const g = this.poolGeom(x.shape, p, 'maxPool2d');
    const [y, ws] = this.n.maxPool2d(this.id(x, 'maxPool2d x'), g.kernel, g.stride, g.pad, g.dil, training === true);
    return { y: this.wrap(y, g.y), workspace: ws === null ? null : this.wrap(ws, g.y) };
  }

  maxPool2dBackward(dy: Tensor, workspace: Tensor, xShape: Shape, p: PoolParams): Tensor {
    const g = this.poolGeom(xShape, p, 'maxPool2dBackward');
    sameShape(dy.shape, g.y, 'maxPool2dBackward dy vs the pooled output');
    if (!workspace) throw new Error('maxPool2dBackward: the workspace from maxPool2d(training = true) is required');
    const id = this.n.maxPool2dBackward(this.id(dy, 'maxPool2dBackward dy'),
      this.id(workspace, 'maxPool2dBackward workspace'), g.x, g.kernel, g.stride, g.pad, g.dil);
    return this.wrap(id, g.x);
  }

  // ------------------------------------------------------------------ LRN
  private lrnArgs(p: LrnParams, what: string): [boolean, number, number, number, number] {
    if (!p || (p.region !== 'across' && p.region !== 'within')) {
      throw new Error(`${what}: region must be 'across' or 'within', got '${String(p?.region)}'`);
    }
    if (!Number.isInteger(p.size) || p.size < 1) throw new Error(`${what}: size must be a positive integer`);
    for (const key of ['alpha', 'beta', 'k'] as const) {
      if (!Number.isFinite(p[key])) throw new Error(`${what}: ${key} must be finite, got ${p[key]}`);
    }
    return [p.region === 'across', p.size, p.alpha, p.beta, p.k];
  }

  lrn(x: Tensor, p: LrnParams, training: boolean): { y: Tensor; workspace: Tensor | null } {
    const s = dims4(x.shape, 'lrn input');
    const [across, size, alpha, beta, k] = this.lrnArgs(p, 'lrn');
    const [y, ws] = this.n.lrn(this.id(x, 'lrn x'), across, size, alpha, beta, k, training === true);
    return { y: this.wrap(y, s), workspace: ws === null ? null : this.wrap(ws, s) };
  }

  lrnBackward(x: Tensor, dy: Tensor, workspace: Tensor | null, p: LrnParams): Tensor {
    const s = dims4(x.shape, 'lrnBackward x');
    sameShape(x.shape, dy.shape, 'lrnBackward (x vs dy)');
    const [across, size, alpha, beta, k] = this.lrnArgs(p, 'lrnBackward');
    const ws = workspace ? this.id(workspace, 'lrnBackward workspace') : null;
    return this.wrap(this.n.lrnBackward(this.id(x, 'lrnBackward x'), this.id(dy, 'lrnBackward dy'), ws, across, size,
      alpha, beta, k), s);
  }

  // ------------------------------------------------------------------ elementwise
  relu(x: Tensor): Tensor {
    return this.wrap(this.n.relu(this.id(x, 'relu x')), x.shape);
  }

  reluBackward(y: Tensor, dy: Tensor): Tensor {
    sameShape(y.shape, dy.shape, 'reluBackward (y vs dy)');
    return this.wrap(this.n.reluBackward(this.id(y, 'reluBackward y'), this.id(dy, 'reluBackward dy')), y.shape);
  }

  add(a: Tensor, b: Tensor): Tensor {
    sameShape(a.shape, b.shape, 'add');
    return this.wrap(this.n.add(this.id(a, 'add a'), this.id(b, 'add b')), a.shape);
  }

  dropout(x: Tensor, rate: number, seed: number): { y: Tensor; mask: Tensor } {
    if (!(rate >= 0 && rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${rate}`);
    if (!Number.isFinite(seed)) throw new Error(`dropout: seed must be a finite number, got ${seed}`);
    // `seed >>> 0` as the reference's mulberry32 does, so masks match it bit for bit.
    const [y, mask] = this.n.dropout(this.id(x, 'dropout x'), rate, seed >>> 0);
    return { y: this.wrap(y, x.shape), mask: this.wrap(mask, x.shape) };
  }

  dropoutBackward(dy: Tensor, mask: Tensor): Tensor {
    sameShape(dy.shape, mask.shape, 'dropoutBackward (dy vs mask)');
    return this.wrap(this.n.dropoutBackward(this.id(dy, 'dropoutBackward dy'), this.id(mask, 'dropoutBackward mask')),
      dy.shape);
  }

  // ------------------------------------------------------------------ shape ops
  crop(x: Tensor, top: number, left: number, h: number, w: number): Tensor {
    const [N, C, H, W] = dims4(x.shape, 'crop input');
    this.checkWindow(H, W, top, left, h, w, 'crop', x.shape);
    return this.wrap(this.n.crop(this.id(x, 'crop x'), top, left, h, w), [N, C, h, w]);
  }

  cropBackward(dy: Tensor, xShape: Shape, top: number, left: number): Tensor {
    const [N, C, h, w] = dims4(dy.shape, 'cropBackward dy');
    const xs = dims4(xShape, 'cropBackward xShape');
    if (xs[0] !== N || xs[1] !== C) {
      throw new Error(`cropBackward: dy ${formatShape(dy.shape)} and x ${formatShape(xShape)} differ in batch or ` +
        'channels');
    }
    this.checkWindow(xs[2], xs[3], top, left, h, w, 'cropBackward', xShape);
    return this.wrap(this.n.cropBackward(this.id(dy, 'cropBackward dy'), xs, top, left), xs);
  }

  private checkWindow(H: number, W: number, top: number, left: number, h: number, w: number, what: string,
    xShape: Shape): void {
    if (!Number.isInteger(top) || top < 0 || !Number.isInteger(left) || left < 0) {
      throw new Error(`${what}: top/left must be non-negative integers, got ${top}, ${left}`);
    }
    if (!Number.isInteger(h) || h < 1 || !Number.isInteger(w) || w < 1) {
      throw new Error(`${what}: crop size must be positive integers, got ${h}x${w}`);
    }
    if (top + h > H || left + w > W) {
      throw new Error(`${what}: window [${top}, ${left}] + ${h}x${w} does not fit in input ${formatShape(xShape)}`);
    }
  }

  concat(xs: readonly Tensor[]): Tensor {
    if (!Array.isArray(xs) || xs.length === 0) throw new Error('concat: needs at least one tensor');
    const [N, , H, W] = dims4(xs[0]!.shape, 'concat input 0');
    let C = 0;
    xs.forEach((x, k) => {
      const [n, c, h, w] = dims4(x.shape, `concat input ${k}`);
      if (n !== N || h !== H || w !== W) {
        throw new Error(`concat: input ${k} ${formatShape(x.shape)} differs from input 0 ` +
          `${formatShape(xs[0]!.shape)} outside the channel axis`);
      }
      C += c;
    });
    const ids = xs.map((x, k) => this.id(x, `concat input ${k}`));
    return this.wrap(this.n.concat(ids), [N, C, H, W]);
  }

  concatBackward(dy: Tensor, channels: readonly number[]): Tensor[] {
    const [N, C, H, W] = dims4(dy.shape, 'concatBackward dy');
    if (!Array.isArray(channels) || channels.length === 0 ||
      !channels.every((c) => Number.isInteger(c) && c >= 1)) {
      throw new Error(`concatBackward: channel counts must be positive integers, got [${String(channels)}]`);
    }
    const total = channels.reduce((a, c) => a + c, 0);
    if (total !== C) {
      throw new Error(`concatBackward: channel counts [${channels.join(', ')}] sum to ${total} but dy ` +
        `${formatShape(dy.shape)} has ${C}`);
    }
    const ids = this.n.concatBackward(this.id(dy, 'concatBackward dy'), [...channels]);
    return ids.map((id, k) => this.wrap(id, [N, channels[k]!, H, W]));
  }

  upsampleNearest(x: Tensor, factor: number): Tensor {
    const [N, C, H, W] = dims4(x.shape, 'upsampleNearest input');
    if (!Number.isInteger(factor) || factor < 1) {
      throw new Error(`upsampleNearest: factor must be a positive integer, got ${factor}`);
    }
    return this.wrap(this.n.upsampleNearest(this.id(x, 'upsampleNearest x'), factor),
      [N, C, H * factor, W * factor]);
  }

  upsampleNearestBackward(dy: Tensor, factor: number): Tensor {
    const [N, C, OH, OW] = dims4(dy.shape, 'upsampleNearestBackward dy');
    if (!Number.isInteger(factor) || factor < 1) {
      throw new Error(`upsampleNearestBackward: factor must be a positive integer, got ${factor}`);
    }
    if (OH % factor !== 0 || OW % factor !== 0) {
      throw new Error(`upsampleNearestBackward: dy ${formatShape(dy.shape)} is not a multiple of the factor ${factor}`);
    }
    return this.wrap(this.n.upsampleNearestBackward(this.id(dy, 'upsampleNearestBackward dy'), factor),
      [N, C, OH / factor, OW / factor]);
  }

  // ------------------------------------------------------------------ output layer
  softmax(x: Tensor): Tensor {
    dims4(x.shape, 'softmax input');
    return this.wrap(this.n.softmax(this.id(x, 'softmax x')), x.shape);
  }

  softmaxCrossEntropy(logits: Tensor, target: CrossEntropyTarget): CrossEntropyResult {
    const what = 'softmaxCrossEntropy';
    const [N, C, H, W] = dims4(logits.shape, `${what} logits`);
    const P = N * H * W;
    const labels = target?.labels;
    if (!(labels instanceof Int32Array)) throw new Error(`${what}: labels must be an Int32Array`);
    if (labels.length !== P) {
      throw new Error(`${what}: ${labels.length} labels for logits ${formatShape(logits.shape)} (expected N*H*W = ${P})`);
    }
    const weights = target.weights ?? null;
    if (weights !== null) {
      if (!(weights instanceof Float32Array)) throw new Error(`${what}: weights must be a Float32Array`);
      if (weights.length !== P) {
        throw new Error(`${what}: ${weights.length} weights for logits ${formatShape(logits.shape)} ` +
          `(expected N*H*W = ${P})`);
      }
    }
    void C; // labels are range-checked natively against C (one pass, with the loss)
    const [loss, weightSum, dz] = this.n.softmaxCrossEntropy(this.id(logits, `${what} logits`), labels, weights);
    return { loss, weightSum, dlogits: this.wrap(dz, logits.shape) };
  }
}

/**
 * Creates the oneDNN backend. Throws NativeUnavailableError when the addon is missing or does not load, and
 * NativeCapabilityError for precision 'bfloat16' on a CPU without avx512_core_bf16 / AMX.
 */
export function loadOneDnnBackend(options: OneDnnOptions = {}): Backend {
  const precision = options.precision ?? 'float32';
  if (precision !== 'float32' && precision !== 'bfloat16') {
    throw new Error(`loadOneDnnBackend: precision must be 'float32' or 'bfloat16', got '${String(precision)}'`);
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new Error(`loadOneDnnBackend: threads must be a positive integer, got ${options.threads}`);
  }
  const addon = loadAddon();
  if (options.threads !== undefined) addon.setThreads(options.threads);
  if (precision === 'bfloat16') {
    const info = addon.info();
    if (!info.bf16) {
      throw new NativeCapabilityError(
        `bfloat16 precision needs a CPU with avx512_core_bf16 or AMX; oneDNN's effective ISA here is '${info.isa}'. ` +
        "Use precision 'float32'.");
    }
  }
  return new OneDnnBackend(addon, precision);
}

/** The native layout of a oneDNN-backend tensor, e.g. { layout: "f32:aBcd16b", ... } (tests and debugging). */
export function describeNativeTensor(t: Tensor): { shape: number[]; layout: string; bytes: number; workspace: boolean } {
  if (!(t.backend instanceof OneDnnBackend)) throw new Error('describeNativeTensor: not a oneDNN-backend tensor');
  return t.backend.describe(t);
}
