import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { Predictor } from '../src/infer/predict.js';
import { extractMirrored } from '../src/image/mirror.js';
import { loadModel } from '../src/models/model-dir.js';
import { decodeSafetensors } from '../src/models/safetensors.js';
import { Network } from '../src/nn/network.js';
import { initParams, zeroGrads } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { TileSampler } from '../src/train/sampler.js';
import { DEFAULT_SEGMENT_OPTIONS, closeMembraneGaps } from '../src/segment/index.js';
import { evaluateStacks } from '../src/metrics/index.js';
import { LOG_FILE, train, validate, type TrainConfig } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import { refused } from './helpers/errors.js';

// A tiny patch classifier with the zoo's structure: conv, 2x2/2 pooling, dense layers sized by the window.
const patchSpec = parseModelSpec({
  name: 'tiny-patch', window: 7,
  layers: [
    { type: 'conv', name: 'c1', out: 3, kernel: 2 }, { type: 'relu' }, { type: 'pool', kernel: 2 },
    { type: 'dense', name: 'fc1', out: 4 }, { type: 'relu' }, { type: 'dense', name: 'fc2', out: 2 }, { type: 'softmax' },
  ],
});

// A 'same'-padded net with pooling and up-sampling (like the benchmark net): tiles need halos.
const sameSpec = parseModelSpec({
  name: 'tiny-same',
  layers: [
    { type: 'conv', out: 3, kernel: 3, padding: 'same' }, { type: 'relu' }, { type: 'pool', kernel: 2 },
    { type: 'conv', out: 2, kernel: 3, padding: 'same' }, { type: 'upsample', factor: 2 }, { type: 'softmax' },
  ],
});

function randomImage(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.next());
}

test('a whole-tile step gives the loss and gradients of its windows classified one by one', () => {
  const backend = createReferenceBackend('float64');
  const tile = 4;
  const inSize = tile + patchSpec.window! - 1;
  const densePlan = planModel(patchSpec, inSize, inSize, { mode: 'dense' });
  const windowPlan = planModel(patchSpec, 7, 7);
  const params = initParams(windowPlan, 5, 'float64');
  const image = Float64Array.from(randomImage(inSize * inSize, 2));
  const labels = Int32Array.from({ length: tile * tile }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);
  const weights = Float32Array.from({ length: tile * tile }, (_, i) => 1 + (i % 3));

  zeroGrads(params);
  const tileLoss = new Network(densePlan, params, backend).trainStep(backend.fromArray(image, [1, 1, inSize, inSize]), { labels, weights }).loss;
  const tileGrads = [...params.values()].map((p) => Float64Array.from(p.grad));

  const windows = new Float64Array(tile * tile * 49);
  for (let y = 0; y < tile; y++) for (let x = 0; x < tile; x++) {
    for (let v = 0; v < 7; v++) for (let u = 0; u < 7; u++) windows[(y * tile + x) * 49 + v * 7 + u] = image[(y + v) * inSize + x + u]!;
  }
  zeroGrads(params);
  const windowLoss = new Network(windowPlan, params, backend).trainStep(backend.fromArray(windows, [tile * tile, 1, 7, 7]), { labels, weights }).loss;
  assert.ok(Math.abs(tileLoss - windowLoss) < 1e-12, `${tileLoss} vs ${windowLoss}`);
  [...params.values()].forEach((p, k) => p.grad.forEach((g, i) => assert.ok(Math.abs(g - tileGrads[k]![i]!) < 1e-12, p.name)));
});

// An even window whose pooling floors an odd size: the net uses only 9 of its 10 pixels.
const evenSpec = parseModelSpec({
  name: 'even-window', window: 10,
  layers: [{ type: 'conv', name: 'c1', out: 2, kernel: 2 }, { type: 'relu' }, { type: 'pool', kernel: 2 },
    { type: 'dense', name: 'fc', out: 2 }, { type: 'softmax' }],
});

test('dense prediction equals sliding-window classification of each pixel\'s mirrored window', () => {
  const backend = createReferenceBackend('float32');
  const [h, w] = [13, 11];
  const image = randomImage(h * w, 4);
  for (const spec of [patchSpec, evenSpec]) {
    const win = spec.window!;
    const before = Math.floor((win - 1) / 2);
    const params = initParams(planModel(spec, win, win), 9);
    const dense = new Predictor([{ spec, params }], backend).predict(image, h, w, { tile: 5 });
    const net = new Network(planModel(spec, win, win), params, backend);
    for (const [y, x] of [[0, 0], [12, 10], [6, 5], [3, 9], [12, 0]] as const) {
      const patch = extractMirrored(image, h, w, y - before, x - before, win, win);
      const p = net.predict(backend.fromArray(patch, [1, 1, win, win])).toArray();
      assert.ok(Math.abs(p[1]! - dense[y * w + x]!) < 1e-5, `${spec.name} pixel (${y}, ${x})`);
    }
  }
});

