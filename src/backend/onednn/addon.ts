/**
 * Loading of the N-API addon (native/build/Release/emseg_native.node) and its raw, typed API.
 * Tensors are numeric handles into the addon's registry; parameters and gradients cross as Float32Arrays.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmsegError } from '../../errors.js';

/** The addon is missing or failed to load (the caller may fall back to the reference backend). */
export class NativeUnavailableError extends EmsegError {
  override readonly name = 'NativeUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('native-unavailable', '', message, options);
  }
}

/** The addon loaded, but this CPU cannot do what was asked (e.g. bfloat16 without avx512_core_bf16 / AMX). */
export class NativeCapabilityError extends EmsegError {
  override readonly name = 'NativeCapabilityError';
  constructor(message: string) {
    super('native-capability', '', message);
  }
}

export type Handle = number;
type I2 = readonly [number, number];
type I4 = readonly [number, number, number, number];

export interface NativeInfo {
  /** oneDNN version, e.g. "2.6.3". */
  version: string;
  hash: string;
  /** CPU threading runtime oneDNN was built with ("omp", "tbb", "sequential", ...). */
  cpuRuntime: string;
  /** Effective instruction set oneDNN dispatches to (honours ONEDNN_MAX_CPU_ISA). */
  isa: string;
  /** Whether bfloat16 compute is available (avx512_core_bf16 or AMX). */
  bf16: boolean;
  /** Threads oneDNN (OpenMP) will use. */
  threads: number;
  procs: number;
}

export interface NativeStats {
  /** Live tensor handles. */
  tensors: number;
  /** Pool buffers currently in use (tensor storage and in-call temporaries). */
  liveBuffers: number;
  liveBytes: number;
  /** Freed buffers parked in the pool for reuse. */
  pooledBuffers: number;
  pooledBytes: number;
  /** Primitive-cache entries created so far (stable in steady state). */
  cachedPrimitives: number;
}

/** The raw addon API (all argument checking is repeated in C++; errors are JS exceptions). */
export interface Addon {
  info(): NativeInfo;
  setThreads(n: number): number;
  stats(): NativeStats;
  /** Conv activation layouts, process-wide: 0 = oneDNN's choice (default), 1 = nChw16c, 2 = nhwc (experiments). */
  setLayoutPolicy(policy: 0 | 1 | 2): void;
  trimPool(): void;
  release(id: Handle): boolean;
  fromArray(data: Float32Array, shape: I4, bf16: boolean): Handle;
  toArray(id: Handle): Float32Array;
  describe(id: Handle): { shape: number[]; layout: string; bytes: number; workspace: boolean };

  conv2d(x: Handle, w: Float32Array, wShape: I4, b: Float32Array | null, stride: I2, pad: I4, dil: I2,
    relu: boolean): Handle;
  conv2dBackwardData(dy: Handle, w: Float32Array, wShape: I4, xShape: I4, stride: I2, pad: I4, dil: I2): Handle;
  conv2dBackwardWeights(x: Handle, dy: Handle, wShape: I4, stride: I2, pad: I4, dil: I2,
    withBias: boolean): [Float32Array, Float32Array | null];
  deconv2d(x: Handle, w: Float32Array, wShape: I4, b: Float32Array | null, stride: I2, pad: I4, dil: I2,
    relu: boolean): Handle;
  deconv2dBackwardData(dy: Handle, w: Float32Array, wShape: I4, xShape: I4, stride: I2, pad: I4, dil: I2): Handle;
  deconv2dBackwardWeights(x: Handle, dy: Handle, wShape: I4, stride: I2, pad: I4, dil: I2,
    withBias: boolean): [Float32Array, Float32Array | null];

  maxPool2d(x: Handle, kernel: I2, stride: I2, pad: I4, dil: I2, training: boolean): [Handle, Handle | null];
  maxPool2dBackward(dy: Handle, ws: Handle, xShape: I4, kernel: I2, stride: I2, pad: I4, dil: I2): Handle;
  lrn(x: Handle, across: boolean, size: number, alpha: number, beta: number, k: number,
    training: boolean): [Handle, Handle | null];
  lrnBackward(x: Handle, dy: Handle, ws: Handle | null, across: boolean, size: number, alpha: number, beta: number,
    k: number): Handle;

  relu(x: Handle): Handle;
  reluBackward(y: Handle, dy: Handle): Handle;
  add(a: Handle, b: Handle): Handle;
  dropout(x: Handle, rate: number, seed: number): [Handle, Handle];
  dropoutBackward(dy: Handle, mask: Handle): Handle;

  crop(x: Handle, top: number, left: number, h: number, w: number): Handle;
  cropBackward(dy: Handle, xShape: I4, top: number, left: number): Handle;
  concat(xs: Handle[]): Handle;
  concatBackward(dy: Handle, channels: number[]): Handle[];
  upsampleNearest(x: Handle, factor: number): Handle;
  upsampleNearestBackward(dy: Handle, factor: number): Handle;

  softmax(x: Handle): Handle;
  softmaxCrossEntropy(logits: Handle, labels: Int32Array, weights: Float32Array | null): [number, number, Handle];
}

/** The package root: the nearest ancestor of this module holding emseg's package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'emseg') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  // Fall back to the layout of the sources: src/backend/onednn -> root.
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
}

/** Where the addon is expected (EMSEG_NATIVE_ADDON overrides it). */
export function nativeAddonPath(): string {
  return process.env.EMSEG_NATIVE_ADDON || join(packageRoot(), 'native', 'build', 'Release', 'emseg_native.node');
}

let loaded: Addon | null = null;
let loadError: NativeUnavailableError | null = null;

/** Loads the addon once (throws NativeUnavailableError, also on later calls, if it is missing or broken). */
export function loadAddon(): Addon {
  if (loaded) return loaded;
  if (loadError) throw loadError;
  const path = nativeAddonPath();
  if (!existsSync(path)) {
    loadError = new NativeUnavailableError(
      `emseg native addon not found at ${path}; build it with 'npm run build:native' (needs libdnnl-dev and a C++ ` +
      'toolchain, see scripts/ensure-system-deps.sh)');
    throw loadError;
  }
  try {
    const req = createRequire(import.meta.url);
    const mod = req(path) as Addon;
    if (typeof mod?.conv2d !== 'function' || typeof mod?.info !== 'function') {
      throw new EmsegError('native-unavailable', '', 'the module does not export the emseg kernel API (stale build?)');
    }
    loaded = mod;
    return mod;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    loadError = new NativeUnavailableError(`emseg native addon at ${path} failed to load: ${why}`, { cause: err });
    throw loadError;
  }
}
