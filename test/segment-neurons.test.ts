// `emseg segment --method`: 3-D neurons from an affinity OME-Zarr (channel axis "c", offsets recorded) and from a
// membrane map stack (link), through the CLI, written as OME-Zarr labels and scored with the 3-D metrics.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { FileSystemStore } from '@zarrita/storage';
import * as zarr from 'zarrita';
import { buildProgram } from '../src/cli/main.js';
import { NEAREST_OFFSETS, boundaryTargets, type Shape3 } from '../src/image/affinities.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { openVolume } from '../src/io/registry.js';
import { evaluateVolumes } from '../src/pipeline/evaluate-3d.js';
import { runNeuronSegment } from '../src/pipeline/neurons.js';
import { tuneNeuronSegment } from '../src/pipeline/tune-neurons.js';
import type { TunedNeurons } from '../src/pipeline/tuned-neurons.js';
import { zooModel } from './helpers/volume-predict-fixture.js';
import { refused } from './helpers/errors.js';
import { LONG_RANGE_OFFSETS, noisyAffinities, voronoiNeurons, writeAffinityZarr } from './helpers/neurons.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-neurons-'));
const SHAPE: Shape3 = [12, 32, 32];
const GT = voronoiNeurons(SHAPE, 16, 5, 0.3);
const AFFS = join(TMP, 'affs.zarr');
writeAffinityZarr(AFFS, noisyAffinities(GT, SHAPE, LONG_RANGE_OFFSETS, 0.1, 2), SHAPE, LONG_RANGE_OFFSETS);
const GT_ZARR = join(TMP, 'gt.zarr');

/** Runs emseg in-process (its one result line goes to stdout, which the test runner shows as a note). */
async function runCli(args: string[]): Promise<void> {
  const program = buildProgram().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: () => {} });
  await program.parseAsync(['node', 'emseg', ...args]);
}

test('setup: the ground truth as an OME-Zarr labels image', async () => {
  const w = await createOmeZarr(GT_ZARR, { shape: SHAPE, dtype: 'uint32', chunks: SHAPE, kind: 'labels', levels: 1 });
  await w.writeRegion({ start: [0, 0, 0], end: SHAPE }, GT);
});

test('one channel of a multi-channel OME-Zarr reads as a volume; without a channel it is refused as before', async () => {
  const r = await openVolume(AFFS, { channel: 2 });
  assert.deepEqual(r.shape, SHAPE);
  const x = await r.readRegion({ start: [0, 0, 0], end: SHAPE });
  assert.deepEqual(x, noisyAffinities(GT, SHAPE, LONG_RANGE_OFFSETS, 0.1, 2).subarray(2 * GT.length, 3 * GT.length));
  await r.close();
  await assert.rejects(openVolume(AFFS), refused('unsupported'));
  await assert.rejects(openVolume(AFFS, { channel: 8 }), refused('invalid-option'));
  await assert.rejects(openVolume(GT_ZARR, { channel: 0 }), refused('invalid-option'));
});

for (const method of ['watershed-agglomerate', 'mutex'] as const) {
  test(`emseg segment --method ${method} writes the neurons of an affinity OME-Zarr (VOI <= 0.05 against the truth)`, async () => {
    const out = join(TMP, `${method}.zarr`);
    await runCli(['segment', '--pred', AFFS, '--method', method, '--out', out, '--quiet']);
    const scores = await evaluateVolumes({ seg: out, labels: GT_ZARR });
    assert.ok(scores.voi <= 0.05, `VOI ${scores.voi}`);
    const r = await openVolume(out);
    assert.equal(r.dtype, 'uint32');
    assert.equal((r.attributes.emseg as { neurons: { method: string } }).neurons.method, method);
    await r.close();
    // An existing output is kept unless --overwrite.
    await assert.rejects(runCli(['segment', '--pred', AFFS, '--method', method, '--out', out]), refused('exists'));
    await runCli(['segment', '--pred', AFFS, '--method', method, '--out', out, '--overwrite']);
  });
}

