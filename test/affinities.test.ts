/**
 * Targets made from neuron ids (src/image/affinities.ts): affinities for any offsets, the boundary channel, their
 * masks (outside the patch, ignore label, sparse labels), class-balance weights and the record of what each channel
 * means. Small hand-made patches with known answers, a brute-force twin on random patches, and the boundary channel
 * of ISBI 2012 sample labels (ids = 4-connected cells of the membrane mask) against the membrane mask itself.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  NEAREST_OFFSETS, affinityTargets, boundaryTargets, channelClassWeights, classBalanceWeights, labelTargets, targetMeanings,
  targetsRecord, type NeuronIds, type Offset3, type Shape3, type TargetChannel, type TargetOptions, type Targets,
} from '../src/image/affinities.js';
import { decideMapPolarity, parseMapRecord } from '../src/image/map-meaning.js';
import { loadDataset } from '../src/io/dataset.js';
import { labelComponents4 } from '../src/image/components.js';
import { Rng } from '../src/util/rng.js';
import { SAMPLES } from './helpers/data.js';
import { refused } from './helpers/errors.js';

/** Channel c of targets or mask as a plain array (for deepEqual with a hand-written answer). */
function channelOf(t: Targets, which: 'targets' | 'mask', c: number): number[] {
  const n = t.shape[0] * t.shape[1] * t.shape[2];
  return [...t[which].subarray(c * n, (c + 1) * n)];
}

// Two touching neurons (1 left, 2 right) over background (0) in the last row; one section.
const TOUCHING: number[] = [
  1, 1, 2, 2,
  1, 1, 2, 2,
  0, 0, 2, 2,
];
const TOUCHING_SHAPE: Shape3 = [1, 3, 4];

