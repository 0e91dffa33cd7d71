import type { FloatArray, Shape, Tensor } from '../tensor/tensor.js';

/**
 * The kernel API every backend implements (tfjs-style: ops in src/nn call these; each backend owns its kernels).
 * Conventions, shared by the oneDNN backend and its plain-TypeScript reference twin:
 * - activations are Tensors with logical NCHW shape; their storage layout is the backend's business;
 * - parameters and their gradients are plain host arrays: conv weights OIHW [Cout, Cin, kh, kw] (also for
 *   transposed convolution), biases [Cout];
 * - padding is [top, left, bottom, right] in input pixels (asymmetric padding makes 'same' work for even kernels);
 * - dilation 1 means a dense kernel (d = 2 leaves one pixel between taps).
 * - 3-d ops (conv3d, deconv3d, maxPool3d, crop3d) take NCDHW activations [N, C, D, H, W] and OIDHW weights [Cout, Cin, kd, kh, kw]; their
 *   strides and dilations are [d, h, w] and their padding [front, top, left, back, bottom, right] (begins, then ends).
 */

export type Precision = 'float32' | 'bfloat16' | 'float64';
export type Pair = readonly [number, number];
export type Padding = readonly [number, number, number, number];
export type Triple = readonly [number, number, number];
export type Padding3 = readonly [number, number, number, number, number, number];

export interface ConvParams {
  stride: Pair;
  padding: Padding;
  dilation: Pair;
}

export interface ConvOptions extends ConvParams {
  /** Fuse a ReLU after the bias (forward); the graph then back-propagates ReLU through `reluBackward` on y. */
  relu?: boolean;
  /** The forward pass of a training step (a backward pass will follow): backends may pick layouts for it. */
  training?: boolean;
  /**
   * Compute this inference convolution in int8 (conv2d only, on a backend whose `int8` is true; every other refuses
   * it): the input quantized to u8 as round(x * srcScale), clipped to [0, 255] (the input must be non-negative),
   * the weights to s8 per output channel, the output dequantized to float32.
   */
  int8?: Int8Input;
}

/** How an int8 convolution quantizes its input (calibration chose it: nn/int8.ts). */
export interface Int8Input {
  srcScale: number;
}

export interface Conv3dParams {
  stride: Triple;
  padding: Padding3;
  dilation: Triple;
}

export interface Conv3dOptions extends Conv3dParams {
  /** As ConvOptions.relu. */
  relu?: boolean;
  /** As ConvOptions.training. */
  training?: boolean;
}

/** Transposed convolutions take the same options, a fused ReLU included (2-d; the 3-d one has none yet). */
export type DeconvOptions = ConvOptions;
export type Deconv3dOptions = Omit<Conv3dOptions, 'relu'>;

export interface PoolParams {
  kernel: Pair;
  stride: Pair;
  padding: Padding;
  dilation: Pair;
}

export interface Pool3dParams {
  kernel: Triple;
  stride: Triple;
  padding: Padding3;
  dilation: Triple;
}

export interface LrnParams {
  /** across: over `size` neighbouring channels; within: over a size x size spatial window in each channel. */
  region: 'across' | 'within';
  size: number;
  alpha: number;
  beta: number;
  k: number;
}

/** Per-pixel classification loss. Labels are class indices per pixel (N*H*W, NHW order); -1 = ignored. */
export interface CrossEntropyTarget {
  labels: Int32Array;
  /** Optional per-pixel weights (N*H*W); the loss is sum(w * ce) / sum(w) over non-ignored pixels. */
  weights?: Float32Array | null;
}

/** Per-element binary targets (sigmoid cross-entropy: each channel its own binary task, e.g. affinities). */
export interface SigmoidTarget {
  /** One target in [0, 1] per element of the logits (NC(D)HW order). */
  targets: Float32Array;
  /** Optional per-element weights >= 0 (0 = ignored: a mask); the loss is sum(w * bce) / sum(w). */
  weights?: Float32Array | null;
}

export interface CrossEntropyResult {
  loss: number;
  /** Weighted-summed weights (the denominator), useful to aggregate losses over tiles. */
  weightSum: number;
  dlogits: Tensor;
}

export interface Backend {
  readonly name: string;
  readonly precision: Precision;
  /** int8 convolutions (ConvOptions.int8) are available: a oneDNN backend created with `int8` on a VNNI CPU. */
  readonly int8?: boolean;

  // ---- storage
  fromArray(data: FloatArray, shape: Shape): Tensor;
  /**
   * The values as a plain NCHW host array; into `out` when given (float32, exactly the tensor's size: refused
   * otherwise), so that a caller can reuse one array instead of a fresh one per call.
   */
  toArray(t: Tensor, out?: Float32Array): FloatArray;
  /** Called once by Tensor.dispose(). */
  release(t: Tensor): void;

