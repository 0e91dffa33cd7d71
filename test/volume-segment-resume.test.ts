/**
 * Blockwise segmentation that can be trusted across faults and machines: a run SIGKILLed in pass 1 or in pass 3,
 * rerun with the same command, computes only the unfinished blocks and ends with the output of an uninterrupted
 * run; three shards (run twice, as two SLURM arrays; or started together, waiting for each other) write byte for byte
 * the output of one run; a corrupt maps
 * chunk fails its blocks (coordinates, never done, non-zero exit) and a rerun after the repair computes only those;
 * a changed run is refused unless --restart; `emseg status` reports the passes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EmsegError } from '../src/errors.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { readRunStatus } from '../src/pipeline/markers.js';
import { readSegmentStatus, runVolumeSegment, type VolumeSegmentJob } from '../src/pipeline/volume-segment.js';
import { DEFAULT_SEGMENT_OPTIONS } from '../src/segment/index.js';
import { REPO_ROOT } from './helpers/data.js';
import { writeMaps } from './helpers/segment-maps.js';
import { tempDir } from './helpers/volume-predict-fixture.js';
import { outputFiles } from './helpers/volumes.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const SHAPE: Vec3 = [4, 512, 512];
const BLOCK: Vec3 = [1, 64, 64];
const HALO = 32;
const TOTAL = 4 * 8 * 8;
const POLL_MS = 10;
/** Done markers to wait for before the kill: some blocks finished, most not. */
const KILL_AFTER = 4;

async function fixture(): Promise<{ dir: string; maps: string }> {
  const dir = tempDir('vseg-resume');
  const maps = join(dir, 'maps.zarr');
  await writeMaps(maps, SHAPE, [1, 128, 128]);
  return { dir, maps };
}

const args = (maps: string, out: string, ...more: string[]) =>
  ['segment', '--pred', maps, '--out', out, '--block', BLOCK.join(','), '--halo', String(HALO), '--quiet', ...more];

const markers = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.done.json')).length : 0);
const pass1Markers = (out: string) => markers(join(out, '.emseg', 'segment', '.emseg', 'blocks'));
const pass3Markers = (out: string) => markers(join(out, '.emseg', 'blocks'));

function assertSameFiles(a: string, b: string): void {
  const fa = outputFiles(a);
  const fb = outputFiles(b);
  assert.deepEqual([...fa.keys()].sort(), [...fb.keys()].sort());
  assert.ok(fa.size > 4, 'the outputs hold chunk files');
  for (const [k, v] of fa) assert.ok(v.equals(fb.get(k)!), `${k} differs`);
}

interface Counts { computed: number; skipped: number; failed: number }

function counts(stdout: string, pass: 'segment' | 'relabel'): Counts {
  const m = new RegExp(`${pass}: computed (\\d+) skipped (\\d+) failed (\\d+)`).exec(stdout);
  assert.ok(m, `no ${pass} summary in: ${stdout}`);
  return { computed: Number(m[1]), skipped: Number(m[2]), failed: Number(m[3]) };
}

/** Starts the command, SIGKILLs it once `count()` reaches KILL_AFTER; returns the count at the kill. */
async function killWhen(argv: string[], count: () => number): Promise<number> {
  const child = spawn(process.execPath, [CLI, ...argv], { stdio: 'ignore' });
  const exited = new Promise((res) => child.on('exit', res));
  while (count() < KILL_AFTER && child.exitCode === null) await sleep(POLL_MS);
  child.kill('SIGKILL');
  await exited;
  return count();
}