test('nearest-neighbour affinities of two touching neurons: 1 within one id, 0 across ids and for background, unknown at the patch edge', () => {
  const t = affinityTargets(TOUCHING, TOUCHING_SHAPE, [[0, 0, -1], [0, -1, 0]]);
  assert.equal(t.channels, 2);
  // x: each voxel with its left neighbour; column 0 has none (mask 0); background to background is 0, known.
  assert.deepEqual(channelOf(t, 'targets', 0), [0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1]);
  assert.deepEqual(channelOf(t, 'mask', 0), [0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1]);
  // y: each voxel with the one above; row 0 has none.
  assert.deepEqual(channelOf(t, 'targets', 1), [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1]);
  assert.deepEqual(channelOf(t, 'mask', 1), [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
});

test('a positive offset compares with the next voxel: the mirror image of the negative one', () => {
  const t = affinityTargets(TOUCHING, TOUCHING_SHAPE, [[0, 0, 1]]);
  assert.deepEqual(channelOf(t, 'targets', 0), [1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0]);
  assert.deepEqual(channelOf(t, 'mask', 0), [1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0]);
});

test('anisotropic z offsets: [-1, 0, 0] and [-3, 0, 0] compare sections 1 and 3 apart, unknown where that section is outside', () => {
  // Four sections of 1 x 2: a neuron (5) throughout, whose right half is another neuron (6) in section 2 only.
  const ids = [5, 5, 5, 5, 5, 6, 5, 5];
  const t = affinityTargets(ids, [4, 1, 2], [[-1, 0, 0], [-3, 0, 0]]);
  assert.deepEqual(channelOf(t, 'targets', 0), [0, 0, 1, 1, 1, 0, 1, 0]);
  assert.deepEqual(channelOf(t, 'mask', 0), [0, 0, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(channelOf(t, 'targets', 1), [0, 0, 0, 0, 0, 0, 1, 1]);
  assert.deepEqual(channelOf(t, 'mask', 1), [0, 0, 0, 0, 0, 0, 1, 1]);
});

test('a long-range affinity looks at its two ends only: 1 across a third object between them', () => {
  // One column of 12 rows: neuron 7, then neuron 3 for six rows, neuron 7 again, then background.
  const ids = [7, 7, 7, 3, 3, 3, 3, 3, 3, 7, 7, 0];
  const t = affinityTargets(ids, [1, 12, 1], [[0, -9, 0]]);
  assert.deepEqual(channelOf(t, 'targets', 0), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0]);
  assert.deepEqual(channelOf(t, 'mask', 0), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
});

test('the ignore label makes every target that reads it unknown; background is a label unless it is the one ignored', () => {
  const ids = [1, 1, 9, 2, 0, 0];
  const x: Offset3[] = [[0, 0, -1]];
  const t = affinityTargets(ids, [1, 1, 6], x, { ignoreLabel: 9 });
  assert.deepEqual(channelOf(t, 'targets', 0), [0, 1, 0, 0, 0, 0]);
  assert.deepEqual(channelOf(t, 'mask', 0), [0, 1, 0, 0, 1, 1]);
  const none = affinityTargets(ids, [1, 1, 6], x);
  assert.deepEqual(channelOf(none, 'mask', 0), [0, 1, 1, 1, 1, 1], 'no ignore label unless asked: 9 is a neuron');
  const bg = affinityTargets(ids, [1, 1, 6], x, { ignoreLabel: 0 });
  assert.deepEqual(channelOf(bg, 'mask', 0), [0, 1, 1, 1, 0, 0]);
  const b = boundaryTargets(ids, [1, 1, 6], 'in-plane', { ignoreLabel: 9 });
  // 1 | 1 | 9 | 2 | 0 | 0 in one row (the rows above and below are outside): no neuron voxel has a known neighbour
  // of another id (9 is unknown, background is no boundary for its neighbour), so none is decided; background is.
  assert.deepEqual(channelOf(b, 'targets', 0), [0, 0, 0, 0, 1, 1]);
  assert.deepEqual(channelOf(b, 'mask', 0), [0, 0, 0, 0, 1, 1]);
});

test('sparse labels: an unlabelled section contributes nothing, to its own targets or to its neighbours\'', () => {
  // Three sections of 2 x 2, one neuron (4) throughout; section 1 is unlabelled.
  const ids = new Uint32Array(12).fill(4);
  const labelled = Uint8Array.from([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]);
  const t = labelTargets(ids, [3, 2, 2], [[-1, 0, 0], [0, 0, -1], { boundary: '3d' }], { labelled });
  assert.deepEqual(channelOf(t, 'mask', 0), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 'z: 1 vs 0 and 2 vs 1 both read section 1');
  assert.deepEqual(channelOf(t, 'mask', 1), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1]);
  assert.deepEqual(channelOf(t, 'targets', 1), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1]);
  assert.deepEqual(channelOf(t, 'mask', 2), new Array(12).fill(0), 'every voxel has an unknown z neighbour and no known other id');
  const bools = labelTargets(ids, [3, 2, 2], [[0, 0, -1]], { labelled: [...labelled].map((v) => v === 1) });
  assert.deepEqual(bools.mask, t.mask.subarray(12, 24), 'a boolean mask reads as the 0/1 one');
});

test('boundaries: background is boundary, both sides of a contact between neurons are, a neuron beside background is not', () => {
  const b = boundaryTargets(TOUCHING, TOUCHING_SHAPE, 'in-plane');
  assert.deepEqual(channelOf(b, 'targets', 0), [0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0]);
  // Edge voxels of a neuron whose neighbours inside agree are undecided; a contact or background decides.
  assert.deepEqual(channelOf(b, 'mask', 0), [0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0]);
  // The same neurons inside a ring of one more voxel of the same ids: every inner voxel is known.
  const padded = [
    1, 1, 1, 2, 2, 2,
    1, 1, 1, 2, 2, 2,
    1, 1, 1, 2, 2, 2,
    0, 0, 0, 2, 2, 2,
    0, 0, 0, 2, 2, 2,
  ];
  const p = boundaryTargets(padded, [1, 5, 6], 'in-plane');
  const inner = (ch: number[]) => [1, 2, 3].flatMap((y) => ch.slice(y * 6 + 1, y * 6 + 5));
  assert.deepEqual(inner(channelOf(p, 'targets', 0)), channelOf(b, 'targets', 0));
  assert.deepEqual(inner(channelOf(p, 'mask', 0)), new Array(12).fill(1));
});

test('boundaries in 3D look across sections too; in-plane ones do not', () => {
  // Two sections of 3 x 3, all neuron 1, but the centre of section 1 is neuron 2 (a contact along z only for the
  // centre of section 0). Labelled sections one voxel larger in-plane: only the centres are judged.
  const ids = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1];
  const centre0 = 4;
  const centre1 = 13;
  const three = boundaryTargets(ids, [2, 3, 3], '3d');
  const plane = boundaryTargets(ids, [2, 3, 3], 'in-plane');
  assert.equal(three.targets[centre0], 1, 'the z neighbour is another neuron');
  assert.equal(three.mask[centre0], 1);
  assert.equal(plane.targets[centre0], 0, 'in-plane neighbours all agree');
  assert.equal(plane.mask[centre0], 1);
  assert.equal(plane.targets[centre1], 1);
  assert.equal(three.targets[centre1], 1);
});

test('the boundary of ISBI 2012 labels turned into neuron ids is their membrane mask, known everywhere but at cells on the image edge', async () => {
  const { labels } = await loadDataset({ images: join(SAMPLES, 'images'), labels: join(SAMPLES, 'labels') });
  const { width: W, height: H, depth: D } = labels!;
  const ids = new Int32Array(W * H * D);
  for (let z = 0; z < D; z++) {
    const membrane = labels!.data.subarray(z * W * H, (z + 1) * W * H);
    ids.set(labelComponents4(membrane.map((m) => 1 - m), W, H).labels, z * W * H); // cells 1.., membrane 0
  }
  const b = boundaryTargets(ids, [D, H, W], 'in-plane');
  let known = 0;
  const wrong: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const x = i % W;
    const y = Math.floor(i / W) % H;
    const edge = x === 0 || y === 0 || x === W - 1 || y === H - 1;
    if (b.mask[i]) known++;
    if (b.mask[i] ? b.targets[i] !== labels!.data[i] : !(edge && labels!.data[i] === 0)) wrong.push(i);
  }
  assert.deepEqual(wrong.slice(0, 10), [], 'known voxels whose boundary is not the membrane mask, or unknown ones not cell voxels on the edge');
  assert.ok(known > ids.length - 2 * (W + H) * D, `only the edge is unknown (${ids.length - known} voxels)`);
  assert.ok(labels!.data.some((m) => m === 1) && labels!.data.some((m) => m === 0));
});

