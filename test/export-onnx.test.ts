import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { createBackend } from '../src/backend/index.js';
import { isEmsegError } from '../src/errors.js';
import { buildOnnx, INPUT_NAME, OUTPUT_NAME, SECTIONS_METADATA, type ExportableModel } from '../src/export/onnx/export.js';
import { decodeModelProto, OPSET_VERSION } from '../src/export/onnx/proto.js';
import { referencePrediction } from '../src/export/reference.js';
import { Predictor, MEMBRANE_CLASS } from '../src/infer/predict.js';
import { decodePng } from '../src/io/png.js';
import { loadModels, probePlan } from '../src/models/model-dir.js';
import { resolveSpec, zooNames } from '../src/models/zoo.js';
import { initParams } from '../src/nn/params.js';
import { parseModelSpec, withInputSections, type ModelSpecInput } from '../src/nn/spec.js';
import { SAMPLE_IMAGES, SHIPPED_MODEL } from '../src/pipeline/assets.js';

// The exported graph, run by onnxruntime-node, must equal emseg's own prediction: one forward pass of each network
// over the mirrored image (src/export/reference.ts), which is what emseg's Predictor computes with one tile.
const TOLERANCE = 1e-4;
const backend = createBackend();

/** A smooth, non-constant test image (values in [0,1]) of a size that is not a multiple of any pooling. */
function syntheticImage(height: number, width: number): Float32Array {
  return Float32Array.from({ length: height * width }, (_, i) =>
    0.5 + 0.25 * Math.sin(i * 0.37) + 0.2 * Math.cos((i % width) * 0.21 + Math.floor(i / width) * 0.13));
}

function exportOf(models: readonly ExportableModel[], name: string) {
  return buildOnnx(models, { name, description: `test export of ${name}`, producerVersion: 'test', metadata: { model: name } });
}

async function runOnnx(bytes: Uint8Array, image: Float32Array, height: number, width: number): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const channels = image.length / (height * width);
    const out = await session.run({ [INPUT_NAME]: new ort.Tensor('float32', image, [1, channels, height, width]) });
    return out[OUTPUT_NAME]!;
  } finally {
    await session.release();
  }
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function randomModel(nameOrSpec: string | ModelSpecInput, seed = 7): ExportableModel {
  const spec = typeof nameOrSpec === 'string' ? resolveSpec(nameOrSpec) : parseModelSpec(nameOrSpec, 'test spec');
  return { spec, params: initParams(probePlan(spec), seed) };
}

const HEIGHT = 37;
const WIDTH = 45;

for (const name of zooNames()) {
  test(`ONNX export of zoo model ${name} equals emseg's prediction (onnxruntime-node, ${HEIGHT}x${WIDTH})`, async () => {
    const model = randomModel(name);
    const image = syntheticImage(HEIGHT, WIDTH);
    const { bytes } = exportOf([model], name);
    const got = await runOnnx(bytes, image, HEIGHT, WIDTH);
    assert.deepEqual(got.dims, [1, 2, HEIGHT, WIDTH]);
    const want = referencePrediction([model], backend, image, HEIGHT, WIDTH);
    const diff = maxDifference(got.data as Float32Array, want);
    assert.ok(diff <= TOLERANCE, `max |onnx - emseg| = ${diff}`);
  });
}

test('the reference is what emseg\'s Predictor computes with one tile (patch classifier, same-padded net, U-Net)', () => {
  const image = syntheticImage(HEIGHT, WIDTH);
  for (const name of ['fakhry-a', 'reference-net', 'unet-w16']) {
    const model = randomModel(name);
    const want = referencePrediction([model], backend, image, HEIGHT, WIDTH).subarray(MEMBRANE_CLASS * HEIGHT * WIDTH);
    const got = new Predictor([model], backend).predict(image, HEIGHT, WIDTH, { tile: 512 });
    assert.ok(maxDifference(got, want) <= TOLERANCE, name);
  }
});

test('the shipped ensemble exports as one graph (members averaged, float16 weights upcast) equal to emseg on a crop of 23.png', async () => {
  const models = loadModels(SHIPPED_MODEL);
  assert.ok(models.length > 1, 'the shipped model is an ensemble');
  const png = decodePng(readFileSync(join(SAMPLE_IMAGES, '23.png')), '23.png');
  const [height, width, top, left] = [96, 128, 200, 150];
  const image = new Float32Array(height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) image[y * width + x] = png.data[(top + y) * png.width + left + x]! / 255;
  }
  const { bytes } = exportOf(models, 'emseg-isbi');
  const got = await runOnnx(bytes, image, height, width);
  const want = referencePrediction(models, backend, image, height, width);
  assert.ok(maxDifference(got.data as Float32Array, want) <= TOLERANCE);
  const membrane = new Predictor(models, backend).predict(image, height, width, { tile: 512 });
  assert.ok(maxDifference(membrane, want.subarray(MEMBRANE_CLASS * height * width)) <= TOLERANCE, 'Predictor agrees');
  // The map is a real membrane map, not a constant: dark membrane pixels score higher than bright interior ones.
  const probs = (got.data as Float32Array).subarray(MEMBRANE_CLASS * height * width);
  const mean = (keep: (v: number) => boolean) => {
    let s = 0;
    let n = 0;
    image.forEach((v, i) => { if (keep(v)) { s += probs[i]!; n++; } });
    return s / n;
  };
  assert.ok(mean((v) => v < 0.25) > mean((v) => v > 0.6) + 0.3);
  const proto = decodeModelProto(bytes) as { opset_import: { version: number }[]; graph: { node: { op_type: string }[];
    initializer: { data_type: number }[] } };
  assert.equal(proto.opset_import[0]!.version, OPSET_VERSION);
  assert.equal(proto.graph.node.filter((n) => n.op_type === 'Mean').length, 1);
  assert.ok(proto.graph.initializer.every((t) => t.data_type === 1 || t.data_type === 7), 'float32 weights, int64 shapes');
});

