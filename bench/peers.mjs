#!/usr/bin/env node
// emseg against onnxruntime-node on the same network, side by side in one run (docs/BENCHMARKS.md, "Prediction
// against onnxruntime"; issue 28). Run on a quiet machine after `make build`:
//
//   node bench/peers.mjs                                   # the shipped unet-w16 member, 512 and 2048, fp32, 2 threads
//   node bench/peers.mjs --model models/emseg-isbi --sizes 512,2048 --repeats 5
//   node bench/peers.mjs --bf16                            # emseg in bf16 (where the CPU has it) against ORT fp32
//   node bench/peers.mjs --int8                            # emseg in int8 (AVX-512 VNNI) against ORT fp32 and emseg fp32
//
// --int8 calibrates on one more random section of the first size (nn/int8.ts; the scales do not change the speed) and
// times emseg's float32 predictor in the same alternation (fp32Ms, int8OverFp32, the CPU-time twins fp32CpuMs and
// int8OverFp32Cpu, maxDiffFp32: int8 against fp32).
// Both predict a whole random section in [0, 1]: emseg as `emseg predict` does (its Predictor, tiled, mirrored
// borders, --tile), onnxruntime the graph `emseg export --format onnx` writes (which mirrors the borders itself and
// runs each network once over the whole section). Runs alternate (emseg, ort, emseg, ort, ...) after one warm-up
// each, so both see the same machine; the medians, their ratio, and the largest difference between the two maps
// are printed as JSON. `networkMs` is one forward pass of the tile emseg uses, and `idealMs` what the section would
// cost if every forward pass output only pixels the section keeps (no halo): that pass's time per output pixel x
// the section's pixels. CPU times (user + system, all threads) are printed beside wall times: on a busy machine
// they say more about the work each side does (with --threads 1 especially), but the claim is the wall-time ratio
// on a quiet one.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';

const ROOT = new URL('..', import.meta.url).pathname;
const dist = (p) => import(join(ROOT, 'dist/src', p));
const { createBackend } = await dist('backend/index.js');
const { Predictor, MEMBRANE_CLASS, DEFAULT_TILE } = await dist('infer/predict.js');
const { buildOnnx, INPUT_NAME, OUTPUT_NAME } = await dist('export/onnx/export.js');
const { loadModels } = await dist('models/model-dir.js');
const { Network } = await dist('nn/network.js');
const { Int8Calibrator } = await dist('infer/int8.js');
const { sectionFrom } = await dist('infer/section.js');

const { values } = parseArgs({ options: {
  model: { type: 'string', default: join(ROOT, 'models/emseg-isbi/unet-w16-s3') },
  sizes: { type: 'string', default: '512,2048' },
  repeats: { type: 'string', default: '5' },
  threads: { type: 'string', default: '2' },
  tile: { type: 'string', default: String(DEFAULT_TILE) },
  bf16: { type: 'boolean', default: false },
  int8: { type: 'boolean', default: false },
} });
if (values.bf16 && values.int8) throw new Error('give --bf16 or --int8, not both');
const THREADS = Number(values.threads);
const REPEATS = Number(values.repeats);
const TILE = values.tile === 'auto' ? 'auto' : Number(values.tile);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now();
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};

const models = loadModels(values.model);
const backend = createBackend({ kind: 'onednn', precision: values.bf16 ? 'bfloat16' : 'float32', threads: THREADS, int8: values.int8 });
const weights = models.map((m) => ({ spec: m.spec, params: m.params }));
const int8 = values.int8 ? calibrate(Number(values.sizes.split(',')[0])) : undefined;
const predictor = new Predictor(weights, backend, { int8 });
/** --int8: emseg's float32 predictor on the same backend, timed in the same alternation. */
const fp32 = values.int8 ? new Predictor(weights, backend) : null;

function calibrate(size) {
  const calibrator = new Int8Calibrator(weights, backend, TILE);
  calibrator.add(sectionFrom(Float32Array.from({ length: size * size }, () => Math.random()), size, size));
  return calibrator.calibrations();
}
const { bytes } = buildOnnx(models, { name: 'peers', description: 'bench/peers.mjs', producerVersion: 'bench', metadata: {} });
const session = await ort.InferenceSession.create(bytes, {
  intraOpNumThreads: THREADS, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
});

