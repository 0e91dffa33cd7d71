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
 * - `int8`: inference convolutions given ConvOptions.int8 run on oneDNN's u8 x s8 kernels (native/conv.cc
 *   conv2dInt8); activations stay float32 between ops. Needs an AVX-512 VNNI core (checked when created).
 *
 * Shapes and params are validated before any native call, by the same code as the reference backend's
 * (../geometry.ts); the addon checks its arguments again and throws JS exceptions (never crashes) on anything
 * inconsistent.
 */
import { EmsegError } from '../../errors.js';
import type {
  Backend, Conv3dOptions, Conv3dParams, ConvOptions, Deconv3dOptions, DeconvOptions, ConvParams, Pool3dParams, CrossEntropyResult, CrossEntropyTarget, LrnParams, PoolParams,
  SigmoidTarget,
} from '../backend.js';
import {
  checkCrossEntropyTarget, checkDropout, checkFromArray, checkLength, checkToArrayOut, checkLrnParams, checkSigmoidTarget,
  concatBackwardGeometry, concatGeometry, conv3dGeometry, convGeometry, crop3dBackwardGeometry, crop3dGeometry,
  cropBackwardGeometry, cropGeometry, deconv3dGeometry, dims4, expectShape, pool3dGeometry, poolGeometry,
  storableDims, sameShape, upsampleBackwardGeometry,
  upsampleGeometry,
} from '../geometry.js';
import { type FloatArray, type Shape, Tensor, formatShape, numel } from '../../tensor/tensor.js';
import {
  type Addon, type Handle, type NativeInfo, type NativeStats, NativeCapabilityError, NativeUnavailableError, loadAddon,
  nativeAddonPath,
} from './addon.js';

export { NativeCapabilityError, NativeUnavailableError, nativeAddonPath };
export type { NativeInfo, NativeStats };

export interface OneDnnOptions {
  precision?: 'float32' | 'bfloat16';
  /** Allow int8 inference convolutions (ConvOptions.int8); float32 precision and an AVX-512 VNNI CPU only. */
  int8?: boolean;
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

/** The addon's convolution layout policies (native/system.cc setLayoutPolicy). */
const LAYOUT_POLICY = { oneDnnChoice: 0, blocked16: 1, channelsLast: 2 } as const;
type LayoutPolicy = (typeof LAYOUT_POLICY)[keyof typeof LAYOUT_POLICY];

/** The addon's (process-wide) convolution layout policy as last set; the addon starts with oneDNN's choice. */
let currentLayoutPolicy: LayoutPolicy = LAYOUT_POLICY.oneDnnChoice;

/**
 * Inference layout, by the CPU: where oneDNN's brgemm convolutions run (AVX-512 cores) they work channels-last,
 * and so can every other primitive of a U-Net (transposed convolution, pooling, ReLU, concat). Forcing nhwc there
 * means no activation is reordered between layers and a concat is a plain copy; left to choose, oneDNN picks nhwc for
 * convolutions but nChw16c for transposed ones, which costs a reorder around each and a reference-kernel concat of
 * the mixed layouts (docs/BENCHMARKS.md, "Prediction"). Elsewhere oneDNN's own choice.
 */
function inferencePolicy(isa: string): LayoutPolicy {
  return isa.startsWith('avx512_core') ? LAYOUT_POLICY.channelsLast : LAYOUT_POLICY.oneDnnChoice;
}

/** Opaque storage of a oneDNN-backend tensor. */
class NativeStorage {
  constructor(readonly id: Handle) {}
}

type ConvOp = 'conv2d' | 'deconv2d';

function f32(a: FloatArray | null | undefined, n: number, what: string): Float32Array {
  checkLength(a, n, what);
  return a instanceof Float32Array ? a : Float32Array.from(a!);
}

class OneDnnBackend implements Backend {
  readonly name = 'onednn';
  private readonly bf16: boolean;
  private readonly registry: FinalizationRegistry<Handle>;

  /** Layout policy of forward passes outside training (inferencePolicy); training always uses nChw16c. */
  private readonly inference: LayoutPolicy;

