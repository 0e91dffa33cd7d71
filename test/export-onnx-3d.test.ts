/**
 * ONNX export of 3-d networks (5-d Conv, MaxPool, ConvTranspose, Concat, Slice, Relu, Sigmoid / Softmax): the graph,
 * run by onnxruntime-node, equals emseg's own forward pass of the same plan within 1e-4.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { createBackend } from '../src/backend/index.js';
import { buildOnnx, type ExportableModel } from '../src/export/onnx/export.js';
import {
  buildOnnx3d, INPUT_NAME_3D, OUTPUT_NAME_3D, OUTPUT_OFFSET_METADATA, TARGETS_METADATA,
} from '../src/export/onnx/export3d.js';
import { decodeModelProto } from '../src/export/onnx/proto.js';
import { probePlan } from '../src/models/model-dir.js';
import { resolveSpec, zoo3dNames } from '../src/models/zoo.js';
import { Network } from '../src/nn/network.js';
import { initParams } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec, type ModelSpec } from '../src/nn/spec.js';
import { refused } from './helpers/errors.js';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runExport } from '../src/export/run.js';
import { volumeGeometry } from '../src/infer/volume.js';
import { loadModel } from '../src/models/model-dir.js';
import { shippedModels } from '../src/models/shipped.js';

const TOLERANCE = 1e-4;
const backend = createBackend();
const info = (name: string) => ({ name, description: `test export of ${name}`, producerVersion: 'test', metadata: { model: name } });

function model(spec: ModelSpec, seed = 5): ExportableModel {
  return { spec, params: initParams(probePlan(spec), seed) };
}

function volume(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => 0.5 + 0.3 * Math.sin(i * 0.37) + 0.15 * Math.cos(i * 0.011));
}

/** emseg's forward pass of the export's plan and onnxruntime's run of the graph, on one volume. */
async function both(m: ExportableModel, input?: [number, number, number]) {
  const e = buildOnnx3d(m, info(m.spec.name), input);
  const [d, h, w] = e.input;
  const shape = [1, m.spec.input.channels, d, h, w];
  const data = volume(shape.reduce((a, b) => a * b, 1));
  const net = new Network(planModel(m.spec, h, w, { depth: d }), m.params, backend);
  const x = backend.fromArray(data, shape);
  const y = net.predict(x);
  const want = { dims: [...y.shape], data: y.toArray() };
  x.dispose();
  y.dispose();
  const session = await ort.InferenceSession.create(e.bytes);
  try {
    const out = (await session.run({ [INPUT_NAME_3D]: new ort.Tensor('float32', data, shape) }))[OUTPUT_NAME_3D]!;
    return { e, want, got: { dims: [...out.dims], data: out.data as Float32Array } };
  } finally {
    await session.release();
  }
}

interface Proto { graph: { node: { op_type: string }[] }; metadata_props: { key: string; value: string }[] }
const decode = (bytes: Uint8Array) => decodeModelProto(bytes) as unknown as Proto;

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

const small3d = parseModelSpec({
  name: 'small3d', input: { dims: 3 }, layers: [
    { type: 'conv3d', name: 'c1', out: 4, kernel: [1, 3, 3], padding: 'same' }, { type: 'relu', name: 'r1' },
    { type: 'conv3d', name: 'c2', out: 5, kernel: 3 }, { type: 'relu', name: 'r2' },
    { type: 'pool3d', kernel: [1, 2, 2] },
    { type: 'conv3d', name: 'c3', out: 6, kernel: [3, 3, 3], padding: [1, 1, 1, 1, 1, 1] }, { type: 'relu' },
    { type: 'upconv3d', name: 'up', out: 3, kernel: [1, 2, 2], stride: [1, 2, 2] },
    { type: 'crop', name: 'skip', inputs: ['r1'], to: 'up' },
    { type: 'concat', name: 'cat', inputs: ['skip', 'up'] },
    { type: 'conv3d', name: 'head', out: 2, kernel: 1 }, { type: 'softmax' },
  ],
});