test('emseg segment --method link links the 2-D cells of a membrane map stack into neurons', async () => {
  // The membrane map: the in-plane boundary of the neurons, as P(membrane), recorded as such.
  const membrane = Float32Array.from(boundaryTargets(GT, SHAPE, 'in-plane').targets);
  const maps = join(TMP, 'maps.zarr');
  const w = await createOmeZarr(maps, { shape: SHAPE, dtype: 'float32', chunks: SHAPE, kind: 'membrane', polarity: 'membrane-high', levels: 1 });
  await w.writeRegion({ start: [0, 0, 0], end: SHAPE }, membrane);
  const out = join(TMP, 'linked.zarr');
  await runCli(['segment', '--pred', maps, '--method', 'link', '--out', out, '--quiet']);
  const scores = await evaluateVolumes({ seg: out, labels: GT_ZARR });
  // Membrane voxels are no cell's (label 0 is scored as singletons): VOI is that of thin 2-D cells, still far from a
  // per-section segmentation's (each neuron in 12 pieces: log2(12) = 3.6 bits of split).
  assert.ok(scores.voiSplit < 1.5, `VOI split ${scores.voiSplit}`);
  // Affinities given to link, membrane maps to the affinity methods: refused with codes.
  await assert.rejects(runNeuronSegment({ pred: maps, out: join(TMP, 'x.zarr'), method: 'mutex' }), refused('unsupported'));
  await assert.rejects(runNeuronSegment({ pred: AFFS, out: join(TMP, 'y.zarr'), method: 'link' }), refused('unsupported'));
});

test('bad requests are refused with codes: a method, flags it ignores, a stack output, a volume above the memory limit, missing offsets', async () => {
  const out = join(TMP, 'bad.zarr');
  await assert.rejects(runCli(['segment', '--pred', AFFS, '--method', 'mutex', '--out', out, '--shard', '0/2']), refused('invalid-option', '--shard'));
  await assert.rejects(runCli(['segment', '--pred', AFFS, '--merge-affinity', '0.5', '--out', out]), refused('invalid-option', '--merge-affinity'));
  await assert.rejects(runCli(['segment', '--pred', AFFS, '--method', 'mutex', '--out', join(TMP, 'n.tif')]), refused('invalid-option', '--out'));
  await assert.rejects(runNeuronSegment({ pred: AFFS, out, method: 'nope' as 'mutex' }), refused('invalid-option', '--method'));
  await assert.rejects(runNeuronSegment({ pred: AFFS, out, method: 'mutex', maxBytes: 1000 }), refused('too-large', undefined, /--method watershed-agglomerate --block/));
  // Too large in one piece, the method that runs blockwise says so; a block too large, a smaller block.
  await assert.rejects(runNeuronSegment({ pred: AFFS, out, method: 'watershed-agglomerate', maxBytes: 1000 }), refused('too-large', undefined, /block by block \(e\.g\. --block/));
  // Offsets without the nearest y channel: refused by the method, naming the offsets.
  const noY = join(TMP, 'no-y.zarr');
  const offsets = [NEAREST_OFFSETS[0]!, NEAREST_OFFSETS[2]!, [0, -3, 0] as const];
  writeAffinityZarr(noY, noisyAffinities(GT, SHAPE, offsets, 0, 1), SHAPE, offsets);
  await assert.rejects(runNeuronSegment({ pred: noY, out, method: 'watershed-agglomerate' }), refused('invalid-option', 'offsets'));
  // A record naming more channels than the array holds.
  const short = join(TMP, 'short.zarr');
  writeAffinityZarr(short, noisyAffinities(GT, SHAPE, LONG_RANGE_OFFSETS, 0, 1), SHAPE, LONG_RANGE_OFFSETS);
  const attrs = JSON.parse(await import('node:fs').then((f) => f.readFileSync(join(short, '.zattrs'), 'utf8'))) as { emseg: { channels: unknown[] } };
  attrs.emseg.channels.push({ kind: 'affinity', offset: [0, 0, -27] });
  writeFileSync(join(short, '.zattrs'), JSON.stringify(attrs));
  await assert.rejects(runNeuronSegment({ pred: short, out, method: 'mutex' }), refused('mismatch'));
});

test('emseg tune-segment --method grids the merge threshold on a labelled volume; rows best VOI first, each that of emseg segment', async () => {
  const rows = await tuneNeuronSegment({ pred: AFFS, labels: GT_ZARR, method: 'watershed-agglomerate', mergeAffinity: [0.05, 0.5, 0.95] });
  assert.equal(rows.length, 3);
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i]!.voi >= rows[i - 1]!.voi);
  const out = join(TMP, 'tuned.zarr');
  await runNeuronSegment({ pred: AFFS, out, method: 'watershed-agglomerate', mergeAffinity: 0.95 });
  const scored = await evaluateVolumes({ seg: out, labels: GT_ZARR });
  const row = rows.find((r) => r.options.mergeAffinity === 0.95)!;
  assert.equal(row.voi, scored.voi);
  assert.equal(row.arand, scored.arand);
  assert.deepEqual((await tuneNeuronSegment({ pred: AFFS, labels: GT_ZARR, method: 'mutex' })).length, 1);
  await runCli(['tune-segment', '--pred', AFFS, '--labels', GT_ZARR, '--method', 'watershed-agglomerate', '--merge-affinity', '0.3,0.6', '--quiet']);
  await assert.rejects(runCli(['tune-segment', '--pred', AFFS, '--labels', GT_ZARR, '--method', 'mutex', '--sigma', '1']), refused('invalid-option', '--sigma'));
  await assert.rejects(tuneNeuronSegment({ pred: AFFS, labels: GT_ZARR, method: 'watershed-agglomerate', mergeAffinity: [2] }), refused('invalid-option', '--merge-affinity'));
  await assert.rejects(tuneNeuronSegment({ pred: AFFS, labels: join(TMP, 'affs.zarr'), method: 'mutex' }), refused('unsupported'));
});

