import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as emseg from '../src/index.js';

test('the package entry point exposes the library: plan a zoo model, score a perfect proposal', () => {
  const plan = emseg.planModel(emseg.resolveSpec('fakhry-b'), 65, 65);
  assert.deepEqual(plan.output, [2, 1, 1]);
  const gt = { width: 8, height: 8, depth: 1, data: Uint8Array.from({ length: 64 }, (_, i) => (i % 8 === 3 ? 0 : 255)) };
  const proposal = { width: 8, height: 8, depth: 1, data: Float32Array.from(gt.data, (v) => v / 255) };
  const r = emseg.evaluateStacks(gt, proposal, { metrics: ['pixel_error', 'v_rand'] });
  assert.equal(r.pixel_error, 0);
  assert.ok(Math.abs(r.v_rand! - 1) < 1e-12);
});

test('the package entry point exposes segmentation: cells of a map with one wall', () => {
  const width = 20;
  const map = Float32Array.from({ length: 20 * width }, (_, i) => (i % width === 10 ? 1 : 0));
  const { count, labels } = emseg.segmentSection(map, 20, width);
  assert.equal(count, 2);
  assert.notEqual(labels[0], labels[19]);
});