test('ids as BigUint64Array (up to 2^64 - 1, CREMI\'s ignore label), Uint32Array and number arrays give one answer', () => {
  const big = 2n ** 60n;
  const ignore = 2n ** 64n - 1n;
  // Ids beyond 2^53 that only differ in their last bits: as numbers they would be one id.
  const ids64 = BigUint64Array.from([big + 1n, big + 1n, big + 2n, ignore, 0n, big + 2n]);
  const small = [1, 1, 2, 9, 0, 2];
  const offsets: Offset3[] = [[0, 0, -1], [0, 0, -2]];
  const want = affinityTargets(small, [1, 1, 6], offsets, { ignoreLabel: 9 });
  const got = affinityTargets(ids64, [1, 1, 6], offsets, { ignoreLabel: ignore });
  assert.deepEqual(got.targets, want.targets);
  assert.deepEqual(got.mask, want.mask);
  const u32 = affinityTargets(Uint32Array.from([1, 1, 2, 0xffff_ffff, 0, 2]), [1, 1, 6], offsets, { ignoreLabel: 0xffff_ffff });
  assert.deepEqual(u32.targets, want.targets);
  assert.deepEqual(u32.mask, want.mask);
  const numberIgnore = affinityTargets(BigUint64Array.from([1n, 1n, 2n, 9n, 0n, 2n]), [1, 1, 6], offsets, { ignoreLabel: 9 });
  assert.deepEqual(numberIgnore.mask, want.mask, 'a number ignore label matches bigint ids');
});

/** A brute-force twin of the documented conventions: each voxel and channel on its own, coordinates checked. */
function bruteForce(ids: number[], shape: Shape3, channels: readonly TargetChannel[], options: { ignore?: number; labelled?: Uint8Array }): Targets {
  const [Z, Y, X] = shape;
  const n = Z * Y * X;
  const at = (z: number, y: number, x: number): number | 'unknown' => {
    if (z < 0 || y < 0 || x < 0 || z >= Z || y >= Y || x >= X) return 'unknown';
    const i = (z * Y + y) * X + x;
    return ids[i] === options.ignore || (options.labelled && !options.labelled[i]) ? 'unknown' : ids[i]!;
  };
  const targets = new Uint8Array(channels.length * n);
  const mask = new Uint8Array(channels.length * n);
  channels.forEach((ch, c) => {
    for (let z = 0; z < Z; z++) for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) {
      const i = c * n + (z * Y + y) * X + x;
      const a = at(z, y, x);
      if (a === 'unknown') continue;
      if (!Array.isArray(ch)) {
        const dirs = (ch as { boundary: string }).boundary === '3d' ? [[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]] : [[0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]];
        const around = dirs.map(([dz, dy, dx]) => at(z + dz!, y + dy!, x + dx!));
        const other = around.some((b) => b !== 'unknown' && b !== a && b !== 0);
        targets[i] = a === 0 || other ? 1 : 0;
        mask[i] = a === 0 || other || !around.includes('unknown') ? 1 : 0;
        continue;
      }
      const [dz, dy, dx] = ch as Offset3;
      const b = at(z + dz, y + dy, x + dx);
      if (b === 'unknown') continue;
      mask[i] = 1;
      targets[i] = a === b && a !== 0 ? 1 : 0;
    }
  });
  return { shape, channels: channels.length, targets, mask };
}

