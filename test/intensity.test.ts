import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encode as encodePngLib } from 'fast-png';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { isEmsegError, type EmsegErrorCode } from '../src/errors.js';
import {
  normaliseSection,
  parseIntensity,
  percentile,
  sectionMapping,
  type IntensitySpec,
} from '../src/image/intensity.js';
import { encodeTiff, loadDataset, readStack, writeStack } from '../src/io/index.js';
import { toFloat32, type StackData } from '../src/image/stack.js';
import { loadModel, META_FILE, saveModel, type LoadedModel } from '../src/models/model-dir.js';
import { initParams } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { loadTrainingData, predictIntensity } from '../src/pipeline/intensity.js';
import { runPredict } from '../src/pipeline/predict.js';
import { runTrain } from '../src/pipeline/train.js';
import { loadInputs } from '../src/report/load.js';
import { parseStudy } from '../src/study/schema.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const at = { source: 'stack.tif', page: 0, index: 3 };
const isCode = (code: EmsegErrorCode, path?: string) => (e: unknown) =>
  isEmsegError(e, code) && (path === undefined || e.path === path);
const spec = (text: string): IntensitySpec => parseIntensity(text);
const tmp = (name: string) => mkdtempSync(join(tmpdir(), `emseg-intensity-${name}-`));

/** A 12-bit camera image stored in 16 bits: values up to 4000. */
const twelveBit = Uint16Array.from({ length: 64 }, (_, i) => (i * 4000) / 63);

test('intensity rules parse from their text forms, and bad ones are refused naming the flag', () => {
  assert.deepEqual(spec('auto'), { kind: 'auto' });
  assert.deepEqual(spec('DTYPE'), { kind: 'dtype' });
  assert.deepEqual(spec('min-max'), { kind: 'min-max' });
  assert.deepEqual(spec('percentiles'), { kind: 'percentiles', low: 0.5, high: 99.5 });
  assert.deepEqual(spec('percentiles:1,99'), { kind: 'percentiles', low: 1, high: 99 });
  assert.deepEqual(spec('0,4095'), { kind: 'range', low: 0, high: 4095 });
  for (const bad of ['', 'linear', '5', '4095,0', '1,1', 'percentiles:-1,50', 'percentiles:1,101', 'a,b', '0,Infinity']) {
    assert.throws(() => parseIntensity(bad), isCode('invalid-option', '--intensity'), bad);
  }
  assert.throws(() => parseIntensity('x', 'data.intensity'), isCode('invalid-option', 'data.intensity'));
});

test('8-bit: auto and dtype divide by 255, exactly as before', () => {
  const data = Uint8Array.from({ length: 256 }, (_, i) => i);
  const expected = toFloat32(data);
  assert.deepEqual(normaliseSection(spec('auto'), data, at), expected);
  assert.deepEqual(normaliseSection(spec('dtype'), data, at), expected);
  // A dark 8-bit section is not second-guessed: 8 bits is the range its camera wrote.
  assert.deepEqual(normaliseSection(spec('auto'), Uint8Array.of(0, 10, 20), at), toFloat32(Uint8Array.of(0, 10, 20)));
});

test('12-bit data in a 16-bit file: auto refuses naming the file and the rule to use; each explicit rule maps it', () => {
  assert.throws(() => normaliseSection(spec('auto'), twelveBit, at), (e: unknown) =>
    isCode('intensity-range', 'stack.tif')(e) && (e as Error).message.includes('--intensity 0,4095')
    && (e as Error).message.includes('section 3'));
  const asked = normaliseSection(spec('0,4095'), twelveBit, at);
  assert.equal(asked[63], Math.fround(4000 / 4095));
  assert.deepEqual(normaliseSection(spec('dtype'), twelveBit, at), toFloat32(twelveBit));
  const minMax = normaliseSection(spec('min-max'), twelveBit, at);
  assert.equal(minMax[0], 0);
  assert.equal(minMax[63], 1);
  // Full-range 16-bit data is what dtype means: auto agrees with it.
  const full = Uint16Array.of(0, 1000, 65535);
  assert.deepEqual(normaliseSection(spec('auto'), full, at), toFloat32(full));
  // 10- and 14-bit data get their own suggestion.
  assert.throws(() => normaliseSection(spec('auto'), Uint16Array.of(0, 1000), at), (e: unknown) => (e as Error).message.includes('0,1023'));
  assert.throws(() => normaliseSection(spec('auto'), Uint16Array.of(0, 16000), at), (e: unknown) => (e as Error).message.includes('0,16383'));
  // A blank section carries no scale to get wrong.
  assert.deepEqual(normaliseSection(spec('auto'), new Uint16Array(4), at), new Float32Array(4));
});

