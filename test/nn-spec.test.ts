import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveSpec, zooNames } from '../src/models/zoo.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec, SpecError } from '../src/nn/spec.js';
import { refused } from './helpers/errors.js';

const tiny = (layers: unknown[], extra: Record<string, unknown> = {}) => ({ name: 't', layers, ...extra });

test('an unknown layer type is refused naming the layer', () => {
  assert.throws(() => parseModelSpec(tiny([{ type: 'conv', out: 2, kernel: 3 }, { type: 'convolution', out: 2 }]), 'm.json'),
    (e) => e instanceof SpecError && refused('invalid-spec', 'm.json', /layer 1 \(convolution\), field "type"/)(e));
});

test('a missing field is refused naming the layer and field', () => {
  assert.throws(() => parseModelSpec(tiny([{ type: 'conv', name: 'c1', kernel: 3 }])),
    refused('invalid-spec', '', /layer 0 "c1" \(conv\), field "out"/));
});

test('an unexpected field is refused', () => {
  assert.throws(() => parseModelSpec(tiny([{ type: 'relu', kernel: 3 }])), refused('invalid-spec', '', /layer 0 \(relu\)/));
});

test('shapes that do not fit are refused before anything runs, naming the layer', () => {
  const spec = parseModelSpec(tiny([{ type: 'conv', out: 4, kernel: 5 }, { type: 'pool' },
    { type: 'conv', name: 'big', out: 2, kernel: 9 }, { type: 'softmax' }]));
  assert.throws(() => planModel(spec, 16, 16), refused('invalid-spec', '', /layer 2 "big" \(conv\): input 4x6x6 is too small/));
  assert.doesNotThrow(() => planModel(spec, 32, 32));
});

test('inputs must name earlier layers; merges must agree in size', () => {
  const bad = parseModelSpec(tiny([{ type: 'conv', name: 'a', out: 2, kernel: 1 }, { type: 'add', inputs: ['a', 'b'] }, { type: 'softmax' }]));
  assert.throws(() => planModel(bad, 8, 8), refused('invalid-spec', '', /layer 1 \(add\), field "inputs": no earlier layer named "b"/));
  const mismatch = parseModelSpec(tiny([{ type: 'conv', name: 'a', out: 2, kernel: 1 },
    { type: 'conv', name: 'b', out: 2, kernel: 3 }, { type: 'concat', inputs: ['a', 'b'] }, { type: 'softmax' }]));
  assert.throws(() => planModel(mismatch, 8, 8), refused('invalid-spec', '', /layer 2 \(concat\): input "b" is 2x6x6/));
});

test('the output must be a softmax over the declared classes', () => {
  const spec = parseModelSpec(tiny([{ type: 'conv', out: 3, kernel: 1 }, { type: 'softmax' }]));
  assert.throws(() => planModel(spec, 4, 4), refused('invalid-spec', '', /3 channels but the spec declares 2 classes/));
});

test('reference net: 12.37 GFLOP forward at 256x256', () => {
  const plan = planModel(resolveSpec('reference-net'), 256, 256);
  assert.equal(plan.flops, 12_372_279_296);
  assert.deepEqual(plan.output, [2, 256, 256]);
});

test('zoo patch classifiers see exactly their window and output one pixel there', () => {
  for (const name of ['fakhry-b', 'fakhry-c', 'fakhry-d', 'ciresan-n4']) {
    const spec = resolveSpec(name);
    const plan = planModel(spec, spec.window!, spec.window!);
    assert.deepEqual(plan.output, [2, 1, 1], name);
    assert.equal(plan.field, spec.window, name);
  }
  const a = resolveSpec('fakhry-a');
  assert.deepEqual(planModel(a, 35, 35).output, [2, 1, 1]);
});

test('dense scanning outputs every pixel of the valid region with the same parameters', () => {
  for (const name of zooNames()) {
    const spec = resolveSpec(name);
    if (!spec.window) continue;
    const size = 20 + spec.window - 1;
    const dense = planModel(spec, size, size, { mode: 'dense' });
    assert.deepEqual(dense.output, [2, 20, 20], name);
    const strided = planModel(spec, spec.window, spec.window);
    assert.deepEqual(dense.nodes.map((n) => ('wShape' in n ? n.wShape : null)),
      strided.nodes.map((n) => ('wShape' in n ? n.wShape : null)), name);
  }
});

test('U-Net plans at its canonical 572 input to a 388 output', () => {
  assert.deepEqual(planModel(resolveSpec('unet'), 572, 572).output, [2, 388, 388]);
  assert.deepEqual(planModel(resolveSpec('unet-w16'), 572, 572).nodes[1]!.out, [16, 570, 570]);
});

const tiny3d = (layers: unknown[]) => ({ name: 't3', input: { dims: 3 }, layers });