test('SIGKILLed in pass 1 and again in pass 3, reruns compute only the unfinished blocks and give an uninterrupted run\'s output', async () => {
  const f = await fixture();
  // As deep below the maps as the clean run's output below: both record the maps as ../../maps.zarr.
  const out = join(f.dir, 'run', 'cells.zarr');
  const before = await killWhen(args(f.maps, out), () => pass1Markers(out));
  assert.ok(before >= KILL_AFTER && before < TOTAL, `killed in pass 1 with ${before} of ${TOTAL} blocks segmented`);
  assert.equal(pass3Markers(out), 0);
  const shown = spawnSync(process.execPath, [CLI, 'status', out], { encoding: 'utf8' });
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`pass 1 \\(segment blocks\\) ${before}/${TOTAL} done, 0 failed, ${TOTAL - before} remaining`));
  assert.match(shown.stdout, /stitch: +waiting for pass 1/);

  // Second interruption: pass 1 finishes, then the kill lands in pass 3.
  const relabelled = await killWhen(args(f.maps, out), () => pass3Markers(out));
  assert.equal(pass1Markers(out), TOTAL, 'pass 1 finished before pass 3 began');
  assert.ok(relabelled >= KILL_AFTER && relabelled < TOTAL, `killed in pass 3 with ${relabelled} of ${TOTAL} blocks relabelled`);

  // A chunk temporary as a SIGKILL mid-write leaves it (its writer's pid gone), where the rerun writes again.
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
  const stray = join(out, '0', '3', '7', `.7.${deadPid}.0123abcd.tmp`);
  mkdirSync(join(out, '0', '3', '7'), { recursive: true });
  writeFileSync(stray, 'half a chunk');
  const rerun = spawnSync(process.execPath, [CLI, ...args(f.maps, out)], { encoding: 'utf8' });
  assert.equal(rerun.status, 0, rerun.stderr);
  assert.ok(!existsSync(stray), 'the stale chunk temporary is swept');
  assert.deepEqual(counts(rerun.stdout, 'segment'), { computed: 0, skipped: TOTAL, failed: 0 });
  assert.match(rerun.stdout, /stitch: found/);
  assert.deepEqual(counts(rerun.stdout, 'relabel'), { computed: TOTAL - relabelled, skipped: relabelled, failed: 0 });
  const status = await readRunStatus(out);
  assert.deepEqual([status.done, status.remaining, status.failed.length], [TOTAL, 0, 0]);
  assert.ok(!existsSync(join(out, '.emseg', 'segment', 'labels')), 'the provisional labels are removed once complete');

  const clean = join(f.dir, 'clean', 'cells.zarr');
  const once = spawnSync(process.execPath, [CLI, ...args(f.maps, clean)], { encoding: 'utf8' });
  assert.equal(once.status, 0, once.stderr);
  assert.deepEqual(counts(once.stdout, 'segment'), { computed: TOTAL, skipped: 0, failed: 0 });
  assertSameFiles(out, clean);
  // A rerun of a complete output computes nothing.
  const again = spawnSync(process.execPath, [CLI, ...args(f.maps, out)], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual([counts(again.stdout, 'segment').computed, counts(again.stdout, 'relabel').computed], [0, 0]);
  assertSameFiles(out, clean);
});

