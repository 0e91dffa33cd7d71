import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadOneDnnBackend, nativeStats } from '../src/backend/onednn/index.js';
import { Predictor } from '../src/infer/predict.js';
import { Network } from '../src/nn/network.js';
import { Sgd } from '../src/nn/optim.js';
import { initParams, zeroGrads } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { Rng } from '../src/util/rng.js';

// Every layer kind that allocates native memory, in a DAG: fused conv+ReLU, LRN, pooling (workspace), dropout
// (mask), up-convolution, crop, concat, add, up-sampling, softmax cross-entropy.
const spec = parseModelSpec({
  name: 'leak-check',
  layers: [
    { type: 'conv', name: 'c1', out: 4, kernel: 3 }, { type: 'relu', name: 'r1' },
    { type: 'lrn', name: 'n1', size: 3 },
    { type: 'pool', name: 'p1', kernel: 2 },
    { type: 'conv', name: 'c2', out: 4, kernel: 3, padding: 'same' }, { type: 'relu' },
    { type: 'dropout', name: 'd', rate: 0.3 },
    { type: 'upconv', name: 'up', out: 4, kernel: 2, stride: 2 },
    { type: 'crop', name: 'skip', inputs: ['n1'], to: 'up' },
    { type: 'upsample', name: 'us', inputs: ['p1'], factor: 2 },
    { type: 'concat', name: 'cat', inputs: ['skip', 'up', 'us'] },
    { type: 'conv', name: 'c3', out: 4, kernel: 1 },
    { type: 'add', name: 'sum', inputs: ['c3', 'skip'] },
    { type: 'conv', name: 'head', out: 2, kernel: 1 },
    { type: 'softmax' },
  ],
});

test('1,000 training steps leave no native tensors or buffers behind', () => {
  const backend = loadOneDnnBackend({ precision: 'float32' });
  const plan = planModel(spec, 18, 18);
  const params = initParams(plan, 1);
  const net = new Network(plan, params, backend);
  const sgd = new Sgd();
  const rng = new Rng(2);
  const [, oh, ow] = plan.output;
  const before = nativeStats();
  let rssAfterWarmup = 0;
  for (let step = 0; step < 1000; step++) {
    const x = backend.fromArray(Float32Array.from({ length: 2 * 18 * 18 }, () => rng.next()), [2, 1, 18, 18]);
    zeroGrads(params);
    net.trainStep(x, { labels: Int32Array.from({ length: 2 * oh * ow }, () => rng.int(2)) });
    x.dispose();
    sgd.step(params, 1e-3);
    if (step === 100) rssAfterWarmup = process.memoryUsage().rss;
  }
  const after = nativeStats();
  assert.equal(after.tensors, before.tensors, 'live native tensors');
  assert.equal(after.liveBuffers, before.liveBuffers, 'live native buffers');
  assert.ok(process.memoryUsage().rss - rssAfterWarmup < 64 * 1024 * 1024, 'RSS grew by more than 64 MB');
});

test('prediction releases its tiles and intermediates', () => {
  const backend = loadOneDnnBackend({ precision: 'float32' });
  const params = initParams(planModel(spec, 18, 18), 1);
  const before = nativeStats();
  new Predictor([{ spec, params }], backend).predict(new Float32Array(40 * 30).fill(0.5), 40, 30, { tile: 16, tta: true });
  const after = nativeStats();
  assert.equal(after.tensors, before.tensors);
  assert.equal(after.liveBuffers, before.liveBuffers);
});