  // ---- convolution (y = conv(x, w) + b), and its gradients
  conv2d(x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: ConvOptions): Tensor;
  conv2dBackwardData(dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: ConvParams): Tensor;
  conv2dBackwardWeights(
    x: Tensor, dy: Tensor, wShape: Shape, p: ConvParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null };

  // ---- 3-d convolution (y = conv(x, w) + b over NCDHW), and its gradients
  conv3d(x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: Conv3dOptions): Tensor;
  conv3dBackwardData(dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: Conv3dParams): Tensor;
  conv3dBackwardWeights(
    x: Tensor, dy: Tensor, wShape: Shape, p: Conv3dParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null };

  // ---- transposed convolution (the adjoint of conv2d with the same params; weights [Cout, Cin, kh, kw])
  deconv2d(x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: DeconvOptions): Tensor;
  deconv2dBackwardData(dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: ConvParams): Tensor;
  deconv2dBackwardWeights(
    x: Tensor, dy: Tensor, wShape: Shape, p: ConvParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null };

  // ---- 3-d transposed convolution (the adjoint of conv3d with the same params; weights [Cout, Cin, kd, kh, kw])
  deconv3d(x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: Deconv3dOptions): Tensor;
  deconv3dBackwardData(dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: Conv3dParams): Tensor;
  deconv3dBackwardWeights(
    x: Tensor, dy: Tensor, wShape: Shape, p: Conv3dParams, withBias: boolean,
  ): { dw: FloatArray; db: FloatArray | null };

  // ---- max pooling; `workspace` (argmax) is returned when training and must be disposed by the caller
  maxPool2d(x: Tensor, p: PoolParams, training: boolean): { y: Tensor; workspace: Tensor | null };
  maxPool2dBackward(dy: Tensor, workspace: Tensor, xShape: Shape, p: PoolParams): Tensor;

  // ---- 3-d max pooling (NCDHW), workspace as for maxPool2d
  maxPool3d(x: Tensor, p: Pool3dParams, training: boolean): { y: Tensor; workspace: Tensor | null };
  maxPool3dBackward(dy: Tensor, workspace: Tensor, xShape: Shape, p: Pool3dParams): Tensor;

  // ---- local response normalisation (oneDNN's definition: alpha is divided by size, or size^2 within channel)
  lrn(x: Tensor, p: LrnParams, training: boolean): { y: Tensor; workspace: Tensor | null };
  lrnBackward(x: Tensor, dy: Tensor, workspace: Tensor | null, p: LrnParams): Tensor;

  // ---- elementwise
  relu(x: Tensor): Tensor;
  /** Gradient of ReLU given its output y (so it also serves conv2d's fused ReLU). */
  reluBackward(y: Tensor, dy: Tensor): Tensor;
  add(a: Tensor, b: Tensor): Tensor;
  /** Inverted dropout: keeps each element with probability 1 - rate and scales it by 1 / (1 - rate). */
  dropout(x: Tensor, rate: number, seed: number): { y: Tensor; mask: Tensor };
  dropoutBackward(dy: Tensor, mask: Tensor): Tensor;

  // ---- shape ops
  /** Crop [top, left] .. [top + h, left + w) of every channel. */
  crop(x: Tensor, top: number, left: number, h: number, w: number): Tensor;
  cropBackward(dy: Tensor, xShape: Shape, top: number, left: number): Tensor;
  /** Crop [front, top, left] .. + [d, h, w] of every channel of a 5-d tensor. */
  crop3d(x: Tensor, front: number, top: number, left: number, d: number, h: number, w: number): Tensor;
  crop3dBackward(dy: Tensor, xShape: Shape, front: number, top: number, left: number): Tensor;
  /** Concatenate along channels (4-d or 5-d inputs, all of one rank). */
  concat(xs: readonly Tensor[]): Tensor;
  /** Split a channel-concatenated gradient back into pieces with the given channel counts. */
  concatBackward(dy: Tensor, channels: readonly number[]): Tensor[];
  upsampleNearest(x: Tensor, factor: number): Tensor;
  upsampleNearestBackward(dy: Tensor, factor: number): Tensor;

  // ---- output layer
  /** Softmax over channels (4-d or 5-d). */
  softmax(x: Tensor): Tensor;
  softmaxCrossEntropy(logits: Tensor, target: CrossEntropyTarget): CrossEntropyResult;
  /** Elementwise logistic sigmoid (any storable rank). */
  sigmoid(x: Tensor): Tensor;
  /** Per-element sigmoid binary cross-entropy (multi-label outputs such as affinities), weighted; see SigmoidTarget. */
  sigmoidCrossEntropy(logits: Tensor, target: SigmoidTarget): CrossEntropyResult;
}
