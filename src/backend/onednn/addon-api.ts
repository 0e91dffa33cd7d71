// GENERATED from native/ops.json by scripts/gen-native-ops.mjs (npm run gen:native-ops): do not edit.
import type { Handle, I2, I3, I4, I5, I6, NativeInfo, NativeStats } from './native-types.js';

/** The raw addon API (all argument checking is repeated in C++; errors are JS exceptions). */
export interface Addon {
  // native/system.cc
  info(): NativeInfo;
  setThreads(n: number): number;
  stats(): NativeStats;
  /** Conv activation layouts, process-wide: 0 = oneDNN's choice (default), 1 = nChw16c, 2 = nhwc (experiments). */
  setLayoutPolicy(policy: 0 | 1 | 2): void;
  trimPool(): void;
  release(id: Handle): boolean;
  fromArray(data: Float32Array, shape: I4 | I5, bf16: boolean): Handle;
  toArray(id: Handle, out?: Float32Array): Float32Array;
  describe(id: Handle): { shape: number[]; layout: string; bytes: number; workspace: boolean };

  // native/conv.cc
  conv2d(x: Handle, w: Float32Array, wShape: I4, b: Float32Array | null, stride: I2, pad: I4, dil: I2,
    relu: boolean): Handle;
  /** Inference in int8: x quantized to u8 by srcScale, weights to s8 per output channel, f32 output. */
  conv2dInt8(x: Handle, w: Float32Array, wShape: I4, b: Float32Array | null, stride: I2, pad: I4, dil: I2,
    relu: boolean, srcScale: number): Handle;
  conv2dBackwardData(dy: Handle, w: Float32Array, wShape: I4, xShape: I4, stride: I2, pad: I4, dil: I2): Handle;
  conv2dBackwardWeights(x: Handle, dy: Handle, wShape: I4, stride: I2, pad: I4, dil: I2,
    withBias: boolean): [Float32Array, Float32Array | null];
  deconv2d(x: Handle, w: Float32Array, wShape: I4, b: Float32Array | null, stride: I2, pad: I4, dil: I2,
    relu: boolean): Handle;
  deconv2dBackwardData(dy: Handle, w: Float32Array, wShape: I4, xShape: I4, stride: I2, pad: I4, dil: I2): Handle;
  deconv2dBackwardWeights(x: Handle, dy: Handle, wShape: I4, stride: I2, pad: I4, dil: I2,
    withBias: boolean): [Float32Array, Float32Array | null];
  conv3d(x: Handle, w: Float32Array, wShape: I5, b: Float32Array | null, stride: I3, pad: I6, dil: I3,
    relu: boolean): Handle;
  conv3dBackwardData(dy: Handle, w: Float32Array, wShape: I5, xShape: I5, stride: I3, pad: I6, dil: I3): Handle;
  conv3dBackwardWeights(x: Handle, dy: Handle, wShape: I5, stride: I3, pad: I6, dil: I3,
    withBias: boolean): [Float32Array, Float32Array | null];
  deconv3d(x: Handle, w: Float32Array, wShape: I5, b: Float32Array | null, stride: I3, pad: I6, dil: I3,
    relu: boolean): Handle;
  deconv3dBackwardData(dy: Handle, w: Float32Array, wShape: I5, xShape: I5, stride: I3, pad: I6, dil: I3): Handle;
  deconv3dBackwardWeights(x: Handle, dy: Handle, wShape: I5, stride: I3, pad: I6, dil: I3,
    withBias: boolean): [Float32Array, Float32Array | null];

  // native/pool.cc
  maxPool2d(x: Handle, kernel: I2, stride: I2, pad: I4, dil: I2, training: boolean): [Handle, Handle | null];
  maxPool2dBackward(dy: Handle, ws: Handle, xShape: I4, kernel: I2, stride: I2, pad: I4, dil: I2): Handle;
  maxPool3d(x: Handle, kernel: I3, stride: I3, pad: I6, dil: I3, training: boolean): [Handle, Handle | null];
  maxPool3dBackward(dy: Handle, ws: Handle, xShape: I5, kernel: I3, stride: I3, pad: I6, dil: I3): Handle;

  // native/lrn.cc
  lrn(x: Handle, across: boolean, size: number, alpha: number, beta: number, k: number,
    training: boolean): [Handle, Handle | null];
  lrnBackward(x: Handle, dy: Handle, ws: Handle | null, across: boolean, size: number, alpha: number, beta: number,
    k: number): Handle;

  // native/eltwise.cc
  relu(x: Handle): Handle;
  reluBackward(y: Handle, dy: Handle): Handle;
  add(a: Handle, b: Handle): Handle;
  dropout(x: Handle, rate: number, seed: number): [Handle, Handle];
  dropoutBackward(dy: Handle, mask: Handle): Handle;

  // native/shape_ops.cc
  crop(x: Handle, top: number, left: number, h: number, w: number): Handle;
  cropBackward(dy: Handle, xShape: I4, top: number, left: number): Handle;
  crop3d(x: Handle, front: number, top: number, left: number, d: number, h: number, w: number): Handle;
  crop3dBackward(dy: Handle, xShape: I5, front: number, top: number, left: number): Handle;
  concat(xs: Handle[]): Handle;
  concatBackward(dy: Handle, channels: number[]): Handle[];
  upsampleNearest(x: Handle, factor: number): Handle;
  upsampleNearestBackward(dy: Handle, factor: number): Handle;

  // native/softmax_ce.cc
  softmax(x: Handle): Handle;
  softmaxCrossEntropy(logits: Handle, labels: Int32Array, weights: Float32Array | null): [number, number, Handle];

  // native/sigmoid_ce.cc
  sigmoid(x: Handle): Handle;
  sigmoidCrossEntropy(logits: Handle, targets: Float32Array, weights: Float32Array | null): [number, number, Handle];
}

/** Every function the addon exports: a loaded module missing one is a stale build. */
export const ADDON_OPS = [
  'info', 'setThreads', 'stats', 'setLayoutPolicy', 'trimPool', 'release', 'fromArray', 'toArray', 'describe', 'conv2d',
  'conv2dInt8', 'conv2dBackwardData', 'conv2dBackwardWeights', 'deconv2d', 'deconv2dBackwardData',
  'deconv2dBackwardWeights', 'conv3d', 'conv3dBackwardData', 'conv3dBackwardWeights', 'deconv3d',
  'deconv3dBackwardData', 'deconv3dBackwardWeights', 'maxPool2d', 'maxPool2dBackward', 'maxPool3d', 'maxPool3dBackward',
  'lrn', 'lrnBackward', 'relu', 'reluBackward', 'add', 'dropout', 'dropoutBackward', 'crop', 'cropBackward', 'crop3d',
  'crop3dBackward', 'concat', 'concatBackward', 'upsampleNearest', 'upsampleNearestBackward', 'softmax',
  'softmaxCrossEntropy', 'sigmoid', 'sigmoidCrossEntropy',
] as const satisfies readonly (keyof Addon)[];