/** One forward pass of the first model on the tile Predictor uses for this section, and its output pixels. */
function networkPass(size) {
  const grid = predictor.layout(size, size, TILE);
  const g = predictor.geometry(predictor.models[0], grid.stepH, grid.stepW);
  const net = new Network(g.plan, models[0].params, backend, 1, int8?.[0]);
  const x = backend.fromArray(new Float32Array(g.inputH * g.inputW).fill(0.5), [1, 1, g.inputH, g.inputW]);
  net.predict(x).dispose();
  const ts = [];
  for (let i = 0; i < REPEATS; i++) {
    const t0 = now();
    net.predict(x).dispose();
    ts.push(now() - t0);
  }
  x.dispose();
  const [, oh, ow] = g.plan.output;
  return { ms: median(ts), input: g.inputH, outputPixels: oh * ow, tile: grid.stepH };
}

async function compare(size) {
  const image = Float32Array.from({ length: size * size }, () => Math.random());
  const input = new ort.Tensor('float32', image, [1, 1, size, size]);
  const runEmseg = () => predictor.predict(image, size, size, { tile: TILE });
  const runOrt = async () => (await session.run({ [INPUT_NAME]: input }))[OUTPUT_NAME].data;
  let ours = runEmseg();
  let theirs = await runOrt();
  const runFp32 = () => fp32.predict(image, size, size, { tile: TILE });
  let base = fp32 ? runFp32() : null;
  const fp32Ms = [];
  const fp32Cpu = [];
  const emsegMs = [];
  const ortMs = [];
  const emsegCpu = [];
  const ortCpu = [];
  for (let i = 0; i < REPEATS; i++) {
    let t0 = now();
    let c0 = cpu();
    ours = runEmseg();
    emsegMs.push(now() - t0);
    emsegCpu.push(cpu() - c0);
    t0 = now();
    c0 = cpu();
    theirs = await runOrt();
    ortMs.push(now() - t0);
    ortCpu.push(cpu() - c0);
    if (!fp32) continue;
    t0 = now();
    c0 = cpu();
    base = runFp32();
    fp32Ms.push(now() - t0);
    fp32Cpu.push(cpu() - c0);
  }
  let maxDiff = 0;
  const plane = theirs.subarray(MEMBRANE_CLASS * size * size, (MEMBRANE_CLASS + 1) * size * size);
  for (let i = 0; i < plane.length; i++) maxDiff = Math.max(maxDiff, Math.abs(plane[i] - ours[i]));
  const pass = networkPass(size);
  const idealMs = models.length * pass.ms * (size * size) / pass.outputPixels;
  const e = median(emsegMs);
  const o = median(ortMs);
  let maxDiffFp32 = 0;
  for (let i = 0; base && i < base.length; i++) maxDiffFp32 = Math.max(maxDiffFp32, Math.abs(base[i] - ours[i]));
  const vsFp32 = fp32 ? { fp32Ms: median(fp32Ms), int8OverFp32: e / median(fp32Ms), fp32CpuMs: median(fp32Cpu),
    int8OverFp32Cpu: median(emsegCpu) / median(fp32Cpu), maxDiffFp32, fp32Runs: fp32Ms } : {};
  return { size, tile: pass.tile, emsegMs: e, ortMs: o, ratio: e / o, emsegCpuMs: median(emsegCpu), ortCpuMs: median(ortCpu),
    cpuRatio: median(emsegCpu) / median(ortCpu), maxDiff,
    networkMs: pass.ms, networkInput: pass.input, idealMs, sectionOverIdeal: e / idealMs, emsegRuns: emsegMs, ortRuns: ortMs, ...vsFp32 };
}

const results = [];
for (const size of values.sizes.split(',').map(Number)) results.push(await compare(size));
await session.release();
process.stdout.write(`${JSON.stringify({ model: values.model, members: models.length, precision: values.bf16 ? 'bf16' : values.int8 ? 'int8' : 'fp32',
  threads: THREADS, onnxruntime: ort.env.versions?.common ?? 'unknown', results }, null, 2)}\n`);