test('float data: 0..1 is used as is; 0..255 is refused by auto and dtype with advice, and scaled by 0,255', () => {
  const unit = Float32Array.of(0, 0.25, 1);
  assert.deepEqual(normaliseSection(spec('auto'), unit, at), unit);
  assert.deepEqual(normaliseSection(spec('dtype'), unit, at), unit);
  const bytes = Float32Array.of(0, 51, 255);
  for (const rule of ['auto', 'dtype']) {
    assert.throws(() => normaliseSection(spec(rule), bytes, at), (e: unknown) =>
      isCode('intensity-range', 'stack.tif')(e) && (e as Error).message.includes('--intensity 0,255'), rule);
  }
  assert.deepEqual(normaliseSection(spec('0,255'), bytes, at), Float32Array.of(0, 0.2, 1));
  // Negative floats get no 0,255 advice (it would clip them).
  assert.throws(() => normaliseSection(spec('auto'), Float32Array.of(-3, 2), at), (e: unknown) =>
    isCode('intensity-range')(e) && !(e as Error).message.includes('0,255'));
});

test('percentiles are per section and clip; fixed ranges clip too', () => {
  const data = Uint16Array.from({ length: 1000 }, (_, i) => i);
  assert.equal(percentile(data, 0.5), 4);
  assert.equal(percentile(data, 99.5), 994);
  assert.equal(percentile(Float32Array.from(data), 99.5), 994);
  assert.deepEqual(sectionMapping(spec('percentiles'), data, at), { low: 4, high: 994 });
  const out = normaliseSection(spec('percentiles'), data, at);
  assert.equal(out[0], 0);
  assert.equal(out[999], 1);
  assert.equal(out[499], Math.fround(495 / 990));
  assert.deepEqual(normaliseSection(spec('10,20'), Uint8Array.of(0, 15, 255), at), Float32Array.of(0, 0.5, 1));
  // A flat section has no contrast to stretch: all 0, not NaN.
  assert.deepEqual(normaliseSection(spec('min-max'), Uint8Array.of(7, 7), at), Float32Array.of(0, 0));
});

test('NaN or infinity in an input section is refused under every rule, naming the file and section', () => {
  for (const rule of ['auto', 'dtype', 'min-max', 'percentiles', '0,1']) {
    for (const bad of [NaN, Infinity, -Infinity]) {
      assert.throws(() => normaliseSection(spec(rule), Float32Array.of(0.5, bad), { source: 'f.tif', page: 2, index: 7 }), (e: unknown) =>
        isCode('non-finite', 'f.tif')(e) && (e as Error).message.includes('section 7'), `${rule} ${bad}`);
    }
  }
});

test('16-bit, 32-bit and 1-bit labels of 0 and the type maximum map onto the max polarities', async () => {
  const dir = tmp('labels');
  const images = join(dir, 'images.tif');
  writeFileSync(images, encodeTiff([Uint8Array.of(10, 20, 30, 40)], 4, 1));
  const membrane = [1, 0, 0, 1];
  const cases: [string, StackData][] = [
    ['16.tif', Uint16Array.of(0, 65535, 65535, 0)],
    ['32.tif', Uint32Array.of(0, 4294967295, 4294967295, 0)],
  ];
  for (const [name, data] of cases) {
    const labels = join(dir, name);
    writeFileSync(labels, encodeTiff([data], 4, 1));
    const ds = await loadDataset({ images, labels, polarity: 'membrane-0-interior-max' });
    assert.deepEqual(Array.from(ds.labels!.data), membrane, name);
    const inverted = await loadDataset({ images, labels, polarity: 'membrane-max-interior-0' });
    assert.deepEqual(Array.from(inverted.labels!.data), membrane.map((v) => 1 - v), name);
    // The ISBI default refuses 0/65535 and names the polarity that fits.
    await assert.rejects(loadDataset({ images, labels }), (e: unknown) =>
      isCode('not-binary', labels)(e) && (e as Error).message.includes('membrane-0-interior-max'));
  }
  const oneBit = join(dir, 'one-bit.png');
  writeFileSync(oneBit, encodePngLib({ width: 4, height: 1, data: Uint8Array.of(0b01100000), depth: 1, channels: 1 }));
  const ds = await loadDataset({ images, labels: oneBit, polarity: 'membrane-0-interior-max' });
  assert.deepEqual(Array.from(ds.labels!.data), membrane);
});

