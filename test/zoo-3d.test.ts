/**
 * The 3-d zoo: isotropic and anisotropic U-Nets with boundary and affinity heads. Their plans (per-axis receptive
 * fields, exact input sizes), their summaries as `emseg models` shows them, `emseg bench` on a 3-d model, and a few
 * training steps on the CPU that lower the loss.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { tileGeometry } from '../src/infer/tiling.js';
import { summarize } from '../src/models/summary.js';
import { probePlan } from '../src/models/model-dir.js';
import { LONG_RANGE_ANISO, LONG_RANGE_ISO, LONG_RANGE_PLANAR, resolveSpec, unet3dSpec, zoo3dNames, zooNames } from '../src/models/zoo.js';
import { Network } from '../src/nn/network.js';
import { Adam } from '../src/nn/optim.js';
import { initParams, zeroGrads } from '../src/nn/params.js';
import { planAligned, planModel, smallestInput3d } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { Rng } from '../src/util/rng.js';
import { REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const emseg = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });

test('the 3-d zoo: five U-Nets, apart from the 2-d zoo; heads and targets as named', () => {
  assert.deepEqual(zoo3dNames(), ['unet3d-boundary', 'unet3d-affinities', 'unet3d-aniso-boundary', 'unet3d-aniso-affinities', 'unet2d-affinities-w16']);
  assert.ok(zoo3dNames().every((n) => !zooNames().includes(n)));
  for (const name of zoo3dNames()) {
    const spec = resolveSpec(name);
    assert.equal(spec.input.dims, 3, name);
    const { plan } = smallestInput3d(spec);
    assert.ok(planAligned(plan), name);
    const head = plan.nodes[plan.nodes.length - 1]!;
    assert.equal(head.type, 'sigmoid', name);
    assert.equal(head.out[0], spec.targets!.length, name);
  }
  assert.deepEqual(resolveSpec('unet3d-aniso-boundary').targets, [{ boundary: 'in-plane' }]);
  assert.deepEqual(resolveSpec('unet3d-affinities').targets, [[-1, 0, 0], [0, -1, 0], [0, 0, -1], ...LONG_RANGE_ISO]);
  assert.deepEqual(resolveSpec('unet3d-aniso-affinities').targets!.slice(3), LONG_RANGE_ANISO);
  assert.deepEqual(resolveSpec('unet2d-affinities-w16').targets, [[0, -1, 0], [0, 0, -1], ...LONG_RANGE_PLANAR]);
  // Long-range offsets are configurable: the head follows them.
  const custom = parseModelSpec(unet3dSpec({ longRange: [[0, -27, 0]] }));
  assert.equal(smallestInput3d(custom).plan.output[0], 4);
});

test('receptive fields per axis: isotropic equal, anisotropic shallower in depth (in-plane convolutions at the top)', () => {
  const iso = summarize(resolveSpec('unet3d-affinities'));
  const aniso = summarize(resolveSpec('unet3d-aniso-affinities'));
  assert.deepEqual(iso.receptiveField3d, [44, 44, 44]);
  assert.deepEqual(aniso.receptiveField3d, [13, 44, 44]);
  for (const s of [iso, aniso]) {
    assert.ok(s.params > 10_000 && s.params < 200_000, `${s.name}: ${s.params} parameters (small: a CPU trains it)`);
    assert.ok(s.flopsPerPixel > 0);
  }
  // Parameters do not depend on the input size: the probe plan's equal a bigger plan's.
  const spec = resolveSpec('unet3d-aniso-boundary');
  const big = smallestInput3d(spec, 20).plan;
  assert.equal(JSON.stringify(initParams(probePlan(spec), 1).get('head.weight')!.shape), JSON.stringify([1, 8, 1, 1, 1]));
  assert.equal(initParams(big, 1).size, initParams(probePlan(spec), 1).size);
});

test('a 3-d zoo model is refused where a 2-d plan is asked for, and the targets must match the head', () => {
  assert.throws(() => planModel(resolveSpec('unet3d-boundary'), 64, 64), refused('invalid-spec', '', /input depth/));
  assert.throws(() => tileGeometry(resolveSpec('unet3d-boundary'), 256, 512, 512),
    refused('invalid-spec', 'unet3d-boundary', /3-d network: section-by-section prediction/));
  const bad = { ...unet3dSpec({ head: 'boundary' }), targets: [[-1, 0, 0], [0, -1, 0]] };
  assert.throws(() => smallestInput3d(parseModelSpec(bad)),
    refused('invalid-spec', '', /field "targets": names 2 channels but the output has 1/));
});

test('a few training steps of the anisotropic affinity U-Net on the CPU lower the masked loss', () => {
  const spec = resolveSpec('unet3d-aniso-affinities');
  const { plan } = smallestInput3d(spec, 2);
  const backend = createBackend({ kind: 'auto' });
  const params = initParams(plan, 3);
  const net = new Network(plan, params, backend);
  const rng = new Rng(4);
  const [c, h, w] = plan.input;
  const x = backend.fromArray(Float32Array.from({ length: c * plan.inputDepth! * h * w }, () => rng.next()), [1, c, plan.inputDepth!, h, w]);
  const n = plan.output[0] * plan.z!.size * plan.output[1] * plan.output[2];
  const targets = Float32Array.from({ length: n }, () => rng.int(2));
  const weights = Float32Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 0 : 1)); // a quarter unlabelled
  const adam = new Adam({});
  const step = () => {
    zeroGrads(params);
    const { loss } = net.trainStep(x, { targets, weights });
    adam.step(params, 1e-2);
    return loss;
  };
  const first = step();
  let last = first;
  for (let s = 0; s < 15; s++) last = step();
  x.dispose();
  assert.ok(last < first * 0.95, `loss ${first} -> ${last}`);
});

test('emseg models lists the 3-d U-Nets with per-axis fields; emseg bench times one (forward and training step)', () => {
  const models = emseg(['models', '--json']);
  assert.equal(models.status, 0, models.stderr);
  const rows = JSON.parse(models.stdout) as { name: string; receptiveField3d?: number[]; params: number }[];
  for (const name of zoo3dNames()) assert.ok(rows.some((r) => r.name === name && r.receptiveField3d?.length === 3), name);
  const table = emseg(['models']);
  assert.match(table.stdout, /unet3d-aniso-affinities\s+-\s+13x44x44\s/);
  const bench = emseg(['bench', 'unet3d-aniso-boundary', '--iters', '1', '--warmup', '1', '--train-size', '2',
    '--forward-size', '4', '--precision', 'fp32', '--json']);
  assert.equal(bench.status, 0, bench.stderr);
  const [r] = JSON.parse(bench.stdout) as { volume: { trainOutput: number[]; forwardOutput: number[] }; train: { medianMs: number } }[];
  assert.ok(r!.volume.forwardOutput.every((v) => v >= 4));
  assert.ok(r!.volume.trainOutput.every((v) => v >= 2));
  assert.ok(r!.train.medianMs > 0);
  const text = emseg(['bench', 'unet3d-aniso-boundary', '--iters', '1', '--warmup', '1', '--train-size', '2',
    '--forward-size', '2', '--precision', 'fp32']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /train step \d+x\d+x\d+ -> \d+x\d+x\d+ x1: .* voxels\/s/);
});
