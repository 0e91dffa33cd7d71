/**
 * Affinities of sections labelled one by one (ISBI 2012's membrane masks): the planar U-Net (every kernel and target
 * in-plane), its cells from masks, `--init` from a trained 2-d U-Net, segmentation that never joins sections, and
 * `emseg eval --cells` (2-D cells scored with the ISBI metrics as the map of where cells meet).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { labelComponents4 } from '../src/image/components.js';
import { volumeGeometry } from '../src/infer/volume.js';
import { openStack } from '../src/io/index.js';
import { encodeTiff } from '../src/io/tiff-write.js';
import { loadLabelledIds } from '../src/io/training-labels.js';
import { cellBoundaryMap } from '../src/metrics/index.js';
import { loadModel, saveModel } from '../src/models/model-dir.js';
import { resolveSpec, unet3dSpec, unetSpec } from '../src/models/zoo.js';
import { Network } from '../src/nn/network.js';
import { biasName, initParams, weightName } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { nearestChannels, watershedAgglomerate } from '../src/segment/affinity/index.js';
import { Rng } from '../src/util/rng.js';
import { REPO_ROOT, SAMPLES } from './helpers/data.js';
import { refused } from './helpers/errors.js';
import { writeHdf5 } from './helpers/volumes.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const tmp = mkdtempSync(join(tmpdir(), 'emseg-planar-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const emseg = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000, cwd: tmp });
const squeezed = (shape: readonly number[]) => shape.filter((d) => d !== 1).join('x');

test('the planar U-Net: in-plane kernels and targets, and the parameters of the 2-d U-Net of its width and levels but for the head', () => {
  const planar = resolveSpec('unet2d-affinities-w16');
  assert.ok(planar.targets!.every((t) => Array.isArray(t) && t[0] === 0), 'every target in-plane');
  assert.equal(volumeGeometry(planar).offset[0], 0, 'no context across sections');
  const flat = resolveSpec('unet-w16');
  const shapes = (plan: ReturnType<typeof planModel>) => new Map([...initParams(plan, 1)].map(([n, p]) => [n, squeezed(p.shape)]));
  const a = shapes(volumeGeometry(planar).plan);
  const b = shapes(planModel(flat, 188, 188));
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  const differ = [...a].filter(([n, s]) => b.get(n) !== s).map(([n]) => n).sort();
  assert.deepEqual(differ, [biasName('head'), weightName('head')].sort());
});

test('segmentation of planar affinities: a volume without a z channel is segmented section by section; 3-d offsets still need z', () => {
  const shape = [3, 6, 6] as const;
  const offsets = [[0, -1, 0], [0, 0, -1]] as const;
  assert.deepEqual(nearestChannels(offsets, shape), [-1, 0, 1]);
  assert.throws(() => nearestChannels([[0, -1, 0], [0, 0, -1], [-2, 0, 0]], shape), refused('invalid-option', 'offsets'));
  // Every section one cell (all affinities 1): each stays its own neuron, never joined to the next section's.
  const n = shape[0] * shape[1] * shape[2];
  const { labels } = watershedAgglomerate({ data: new Float32Array(2 * n).fill(1), shape, offsets }, { mergeAffinity: 0.5 });
  const plane = shape[1] * shape[2];
  const ids = [0, 1, 2].map((z) => new Set(labels.subarray(z * plane, (z + 1) * plane)));
  assert.ok(ids.every((s) => s.size === 1));
  assert.equal(new Set(ids.map((s) => [...s][0])).size, 3, 'three sections, three neurons');
});

/** Two sections of the same mask: a membrane cross splits each 20 x 20 section into four cells; one pixel unknown. */
async function maskVolume(file: string): Promise<Uint8Array> {
  const mask = new Uint8Array(2 * 400).fill(255);
  for (let z = 0; z < 2; z++) for (let i = 0; i < 20; i++) {
    mask[z * 400 + 10 * 20 + i] = 0;
    mask[z * 400 + i * 20 + 10] = 0;
  }
  mask[5] = 7; // neither membrane nor interior: refused, not guessed
  await writeHdf5(file, [{ path: 'raw', data: new Uint8Array(800).fill(100), shape: [2, 20, 20], dtype: '<B' },
    { path: 'labels', data: mask, shape: [2, 20, 20], dtype: '<B' }]);
  return mask;
}

test('membrane masks become cells per section for in-plane targets only; other 3-d networks still need neuron ids', async () => {
  const file = join(tmp, 'mask.h5');
  const mask = await maskVolume(file);
  const read = (cellsFromMasks: boolean, ignoreLabel?: number) => loadLabelledIds({ images: `${file}:/raw`, labels: `${file}:/labels`,
    labelKind: 'mask', cellsFromMasks, toFloat: (s) => Float32Array.from(s.data as Uint8Array), ...(ignoreLabel === undefined ? {} : { ignoreLabel: BigInt(ignoreLabel) }) });
  await assert.rejects(read(false, 7), refused('invalid-option', '--label-kind', /targets all lie in a section/));
  const v = await read(true, 7);
  const ids = [...v.ids];
  assert.equal(ids[5], v.ignoreId, 'the ignored pixel');
  const cells = (z: number) => new Set(ids.slice(z * 400, (z + 1) * 400).filter((id, i) => mask[z * 400 + i] === 255 && id !== v.ignoreId));
  assert.equal(cells(0).size, 4);
  assert.equal(cells(1).size, 4);
  assert.equal([...cells(0)].filter((id) => cells(1).has(id)).length, 0, 'no id shared between sections');
  assert.ok(ids.every((id, i) => (mask[i] === 0) === (id === 0)), 'membrane is the background, nothing else');
});