test('training tiles label each output with its window\'s centre pixel', () => {
  // Image = labels, so a tile's label at output (i, j) must equal the image at input (i + offset, j + offset).
  const size = 20;
  const labels = Uint8Array.from({ length: size * size }, (_, i) => ((i * 7919) % 13) % 2);
  const images = Float32Array.from(labels);
  const stack = <T extends Uint8Array | Float32Array>(data: T) => ({ width: size, height: size, depth: 1, data });
  const sampler = new TileSampler(stack(images), stack(labels), [0], { inputSize: 12, outputSize: 5, offset: 4, balance: 'none' });
  const batch = sampler.next(3, new Rng(1));
  for (let b = 0; b < 3; b++) for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) {
    assert.equal(batch.labels[b * 25 + i * 5 + j], batch.input[b * 144 + (i + 4) * 12 + j + 4]);
  }
});

test('tiled prediction has no seams: small tiles equal one big tile', () => {
  const backend = createReferenceBackend('float32');
  const [h, w] = [30, 26];
  const image = randomImage(h * w, 8);
  for (const spec of [patchSpec, sameSpec]) {
    const size = spec.window ?? 32;
    const params = initParams(planModel(spec, size, size), 3);
    const predictor = new Predictor([{ spec, params }], backend);
    const whole = predictor.predict(image, h, w, { tile: 64 });
    const tiled = predictor.predict(image, h, w, { tile: 8 });
    whole.forEach((v, i) => assert.ok(Math.abs(v - tiled[i]!) < 1e-5, `${spec.name} pixel ${i}: ${v} vs ${tiled[i]}`));
  }
});

test('test-time augmentation of a symmetric model on a symmetric image changes nothing', () => {
  const backend = createReferenceBackend('float32');
  const params = initParams(planModel(patchSpec, 7, 7), 9);
  const image = new Float32Array(9 * 9).fill(0.3);
  const predictor = new Predictor([{ spec: patchSpec, params }], backend);
  const plain = predictor.predict(image, 9, 9);
  const tta = predictor.predict(image, 9, 9, { tta: true });
  plain.forEach((v, i) => assert.ok(Math.abs(v - tta[i]!) < 1e-6));
});

function syntheticData(sections: number, size: number) {
  const images = new Float32Array(sections * size * size);
  const labels = new Uint8Array(sections * size * size);
  const rng = new Rng(1);
  for (let z = 0; z < sections; z++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const membrane = x % 8 === 0 || y % 9 === 0 ? 1 : 0;
    const i = z * size * size + y * size + x;
    labels[i] = membrane;
    images[i] = membrane ? 0.2 + 0.1 * rng.next() : 0.7 + 0.1 * rng.next();
  }
  return { images: { width: size, height: size, depth: sections, data: images },
    labels: { width: size, height: size, depth: sections, data: labels }, source: { synthetic: true } };
}

function config(out: string, steps: number): TrainConfig {
  return { model: 'tiny-patch', spec: patchSpec, out, trainSections: [0, 1], validationSections: [2], tile: 6, batch: 2,
    steps, stepsPerEpoch: 4, optimizer: { kind: 'adam' }, schedule: { kind: 'constant', lr: 0.01 }, balance: 'weights',
    elastic: { alpha: 2, sigma: 3 }, jitter: { contrast: 0.1, brightness: 0.05, gamma: 0.1 }, seed: 3, checkpointMinutes: 0,
    select: 'v_rand' };
}

