import { createBackend, type Backend, type Precision } from '../backend/index.js';
import { EmsegError, isEmsegError } from '../errors.js';
import { Predictor } from '../infer/predict.js';
import { Network } from '../nn/network.js';
import { initParams, zeroGrads } from '../nn/params.js';
import { planModel, smallestInput3d, type Plan } from '../nn/plan.js';
import type { ModelSpec } from '../nn/spec.js';
import { Sgd } from '../nn/optim.js';
import { Rng } from '../util/rng.js';

export interface BenchOptions {
  trainSize: number;
  forwardSize: number;
  batch: number;
  iters: number;
  warmup: number;
  precisions: Precision[];
  /** Skip, with a notice, a precision this machine cannot run (bf16 without CPU support or addon) instead of failing. */
  skipUnavailable?: boolean;
  notice?: (line: string) => void;
  threads?: number;
  backend?: 'auto' | 'onednn' | 'reference';
  /** Patch classifiers: also time per-window classification of a crop this size against dense scanning. */
  slidingCrop?: number;
  /** Also time whole-section prediction (Predictor) on a section this size; `sectionTta` adds the 8-fold TTA. */
  sectionSize?: number;
  sectionTta?: boolean;
}

export interface BenchResult {
  model: string;
  precision: Precision;
  backend: string;
  /** Patch classifiers run their forward densely (every pixel's window), training on strided tiles. */
  forwardMode: 'strided' | 'dense';
  forward: { size: number; batch: number; medianMs: number; gflop: number; gflops: number; peakRssMb: number };
  train: { size: number; batch: number; medianMs: number; gflop: number; gflops: number; peakRssMb: number;
    /** Output pixels (= classified windows) per second. */
    windowsPerSecond: number };
  /** Patch classifiers: dense scanning against classifying each pixel's window separately, on a crop. */
  sliding?: { crop: number; denseMs: number; slidingMs: number; speedup: number };
  /** `emseg predict` on one section (tiled, mirrored borders), with and without test-time augmentation. */
  section?: { size: number; ms: number; ttaMs?: number };
  /** 3-d models: the [depth, height, width] of the inputs and outputs timed (sizes are output voxels per axis). */
  volume?: { forwardInput: number[]; forwardOutput: number[]; trainInput: number[]; trainOutput: number[] };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function time(fn: () => void, warmup: number, iters: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(ts);
}

function randomInput(backend: Backend, plan: Plan, batch: number, rng: Rng) {
  const [c, h, w] = plan.input;
  const data = new Float32Array(batch * c * h * w);
  for (let i = 0; i < data.length; i++) data[i] = rng.next();
  return backend.fromArray(data, [batch, c, h, w]);
}

/** Input size for which a model outputs `size` pixels: patch classifiers need their window's margin. */
export function inputSizeFor(spec: ModelSpec, size: number, mode: 'strided' | 'dense'): number {
  return mode === 'dense' && spec.window ? size + spec.window - 1 : size;
}

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

/** Training FLOPs: forward, backward-data (all but the first layer) and backward-weights: about 3x forward. */
export function trainFlops(plan: Plan): number {
  const firstConv = plan.nodes.find((n) => n.flops > 0);
  return 3 * plan.flops - (firstConv?.flops ?? 0);
}

export function benchModel(spec: ModelSpec, options: BenchOptions): BenchResult[] {
  if (spec.input.dims === 3) return benchModel3d(spec, options);
  const results: BenchResult[] = [];
  const forwardMode = spec.window ? 'dense' : 'strided';
  // Every backend first: a precision that cannot run is refused (or skipped) before any timing is spent.
  const backends = options.precisions.flatMap((precision) => {
    const backend = benchBackend(precision, options);
    return backend ? [{ precision, backend }] : [];
  });
  for (const { precision, backend } of backends) {
    const rng = new Rng(7);

    const fSize = inputSizeFor(spec, options.forwardSize, forwardMode);
    const fPlan = planModel(spec, fSize, fSize, { mode: forwardMode });
    const params = initParams(fPlan, 1);
    const fNet = new Network(fPlan, params, backend);
    const fx = randomInput(backend, fPlan, options.batch, rng);
    const forwardMs = time(() => fNet.predict(fx).dispose(), options.warmup, options.iters);
    fx.dispose();
    const forwardRss = peakRssMb();

    // Training tiles as `emseg train` uses them (patch classifiers: every output pixel of a dense tile).
    const tSize = inputSizeFor(spec, options.trainSize, forwardMode);
    const tPlan = planModel(spec, tSize, tSize, { mode: forwardMode });
    const tNet = new Network(tPlan, params, backend);
    const tx = randomInput(backend, tPlan, options.batch, rng);
    const [, oh, ow] = tPlan.output;
    const labels = new Int32Array(options.batch * oh * ow).map(() => rng.int(2));
    const sgd = new Sgd({ momentum: 0.9 });
    const trainMs = time(() => {
      zeroGrads(params);
      tNet.trainStep(tx, { labels });
      sgd.step(params, 1e-3);
    }, options.warmup, options.iters);
    tx.dispose();

    const fGflop = (fPlan.flops * options.batch) / 1e9;
    const tGflop = (trainFlops(tPlan) * options.batch) / 1e9;
    results.push({
      model: spec.name, precision, backend: backend.name, forwardMode,
      forward: { size: options.forwardSize, batch: options.batch, medianMs: forwardMs, gflop: fGflop,
        gflops: fGflop / (forwardMs / 1e3), peakRssMb: forwardRss },
      train: { size: options.trainSize, batch: options.batch, medianMs: trainMs, gflop: tGflop,
        gflops: tGflop / (trainMs / 1e3), peakRssMb: peakRssMb(),
        windowsPerSecond: (options.batch * oh * ow) / (trainMs / 1e3) },
      ...(spec.window && options.slidingCrop ? { sliding: slidingVersusDense(spec, backend, params, options.slidingCrop) } : {}),
      ...(options.sectionSize ? { section: timeSection(spec, backend, params, options) } : {}),
    });
  }
  return results;
}

/**
 * The backend for one precision. bf16 runs on oneDNN only (with CPU support): the reference backend would time
 * fp32 under bf16's name, and a failure is named by --precision (skipped with a notice under `skipUnavailable`).
 */
function benchBackend(precision: Precision, options: BenchOptions): Backend | undefined {
  if (precision !== 'bfloat16') return createBackend({ kind: options.backend, precision, threads: options.threads });
  let why: string;
  if (options.backend === 'reference') why = 'the reference backend has no bf16 (it runs on --backend onednn or auto)';
  else {
    try {
      return createBackend({ kind: 'onednn', precision, threads: options.threads });
    } catch (err) {
      if (!isEmsegError(err, 'native-capability', 'native-unavailable')) throw err;
      why = err.message;
    }
  }
  if (!options.skipUnavailable) throw new EmsegError('invalid-option', '--precision', `bf16 cannot run here: ${why}`);
  options.notice?.(`bf16 skipped: ${why}`);
  return undefined;
}

/** Dense scanning of a crop against classifying each of its pixels' windows one by one (batched windows). */
export function slidingVersusDense(spec: ModelSpec, backend: Backend, params: ReturnType<typeof initParams>, crop: number) {
  const window = spec.window!;
  const rng = new Rng(3);
  const size = crop + window - 1;
  const image = Float32Array.from({ length: size * size }, () => rng.next());
  const densePlan = planModel(spec, size, size, { mode: 'dense' });
  const denseNet = new Network(densePlan, params, backend);
  const dx = backend.fromArray(image, [1, 1, size, size]);
  const denseMs = time(() => denseNet.predict(dx).dispose(), 1, 3);
  dx.dispose();
  const batch = crop; // one row of windows per call
  const windowNet = new Network(planModel(spec, window, window), params, backend);
  const windows = new Float32Array(batch * window * window);
  const slidingMs = time(() => {
    for (let y = 0; y < crop; y++) {
      for (let x = 0; x < crop; x++) {
        for (let v = 0; v < window; v++) {
          windows.set(image.subarray((y + v) * size + x, (y + v) * size + x + window), (x * window + v) * window);
        }
      }
      const wx = backend.fromArray(windows, [batch, 1, window, window]);
      windowNet.predict(wx).dispose();
      wx.dispose();
    }
  }, 0, 1);
  return { crop, denseMs, slidingMs, speedup: slidingMs / denseMs };
}

/** Seconds per section as `emseg predict` runs it (default tiles: chosen by cost, infer/tile-choice.ts). */
function timeSection(spec: ModelSpec, backend: Backend, params: ReturnType<typeof initParams>, options: BenchOptions) {
  const size = options.sectionSize!;
  const rng = new Rng(5);
  const image = Float32Array.from({ length: size * size }, () => rng.next());
  const predictor = new Predictor([{ spec, params }], backend);
  const ms = time(() => predictor.predict(image, size, size), 1, options.iters);
  const ttaMs = options.sectionTta ? time(() => predictor.predict(image, size, size, { tta: true }), 0, 1) : undefined;
  return { size, ms, ttaMs };
}

/** [depth, height, width] of a 3-d plan's input and output. */
function volumeShapes(plan: Plan): { input: number[]; output: number[] } {
  return { input: [plan.inputDepth!, plan.input[1], plan.input[2]], output: [plan.z!.size, plan.output[1], plan.output[2]] };
}

function randomVolume(backend: Backend, plan: Plan, batch: number, rng: Rng) {
  const shape = [batch, plan.input[0], ...volumeShapes(plan).input];
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.next();
  return backend.fromArray(data, shape);
}

/** A random target for a 3-d plan's head: per-element binary targets (sigmoid) or class labels (softmax). */
function randomTarget3d(plan: Plan, batch: number, rng: Rng) {
  const voxels = batch * plan.z!.size * plan.output[1] * plan.output[2];
  if (plan.nodes[plan.nodes.length - 1]!.type === 'sigmoid') {
    return { targets: new Float32Array(voxels * plan.output[0]).map(() => rng.int(2)) };
  }
  return { labels: new Int32Array(voxels).map(() => rng.int(plan.output[0])) };
}

/**
 * 3-d models: a forward pass and a training step (loss of the model's head, SGD update) at the smallest exact inputs
 * with at least `forwardSize` and `trainSize` output voxels per axis.
 */
export function benchModel3d(spec: ModelSpec, options: BenchOptions): BenchResult[] {
  const backends = options.precisions.flatMap((precision) => {
    const backend = benchBackend(precision, options);
    return backend ? [{ precision, backend }] : [];
  });
  return backends.map(({ precision, backend }) => {
    const rng = new Rng(7);
    const fPlan = smallestInput3d(spec, options.forwardSize).plan;
    const params = initParams(fPlan, 1);
    const fNet = new Network(fPlan, params, backend);
    const fx = randomVolume(backend, fPlan, options.batch, rng);
    const forwardMs = time(() => fNet.predict(fx).dispose(), options.warmup, options.iters);
    fx.dispose();
    const forwardRss = peakRssMb();
    const tPlan = smallestInput3d(spec, options.trainSize).plan;
    const tNet = new Network(tPlan, params, backend);
    const tx = randomVolume(backend, tPlan, options.batch, rng);
    const target = randomTarget3d(tPlan, options.batch, rng);
    const sgd = new Sgd({ momentum: 0.9 });
    const trainMs = time(() => {
      zeroGrads(params);
      tNet.trainStep(tx, target);
      sgd.step(params, 1e-3);
    }, options.warmup, options.iters);
    tx.dispose();
    const f = volumeShapes(fPlan);
    const t = volumeShapes(tPlan);
    const fGflop = (fPlan.flops * options.batch) / 1e9;
    const tGflop = (trainFlops(tPlan) * options.batch) / 1e9;
    const outVoxels = options.batch * t.output.reduce((a, b) => a * b, 1);
    return {
      model: spec.name, precision, backend: backend.name, forwardMode: 'strided',
      forward: { size: Math.min(...f.output), batch: options.batch, medianMs: forwardMs, gflop: fGflop,
        gflops: fGflop / (forwardMs / 1e3), peakRssMb: forwardRss },
      train: { size: Math.min(...t.output), batch: options.batch, medianMs: trainMs, gflop: tGflop,
        gflops: tGflop / (trainMs / 1e3), peakRssMb: peakRssMb(), windowsPerSecond: outVoxels / (trainMs / 1e3) },
      volume: { forwardInput: f.input, forwardOutput: f.output, trainInput: t.input, trainOutput: t.output },
    };
  });
}
