/**
 * int8 prediction (nn/int8.ts, native/conv.cc conv2dInt8): the maps of a shipped member calibrated on one sample
 * section stay within the documented tolerance of its float32 maps on the other (docs/MODELS.md, "int8 prediction"),
 * and every place int8 cannot run refuses it with its code instead of computing float32 under int8's name.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { nativeInfo } from '../src/backend/onednn/index.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { readStack } from '../src/io/index.js';
import { loadModels } from '../src/models/model-dir.js';
import { type Int8Calibration, INT8_MIN_CHANNELS, int8Inputs } from '../src/nn/int8.js';
import { Network } from '../src/nn/network.js';
import { geometryForSteps } from '../src/infer/tiling.js';
import { SAMPLE_IMAGES, SHIPPED_MODEL } from '../src/pipeline/assets.js';
import { runPredict } from '../src/pipeline/predict.js';
import { refused } from './helpers/errors.js';

const INT8_ISAS = ['avx512_core_vnni', 'avx512_core_bf16', 'avx512_core_amx'];
const skipInt8: string | false = INT8_ISAS.includes(nativeInfo().isa) ? false : `no AVX-512 VNNI on this CPU (${nativeInfo().isa})`;
const MEMBER = join(SHIPPED_MODEL, 'unet-w16-s3');
const CALIBRATE = join(SAMPLE_IMAGES, '23.png');
const INPUT = join(SAMPLE_IMAGES, '24.png');

/** The documented tolerance (docs/MODELS.md): mean |int8 - float32| <= 0.005, at most 0.5 % of pixels off by > 0.1. */
const MEAN_TOLERANCE = 0.005;
const FAR = 0.1;
const FAR_FRACTION = 0.005;

async function predictMaps(out: string, int8?: { calibrate: string }, notices: string[] = []): Promise<Float32Array> {
  await runPredict({ models: [MEMBER], input: INPUT, out, format: 'tiff', membraneProb: true, tta: false, bf16: false, int8,
    tile: 512, backend: 'onednn', overwrite: false, notice: (m) => notices.push(m) });
  return (await readStack(out)).data as Float32Array;
}

test('int8 maps of a shipped member stay within the documented tolerance of its float32 maps', { skip: skipInt8 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-int8-'));
  const notices: string[] = [];
  const f32 = await predictMaps(join(dir, 'f32.tif'));
  const i8 = await predictMaps(join(dir, 'int8.tif'), { calibrate: CALIBRATE }, notices);
  assert.equal(i8.length, f32.length);
  let sum = 0;
  let far = 0;
  let max = 0;
  for (let i = 0; i < f32.length; i++) {
    const d = Math.abs(i8[i]! - f32[i]!);
    sum += d;
    max = Math.max(max, d);
    if (d > FAR) far++;
  }
  const mean = sum / f32.length;
  assert.ok(max > 0, 'the int8 maps differ from the float32 ones somewhere: int8 really ran');
  assert.ok(mean <= MEAN_TOLERANCE, `mean |int8 - float32| ${mean}`);
  assert.ok(far / f32.length <= FAR_FRACTION, `${far} of ${f32.length} pixels off by more than ${FAR}`);
  assert.ok(notices.some((m) => /int8: calibrated on 1 section/.test(m)), notices.join('\n'));
});

/** The member's plan at a small tile, its weights, and a calibration naming every int8 candidate (up0a's input negative). */
function member(): { net: (backend: ReturnType<typeof createBackend>, cal?: Int8Calibration) => Network; calibration: Int8Calibration } {
  const [model] = loadModels(MEMBER);
  const { plan } = geometryForSteps(model!.spec, 64, 64);
  const ranges: Int8Calibration['ranges'] = {};
  for (const node of plan.nodes) if (node.type === 'conv') ranges[node.name] = { min: node.name === 'up0a' ? -1 : 0, high: 2 };
  return { net: (backend, cal) => new Network(plan, model!.params, backend, 1, cal), calibration: { ranges } };
}

test('int8 with --close-gaps (not accepted: docs/MODELS.md) is refused before anything is read or written', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'emseg-int8-gaps-')), 'maps.tif');
  await assert.rejects(runPredict({ models: [MEMBER], input: INPUT, out, format: 'tiff', membraneProb: true, tta: false, bf16: false,
    int8: { calibrate: CALIBRATE }, closeGaps: {}, tile: 512, backend: 'auto', overwrite: false }), refused('invalid-option', '--int8'));
  assert.ok(!existsSync(out));
});

