/**
 * Training 3-d networks from labelled volumes: symmetries of a box, samples whose targets line up with their image
 * under every symmetry, and `emseg train` of a 3-d U-Net from an HDF5 volume with uint64 neuron ids (CREMI layout):
 * checkpoints, resume, validation by neuron scores, refusals.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { volumeGeometry, type Vec3 } from '../src/infer/volume.js';
import { decodeSafetensors } from '../src/models/safetensors.js';
import { unet3dSpec } from '../src/models/zoo.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { transformBox } from '../src/image/box-symmetry.js';
import { VolumeSampler } from '../src/train/volume-sampler.js';
import { validationRange } from '../src/train/volume-task.js';
import { Rng } from '../src/util/rng.js';
import { REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';
import { voronoiNeurons } from './helpers/neurons.js';
import { writeHdf5 } from './helpers/volumes.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const tmp = mkdtempSync(join(tmpdir(), 'emseg-volume-train-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const emseg = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000, cwd: tmp });

test('transformBox: each output voxel reads the input voxel its permutation and flips name', () => {
  const size: Vec3 = [2, 3, 4];
  const data = Float32Array.from({ length: 24 }, (_, i) => i);
  const s = { perm: [2, 0, 1] as Vec3, flip: [true, false, true] as const };
  const out = transformBox(data, size, s);
  assert.deepEqual(out.size, [4, 2, 3]);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 2; j++) for (let k = 0; k < 3; k++) {
    const src = [0, 0, 0];
    src[2] = 3 - i; // axis 0 of the output reads input axis 2, reversed
    src[0] = j;
    src[1] = 2 - k;
    assert.equal(out.data[(i * 2 + j) * 3 + k], (src[0]! * 3 + src[1]!) * 4 + src[2]!);
  }
});

for (const anisotropic of [false, true]) {
  test(`samples (${anisotropic ? 'anisotropic, misaligned' : 'isotropic'}, elastic): every known affinity target says whether the image voxels at its two ends carry one id, under every symmetry`, () => {
    const shape: Vec3 = [30, 40, 40];
    const ids = voronoiNeurons(shape, 25, 3);
    // The image names the id by a random value, so targets can be checked against it; elastic deformation blends
    // values where ids meet (bilinear), and a blend is never another id's value: such voxels are not checked.
    const idValue = Float32Array.from({ length: 26 }, (_, i) => 0.1 + 0.8 * ((i * 0.6180339887) % 1));
    const images = Float32Array.from(ids, (v) => idValue[v]!);
    const named = new Set(idValue);
    const spec = parseModelSpec(unet3dSpec({ width: 2, levels: 1, anisotropic }));
    const g = volumeGeometry(spec, [8, 8, 8]);
    const channels = spec.targets!;
    const sampler = new VolumeSampler({ images, ids, shape }, [...Array(30).keys()], { input: g.input, output: g.output, offset: g.offset,
      channels, balance: 'none', isotropic: !anisotropic, jitter: null, missingSection: 0, elastic: { alpha: 4, sigma: 6 },
      ...(anisotropic ? { misalign: { probability: 1, shift: 3 } } : {}) });
    const rng = new Rng(5);
    const [oz, oy, ox] = g.output;
    const [, iy, ix] = g.input;
    const n = oz * oy * ox;
    let checked = 0;
    let zChanges = 0;
    for (let s = 0; s < 12; s++) {
      const b = sampler.next(1, rng);
      channels.forEach((c, ch) => {
        const o = c as Vec3;
        if (o.some((v, a) => Math.abs(v) > g.offset[a]!)) return; // its far end lies outside the network's input
        for (let z = 0; z < oz; z++) for (let y = 0; y < oy; y++) for (let x = 0; x < ox; x++) {
          const k = ch * n + (z * oy + y) * ox + x;
          if (!b.weights[k]) continue;
          const at = (dz: number, dy: number, dx: number) => b.input[((z + g.offset[0] + dz) * iy + y + g.offset[1] + dy) * ix + x + g.offset[2] + dx]!;
          const [a, c] = [at(0, 0, 0), at(o[0], o[1], o[2])];
          if (!named.has(a) || !named.has(c)) continue;
          assert.equal(b.targets[k], a === c ? 1 : 0);
          if (o[0] !== 0 && !b.targets[k]) zChanges++;
          checked++;
        }
      });
    }
    assert.ok(checked > 12 * n * 3, `${checked} targets checked`);
    assert.ok(zChanges > 0);
  });
}

test('validation sections of a volume are one z range', () => {
  assert.deepEqual(validationRange([5, 6, 7], [10, 4, 4]), { start: [5, 0, 0], end: [8, 4, 4] });
  assert.equal(validationRange([], [10, 4, 4]), null);
  assert.throws(() => validationRange([1, 3], [10, 4, 4]), refused('invalid-option', '--val'));
});

test('emseg train: a 3-d U-Net from an HDF5 volume of uint64 neuron ids, validated by neuron scores, resumed exactly', async () => {
  const shape: Vec3 = [24, 36, 36];
  const ids = voronoiNeurons(shape, 20, 7);
  const raw = Uint8Array.from(ids, (_, i) => (isBoundary(ids, shape, i) ? 40 : 200));
  await writeHdf5(join(tmp, 'vol.h5'), [
    { path: 'volumes/raw', data: raw, shape: [...shape], dtype: '<B', attrs: { resolution: [10, 10, 10] } },
    { path: 'volumes/labels/neuron_ids', data: BigUint64Array.from(ids, (v) => BigInt(v) * 1000000007n), shape: [...shape], dtype: '<Q' },
  ]);
  writeFileSync(join(tmp, 'net.json'), JSON.stringify(unet3dSpec({ width: 2, levels: 1, longRange: [[-2, 0, 0], [0, -3, 0], [0, 0, -3]] })));
  const common = ['--images', 'vol.h5:/volumes/raw', '--labels', 'vol.h5:/volumes/labels/neuron_ids', '--model', 'net.json', '--tile', '8',
    '--epoch-steps', '3', '--checkpoint-every', '2', '--schedule', 'constant', '--backend', 'reference', '--json', '--quiet'];
  const full = emseg(['train', ...common, '--out', 'full', '--steps', '6']);
  assert.equal(full.status, 0, full.stderr);
  assert.match(full.stderr, /validation: the last 5 sections \(z=19:24\)/);
  const meta = JSON.parse(readFileSync(join(tmp, 'full', 'meta.json'), 'utf8'));
  assert.equal(meta.training.select, 'voi');
  assert.deepEqual(meta.validation.sections, [19, 20, 21, 22, 23]);
  assert.ok(Number.isFinite(meta.validation.voi) && Number.isFinite(meta.validation.arand), JSON.stringify(meta.validation));
  const log = readFileSync(join(tmp, 'full', 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log.filter((l) => l.type === 'validation').length, 2);
  // Stopped after 4 steps (the checkpoint), resumed to 6: the same weights as the uninterrupted run.
  assert.equal(emseg(['train', ...common, '--out', 'cut', '--steps', '4']).status, 0);
  const resumed = emseg(['train', ...common, '--out', 'cut', '--steps', '6', '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  const tensors = (run: string) => decodeSafetensors(readFileSync(join(tmp, run, 'checkpoint', 'train-state.safetensors')), run).tensors;
  const [a, b] = [tensors('full'), tensors('cut')];
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, t] of a) assert.deepEqual(b.get(name)!.data, t.data, name);
  // Refusals, before any training: validation not one range, 2-d-only options, a membrane mask for a 3-d network.
  for (const [args, flag] of [[['--val', '1,5'], '--val'], [['--malis-weight', '1'], '--malis-weight'], [['--label-kind', 'mask'], '--label-kind']] as const) {
    const r = emseg(['train', ...common, '--out', 'bad', '--steps', '2', ...args]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`emseg: ${flag}: `));
  }
});

/** A voxel whose +x or +y neighbour carries another id. */
function isBoundary(ids: Uint32Array, shape: Vec3, i: number): boolean {
  const x = i % shape[2];
  const y = Math.floor(i / shape[2]) % shape[1];
  return (x + 1 < shape[2] && ids[i + 1] !== ids[i]) || (y + 1 < shape[1] && ids[i + shape[2]] !== ids[i]);
}