test('random patches agree with a brute-force twin for nearest, long-range and positive offsets and both boundaries', () => {
  const rng = new Rng(25);
  const shape: Shape3 = [5, 7, 6];
  const n = shape[0] * shape[1] * shape[2];
  const channels: TargetChannel[] = [...NEAREST_OFFSETS, [0, -3, 0], [-2, 0, -1], [4, 6, 5], [0, 0, 2], { boundary: 'in-plane' }, { boundary: '3d' }];
  for (let trial = 0; trial < 20; trial++) {
    // Few ids in runs (neighbours mostly agree, as in real labels), background, the ignore label 9, some unlabelled.
    const ids: number[] = [];
    while (ids.length < n) ids.push(...new Array(1 + rng.int(5)).fill([0, 1, 2, 3, 9][rng.int(5)]));
    ids.length = n;
    const labelled = trial % 2 ? Uint8Array.from({ length: n }, () => (rng.next() < 0.85 ? 1 : 0)) : undefined;
    const options: TargetOptions = { ignoreLabel: trial % 3 ? 9 : undefined, ...(labelled ? { labelled } : {}) };
    const got = labelTargets(ids, shape, channels, options);
    const want = bruteForce(ids, shape, channels, { ignore: options.ignoreLabel as number | undefined, labelled });
    assert.deepEqual(got.mask, want.mask, `trial ${trial}: masks`);
    assert.deepEqual(got.targets, want.targets, `trial ${trial}: targets`);
  }
});

test('class-balance weights: each class of a channel weighs N/2 within its mask, an absent class leaves the other at 1, unknown voxels 0', () => {
  const t = labelTargets(TOUCHING, TOUCHING_SHAPE, [[0, 0, -1], [0, -1, 0], [0, 0, -3]], { ignoreLabel: 0 });
  const w = classBalanceWeights(t);
  const n = 12;
  for (let c = 0; c < t.channels; c++) {
    let known = 0, pos = 0, neg = 0;
    for (let i = c * n; i < (c + 1) * n; i++) {
      if (!t.mask[i]) { assert.equal(w[i], 0); continue; }
      known++;
      if (t.targets[i]) pos += w[i]!;
      else neg += w[i]!;
    }
    const classes = channelClassWeights(t, c);
    if (classes.positive > 0 && classes.negative > 0) {
      assert.ok(Math.abs(pos - known / 2) < 1e-5 && Math.abs(neg - known / 2) < 1e-5, `channel ${c}: ${pos} + ${neg} for ${known} known`);
    } else {
      assert.ok(Math.abs(pos + neg - known) < 1e-5, `channel ${c}: one class present, weighing 1 per voxel`);
    }
  }
  // x, background ignored: known voxels 1,2,3,5,6,7,11 of which 1,3,5,7,11 positive: w+ = 7 / 10, w- = 7 / 4.
  assert.deepEqual(channelClassWeights(t, 0), { positive: 7 / 10, negative: 7 / 4 });
  // x at -3, background ignored: voxels 3 (2 vs 1) and 7 (2 vs 1) known, both negative: the present class weighs 1.
  assert.deepEqual(channelClassWeights(t, 2), { positive: 0, negative: 1 });
  const nothing = affinityTargets([9, 9, 9], [1, 1, 3], [[0, 0, -1]], { ignoreLabel: 9 });
  assert.deepEqual(channelClassWeights(nothing, 0), { positive: 0, negative: 0 });
  assert.deepEqual([...classBalanceWeights(nothing)], [0, 0, 0]);
});