test('int8 is refused where it cannot run: reference backend, bf16, a backend without int8, training, a foreign calibration', async () => {
  assert.throws(() => createBackend({ kind: 'reference', int8: true }), refused('invalid-option', '--int8'));
  assert.throws(() => createBackend({ kind: 'onednn', precision: 'bfloat16', int8: true }), refused('invalid-option', '--int8'));
  const ref = createReferenceBackend('float32');
  const x = ref.fromArray(new Float32Array(16 * 9), [1, 16, 3, 3]);
  assert.throws(() => ref.conv2d(x, new Float32Array(16 * 16 * 9), [16, 16, 3, 3], null,
    { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1], int8: { srcScale: 1 } }), refused('invalid-option', '--int8'));
  const { net, calibration } = member();
  assert.throws(() => net(createBackend({ kind: 'onednn' }), calibration), refused('invalid-option', '--int8'));
  const { down1a: _dropped, ...fewer } = calibration.ranges;
  const [model] = loadModels(MEMBER);
  assert.throws(() => int8Inputs(geometryForSteps(model!.spec, 64, 64).plan, { ranges: fewer }, 'int8 calibration'), refused('mismatch', 'int8 calibration'));
});

test('an int8 network predicts but never trains; the first layer, the head and negative inputs stay float32', { skip: skipInt8 }, () => {
  const backend = createBackend({ kind: 'onednn', int8: true });
  const { net, calibration } = member();
  const network = net(backend, calibration);
  const [c, h, w] = network.plan.input;
  const x = backend.fromArray(new Float32Array(c * h * w).fill(0.5), [1, c, h, w]);
  const y = network.predict(x);
  assert.ok(Array.from(y.toArray()).every(Number.isFinite));
  y.dispose();
  assert.throws(() => network.trainStep(x, { labels: new Int32Array(network.plan.output[1] * network.plan.output[2]) }), refused('invalid-option', '--int8'));
  x.dispose();
  const quantized = int8Inputs(network.plan, calibration, 'int8 calibration');
  const convs = network.plan.nodes.filter((n) => n.type === 'conv');
  const narrow = convs.filter((n) => n.type === 'conv' && Math.min(n.wShape[0], n.wShape[1]) < INT8_MIN_CHANNELS);
  assert.deepEqual(narrow.map((n) => n.name), ['down0a', 'head']);
  const up0a = convs.find((n) => n.name === 'up0a')!;
  assert.ok(!quantized.has(up0a.index), 'an input with negative values stays float32');
  assert.equal(quantized.size, convs.length - narrow.length - 1);
});

test('int8 on a CPU without AVX-512 VNNI is refused as native-capability (simulated with ONEDNN_MAX_CPU_ISA)', () => {
  const script = `
    import { loadOneDnnBackend, nativeInfo } from ${JSON.stringify(new URL('../src/backend/onednn/index.js', import.meta.url).href)};
    let r = { isa: nativeInfo().isa };
    try { loadOneDnnBackend({ int8: true }); } catch (e) { r = { ...r, code: e.code }; }
    console.log(JSON.stringify(r));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ONEDNN_MAX_CPU_ISA: 'AVX512_CORE', DNNL_MAX_CPU_ISA: 'AVX512_CORE' }, encoding: 'utf8' });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { isa: string; code?: string };
  assert.equal(r.isa, 'avx512_core');
  assert.equal(r.code, 'native-capability');
});

test('emseg predict: --int8 needs --calibrate, --calibrate needs --int8, and OME-Zarr outputs refuse --int8', () => {
  const emseg = fileURLToPath(new URL('../../bin/emseg.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'emseg-int8-cli-'));
  const run = (...args: string[]) => {
    try {
      execFileSync(process.execPath, [emseg, 'predict', '--model', MEMBER, '--input', INPUT, ...args], { stdio: 'pipe', cwd: dir });
      return assert.fail(`accepted ${args.join(' ')}`);
    } catch (err) {
      return (err as { stderr: Buffer }).stderr.toString();
    }
  };
  // The CLI prints an error as "emseg: <path>: <message>"; two refusals name --int8, told apart by their message.
  assert.match(run('--out', 'a.tif', '--int8'), /^emseg: --int8: needs --calibrate/m);
  assert.match(run('--out', 'a.tif', '--calibrate', CALIBRATE), /^emseg: --calibrate: /m);
  assert.match(run('--out', 'a.zarr', '--int8', '--calibrate', CALIBRATE), /^emseg: --int8: .*OME-Zarr/m);
});
