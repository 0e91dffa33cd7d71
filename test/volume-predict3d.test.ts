/**
 * 3-d networks over volumes (src/infer/volume.ts): the same outputs whatever the tile and the region, equal to one
 * network pass over the mirrored volume, and mirroring at the faces as 2-d prediction does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { VolumePredictor, clampBox, mirrorFill, predictVolume, volumeGeometry, type Vec3 } from '../src/infer/volume.js';
import { unet3dSpec } from '../src/models/zoo.js';
import { Network } from '../src/nn/network.js';
import { initParams } from '../src/nn/params.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { reflect } from '../src/image/mirror.js';
import { Rng } from '../src/util/rng.js';
import { refused } from './helpers/errors.js';

const iso = parseModelSpec(unet3dSpec({ width: 2, levels: 1 }));
const aniso = parseModelSpec(unet3dSpec({ width: 2, levels: 1, anisotropic: true }));

function randomVolume(shape: Vec3, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => rng.next());
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('geometry: valid 3-d U-Nets tile by their stride per axis, anisotropic ones finer along z', () => {
  const g = volumeGeometry(iso, [20, 20, 20]);
  assert.deepEqual(g.stride, [2, 2, 2]);
  assert.ok(g.output.every((v, a) => v >= 20 && g.step[a]! % 2 === 0 && g.input[a] === v + 2 * g.offset[a]!));
  const a = volumeGeometry(aniso, [5, 20, 20]);
  assert.deepEqual(a.stride, [1, 2, 2]);
  assert.ok(a.offset[0]! < a.offset[1]!, 'in-plane convolutions first: less context along z');
  assert.throws(() => volumeGeometry(parseModelSpec({ name: 'flat', layers: [{ type: 'conv', out: 2, kernel: 3 }, { type: 'softmax' }] })), refused('invalid-spec'));
});

test('mirrorFill: voxels outside the volume are its mirror images, as reflect() says', () => {
  const shape: Vec3 = [3, 4, 5];
  const volume = randomVolume(shape, 1);
  const box = { start: [-2, -3, 2] as Vec3, end: [4, 6, 8] as Vec3 };
  const c = clampBox(box, shape);
  const inside: number[] = [];
  for (let z = c.start[0]; z < c.end[0]; z++) for (let y = c.start[1]; y < c.end[1]; y++) for (let x = c.start[2]; x < c.end[2]; x++) inside.push(volume[(z * 4 + y) * 5 + x]!);
  const out = mirrorFill(Float32Array.from(inside), shape, box);
  let o = 0;
  for (let z = -2; z < 4; z++) for (let y = -3; y < 6; y++) for (let x = 2; x < 8; x++) {
    assert.equal(out[o++], volume[(reflect(z, 3) * 4 + reflect(y, 4)) * 5 + reflect(x, 5)]);
  }
});

for (const [name, spec] of [['isotropic', iso], ['anisotropic', aniso]] as const) {
  test(`${name}: tiles of any size and any stride-aligned region give one network pass's outputs`, () => {
    const backend = createBackend({ kind: 'reference' });
    const params = initParams(volumeGeometry(spec).plan, 3);
    const shape: Vec3 = [13, 22, 19];
    const volume = randomVolume(shape, 2);
    const whole = (tile: Vec3) => predictVolume(new VolumePredictor([{ spec, params }], backend, tile), volume, shape);
    const small = whole([4, 8, 8]);
    assert.ok(maxDiff(small, whole([16, 24, 24])) < 1e-5);
    // One pass of a network planned for the whole (mirrored) volume.
    const big = volumeGeometry(spec, shape);
    const pad = predictVolume(new VolumePredictor([{ spec, params }], backend, shape), volume, shape);
    assert.ok(maxDiff(small, pad) < 1e-5);
    assert.ok(big.output.every((v, a) => v >= shape[a]!));
    // A region starting at a stride multiple equals that part of the whole.
    const p = new VolumePredictor([{ spec, params }], backend, [4, 8, 8]);
    const region = { start: [2, 4, 6] as Vec3, end: [9, 20, 15] as Vec3 };
    const part = predictVolume(p, volume, shape, region);
    const size = [7, 16, 9];
    const channels = p.channels;
    let worst = 0;
    for (let c = 0; c < channels; c++) for (let z = 0; z < size[0]!; z++) for (let y = 0; y < size[1]!; y++) for (let x = 0; x < size[2]!; x++) {
      const a = part[((c * size[0]! + z) * size[1]! + y) * size[2]! + x]!;
      const b = small[((c * shape[0] + z + 2) * shape[1] + y + 4) * shape[2] + x + 6]!;
      worst = Math.max(worst, Math.abs(a - b));
    }
    assert.ok(worst < 1e-5, `region differs by ${worst}`);
  });
}

test('the oneDNN backend gives the reference outputs; an ensemble averages its members', () => {
  const ref = createBackend({ kind: 'reference' });
  const native = createBackend({ kind: 'onednn' });
  const plan = volumeGeometry(iso).plan;
  const a = { spec: iso, params: initParams(plan, 4) };
  const b = { spec: iso, params: initParams(plan, 5) };
  const shape: Vec3 = [10, 12, 14];
  const volume = randomVolume(shape, 6);
  const r = predictVolume(new VolumePredictor([a], ref, [8, 8, 8]), volume, shape);
  assert.ok(maxDiff(r, predictVolume(new VolumePredictor([a], native, [8, 8, 8]), volume, shape)) < 1e-4);
  const rb = predictVolume(new VolumePredictor([b], ref, [8, 8, 8]), volume, shape);
  const both = predictVolume(new VolumePredictor([a, b], ref, [8, 8, 8]), volume, shape);
  assert.ok(maxDiff(both, r.map((v, i) => (v + rb[i]!) / 2)) < 1e-6);
  assert.ok(new Network(plan, a.params, ref));
});