const tinySpec = parseModelSpec({
  name: 'tiny', window: 7,
  layers: [{ type: 'conv', name: 'c1', out: 3, kernel: 2 }, { type: 'relu' }, { type: 'pool', kernel: 2 },
    { type: 'dense', name: 'fc', out: 2 }, { type: 'softmax' }],
});
const predictBase = { tta: false, bf16: false, tile: 8, backend: 'reference' as const, overwrite: false, membraneProb: false, format: 'isbi' as const };

function fakeModel(dir: string, data?: Record<string, unknown>): LoadedModel {
  return { dir, spec: tinySpec, params: new Map(), meta: data ? { data } : {} };
}

test('predict applies the models\' recorded rule, treats a missing record as dtype checked as auto, and warns on a different flag', () => {
  const legacy = fakeModel('shipped');
  assert.deepEqual(predictIntensity([legacy], 'uint8', 'in').spec, { kind: 'auto' });
  const ranged = fakeModel('twelve', { intensity: '0,4095', sample_type: 'uint16' });
  assert.deepEqual(predictIntensity([ranged], 'uint16', 'in'), { spec: { kind: 'range', low: 0, high: 4095 }, notices: [] });
  // A fixed range learned on 16-bit data means nothing for 8-bit input: refused, naming the input.
  assert.throws(() => predictIntensity([ranged], 'uint8', 'in.png'), isCode('intensity-range', 'in.png'));
  const flagged = predictIntensity([ranged], 'uint8', 'in.png', 'dtype');
  assert.deepEqual(flagged.spec, { kind: 'dtype' });
  assert.equal(flagged.notices.length, 1);
  assert.ok(flagged.notices[0]!.includes('0,4095'));
  // Same rule as the record (dtype = auto for a record): no warning.
  assert.deepEqual(predictIntensity([legacy], 'uint8', 'in', 'auto').notices, []);
  // An ensemble whose members disagree needs a flag.
  assert.throws(() => predictIntensity([legacy, ranged], 'uint16', 'in'), isCode('invalid-option', '--intensity'));
  assert.throws(() => predictIntensity([fakeModel('bad', { intensity: 'sideways' })], 'uint8', 'in'), isCode('invalid-option'));
});

test('train records its rule and sample type in meta.json; predict then applies it to 12-bit input by default', async () => {
  const dir = tmp('train');
  const images = join(dir, 'images.tif');
  const labels = join(dir, 'labels.tif');
  const w = 24;
  const sections = [0, 1].map((z) => Uint16Array.from({ length: w * w }, (_, i) => ((i * 37 + z * 11) % 4096)));
  writeFileSync(images, encodeTiff(sections, w, w));
  writeFileSync(labels, encodeTiff(sections.map((s) => Uint8Array.from(s, (v) => (v > 2000 ? 255 : 0))), w, w));
  const specFile = join(dir, 'spec.json');
  writeFileSync(specFile, JSON.stringify(tinySpec));
  const job = {
    images, labels, polarity: 'membrane-0-interior-255' as const, out: join(dir, 'model'), model: specFile, val: [],
    resume: false, overwrite: false, tile: 8, batch: 1, steps: 2, epochSteps: 2, optimizer: 'adam', lr: 1e-3, momentum: 0.9,
    weightDecay: 0, schedule: 'constant', warmup: 1, balance: 'weights', select: 'pixel_error', seed: 1, checkpointMinutes: 0,
  };
  // The default (auto) refuses 12-bit data before training anything, naming the file.
  await assert.rejects(runTrain(job, createReferenceBackend('float32'), {}), isCode('intensity-range', images));
  await runTrain({ ...job, intensity: '0,4095' }, createReferenceBackend('float32'), {});
  const meta = JSON.parse(readFileSync(join(dir, 'model', META_FILE), 'utf8'));
  assert.equal(meta.data.intensity, '0,4095');
  assert.equal(meta.data.sample_type, 'uint16');
  const out = join(dir, 'maps.tif');
  await runPredict({ ...predictBase, models: [join(dir, 'model')], input: images, out });
  assert.equal((await readStack(out)).depth, 2);
  // The study file takes the same rule under data.intensity, and refuses a bad one naming the field.
  const study = { name: 's', base: 'fakhry-b', variants: [{ name: 'v' }], budget: { steps: 1 },
    data: { images, labels, validation: '1', intensity: '0,4095' } };
  assert.equal(parseStudy(study).data.intensity, '0,4095');
  assert.throws(() => parseStudy({ ...study, data: { ...study.data, intensity: '4095' } }), (e: unknown) =>
    isEmsegError(e, 'invalid-study') && (e as Error).message.includes('data.intensity'));
  const data = await loadTrainingData({ images, labels, polarity: 'membrane-0-interior-255', intensity: 'min-max' });
  assert.equal(data.source.intensity, 'min-max');
});

