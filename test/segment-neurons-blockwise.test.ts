// `emseg segment --method watershed-agglomerate --block`: the blockwise neurons resumable and shardable (issue 26
// item 4): shards in separate processes, shards side by side with --wait, a run killed with SIGKILL mid-run and
// resumed all write the bytes of one uninterrupted run; the neurons do not depend on the block size (64^3 blocks
// against the whole volume in one piece).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { NEAREST_OFFSETS, type Shape3 } from '../src/image/affinities.js';
import { openVolume } from '../src/io/registry.js';
import { evaluateVolumes } from '../src/pipeline/evaluate-3d.js';
import { runNeuronSegment } from '../src/pipeline/neurons.js';
import { REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';
import { noisyAffinities, voronoiNeurons, writeAffinityZarr } from './helpers/neurons.js';
import { outputFiles } from './helpers/volumes.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const TMP = mkdtempSync(join(tmpdir(), 'emseg-neurons-blocks-'));
/** 48 x 96 x 96 voxels in blocks of 16 x 32 x 32: 27 blocks a task, a run of a few seconds (time to kill it mid-run). */
const SHAPE: Shape3 = [48, 96, 96];
const BLOCKS = 27;
const AFFS = join(TMP, 'affs.zarr');
writeAffinityZarr(AFFS, noisyAffinities(voronoiNeurons(SHAPE, 30, 3, 0.5), SHAPE, NEAREST_OFFSETS, 0.1, 2), SHAPE, NEAREST_OFFSETS);
const BLOCK: [number, number, number] = [16, 32, 32];
const FLAGS = ['--method', 'watershed-agglomerate', '--block', BLOCK.join(','), '--halo', '4', '--quiet'];
const POLL_MS = 20;
after(() => rmSync(TMP, { recursive: true, force: true }));
const WAIT_MS = 120_000;

/** Each output as `TMP/<name>/neurons.zarr`: the same name at the same depth (the image records both). */
const outOf = (name: string) => join(TMP, name, 'neurons.zarr');

function emseg(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

function assertSameBytes(out: string, reference: string): void {
  const a = outputFiles(out);
  const b = outputFiles(reference);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs from the uninterrupted run's`);
}

const doneMarkers = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.done.json')).length : 0);
const fragmentMarkers = (out: string) => doneMarkers(join(out, '.emseg', 'neurons', 'fragments', '.emseg', 'blocks'));

test('setup: one uninterrupted blockwise run (the reference)', () => {
  const r = emseg(['segment', '--pred', AFFS, '--out', outOf('single'), ...FLAGS, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const line = JSON.parse(r.stdout) as { complete: boolean; neurons: number; blocks: number };
  assert.deepEqual([line.complete, line.blocks], [true, BLOCKS]);
  assert.ok(line.neurons > 10, r.stdout);
  assert.ok(!existsSync(join(outOf('single'), '.emseg', 'neurons', 'fragments', 'labels')), 'the work array is removed once complete');
});

test('--shard i/2 in separate processes, each rerun until complete: the bytes of one run', () => {
  const out = outOf('shards');
  const lines: { complete: boolean; waiting?: string }[] = [];
  for (let round = 0; round < 3 && !lines.at(-1)?.complete; round++) {
    for (let i = 0; i < 2; i++) {
      const r = emseg(['segment', '--pred', AFFS, '--out', out, ...FLAGS, '--shard', `${i}/2`, '--json']);
      assert.equal(r.status, 0, r.stderr);
      lines.push(JSON.parse(r.stdout) as { complete: boolean; waiting?: string });
    }
  }
  assert.ok(lines.at(-1)!.complete, JSON.stringify(lines));
  assert.equal(lines[0]!.waiting, 'edges', 'the first shard cannot start the edges before the others made their fragments');
  assertSameBytes(out, outOf('single'));
});

test('emseg status of a blockwise neurons run: each task\'s blocks, then the agglomeration, then the relabel blocks', () => {
  const out = outOf('status');
  const first = emseg(['segment', '--pred', AFFS, '--out', out, ...FLAGS, '--shard', '0/2', '--json']);
  assert.equal(first.status, 0, first.stderr);
  // Half the fragment blocks done, nothing after them: the relabel markers alone would say "0 done".
  const half = emseg(['status', out]);
  assert.equal(half.status, 0, half.stderr);
  const [, made, left] = new RegExp(`^fragments: (\\d+)/${BLOCKS} done, 0 failed, (\\d+) remaining`, 'm').exec(half.stdout) ?? [];
  assert.ok(Number(made) > 0 && Number(made) < BLOCKS && Number(made) + Number(left) === BLOCKS, half.stdout);
  assert.match(half.stdout, /^agglomerate: waiting for the edges$/m);
  assert.match(half.stdout, new RegExp(`^blocks: +0/${BLOCKS} done`, 'm'));
  for (const shard of ['1/2', '0/2', '1/2', '0/2', '1/2']) assert.equal(emseg(['segment', '--pred', AFFS, '--out', out, ...FLAGS, '--shard', shard]).status, 0);
  const done = emseg(['status', out, '--json']);
  const s = JSON.parse(done.stdout) as { final: { done: number }; agglomerated: { neurons: number; fragments: number } };
  assert.equal(s.final.done, BLOCKS);
  const single = JSON.parse(emseg(['status', outOf('single'), '--json']).stdout) as { agglomerated: { neurons: number; fragments: number } };
  assert.ok(s.agglomerated.neurons > 10 && s.agglomerated.fragments > s.agglomerated.neurons, done.stdout);
  assert.deepEqual(s.agglomerated, single.agglomerated);
  assert.match(emseg(['status', out]).stdout, new RegExp(`^fragments: done\nedges: +done\nagglomerate: done \\(${s.agglomerated.fragments} fragments into ${s.agglomerated.neurons} neurons\\)`, 'm'));
});

test('three shards side by side with --wait write the bytes of one run', async () => {
  const out = outOf('waiting');
  const runs = [0, 1, 2].map((i) => runNeuronSegment({ pred: AFFS, out, method: 'watershed-agglomerate', block: BLOCK, halo: [4, 4, 4],
    shard: { index: i, count: 3 }, wait: true, pollMs: POLL_MS }));
  const results = await Promise.all(runs);
  // Each shard's last task is complete once the last of them has relabelled its blocks: that one (at least) says so.
  assert.ok(results.some((r) => r.blockwise?.complete), JSON.stringify(results.map((r) => r.blockwise?.complete)));
  assertSameBytes(out, outOf('single'));
});

test('SIGKILL mid-run, then the same command: done blocks are skipped and the output equals the uninterrupted run', async () => {
  const out = outOf('killed');
  const proc = spawn(process.execPath, [CLI, 'segment', '--pred', AFFS, '--out', out, ...FLAGS], { stdio: 'ignore' });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const deadline = Date.now() + WAIT_MS;
  while (fragmentMarkers(out) < 3 && proc.exitCode === null) {
    assert.ok(Date.now() < deadline, 'timed out waiting for the first blocks');
    await sleep(POLL_MS);
  }
  proc.kill('SIGKILL');
  await exited;
  assert.equal(proc.signalCode, 'SIGKILL', 'the run was killed before it finished');
  const killedAt = fragmentMarkers(out);
  assert.ok(killedAt >= 3 && killedAt < BLOCKS, `killed after ${killedAt} of ${BLOCKS} fragment blocks`);
  const r = emseg(['segment', '--pred', AFFS, '--out', out, ...FLAGS, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const line = JSON.parse(r.stdout) as { complete: boolean; fragments_pass: { skipped: number; computed: number } };
  assert.ok(line.complete);
  assert.ok(line.fragments_pass.skipped >= killedAt - 1, `skipped ${line.fragments_pass.skipped}, ${killedAt} markers were there`);
  assert.equal(line.fragments_pass.skipped + line.fragments_pass.computed, BLOCKS);
  assertSameBytes(out, outOf('single'));
  // Complete: a rerun computes nothing and leaves the bytes as they are; other parameters are refused.
  const again = JSON.parse(emseg(['segment', '--pred', AFFS, '--out', out, ...FLAGS, '--json']).stdout) as { relabel: { computed: number; skipped: number } };
  assert.deepEqual([again.relabel.computed, again.relabel.skipped], [0, BLOCKS]);
  assertSameBytes(out, outOf('single'));
  await assert.rejects(runNeuronSegment({ pred: AFFS, out, method: 'watershed-agglomerate', block: BLOCK, halo: [4, 4, 4], mergeAffinity: 0.3 }),
    refused('resume-mismatch'));
  // --restart with other parameters starts again: the output records the new ones, never the old.
  const restarted = await runNeuronSegment({ pred: AFFS, out, method: 'watershed-agglomerate', block: BLOCK, halo: [4, 4, 4], mergeAffinity: 0.3, restart: true });
  assert.ok(restarted.blockwise?.complete);
  const r2 = await openVolume(out);
  assert.equal((r2.attributes.emseg as { neurons: { mergeAffinity: number } }).neurons.mergeAffinity, 0.3);
  await r2.close();
});

test('bad blockwise requests are refused: --shard without --block, --shard with --overwrite', () => {
  const r = emseg(['segment', '--pred', AFFS, '--out', outOf('bad'), '--method', 'watershed-agglomerate', '--shard', '0/2']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--shard/);
  return assert.rejects(runNeuronSegment({ pred: AFFS, out: outOf('bad'), method: 'watershed-agglomerate', block: BLOCK, shard: { index: 0, count: 2 }, overwrite: true }),
    refused('invalid-option', '--overwrite'));
});

test('block-size independence: 64^3 blocks against the whole volume in one piece, VOI <= 0.01; the ids are uint32, recorded', async () => {
  // 80 x 128 x 128 voxels: 64^3 blocks cut it along every axis (2 x 2 x 2 blocks).
  const shape: Shape3 = [80, 128, 128];
  const affs = join(TMP, 'affs-64.zarr');
  writeAffinityZarr(affs, noisyAffinities(voronoiNeurons(shape, 50, 4, 0.5), shape, NEAREST_OFFSETS, 0.1, 5), shape, NEAREST_OFFSETS);
  const whole = outOf('whole');
  const blocks = outOf('blocks64');
  await runNeuronSegment({ pred: affs, out: whole, method: 'watershed-agglomerate' });
  await runNeuronSegment({ pred: affs, out: blocks, method: 'watershed-agglomerate', block: [64, 64, 64], halo: [8, 8, 8] });
  const against = await evaluateVolumes({ seg: blocks, labels: whole });
  assert.ok(against.voi <= 0.01, `VOI between 64^3 blocks and the whole volume: ${against.voi}`);
  const r = await openVolume(blocks);
  assert.equal(r.dtype, 'uint32');
  assert.equal((r.attributes.emseg as { neurons: { ids: string } }).neurons.ids, 'uint32');
  await r.close();
});