test('training learns, validates, keeps the best model, and a resumed run continues exactly', async () => {
  const backend = createReferenceBackend('float32');
  const data = syntheticData(3, 24);
  const straight = mkdtempSync(join(tmpdir(), 'emseg-train-'));
  const outcome = await train(config(straight, 8), data, backend);
  assert.equal(outcome.step, 8);
  const log = readFileSync(join(straight, LOG_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log.filter((r) => r.type === 'validation').length, 2);
  assert.ok(log.filter((r) => r.type === 'step').every((r) => Number.isFinite(r.loss)));
  const best = loadModel(straight);
  assert.equal(best.meta.step, outcome.best!.step);

  const split = mkdtempSync(join(tmpdir(), 'emseg-train-'));
  let calls = 0;
  const first = await train(config(split, 8), data, backend, { shouldStop: () => ++calls > 5 });
  assert.ok(first.stopped);
  assert.equal(first.step, 5);
  await train(config(split, 8), data, backend, {}, true);
  // The checkpoint is one file; everything in it but the wall-clock time must match bit for bit.
  const read = (dir: string) => {
    const { tensors, metadata } = decodeSafetensors(readFileSync(join(dir, 'checkpoint', 'train-state.safetensors')), dir);
    const { elapsedMs: _e, ...state } = JSON.parse(metadata.state!) as Record<string, unknown>;
    return { tensors: [...tensors].map(([name, t]) => [name, Buffer.from(t.data.buffer)]), state };
  };
  assert.deepEqual(read(split), read(straight), 'resumed weights and optimiser state differ from an uninterrupted run');
});

test('fine-tuning starts from a trained model\'s weights; a different spec is refused', async () => {
  const backend = createReferenceBackend('float32');
  const data = syntheticData(3, 24);
  const source = mkdtempSync(join(tmpdir(), 'emseg-train-'));
  await train(config(source, 4), data, backend);
  const tuned = mkdtempSync(join(tmpdir(), 'emseg-train-'));
  await train({ ...config(tuned, 1), schedule: { kind: 'constant', lr: 0 }, initFrom: source }, data, backend);
  const a = loadModel(source).params;
  const b = loadModel(tuned).params;
  for (const [name, p] of a) assert.deepEqual(b.get(name)!.data, p.data, name);
  const other = { ...config(mkdtempSync(join(tmpdir(), 'emseg-train-')), 1), spec: evenSpec, initFrom: source };
  await assert.rejects(train(other, data, backend), refused('checkpoint-mismatch'));
});

test('validation with --close-gaps scores the maps predict --close-gaps would write', async () => {
  // A predictor whose map has a wall between two cells with a gap in it: closing the gap must show in the scores.
  const size = 24;
  const wall = (x: number, y: number) => x === 0 || y === 0 || x === size - 1 || y === size - 1 || (x >= 11 && x <= 12);
  const map = Float32Array.from({ length: size * size }, (_, i) => {
    const x = i % size;
    const y = Math.floor(i / size);
    return wall(x, y) && !(x >= 11 && x <= 12 && y >= 10 && y <= 12) ? 1 : 0.02;
  });
  const fixed = { predict: () => map.slice() } as unknown as Predictor;
  const labels = Uint8Array.from({ length: size * size }, (_, i) => (wall(i % size, Math.floor(i / size)) ? 1 : 0));
  const data = { images: { width: size, height: size, depth: 1, data: new Float32Array(size * size) },
    labels: { width: size, height: size, depth: 1, data: labels }, source: {} };
  const metrics: ('v_rand' | 'rand_error')[] = ['v_rand', 'rand_error'];
  const open = validate(fixed, data, [0], metrics);
  const closed = validate(fixed, data, [0], metrics, 256, DEFAULT_SEGMENT_OPTIONS);
  const byHand = evaluateStacks({ width: size, height: size, depth: 1, data: labels.map((m) => 1 - m) },
    { width: size, height: size, depth: 1, data: closeMembraneGaps(map, size, size).map((p) => 1 - p) }, { metrics });
  assert.equal(closed.rand_error, byHand.rand_error);
  assert.ok(open.rand_error! > 0.3 && closed.rand_error! < 0.01, `${open.rand_error} -> ${closed.rand_error}`);

  // emseg train --close-gaps records it and selects on those scores.
  const backend = createReferenceBackend('float32');
  const out = mkdtempSync(join(tmpdir(), 'emseg-train-'));
  const synthetic = syntheticData(3, 24);
  await train({ ...config(out, 4), closeGaps: true }, synthetic, backend);
  const model = loadModel(out);
  assert.equal((model.meta.training as TrainConfig).closeGaps, true);
  const rescored = validate(new Predictor([model], backend), synthetic, [2], ['v_rand'], 256, DEFAULT_SEGMENT_OPTIONS);
  assert.equal((model.meta.validation as { v_rand: number }).v_rand, rescored.v_rand);

  // With options (an --init model's tuned record) it validates with those instead: seeding every dip of the map
  // and never merging scores differently from the defaults, and the run's scores are those.
  const overSegment = { sigma: 0, seedThreshold: 0.4, minSeedArea: 1, mergeThreshold: 0, extraSeedThreshold: 0 };
  const withOptions = mkdtempSync(join(tmpdir(), 'emseg-train-'));
  await train({ ...config(withOptions, 4), closeGaps: overSegment }, synthetic, backend);
  const tuned = loadModel(withOptions);
  const score = (options: typeof overSegment) => validate(new Predictor([tuned], backend), synthetic, [2], ['v_rand'], 256, options).v_rand;
  assert.notEqual(score(overSegment), score(DEFAULT_SEGMENT_OPTIONS));
  assert.equal((tuned.meta.validation as { v_rand: number }).v_rand, score(overSegment));
  assert.deepEqual(tuned.meta.close_gaps, overSegment);
});