  constructor(private readonly n: Addon, readonly precision: 'float32' | 'bfloat16', readonly int8 = false) {
    this.bf16 = precision === 'bfloat16';
    this.inference = inferencePolicy(n.info().isa);
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
    if (!(t instanceof Tensor)) throw new EmsegError('invalid-option', what, 'expected a Tensor');
    t.assertAlive();
    const s = t.storage;
    if (t.backend !== this || !(s instanceof NativeStorage)) {
      throw new EmsegError('invalid-option', what, `tensor ${formatShape(t.shape)} does not belong to this oneDNN ` +
        `backend (${this.precision}); it comes from backend '${t.backend?.name}' (${t.backend?.precision})`);
    }
    return s.id;
  }

  /** The tensor's native layout, e.g. "f32:aBcd16b" (tests and debugging). */
  describe(t: Tensor): { shape: number[]; layout: string; bytes: number; workspace: boolean } {
    return this.n.describe(this.id(t, 'describe'));
  }

  // ------------------------------------------------------------------ storage
  fromArray(data: FloatArray, shape: Shape): Tensor {
    const s = storableDims(shape, 'fromArray');
    checkFromArray(data, s);
    const a = f32(data, numel(s), 'fromArray');
    return this.wrap(this.n.fromArray(a, s, this.bf16), s);
  }

  toArray(t: Tensor, out?: Float32Array): FloatArray {
    checkToArrayOut(out, t.shape);
    return out ? this.n.toArray(this.id(t, 'toArray'), out) : this.n.toArray(this.id(t, 'toArray'));
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
    const policy = training ? LAYOUT_POLICY.blocked16 : this.inference;
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

  // ------------------------------------------------------------------ 3-d convolution
  conv3d(x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: Conv3dOptions): Tensor {
    this.layoutFor(p?.training === true);
    const g = conv3dGeometry(x.shape, wShape, p, 'conv3d');
    const xi = this.id(x, 'conv3d x');
    const wa = f32(w, numel(g.w), 'conv3d weights');
    const ba = b ? f32(b, g.w[0], 'conv3d bias') : null;
    return this.wrap(this.n.conv3d(xi, wa, g.w, ba, g.stride, g.pad, g.dil, p.relu === true), g.y);
  }

  conv3dBackwardData(dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: Conv3dParams): Tensor {
    const what = 'conv3dBackwardData';
    this.layoutFor(true);
    const g = conv3dGeometry(xShape, wShape, p, what);
    // the reference's check and path, so both backends refuse a wrong dy with the same message
    expectShape(dy.shape, g.y, `${what} dy (for x ${formatShape(xShape)})`);
    const dyi = this.id(dy, `${what} dy`);
    const wa = f32(w, numel(g.w), `${what} weights`);
    return this.wrap(this.n.conv3dBackwardData(dyi, wa, g.w, g.x, g.stride, g.pad, g.dil), g.x);
  }

  conv3dBackwardWeights(
    x: Tensor, dy: Tensor, wShape: Shape, p: Conv3dParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null } {
    const what = 'conv3dBackwardWeights';
    this.layoutFor(true);
    const g = conv3dGeometry(x.shape, wShape, p, what);
    expectShape(dy.shape, g.y, `${what} dy (for x ${formatShape(x.shape)})`);
    const [dw, db] = this.n.conv3dBackwardWeights(this.id(x, `${what} x`), this.id(dy, `${what} dy`), g.w, g.stride,
      g.pad, g.dil, withBias === true);
    return { dw, db };
  }

  // ------------------------------------------------------------------ transposed convolution
  deconv3d(x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: Deconv3dOptions): Tensor {
    const what = 'deconv3d';
    this.layoutFor(p?.training === true);
    const { g, y, w: ws } = deconv3dGeometry(x.shape, wShape, p, what);
    const xi = this.id(x, `${what} x`);
    const wa = f32(w, numel(ws), `${what} weights`);
    const ba = b ? f32(b, y[1], `${what} bias`) : null;
    return this.wrap(this.n.deconv3d(xi, wa, ws, ba, g.stride, g.pad, g.dil, false), y);
  }

  deconv3dBackwardData(dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: Conv3dParams): Tensor {
    const what = 'deconv3dBackwardData';
    this.layoutFor(true);
    const { g, y, w: ws } = deconv3dGeometry(xShape, wShape, p, what);
    expectShape(dy.shape, y, `${what} dy (for x ${formatShape(xShape)})`);
    const dyi = this.id(dy, `${what} dy`);
    const wa = f32(w, numel(ws), `${what} weights`);
    return this.wrap(this.n.deconv3dBackwardData(dyi, wa, ws, g.y, g.stride, g.pad, g.dil), g.y);
  }

  deconv3dBackwardWeights(
    x: Tensor, dy: Tensor, wShape: Shape, p: Conv3dParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null } {
    const what = 'deconv3dBackwardWeights';
    this.layoutFor(true);
    const { g, y, w: ws } = deconv3dGeometry(x.shape, wShape, p, what);
    expectShape(dy.shape, y, `${what} dy (for x ${formatShape(x.shape)})`);
    const [dw, db] = this.n.deconv3dBackwardWeights(this.id(x, `${what} x`), this.id(dy, `${what} dy`), ws, g.stride,
      g.pad, g.dil, withBias === true);
    return { dw, db };
  }

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
    const g = convGeometry(x.shape, wShape, p, op === 'deconv2d', op);
    const xi = this.id(x, `${op} x`);
    const wa = f32(w, numel(g.w), `${op} weights`);
    const ba = b ? f32(b, g.w[0], `${op} bias`) : null;
    if (p.int8) return this.wrap(this.int8Conv(xi, wa, g, ba, p.relu === true, this.srcScale(op, p)), g.y);
    return this.wrap(this.n[op](xi, wa, g.w, ba, g.stride, g.pad, g.dil, p.relu === true), g.y);
  }

