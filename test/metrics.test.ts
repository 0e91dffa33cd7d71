// Reproduces the reference values of the ISBI 2012 metrics (Fiji Trainable Segmentation) stored
// in test/fixtures/isbi-metrics: counts exactly, warping_error to 1e-12, the rest to 1e-9.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readStack } from '../src/io/index.js';
import type { ImageStack, StackData } from '../src/image/stack.js';
import {
  evaluateStacks,
  warpingErrorLocations,
  type EvaluationResult,
  type MetricName,
} from '../src/metrics/index.js';
import { METRIC_FIXTURES } from './helpers/data.js';

const fixtureDir = METRIC_FIXTURES;

interface ExpectedProposal {
  file: string;
  tiff: string;
  best_threshold_index: Record<MetricName, number>;
  per_threshold: Record<string, number[]>;
  per_slice: Record<string, number[][]>;
  [metric: string]: unknown;
}
interface Expected {
  thresholds: number[];
  warping_thresholds: number[];
  data: { width: number; height: number; slices: number; gt_file: string; gt_tiff: string };
  proposals: Record<string, ExpectedProposal>;
}

type Fixtures = { expected: Expected; gt: ImageStack<Uint8Array>; proposal: (name: string) => ImageStack<Float32Array> };
let fixtures: Promise<Fixtures> | undefined;

/** Reads expected.json and the TIFF twins of gt.u8 and <name>.f32 (bit-identical; see the fixtures' README), once. */
function loadFixtures(): Promise<Fixtures> {
  fixtures ??= readFixtures();
  return fixtures;
}

async function readFixtures(): Promise<Fixtures> {
  if (!existsSync(join(fixtureDir, 'expected.json'))) {
    assert.fail(`ISBI metric fixtures not found in ${fixtureDir} (expected.json, gt.tif, <name>.tif); they hold the reference values these tests check`);
  }
  const expected = JSON.parse(readFileSync(join(fixtureDir, 'expected.json'), 'utf8')) as Expected;
  const { width, height, slices: depth } = expected.data;
  const read = async <T extends StackData>(file: string, type: new (n: number) => T): Promise<ImageStack<T>> => {
    const stack = await readStack(join(fixtureDir, file));
    assert.deepEqual([stack.width, stack.height, stack.depth, stack.data.constructor], [width, height, depth, type], file);
    return { width, height, depth, data: stack.data as T };
  };
  const gt = await read(expected.data.gt_tiff, Uint8Array);
  const proposals = new Map<string, ImageStack<Float32Array>>();
  for (const [name, p] of Object.entries(expected.proposals)) proposals.set(name, await read(p.tiff, Float32Array));
  return { expected, gt, proposal: (name) => proposals.get(name)! };
}

const EXACT = new Set(['pixel_tp', 'pixel_fp', 'pixel_fn', 'pixel_tn', 'warping_splits', 'warping_mergers']);
const tolerance = (key: string): number => (EXACT.has(key) ? 0 : key === 'warping_error' ? 1e-12 : 1e-9);

function assertClose(actual: number | undefined, expected: number, tol: number, what: string): number {
  assert.equal(typeof actual, 'number', `${what}: missing`);
  const dev = Math.abs((actual as number) - expected);
  assert.ok(dev <= tol, `${what}: got ${actual}, expected ${expected} (|diff| ${dev} > ${tol})`);
  return dev;
}

/** Compares everything in one expected proposal; returns the largest deviation per key. */
function compare(result: EvaluationResult, exp: ExpectedProposal, name: string): Map<string, number> {
  const worst = new Map<string, number>();
  const note = (key: string, dev: number): void => {
    worst.set(key, Math.max(worst.get(key) ?? 0, dev));
  };
  for (const metric of ['pixel_error', 'rand_error', 'warping_error', 'v_rand', 'v_info'] as const) {
    note(metric, assertClose(result[metric], exp[metric] as number, tolerance(metric), `${name} ${metric}`));
  }
  assert.deepEqual(result.best_threshold_index, exp.best_threshold_index, `${name} best_threshold_index`);
  for (const [key, values] of Object.entries(exp.per_threshold)) {
    const actual = result.per_threshold[key as keyof EvaluationResult['per_threshold']];
    assert.ok(actual, `${name} per_threshold.${key}: missing`);
    assert.equal(actual.length, values.length, `${name} per_threshold.${key}: length`);
    values.forEach((v, t) => note(`per_threshold.${key}`, assertClose(actual[t], v, tolerance(key), `${name} per_threshold.${key}[${t}]`)));
  }
  for (const [key, rows] of Object.entries(exp.per_slice)) {
    const actual = result.per_slice[key as keyof EvaluationResult['per_slice']];
    assert.ok(actual, `${name} per_slice.${key}: missing`);
    assert.equal(actual.length, rows.length, `${name} per_slice.${key}: thresholds`);
    rows.forEach((row, t) =>
      row.forEach((v, z) => note(`per_slice.${key}`, assertClose(actual[t][z], v, 1e-9, `${name} per_slice.${key}[${t}][${z}]`))),
    );
  }
  return worst;
}

