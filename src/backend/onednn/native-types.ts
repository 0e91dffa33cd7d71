/** Types the addon's API (./addon-api.ts, generated from native/ops.json) is written in. */

/** A tensor living in the addon: a numeric handle into its registry. */
export type Handle = number;
export type I2 = readonly [number, number];
export type I4 = readonly [number, number, number, number];
/** 3-d ops: [d, h, w] strides and dilations, [N, C, D, H, W] shapes, [front, top, left, back, bottom, right] padding. */
export type I3 = readonly [number, number, number];
export type I5 = readonly [number, number, number, number, number];
export type I6 = readonly [number, number, number, number, number, number];

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