  /** conv2dInt8; a convolution oneDNN has no optimised int8 kernel for (native/conv.cc) is this CPU's capability. */
  private int8Conv(x: Handle, w: Float32Array, g: ReturnType<typeof convGeometry>, b: Float32Array | null, relu: boolean, srcScale: number): Handle {
    try {
      return this.n.conv2dInt8(x, w, g.w, b, g.stride, g.pad, g.dil, relu, srcScale);
    } catch (err) {
      if (err instanceof Error && err.message.includes(NO_INT8_KERNEL)) throw new EmsegError('native-capability', '--int8', `${err.message}; predict without --int8`);
      throw err;
    }
  }

  /** The int8 source scale of a forward pass that asks for one, where this backend can run it. */
  private srcScale(op: ConvOp, p: ConvOptions): number {
    const what = `${op} int8`;
    if (!this.int8) throw new EmsegError('invalid-option', what, 'this oneDNN backend was not created with int8');
    if (op !== 'conv2d' || p.training === true) throw new EmsegError('invalid-option', what, 'int8 is for inference convolutions (conv2d) only');
    const s = p.int8!.srcScale;
    if (!(s > 0) || !Number.isFinite(s)) throw new EmsegError('invalid-option', what, `srcScale must be a positive finite number, got ${s}`);
    return s;
  }

  private convBackwardData(op: ConvOp, dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: ConvParams): Tensor {
    const name = `${op}BackwardData` as const;
    this.layoutFor(true);
    const g = convGeometry(xShape, wShape, p, op === 'deconv2d', name);
    sameShape(dy.shape, g.y, `${name} dy vs the forward output`);
    const dyi = this.id(dy, `${name} dy`);
    const wa = f32(w, numel(g.w), `${name} weights`);
    return this.wrap(this.n[name](dyi, wa, g.w, g.x, g.stride, g.pad, g.dil), g.x);
  }

  private convBackwardWeights(op: ConvOp, x: Tensor, dy: Tensor, wShape: Shape, p: ConvParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null } {
    const name = `${op}BackwardWeights` as const;
    this.layoutFor(true);
    const g = convGeometry(x.shape, wShape, p, op === 'deconv2d', name);
    sameShape(dy.shape, g.y, `${name} dy vs the forward output`);
    const [dw, db] = this.n[name](this.id(x, `${name} x`), this.id(dy, `${name} dy`), g.w, g.stride, g.pad, g.dil,
      withBias === true);
    return { dw, db };
  }