test('3-d layers: bad fields are refused naming the layer and the field', () => {
  assert.throws(() => parseModelSpec(tiny3d([{ type: 'conv3d', name: 'c', out: 2, kernel: [3, 3] }, { type: 'sigmoid' }])),
    refused('invalid-spec', '', /layer 0 "c" \(conv3d\), field "kernel"/));
  assert.throws(() => parseModelSpec(tiny3d([{ type: 'conv3d', out: 2, kernel: 3, padding: [1, 1, 1, 1] }, { type: 'sigmoid' }])),
    refused('invalid-spec', '', /layer 0 \(conv3d\), field "padding"/));
  assert.throws(() => parseModelSpec(tiny3d([{ type: 'pool3d', kernel: [1, 0, 2] }, { type: 'sigmoid' }])),
    refused('invalid-spec', '', /layer 0 \(pool3d\), field "kernel(\.1)?"/));
  assert.throws(() => parseModelSpec(tiny3d([{ type: 'upconv3d', out: 2, stride: [1, 2, 2], padding: 1 }, { type: 'sigmoid' }])),
    refused('invalid-spec', '', /layer 0 \(upconv3d\)/));
  assert.throws(() => parseModelSpec({ name: 't', input: { dims: 3, channels: 3, sections: 3 }, layers: [{ type: 'sigmoid' }] }),
    refused('invalid-spec', '', /field "input.sections": a 3-d network reads the volume itself/));
  assert.throws(() => parseModelSpec({ name: 't', input: { dims: 2 }, layers: [{ type: 'sigmoid' }] }),
    refused('invalid-spec', '', /field "input.dims"/));
});

test('3-d plans: shapes that do not fit, 2-d and 3-d layers mixed, and a missing depth are refused naming the layer', () => {
  const spec3 = parseModelSpec(tiny3d([{ type: 'conv3d', name: 'c', out: 2, kernel: [3, 3, 3] }, { type: 'sigmoid' }]));
  assert.throws(() => planModel(spec3, 8, 8, { depth: 2 }), refused('invalid-spec', '', /layer 0 "c" \(conv3d\): input 1x2x8x8 is too small \(output would be 0x6x6\)/));
  assert.throws(() => planModel(spec3, 8, 8), refused('invalid-spec', '', /field "input.dims": a 3-d network is planned for an input depth/));
  const same = parseModelSpec(tiny3d([{ type: 'conv3d', out: 2, kernel: 3, stride: [1, 2, 2], padding: 'same' }, { type: 'sigmoid' }]));
  assert.throws(() => planModel(same, 8, 8, { depth: 4 }), refused('invalid-spec', '', /layer 0 \(conv3d\), field "padding": 'same' needs stride 1/));
  const mixed = parseModelSpec(tiny3d([{ type: 'conv', name: 'flat', out: 2, kernel: 3 }, { type: 'sigmoid' }]));
  assert.throws(() => planModel(mixed, 8, 8, { depth: 4 }), refused('invalid-spec', '', /layer 0 "flat" \(conv\), field "inputs": a 2-d layer cannot read the 3-d value "input"/));
  const flat = parseModelSpec({ name: 't', layers: [{ type: 'pool3d' }, { type: 'conv', out: 2, kernel: 1 }, { type: 'softmax' }] });
  assert.throws(() => planModel(flat, 8, 8), refused('invalid-spec', '', /layer 0 \(pool3d\), field "inputs": a 3-d layer cannot read the 2-d value "input"/));
  assert.throws(() => planModel(flat, 8, 8, { depth: 4 }), refused('invalid-spec', '', /field "input.dims": a 2-d network has no input depth/));
  const merge = parseModelSpec(tiny3d([{ type: 'conv3d', name: 'a', out: 1, kernel: [3, 1, 1] },
    { type: 'conv3d', name: 'b', out: 1, kernel: 1, inputs: ['input'] }, { type: 'concat', inputs: ['a', 'b'] }, { type: 'sigmoid' }]));
  assert.throws(() => planModel(merge, 8, 8, { depth: 5 }), refused('invalid-spec', '', /layer 2 \(concat\): input "b" is 1x5x8x8, but "a" is 1x3x8x8/));
  const deeper = parseModelSpec(tiny3d([{ type: 'conv3d', name: 'a', out: 1, kernel: [1, 3, 3] },
    { type: 'crop', inputs: ['a'], to: 'b' }, { type: 'sigmoid' }]));
  assert.throws(() => planModel(deeper, 8, 8, { depth: 5 }), refused('invalid-spec', '', /layer 1 \(crop\), field "to": no earlier layer named "b"/));
  const dense = parseModelSpec(tiny3d([{ type: 'pool3d', kernel: [1, 2, 2] }, { type: 'sigmoid' }]));
  assert.throws(() => planModel(dense, 8, 8, { depth: 4, mode: 'dense' }), refused('invalid-spec', '', /layer 0 \(pool3d\): dense scanning applies to 2-d patch classifiers only/));
});

test('the output must be a softmax or a sigmoid; a 3-d crop centres in depth too', () => {
  const spec = parseModelSpec(tiny3d([{ type: 'conv3d', name: 'a', out: 2, kernel: 1 }, { type: 'conv3d', name: 'b', out: 2, kernel: [3, 3, 3] },
    { type: 'crop', name: 'k', inputs: ['a'], to: 'b' }, { type: 'relu' }]));
  assert.throws(() => planModel(spec, 8, 8, { depth: 5 }), refused('invalid-spec', '', /the last layer must be "softmax" or "sigmoid" \(got "relu"\)/));
  const ok = parseModelSpec({ ...tiny3d([]), layers: [...spec.layers.slice(0, 3), { type: 'sigmoid' }] });
  const plan = planModel(ok, 8, 8, { depth: 5 });
  const crop = plan.nodes[2]!;
  assert.equal(crop.type, 'crop');
  assert.deepEqual({ front: (crop as { front?: number }).front, top: (crop as { top: number }).top, depth: crop.z?.size }, { front: 1, top: 1, depth: 3 });
});
