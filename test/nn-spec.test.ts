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