test('dense scanning exports as stride-1 dilated max-pooling and dilated convolutions', () => {
  const proto = decodeModelProto(exportOf([randomModel('fakhry-b')], 'fakhry-b').bytes) as { graph: { node: {
    op_type: string; attribute: { name: string; ints?: number[] }[] }[] } };
  const pools = proto.graph.node.filter((n) => n.op_type === 'MaxPool');
  const dilations = pools.map((n) => n.attribute.find((a) => a.name === 'dilations')!.ints);
  assert.deepEqual(dilations, [[1, 1], [2, 2], [4, 4]]);
  assert.ok(pools.every((n) => n.attribute.find((a) => a.name === 'strides')!.ints!.every((s) => s === 1)));
});

const lrnSpec = (region: 'across' | 'within', size: number): ModelSpecInput => ({
  name: `lrn-${region}-${size}`,
  layers: [
    { type: 'conv', name: 'c1', out: 6, kernel: 3, padding: 'same' }, { type: 'relu' },
    { type: 'lrn', region, size, alpha: 0.5, beta: 0.75, k: 2 },
    { type: 'conv', name: 'c2', out: 2, kernel: 1 }, { type: 'softmax' },
  ],
});

for (const [region, size] of [['across', 5], ['across', 4], ['within', 3], ['within', 4]] as const) {
  test(`LRN ${region} channels, size ${size}, follows emseg's definition (alpha/size${region === 'within' ? '^2' : ''}, symmetric clipped window)`, async () => {
    const model = randomModel(lrnSpec(region, size), 3);
    const image = syntheticImage(HEIGHT, WIDTH).map((v) => 4 * v); // large activations: the normalisation matters
    const got = await runOnnx(exportOf([model], 'lrn').bytes, image, HEIGHT, WIDTH);
    const want = referencePrediction([model], backend, image, HEIGHT, WIDTH);
    assert.ok(maxDifference(got.data as Float32Array, want) <= TOLERANCE);
  });
}

test('images smaller than the mirrored border are mirrored as emseg mirrors them (any distance)', async () => {
  const model = randomModel('fakhry-a');
  for (const [h, w] of [[1, 1], [2, 5], [7, 3]] as const) {
    const image = syntheticImage(h, w);
    const got = await runOnnx(exportOf([model], 'fakhry-a').bytes, image, h, w);
    assert.deepEqual(got.dims, [1, 2, h, w]);
    assert.ok(maxDifference(got.data as Float32Array, referencePrediction([model], backend, image, h, w)) <= TOLERANCE, `${h}x${w}`);
  }
});

test('exports that cannot be faithful are refused with an EmsegError', () => {
  const threeClasses = randomModel({ ...lrnSpec('across', 5), name: 'three', classes: 3,
    layers: [{ type: 'conv', name: 'c', out: 3, kernel: 1 }, { type: 'softmax' }] });
  assert.throws(() => exportOf([randomModel('fakhry-a'), threeClasses], 'mixed'),
    (err) => isEmsegError(err, 'unsupported-export'));
  // A skip crop that takes off an odd number of pixels can never be centred: emseg cannot tile it, so no export.
  const offCentre = randomModel({ name: 'off-centre', layers: [{ type: 'conv', name: 'a', out: 2, kernel: 3 },
    { type: 'conv', name: 'b', out: 2, kernel: 2 }, { type: 'crop', name: 'c', to: 'b', inputs: ['a'] }, { type: 'softmax' }] });
  assert.throws(() => exportOf([offCentre], 'off-centre'), (err) => isEmsegError(err, 'unsupported-export', 'invalid-spec'));
});

test('a 2.5D model exports with one input channel per section, as emseg predicts the middle one', async () => {
  const spec = withInputSections(resolveSpec('reference-net'), 3);
  const model = { spec, params: initParams(probePlan(spec), 5) };
  const planes = [0.1, 0.5, 0.9].map((shift) => syntheticImage(HEIGHT, WIDTH).map((v) => Math.abs(Math.sin(v * 7 + shift))));
  const image = Float32Array.from(planes.flatMap((p) => [...p]));
  const { bytes } = exportOf([model], 'wide');
  const got = await runOnnx(bytes, image, HEIGHT, WIDTH);
  const want = referencePrediction([model], backend, image, HEIGHT, WIDTH);
  assert.ok(maxDifference(got.data as Float32Array, want) <= TOLERANCE);
  const predicted = new Predictor([model], backend).predict(planes, HEIGHT, WIDTH, { tile: 512 });
  assert.ok(maxDifference(predicted, want.subarray(MEMBRANE_CLASS * HEIGHT * WIDTH)) <= TOLERANCE);
  const alone = new Predictor([model], backend).predict([planes[1]!, planes[1]!, planes[1]!], HEIGHT, WIDTH, { tile: 512 });
  assert.ok(maxDifference(predicted, alone) > TOLERANCE, 'the neighbours change the map');
  const proto = decodeModelProto(bytes) as { metadata_props: { key: string; value: string }[] };
  assert.equal(proto.metadata_props.find((p) => p.key === SECTIONS_METADATA)?.value, '3');
});