test('three shards, each run twice (segment, then relabel) or started together with wait, write byte for byte the output of one run', async () => {
  const f = await fixture();
  const job: VolumeSegmentJob = { pred: f.maps, out: join(f.dir, 'one', 'cells.zarr'), options: { ...DEFAULT_SEGMENT_OPTIONS }, block: BLOCK, halo: HALO };
  const one = await runVolumeSegment(job);
  assert.ok(one.complete && one.stitch === 'computed');
  const out = join(f.dir, 'sharded', 'cells.zarr');
  const shard = (index: number) => runVolumeSegment({ ...job, out, shard: { index, count: 3 } });
  const first = [await shard(0), await shard(1), await shard(2)];
  assert.deepEqual(first.map((r) => r.stitch), ['waiting', 'waiting', 'computed'], 'the shard that completes pass 1 stitches');
  assert.deepEqual(first.map((r) => r.complete), [false, false, false]);
  assert.equal(first.reduce((n, r) => n + r.segmented.computed, 0), TOTAL, 'every block segmented exactly once');
  assert.ok(first.every((r) => r.segmented.computed > 0 && r.segmented.skipped === 0));
  assert.deepEqual(first.map((r) => r.relabelled.computed), [0, 0, first[2]!.segmented.computed]);
  const second = [await shard(0), await shard(1)];
  assert.deepEqual(second.map((r) => [r.segmented.computed, r.stitch, r.complete]), [[0, 'found', false], [0, 'found', true]]);
  assert.equal(second[0]!.relabelled.computed + second[1]!.relabelled.computed + first[2]!.relabelled.computed, TOTAL);
  assert.equal(second[1]!.cells, one.cells);
  assertSameFiles(job.out, out);
  const status = await readSegmentStatus(out);
  assert.ok(status && status.final.done === TOTAL && status.segment === undefined && status.cells === one.cells);

  // Shards started together with `wait`: each waits for the others' pass 1, then stitches (several may, writing
  // the same bytes) and relabels its blocks; together, again one run's output.
  const together = join(f.dir, 'together', 'cells.zarr');
  const waited = await Promise.all([0, 1, 2].map((index) => runVolumeSegment({ ...job, out: together, shard: { index, count: 3 }, wait: true, pollMs: 20 })));
  assert.ok(waited.every((r) => r.stitch !== 'waiting') && waited.some((r) => r.complete), JSON.stringify(waited.map((r) => [r.stitch, r.complete])));
  assert.equal(waited.reduce((n, r) => n + r.segmented.computed, 0), TOTAL);
  assert.equal(waited.reduce((n, r) => n + r.relabelled.computed, 0), TOTAL);
  assertSameFiles(job.out, together);

  // A changed run (another --sigma) is refused, naming the run record; --restart starts it again.
  const changed = { ...job, options: { ...DEFAULT_SEGMENT_OPTIONS, sigma: DEFAULT_SEGMENT_OPTIONS.sigma + 1 } };
  await assert.rejects(runVolumeSegment(changed), (e) => e instanceof EmsegError && e.code === 'resume-mismatch' && e.path === join(job.out, '.emseg', 'run.json'));
  const restarted = await runVolumeSegment({ ...changed, restart: true });
  assert.ok(restarted.complete && restarted.segmented.computed === TOTAL);
  await assert.rejects(runVolumeSegment({ ...job, out, shard: { index: 0, count: 3 }, overwrite: true }),
    (e) => e instanceof EmsegError && e.code === 'invalid-option' && e.path === '--overwrite');
});

test('a corrupt maps chunk fails its blocks with coordinates (never done, non-zero exit); after the repair only those run', async () => {
  const f = await fixture();
  const chunk = join(f.maps, '0', '1', '1', '0');
  const good = join(f.dir, 'chunk.bak');
  cpSync(chunk, good);
  writeFileSync(chunk, 'this is not a zlib chunk');
  const out = join(f.dir, 'cells.zarr');
  const run = spawnSync(process.execPath, [CLI, ...args(f.maps, out)], { encoding: 'utf8' });
  assert.notEqual(run.status, 0);
  const c = counts(run.stdout, 'segment');
  assert.ok(c.failed >= 1 && c.computed + c.failed === TOTAL, run.stdout);
  assert.match(run.stdout, /stitch: waiting/);
  assert.match(run.stderr, /block \[1,\d+,\d+\] voxels \[1,\d+,\d+\]\.\.\[2,\d+,\d+\] failed after 3 attempts: .*maps\.zarr\/0\/1\/1\/0/);
  const status = await readSegmentStatus(out);
  assert.ok(status?.segment);
  assert.equal(status.segment.failed.length, c.failed);
  assert.ok(status.segment.failed.every((b) => b.grid[0] === 1 && b.attempts === 3 && b.code === 'corrupt'));
  assert.equal(status.segment.done, c.computed);
  assert.equal(status.final.done, 0, 'nothing is relabelled while a block is missing');
  const shown = spawnSync(process.execPath, [CLI, 'status', out], { encoding: 'utf8' });
  assert.match(shown.stdout, new RegExp(`${c.computed}/${TOTAL} done, ${c.failed} failed`));
  assert.match(shown.stdout, /failed: +pass 1 block 1,/);
  cpSync(good, chunk);
  const again = spawnSync(process.execPath, [CLI, ...args(f.maps, out)], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(counts(again.stdout, 'segment'), { computed: c.failed, skipped: c.computed, failed: 0 });
  assert.deepEqual(counts(again.stdout, 'relabel'), { computed: TOTAL, skipped: 0, failed: 0 });
});