test('emseg train --init of a 2-d U-Net starts the planar network with its weights: the same features, a fresh head', () => {
  const flatSpec = parseModelSpec(unetSpec(2, 1));
  const planarSpec = parseModelSpec(unet3dSpec({ planar: true, width: 2, levels: 1, longRange: [[0, -3, 0]] }));
  const g = volumeGeometry(planarSpec, [1, 36, 36]);
  const [, H, W] = g.input;
  const flatPlan = planModel(flatSpec, H, W);
  const flat = initParams(flatPlan, 7);
  saveModel(join(tmp, 'flat'), flatSpec, flat, {});
  writeFileSync(join(tmp, 'planar.json'), JSON.stringify(planarSpec));
  const r = emseg(['train', '--images', join(SAMPLES, 'images'), '--labels', join(SAMPLES, 'labels'), '--model', join(tmp, 'planar.json'),
    '--init', join(tmp, 'flat'), '--out', join(tmp, 'planar'), '--val', '1', '--tile', '36', '--steps', '1', '--lr', '1e-12', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /cells: the 4-connected components of each section's interior/);
  const trained = loadModel(join(tmp, 'planar'));
  assert.match((trained.meta.training as { model: string }).model, /planar\.json$/, 'the model trained is --model\'s, not --init\'s');
  const planar = trained.params;
  for (const [name, p] of planar) {
    const src = flat.get(name)!;
    const same = p.data.every((v, i) => Math.abs(v - src.data[i]!) < 1e-6);
    assert.equal(same, !name.startsWith('head'), name);
  }
  // The head made to compute the 2-d U-Net's log-odds of class 1: every channel is then its softmax probability.
  const [w, b] = [flat.get(weightName('head'))!.data, flat.get(biasName('head'))!.data];
  const ch = planar.get(biasName('head'))!.data.length;
  for (let c = 0; c < ch; c++) {
    for (let i = 0; i < 2; i++) planar.get(weightName('head'))!.data[c * 2 + i] = w[2 + i]! - w[i]!;
    planar.get(biasName('head'))!.data[c] = b[1]! - b[0]!;
  }
  const backend = createReferenceBackend('float32');
  const rng = new Rng(3);
  const image = Float32Array.from({ length: H * W }, () => rng.next());
  const p2 = backend.toArray(new Network(flatPlan, flat, backend).predict(backend.fromArray(image, [1, 1, H, W])));
  const p3 = backend.toArray(new Network(g.plan, planar, backend).predict(backend.fromArray(image, [1, 1, 1, H, W])));
  const n = p2.length / 2;
  assert.equal(p3.length, ch * n);
  for (let c = 0; c < ch; c++) for (let i = 0; i < n; i++) assert.ok(Math.abs(p3[c * n + i]! - p2[n + i]!) < 1e-5, `channel ${c}, pixel ${i}`);
});

test('cellBoundaryMap: membrane where two cells meet and on label 0; its interior components are the cells again', () => {
  const width = 6;
  const cells = BigUint64Array.from({ length: 36 }, (_, i) => ((i % width) < 3 ? 5n : 9n) + (i >= 18 ? 100n : 0n));
  cells[35] = 0n;
  const map = cellBoundaryMap(cells, width, 6);
  assert.equal(map[2], 0, 'left of another cell');
  assert.equal(map[12 + 2], 0);
  assert.equal(map[35], 0, 'label 0');
  assert.equal(map[0], 1);
  assert.equal(labelComponents4(map, width, 6).count, 4);
  assert.throws(() => cellBoundaryMap(new Uint32Array(5), 2, 2), refused('mismatch', 'cells'));
});

test('emseg eval --cells scores 2-D cells with the ISBI metrics: the labels\' own cells score near perfect, one merged cell does not', async () => {
  const label = join(SAMPLES, 'labels', '23.png');
  const file = join(tmp, 'cells.tif');
  const score = (cells: Uint32Array) => {
    writeFileSync(file, encodeTiff([cells], 512, 512));
    const r = emseg(['eval', '--labels', label, '--cells', file, '--metrics', 'v_rand,v_info', '--json', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).v_rand as number;
  };
  let mask = new Uint8Array(0);
  for await (const s of (await openStack([label])).slices()) mask = Uint8Array.from(s.data as Uint8Array, (v) => (v ? 1 : 0));
  const good = score(Uint32Array.from(labelComponents4(mask, 512, 512).labels));
  const merged = score(new Uint32Array(512 * 512).fill(1));
  assert.ok(good > 0.95, `own cells: V_rand ${good}`);
  assert.ok(merged < 0.5, `one cell: V_rand ${merged}`);
  const r = emseg(['eval', '--labels', label, '--cells', file, '--membrane-prob']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--membrane-prob/);
});