test('the record of target channels: affinities at their offsets and a P(boundary) channel, read back by the map vocabulary', () => {
  const channels: TargetChannel[] = [{ boundary: 'in-plane' }, ...NEAREST_OFFSETS, [0, -9, 0], [-3, 0, 0]];
  const record = targetsRecord(channels);
  assert.deepEqual(record, {
    kind: 'maps', axis: 'c', channels: [
      { kind: 'membrane', polarity: 'membrane-high', name: 'boundary-in-plane' },
      { kind: 'affinity', offset: [-1, 0, 0] }, { kind: 'affinity', offset: [0, -1, 0] }, { kind: 'affinity', offset: [0, 0, -1] },
      { kind: 'affinity', offset: [0, -9, 0] }, { kind: 'affinity', offset: [-3, 0, 0] },
    ],
  });
  const read = parseMapRecord(JSON.parse(JSON.stringify({ emseg: record })), 'affs.zarr');
  assert.deepEqual(read, { channels: 'multi', meanings: targetMeanings(channels) });
  assert.throws(() => decideMapPolarity({ emseg: record }, 'affs.zarr'), refused('unsupported', 'affs.zarr'));
  assert.deepEqual(targetMeanings([{ boundary: '3d' }]), [{ kind: 'membrane', polarity: 'membrane-high', name: 'boundary-3d' }]);
});

test('input that cannot work is refused by code, naming the field', () => {
  const ids = [1, 1, 2, 2];
  const shape: Shape3 = [1, 2, 2];
  const x: Offset3[] = [[0, 0, -1]];
  assert.throws(() => affinityTargets(ids, [1, 2, 3], x), refused('mismatch', 'labels'));
  assert.throws(() => affinityTargets(ids, shape, x, { labelled: [1, 1, 1] }), refused('mismatch', 'labelled'));
  assert.throws(() => affinityTargets(ids, [2, 2] as unknown as Shape3, x), refused('invalid-option', 'shape'));
  assert.throws(() => affinityTargets(ids, [1, 0, 4], x), refused('invalid-option', 'shape'));
  assert.throws(() => affinityTargets(ids, shape, [[-1, 0, 0]]), refused('invalid-option', 'offsets[0]'), 'one section: no z offset fits');
  assert.throws(() => affinityTargets(ids, shape, [[0, 0, -1], [0, 2, 0]]), refused('invalid-option', 'offsets[1]'));
  assert.throws(() => affinityTargets(ids, shape, [[0, 0, 0]]), refused('invalid-option', 'offsets[0]'));
  assert.throws(() => affinityTargets(ids, shape, [[0, 0, 0.5]]), refused('invalid-option', 'offsets[0]'));
  assert.throws(() => affinityTargets(ids, shape, [[0, -1]] as unknown as Offset3[]), refused('invalid-option', 'offsets[0]'));
  assert.throws(() => affinityTargets(ids, shape, []), refused('invalid-option', 'offsets'));
  assert.throws(() => labelTargets(ids, shape, [{ boundary: '2d' }] as unknown as TargetChannel[]), refused('invalid-option', 'channels[0]'));
  assert.throws(() => boundaryTargets(ids, shape, 'xy' as unknown as '3d'), refused('invalid-option', 'neighbours'));
  const badIgnore: [NeuronIds, number | bigint][] = [
    [ids, -1], [ids, 1.5], [ids, 2 ** 53], [Uint8Array.from(ids), 256], [Uint16Array.from(ids), 65536], [Uint32Array.from(ids), 2 ** 32],
    [Int32Array.from(ids), 2 ** 31], [BigUint64Array.from([1n, 1n, 2n, 2n]), 2n ** 64n], [BigUint64Array.from([1n, 1n, 2n, 2n]), -1n],
  ];
  for (const [labels, ignoreLabel] of badIgnore) {
    assert.throws(() => affinityTargets(labels, shape, x, { ignoreLabel }), refused('invalid-option', 'ignoreLabel'), `${labels.constructor.name} ${ignoreLabel}`);
  }
  assert.throws(() => affinityTargets([1, 1.5, 2, 2], shape, x), refused('invalid-data', 'labels'));
  assert.throws(() => affinityTargets(Int32Array.from([1, -1, 2, 2]), shape, x), refused('invalid-data', 'labels'));
  assert.throws(() => affinityTargets([1, Number.NaN, 2, 2], shape, x), refused('invalid-data', 'labels'));
});
