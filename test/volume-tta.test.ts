/**
 * Test-time augmentation of 3-d networks (src/infer/volume-tta.ts): the average of plain predictions of the
 * volume seen through the 8 symmetries of the plane, each undone with its affinity channels remapped; independent
 * of the tile; refused for tiles that are not square in-plane and offsets the symmetries do not map onto each other.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { IN_PLANE_SYMMETRIES, inverseSymmetry, originalDisplacement, transformBox } from '../src/image/box-symmetry.js';
import { VolumePredictor, predictVolume, volumeGeometry, type Vec3 } from '../src/infer/volume.js';
import { unet3dSpec } from '../src/models/zoo.js';
import { initParams } from '../src/nn/params.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { Rng } from '../src/util/rng.js';
import { refused } from './helpers/errors.js';

const OFFSETS: [number, number, number][] = [[-2, 0, 0], [0, -3, 0], [0, 0, -3], [0, -2, -2], [0, 2, -2]];
const spec = parseModelSpec(unet3dSpec({ width: 2, levels: 1, anisotropic: true, longRange: OFFSETS }));
const shape: Vec3 = [6, 18, 18];
const backend = createBackend({ kind: 'reference' });
const params = initParams(volumeGeometry(spec).plan, 4);
const rng = new Rng(9);
const volume = Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => rng.next());

test('box symmetries: the inverse undoes a symmetry, and a displacement maps as the voxels do', () => {
  const size: Vec3 = [2, 3, 3];
  const data = Float32Array.from({ length: 18 }, (_, i) => i);
  for (const s of IN_PLANE_SYMMETRIES) {
    const t = transformBox(data, size, s);
    assert.deepEqual([...transformBox(t.data, t.size, inverseSymmetry(s)).data], [...data]);
    // The voxel at (0, 1, 1) of the transformed box and its neighbour (0, 1, 2) are, in the original box, a pair
    // displaced as originalDisplacement says.
    const at = (v: number) => [Math.floor(v / 9), Math.floor(v / 3) % 3, v % 3];
    const [a, b] = [at(t.data[4]!), at(t.data[5]!)];
    assert.deepEqual(b.map((v, k) => v - a[k]!), originalDisplacement([0, 0, 1], s));
  }
});

test('--tta: the average of plain predictions through the 8 symmetries of the plane, channels remapped, whatever the tile', () => {
  const targets = spec.targets as Vec3[];
  const plain = new VolumePredictor([{ spec, params }], backend, [6, 8, 8]);
  const n = shape[0] * shape[1] * shape[2];
  const expected = new Float64Array(targets.length * n);
  const counts = new Uint8Array(targets.length * n);
  for (const s of IN_PLANE_SYMMETRIES) {
    const seen = transformBox(volume, shape, s);
    const maps = predictVolume(plain, seen.data, seen.size);
    targets.forEach((o, c) => {
      const back = transformBox(maps.subarray(c * n, (c + 1) * n), seen.size, inverseSymmetry(s)).data;
      // Channel c holds, at voxel v, the pair {v, v + d} of the original box: channel d's value at v, or channel -d's at v + d.
      const d = originalDisplacement(o, s);
      const direct = targets.findIndex((t) => t.every((v, a) => v === d[a]));
      const to = direct >= 0 ? direct : targets.findIndex((t) => t.every((v, a) => v === -d[a]!));
      const shift = direct >= 0 ? [0, 0, 0] : d;
      for (let z = 0; z < shape[0]; z++) for (let y = 0; y < shape[1]; y++) for (let x = 0; x < shape[2]; x++) {
        const [zz, yy, xx] = [z + shift[0]!, y + shift[1]!, x + shift[2]!];
        if (zz < 0 || yy < 0 || xx < 0 || zz >= shape[0] || yy >= shape[1] || xx >= shape[2]) continue;
        const k = to * n + (zz * shape[1] + yy) * shape[2] + xx;
        expected[k]! += back[(z * shape[1] + y) * shape[2] + x]!;
        counts[k]! += 1;
      }
    });
  }
  const small = predictVolume(new VolumePredictor([{ spec, params }], backend, [6, 8, 8], { tta: true }), volume, shape);
  const large = predictVolume(new VolumePredictor([{ spec, params }], backend, [6, 16, 16], { tta: true }), volume, shape);
  let checked = 0;
  for (let k = 0; k < expected.length; k++) {
    assert.ok(Math.abs(small[k]! - large[k]!) < 1e-6, `tile independence at ${k}`);
    if (counts[k] !== 8) continue; // its pair partner lies outside the volume in some view: mirrored input decides it
    assert.ok(Math.abs(small[k]! - expected[k]! / 8) < 1e-6, `element ${k}: ${small[k]} against ${expected[k]! / 8}`);
    checked++;
  }
  assert.ok(checked > 0.8 * expected.length, `${checked} of ${expected.length} checked`);
  const once = predictVolume(plain, volume, shape);
  assert.ok(once.some((v, k) => Math.abs(v - small[k]!) > 1e-3), 'the views change the maps');
});

test('--tta refuses tiles that are not square in-plane and offsets the symmetries do not map onto channels', () => {
  assert.throws(() => new VolumePredictor([{ spec, params }], backend, [6, 8, 16], { tta: true }), refused('invalid-option', '--tta', /square/));
  const skew = parseModelSpec(unet3dSpec({ width: 2, levels: 1, anisotropic: true, longRange: [[0, -2, -1]] }));
  const skewParams = initParams(volumeGeometry(skew).plan, 1);
  assert.throws(() => new VolumePredictor([{ spec: skew, params: skewParams }], backend, [6, 8, 8], { tta: true }), refused('invalid-option', '--tta', /not closed/));
});