test('colour input is refused with advice naming --to-grey, and predicted from its luma with toGrey', async () => {
  const dir = tmp('colour');
  const model = join(dir, 'model');
  saveModel(model, tinySpec, initParams(planModel(tinySpec, 7, 7), 4), {});
  const rgb = join(dir, 'rgb.png');
  const w = 16;
  writeFileSync(rgb, encodePngLib({ width: w, height: w, data: Uint8Array.from({ length: w * w * 3 }, (_, i) => (i * 29) % 256), depth: 8, channels: 3 }));
  const out = join(dir, 'maps.tif');
  await assert.rejects(runPredict({ ...predictBase, models: [model], input: rgb, out }), (e: unknown) =>
    isCode('unsupported', rgb)(e) && (e as Error).message.includes('--to-grey'));
  assert.ok(!existsSync(out));
  await runPredict({ ...predictBase, models: [model], input: rgb, out, toGrey: true });
  assert.equal((await readStack(out)).width, w);
  // train and eval's --images take the same option.
  const labels = join(dir, 'labels.png');
  writeFileSync(labels, encodePngLib({ width: w, height: w, data: Uint8Array.from({ length: w * w }, (_, i) => (i % 3 ? 255 : 0)), depth: 8, channels: 1 }));
  const polarity = 'membrane-0-interior-255' as const;
  await assert.rejects(loadTrainingData({ images: rgb, labels, polarity }), (e: unknown) =>
    isCode('unsupported', rgb)(e) && (e as Error).message.includes('--to-grey'));
  const grey = await loadTrainingData({ images: rgb, labels, polarity, toGrey: true });
  assert.equal(grey.source.to_grey, true);
  assert.equal(grey.images.data.length, w * w);
  // The untrained model's map is grey, spread like a raw image: predIsMap says it is a map all the same.
  await assert.rejects(loadInputs({ labels, prediction: out, images: rgb, predIsMap: true }), isCode('unsupported', rgb));
  const shown = await loadInputs({ labels, prediction: out, images: rgb, imagesToGrey: true, imagesIntensity: 'min-max', predIsMap: true });
  assert.equal(Math.max(...shown.images!.data), 1);
});

test('non-finite weights are refused at load naming the file and tensor; a non-finite map is never written (both backends)', async () => {
  const dir = tmp('nan');
  const input = join(dir, 'images');
  await writeStack(input, { width: 24, height: 20, depth: 2, data: Uint8Array.from({ length: 2 * 20 * 24 }, (_, i) => (i * 37) % 256) });
  const nanModel = join(dir, 'nan');
  const params = initParams(planModel(tinySpec, 7, 7), 4);
  params.get('fc.weight')!.data[5] = NaN;
  saveModel(nanModel, tinySpec, params, {});
  const weights = join(nanModel, 'weights.safetensors');
  assert.throws(() => loadModel(nanModel), (e: unknown) => isCode('non-finite', weights)(e) && (e as Error).message.includes('"fc.weight"'));
  // Finite weights so large that the activations overflow: the map is NaN on either backend.
  const hugeModel = join(dir, 'huge');
  const huge = initParams(planModel(tinySpec, 7, 7), 4);
  for (const p of huge.values()) p.data.fill(3e38);
  saveModel(hugeModel, tinySpec, huge, {});
  for (const backend of ['reference', 'onednn'] as const) {
    const out = join(dir, `${backend}.tif`);
    await assert.rejects(runPredict({ ...predictBase, backend, models: [nanModel], input, out }), isCode('non-finite', weights), backend);
    await assert.rejects(runPredict({ ...predictBase, backend, models: [hugeModel], input, out }), isCode('non-finite'), backend);
    assert.ok(!existsSync(out), backend);
  }
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no temporary file left behind');
  // The command exits non-zero with one line naming the tensor, and writes nothing.
  const out = join(dir, 'cli.tif');
  assert.throws(() => execFileSync('node', [join(root, 'bin/emseg.js'), 'predict', '--model', nanModel, '--input', input, '--out', out,
    '--backend', 'onednn', '--quiet'], { stdio: 'pipe' }), (err: { status: number; stderr: Buffer }) =>
    err.status !== 0 && err.stderr.toString().includes('fc.weight'));
  assert.ok(!existsSync(out));
});