test('a small 3-d net (padded and valid conv3d, pool3d, upconv3d, 3-d crop, concat, softmax) exports and matches emseg', async () => {
  const { e, want, got } = await both(model(small3d), [7, 12, 14]);
  assert.deepEqual(e.input, [7, 12, 14]);
  assert.deepEqual(e.output, [5, 10, 12]);
  assert.deepEqual(e.offset, [1, 1, 1]);
  assert.deepEqual(got.dims, want.dims);
  const d = maxDifference(got.data, want.data);
  assert.ok(d <= TOLERANCE, `max |difference| ${d}`);
  const proto = decode(e.bytes);
  const ops = new Set(proto.graph.node.map((n) => n.op_type));
  for (const op of ['Conv', 'MaxPool', 'ConvTranspose', 'Concat', 'Slice', 'Relu', 'Softmax']) assert.ok(ops.has(op), op);
  const meta = Object.fromEntries(proto.metadata_props.map((p) => [p.key, p.value]));
  assert.equal(meta[OUTPUT_OFFSET_METADATA], '[1,1,1]');
});

for (const name of zoo3dNames()) {
  test(`ONNX export of 3-d zoo model ${name} equals emseg's prediction (onnxruntime-node)`, async () => {
    const spec = resolveSpec(name);
    const { e, want, got } = await both(model(spec));
    assert.deepEqual(got.dims, want.dims);
    const d = maxDifference(got.data, want.data);
    assert.ok(d <= TOLERANCE, `max |difference| ${d}`);
    const meta = Object.fromEntries(decode(e.bytes).metadata_props.map((p) => [p.key, p.value]));
    assert.deepEqual(JSON.parse(meta[TARGETS_METADATA]!), spec.targets);
  });
}

test('3-d exports are refused at inputs the network does not cover exactly, and by the per-section export', () => {
  assert.throws(() => buildOnnx3d(model(small3d), info('x'), [7, 13, 14]), refused('unsupported-export', 'small3d'));
  assert.throws(() => buildOnnx([model(small3d)], info('x')), refused('unsupported-export', 'small3d', /3-d network/));
});

test('emseg export --format onnx of every shipped 3-d model: onnxruntime gives emseg\'s outputs within 1e-4 at the input emseg predict tiles with', async () => {
  const shipped = shippedModels().filter((m) => m.kind === 'model' && loadModel(m.dir).spec.input.dims === 3);
  assert.ok(shipped.length >= 1, 'a 3-d model ships');
  for (const s of shipped) {
    const out = join(mkdtempSync(join(tmpdir(), 'emseg-onnx3d-')), 'model.onnx');
    await runExport({ model: s.name, format: 'onnx', out, overwrite: false, emsegVersion: 'test', command: 'test' });
    const m = loadModel(s.dir);
    const g = volumeGeometry(m.spec);
    const meta = new Map(decode(new Uint8Array(readFileSync(out))).metadata_props.map((p) => [p.key, p.value]));
    assert.deepEqual(JSON.parse(meta.get(OUTPUT_OFFSET_METADATA)!), g.offset, s.name);
    const shape = [1, 1, ...g.input];
    const data = volume(shape.reduce((a, b) => a * b, 1));
    const x = backend.fromArray(data, shape);
    const y = new Network(g.plan, m.params, backend).predict(x);
    const want = y.toArray();
    x.dispose();
    y.dispose();
    const session = await ort.InferenceSession.create(readFileSync(out));
    try {
      const got = (await session.run({ [INPUT_NAME_3D]: new ort.Tensor('float32', data, shape) }))[OUTPUT_NAME_3D]!;
      assert.ok(maxDifference(got.data as Float32Array, want) <= TOLERANCE, s.name);
    } finally {
      await session.release();
    }
  }
});