  // ------------------------------------------------------------------ pooling
  maxPool2d(x: Tensor, p: PoolParams, training: boolean): { y: Tensor; workspace: Tensor | null } {
    const g = poolGeometry(x.shape, p, 'maxPool2d');
    const [y, ws] = this.n.maxPool2d(this.id(x, 'maxPool2d x'), g.kernel, g.stride, g.pad, g.dil, training === true);
    return { y: this.wrap(y, g.y), workspace: ws === null ? null : this.wrap(ws, g.y) };
  }

  maxPool2dBackward(dy: Tensor, workspace: Tensor, xShape: Shape, p: PoolParams): Tensor {
    const g = poolGeometry(xShape, p, 'maxPool2dBackward');
    sameShape(dy.shape, g.y, 'maxPool2dBackward dy vs the pooled output');
    if (!workspace) throw new EmsegError('invalid-option', 'maxPool2dBackward', 'the workspace from maxPool2d(training = true) is required');
    const id = this.n.maxPool2dBackward(this.id(dy, 'maxPool2dBackward dy'),
      this.id(workspace, 'maxPool2dBackward workspace'), g.x, g.kernel, g.stride, g.pad, g.dil);
    return this.wrap(id, g.x);
  }

  maxPool3d(x: Tensor, p: Pool3dParams, training: boolean): { y: Tensor; workspace: Tensor | null } {
    const g = pool3dGeometry(x.shape, p, 'maxPool3d');
    const [y, ws] = this.n.maxPool3d(this.id(x, 'maxPool3d x'), g.kernel, g.stride, g.pad, g.dil, training === true);
    return { y: this.wrap(y, g.y), workspace: ws === null ? null : this.wrap(ws, g.y) };
  }

  maxPool3dBackward(dy: Tensor, workspace: Tensor, xShape: Shape, p: Pool3dParams): Tensor {
    const what = 'maxPool3dBackward';
    const g = pool3dGeometry(xShape, p, what);
    expectShape(dy.shape, g.y, `${what} dy (for x ${formatShape(xShape)})`);
    if (!workspace) throw new EmsegError('invalid-option', what, 'the workspace from maxPool3d(training = true) is required');
    expectShape(workspace.shape, g.y, `${what} workspace`);
    const id = this.n.maxPool3dBackward(this.id(dy, `${what} dy`), this.id(workspace, `${what} workspace`), g.x,
      g.kernel, g.stride, g.pad, g.dil);
    return this.wrap(id, g.x);
  }

  // ------------------------------------------------------------------ LRN
  private lrnArgs(p: LrnParams, what: string): [boolean, number, number, number, number] {
    checkLrnParams(p, what);
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
    checkDropout(rate, seed);
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
    const y = cropGeometry(x.shape, top, left, h, w, 'crop');
    return this.wrap(this.n.crop(this.id(x, 'crop x'), top, left, h, w), y);
  }

  cropBackward(dy: Tensor, xShape: Shape, top: number, left: number): Tensor {
    const xs = cropBackwardGeometry(dy.shape, xShape, top, left);
    return this.wrap(this.n.cropBackward(this.id(dy, 'cropBackward dy'), xs, top, left), xs);
  }

  crop3d(x: Tensor, front: number, top: number, left: number, d: number, h: number, w: number): Tensor {
    const y = crop3dGeometry(x.shape, [front, top, left], [d, h, w], 'crop3d');
    return this.wrap(this.n.crop3d(this.id(x, 'crop3d x'), front, top, left, d, h, w), y);
  }

  crop3dBackward(dy: Tensor, xShape: Shape, front: number, top: number, left: number): Tensor {
    const xs = crop3dBackwardGeometry(dy.shape, xShape, [front, top, left]);
    return this.wrap(this.n.crop3dBackward(this.id(dy, 'crop3dBackward dy'), xs, front, top, left), xs);
  }

  concat(xs: readonly Tensor[]): Tensor {
    const y = concatGeometry(Array.isArray(xs) ? xs.map((x) => x.shape) : []);
    const ids = xs.map((x, k) => this.id(x, `concat input ${k}`));
    return this.wrap(this.n.concat(ids), y);
  }