test('emseg segment --method watershed-agglomerate --block: block by block on the engine, the same neurons as the whole-volume run (VOI <= 0.01)', async () => {
  const whole = join(TMP, 'watershed-agglomerate.zarr');
  for (const block of ['4,16,16', '6,11,32']) {
    const out = join(TMP, `blocks-${block}.zarr`);
    await runCli(['segment', '--pred', AFFS, '--method', 'watershed-agglomerate', '--block', block, '--halo', '4', '--out', out, '--quiet']);
    const against = await evaluateVolumes({ seg: out, labels: whole });
    assert.ok(against.voi <= 0.01, `blocks ${block}: VOI against the whole-volume run ${against.voi}`);
    const r = await openVolume(out);
    assert.deepEqual(r.chunks, block.split(',').map(Number));
    assert.deepEqual((r.attributes.emseg as { neurons: { block: number[] } }).neurons.block, block.split(',').map(Number));
    await r.close();
  }
  await assert.rejects(runCli(['segment', '--pred', AFFS, '--method', 'mutex', '--block', '4,16,16', '--out', join(TMP, 'm.zarr')]), refused('invalid-option', '--block'));
  await assert.rejects(runNeuronSegment({ pred: AFFS, out: join(TMP, 'm.zarr'), method: 'watershed-agglomerate', block: [4, 16, 16], maxBytes: 1000 }), refused('too-large', undefined, /smaller --block/));
});

test('uint8 affinities (0..255) segment like their float32 originals, whole and block by block', async () => {
  const bytes = join(TMP, 'affs-u8.zarr');
  writeAffinityZarr(bytes, noisyAffinities(GT, SHAPE, LONG_RANGE_OFFSETS, 0.1, 2), SHAPE, LONG_RANGE_OFFSETS, 'uint8');
  for (const block of [undefined, [4, 16, 16] as const]) {
    const out = join(TMP, `u8-${block ? 'blocks' : 'whole'}.zarr`);
    await runNeuronSegment({ pred: bytes, out, method: 'watershed-agglomerate', block: block ? [...block] : undefined });
    const scores = await evaluateVolumes({ seg: out, labels: GT_ZARR });
    assert.ok(scores.voi <= 0.05, `${block ? 'blocks' : 'whole'}: VOI ${scores.voi}`);
  }
  const mutex = join(TMP, 'u8-mutex.zarr');
  await runNeuronSegment({ pred: bytes, out: mutex, method: 'mutex' });
  assert.ok((await evaluateVolumes({ seg: mutex, labels: GT_ZARR })).voi <= 0.05);
});