test('threshold sequences match the reference bit for bit', async () => {
  const { expected, gt, proposal } = await loadFixtures();
  const r = evaluateStacks(gt, proposal('perfect'), { metrics: ['pixel_error'] });
  assert.deepEqual(r.thresholds, expected.thresholds);
  assert.deepEqual(r.warping_thresholds, expected.warping_thresholds);
});

test('all 7 reference proposals reproduce expected.json', async (t) => {
  const { expected, gt, proposal } = await loadFixtures();
  const worst = new Map<string, number>();
  for (const name of Object.keys(expected.proposals)) {
    await t.test(name, () => {
      const result = evaluateStacks(gt, proposal(name));
      for (const [key, dev] of compare(result, expected.proposals[name], name)) worst.set(key, Math.max(worst.get(key) ?? 0, dev));
    });
  }
  t.diagnostic(`max |deviation|: ${[...worst].map(([k, v]) => `${k}=${v.toExponential(1)}`).join(', ')}`);
});

test('ground-truth encoding does not matter (uint8 0/255, uint16 0/1, float32 0/1)', async () => {
  const { gt, proposal } = await loadFixtures();
  const noisy = proposal('noisy');
  const metrics: MetricName[] = ['rand_error', 'v_info'];
  const reference = evaluateStacks(gt, noisy, { metrics });
  const asU16 = { ...gt, data: Uint16Array.from(gt.data, (v) => (v ? 1 : 0)) };
  const asF32 = { ...gt, data: Float32Array.from(gt.data, (v) => v / 255) };
  assert.deepEqual(evaluateStacks(asU16, noisy, { metrics }), reference);
  assert.deepEqual(evaluateStacks(asF32, noisy, { metrics }), reference);
});

test('warpingErrorLocations finds as many splits and mergers as the sweep counts', async () => {
  const { expected, gt, proposal } = await loadFixtures();
  for (const [name, t] of [['raw', 4], ['gaps', 0], ['spurious', 2], ['noisy', 9]] as const) {
    const exp = expected.proposals[name].per_threshold;
    const th = expected.warping_thresholds[t];
    let splits = 0;
    let mergers = 0;
    for (let z = 0; z < gt.depth; z++) {
      const located = warpingErrorLocations(gt, proposal(name), z, th);
      splits += located.splits.length;
      mergers += located.mergers.length;
      for (const { x, y } of [...located.splits, ...located.mergers]) {
        assert.ok(Number.isInteger(x) && Number.isInteger(y) && x >= 0 && y >= 0 && x < gt.width && y < gt.height);
      }
    }
    assert.equal(splits, exp.warping_splits[t], `${name} splits at threshold ${t}`);
    assert.equal(mergers, exp.warping_mergers[t], `${name} mergers at threshold ${t}`);
  }
});

test('only the requested metrics are computed and progress reaches the total', async () => {
  const { gt, proposal } = await loadFixtures();
  const calls: Array<[number, number]> = [];
  const r = evaluateStacks(gt, proposal('gaps'), { metrics: ['warping_error'], onProgress: (done, total) => calls.push([done, total]) });
  assert.deepEqual(Object.keys(r.per_threshold).sort(), ['warping_error', 'warping_mergers', 'warping_splits']);
  assert.deepEqual(r.per_slice, {});
  assert.equal(r.pixel_error, undefined);
  assert.equal(r.v_rand, undefined);
  assert.deepEqual(Object.keys(r.best_threshold_index), ['warping_error']);
  assert.equal(calls.length, gt.depth * 10);
  assert.deepEqual(calls.at(-1), [gt.depth * 10, gt.depth * 10]);
});