  concatBackward(dy: Tensor, channels: readonly number[]): Tensor[] {
    const [N, , ...spatial] = concatBackwardGeometry(dy.shape, channels);
    const ids = this.n.concatBackward(this.id(dy, 'concatBackward dy'), [...channels]);
    return ids.map((id, k) => this.wrap(id, [N, channels[k]!, ...spatial]));
  }

  upsampleNearest(x: Tensor, factor: number): Tensor {
    const y = upsampleGeometry(x.shape, factor);
    return this.wrap(this.n.upsampleNearest(this.id(x, 'upsampleNearest x'), factor), y);
  }

  upsampleNearestBackward(dy: Tensor, factor: number): Tensor {
    const dx = upsampleBackwardGeometry(dy.shape, factor);
    return this.wrap(this.n.upsampleNearestBackward(this.id(dy, 'upsampleNearestBackward dy'), factor), dx);
  }

  // ------------------------------------------------------------------ output layer
  softmax(x: Tensor): Tensor {
    storableDims(x.shape, 'softmax input');
    return this.wrap(this.n.softmax(this.id(x, 'softmax x')), x.shape);
  }

  sigmoid(x: Tensor): Tensor {
    storableDims(x.shape, 'sigmoid input');
    return this.wrap(this.n.sigmoid(this.id(x, 'sigmoid x')), x.shape);
  }

  sigmoidCrossEntropy(logits: Tensor, target: SigmoidTarget): CrossEntropyResult {
    const what = 'sigmoidCrossEntropy';
    checkSigmoidTarget(logits.shape, target);
    const [loss, weightSum, dz] = this.n.sigmoidCrossEntropy(this.id(logits, `${what} logits`), target.targets,
      target.weights ?? null);
    return { loss, weightSum, dlogits: this.wrap(dz, logits.shape) };
  }

  softmaxCrossEntropy(logits: Tensor, target: CrossEntropyTarget): CrossEntropyResult {
    const what = 'softmaxCrossEntropy';
    // Labels are range-checked natively against C, in one pass with the loss.
    checkCrossEntropyTarget(logits.shape, target);
    const { labels } = target;
    const weights = target.weights ?? null;
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
    throw new EmsegError('invalid-option', 'loadOneDnnBackend', `precision must be 'float32' or 'bfloat16', got '${String(precision)}'`);
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new EmsegError('invalid-option', 'loadOneDnnBackend', `threads must be a positive integer, got ${options.threads}`);
  }
  if (options.int8 && precision !== 'float32') throw new EmsegError('invalid-option', '--int8', 'int8 inference runs on a float32 backend; give --int8 or --bf16, not both');
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
  if (options.int8) checkInt8(addon.info());
  return new OneDnnBackend(addon, precision, options.int8 === true);
}

/** What native/conv.cc says (kNoInt8Kernel) of a convolution oneDNN cannot run in int8 here. */
const NO_INT8_KERNEL = 'oneDNN has no optimised int8 convolution';

/** oneDNN ISAs with VNNI on AVX-512 cores, where its int8 convolutions run brgemm kernels on channels-last data. */
const INT8_ISAS = ['avx512_core_vnni', 'avx512_core_bf16', 'avx512_core_amx'];

function checkInt8(info: NativeInfo): void {
  if (!INT8_ISAS.includes(info.isa)) {
    throw new NativeCapabilityError(`int8 inference needs a CPU with AVX-512 VNNI (oneDNN ISA ${INT8_ISAS.join(', ')}); `
      + `oneDNN's effective ISA here is '${info.isa}'. Predict in float32 (without --int8).`);
  }
}

/** The native layout of a oneDNN-backend tensor, e.g. { layout: "f32:aBcd16b", ... } (tests and debugging). */
export function describeNativeTensor(t: Tensor): { shape: number[]; layout: string; bytes: number; workspace: boolean } {
  if (!(t.backend instanceof OneDnnBackend)) throw new EmsegError('invalid-option', 'describeNativeTensor', 'not a oneDNN-backend tensor');
  return t.backend.describe(t);
}