test('the model\'s tuned choice: tune-segment --model-dir records it in meta.json; segment --method (auto) on maps naming the model takes it, flags win, the notice says which from where', async () => {
  const model = zooModel(TMP, 'reference-net', 1, { note: 'kept' });
  await runCli(['tune-segment', '--pred', AFFS, '--labels', GT_ZARR, '--method', 'watershed-agglomerate', '--merge-affinity', '0.05,0.7', '--model-dir', model, '--quiet']);
  const meta = JSON.parse(readFileSync(join(model, 'meta.json'), 'utf8')) as Record<string, unknown> & { segment_neurons: TunedNeurons };
  const rows = await tuneNeuronSegment({ pred: AFFS, labels: GT_ZARR, method: 'watershed-agglomerate', mergeAffinity: [0.05, 0.7] });
  assert.equal(meta.note, 'kept', 'the other meta.json keys stay');
  assert.deepEqual([meta.segment_neurons.method, meta.segment_neurons.mergeAffinity, meta.segment_neurons.seedBoundary, meta.segment_neurons.scores!.voi],
    ['watershed-agglomerate', rows[0]!.options.mergeAffinity, rows[0]!.options.seedBoundary, rows[0]!.voi]);
  // The maps name the model (as emseg predict records it: relative to the maps).
  const named = join(TMP, 'named.zarr');
  cpSync(AFFS, named, { recursive: true });
  const attrs = JSON.parse(readFileSync(join(named, '.zattrs'), 'utf8')) as { emseg: Record<string, unknown> };
  attrs.emseg.models = [relative(named, model)];
  writeFileSync(join(named, '.zattrs'), JSON.stringify(attrs));
  const lines: string[] = [];
  const auto = await runNeuronSegment({ pred: named, out: join(TMP, 'auto.zarr'), method: 'auto', notice: (l) => lines.push(l) });
  assert.equal(auto.method, 'watershed-agglomerate');
  const r = await openVolume(join(TMP, 'auto.zarr'));
  assert.equal((r.attributes.emseg as { neurons: { mergeAffinity: number } }).neurons.mergeAffinity, rows[0]!.options.mergeAffinity);
  await r.close();
  assert.match(lines.join('\n'), /--method watershed-agglomerate \(the model's record\), --merge-affinity [\d.]+ \(the model's record\), --seed-boundary [\d.]+ \(the model's record\).*meta\.json "segment_neurons"/);
  lines.length = 0;
  await runNeuronSegment({ pred: named, out: join(TMP, 'flag.zarr'), method: 'watershed-agglomerate', mergeAffinity: 0.3, notice: (l) => lines.push(l) });
  assert.match(lines.join('\n'), /--method watershed-agglomerate \(flag\), --merge-affinity 0.3 \(flag\), --seed-boundary [\d.]+ \(the model's record\)/);
  // Maps naming no model: auto is refused, a method runs with its flags and defaults (as before); a damaged record is refused.
  await assert.rejects(runNeuronSegment({ pred: AFFS, out: join(TMP, 'none.zarr'), method: 'auto' }), refused('invalid-option', '--method'));
  writeFileSync(join(model, 'meta.json'), JSON.stringify({ segment_neurons: { method: 'watershed-agglomerate', mergeAffinity: 2 } }));
  await assert.rejects(runNeuronSegment({ pred: named, out: join(TMP, 'bad.zarr'), method: 'auto' }), refused('corrupt'));
  await assert.rejects(runCli(['tune-segment', '--pred', AFFS, '--labels', GT_ZARR, '--method', 'mutex', '--model-dir', TMP]), refused('not-found'));
});

test('--ids uint64: the same neurons as uint32, whole and block by block (pyramid too), a "<u8" array another Zarr reader (zarrita) reads; the type is recorded', async () => {
  for (const block of [undefined, [4, 16, 16] as [number, number, number]]) {
    const name = block ? 'blocks' : 'whole';
    const narrow = join(TMP, `ids32-${name}.zarr`);
    const wide = join(TMP, `ids64-${name}.zarr`);
    await runNeuronSegment({ pred: AFFS, out: narrow, method: 'watershed-agglomerate', block });
    await runNeuronSegment({ pred: AFFS, out: wide, method: 'watershed-agglomerate', block, ids: 'uint64' });
    const attrs = JSON.parse(readFileSync(join(wide, '.zattrs'), 'utf8')) as { multiscales: { datasets: { path: string }[] }[]; emseg: { neurons: { ids: string } } };
    assert.equal(attrs.emseg.neurons.ids, 'uint64');
    const levels = attrs.multiscales[0]!.datasets.map((d) => d.path);
    if (block) assert.ok(levels.length >= 2, 'blockwise labels have a pyramid');
    for (const level of levels) {
      assert.equal((JSON.parse(readFileSync(join(wide, level, '.zarray'), 'utf8')) as { dtype: string }).dtype, '<u8');
      const arr = await zarr.open.v2(zarr.root(new FileSystemStore(wide)).resolve(level), { kind: 'array' });
      assert.equal(arr.dtype, 'uint64');
      const got = (await zarr.get(arr)).data as BigUint64Array;
      const reader = await openVolume(narrow, { scale: Number(level) });
      const want = (await reader.readRegion({ start: [0, 0, 0], end: reader.shape })) as Uint32Array;
      await reader.close();
      assert.ok(got instanceof BigUint64Array && got.length === want.length);
      assert.ok(want.every((v, i) => BigInt(v) === got[i]), `level ${level}: the uint64 ids are the uint32 ids`);
    }
  }
  await assert.rejects(runNeuronSegment({ pred: AFFS, out: join(TMP, 'ids.zarr'), method: 'watershed-agglomerate', ids: 'int8' as 'uint64' }), refused('invalid-option', '--ids'));
});
