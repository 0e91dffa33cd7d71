/**
 * Block plans, static shards and done markers, the machinery blockwise prediction runs on: write regions tile
 * the volume exactly once, read regions add the halo, shards partition the plan, markers survive a rerun and
 * never count a block whose chunks are gone, whose layout or model changed, or that failed. Three shards
 * writing into one OME-Zarr produce byte-identical chunk files to one run.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATUS_FAILED_EXIT } from '../src/cli/info.js';
import { EmsegError } from '../src/errors.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import type { OmeZarrWriter } from '../src/io/formats/ome-zarr-write.js';
import type { Vec3, VolumeReader } from '../src/io/formats/volume.js';
import { openVolume } from '../src/io/registry.js';
import { alignBlock, checkChunksFitBlocks, chooseBlock, eachBlock, inShard, parseShard, planBlocks, shardBlocks } from '../src/pipeline/blocks.js';
import type { Block, BlockPlan } from '../src/pipeline/blocks.js';
import { digest, openMarkers, volumeFingerprint } from '../src/pipeline/markers.js';
import { runTask } from '../src/pipeline/engine/run.js';
import { workTask } from './helpers/tasks.js';
import { REPO_ROOT, SAMPLES } from './helpers/data.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-volume-blocks-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

function fails(code: string, path?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof EmsegError, `expected an EmsegError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (path !== undefined) assert.equal(e.path, path, e.message);
    return true;
  };
}

test('write regions tile the volume exactly once; read regions are write + halo clipped, with the clipped part as pad', () => {
  const shape: Vec3 = [5, 70, 45];
  const plan = planBlocks(shape, [2, 32, 16], [1, 8, 8], [1, 16, 8]);
  assert.deepEqual([...plan.grid], [3, 3, 3]);
  const hits = new Uint8Array(5 * 70 * 45);
  for (const b of eachBlock(plan)) {
    for (let z = b.write.start[0]; z < b.write.end[0]; z++) {
      for (let y = b.write.start[1]; y < b.write.end[1]; y++) {
        for (let x = b.write.start[2]; x < b.write.end[2]; x++) hits[(z * 70 + y) * 45 + x]!++;
      }
    }
    for (let a = 0; a < 3; a++) {
      assert.equal(b.write.start[a]! % plan.block[a]!, 0, 'write starts on the block grid');
      const want = [b.write.start[a]! - plan.halo[a]!, b.write.end[a]! + plan.halo[a]!];
      assert.deepEqual([b.read.start[a]! - b.pad.before[a]!, b.read.end[a]! + b.pad.after[a]!], want, `block ${b.index} axis ${a}`);
      assert.ok(b.read.start[a]! >= 0 && b.read.end[a]! <= shape[a]!);
    }
  }
  assert.ok(hits.every((h) => h === 1), 'every voxel written by exactly one block');
  assert.equal(plan.at(0).pad.before[1], 8);
  assert.equal(plan.at(plan.count - 1).write.end[1], 70);
  assert.notEqual(plan.id, planBlocks(shape, [2, 32, 16], [1, 8, 0], [1, 16, 8]).id, 'the halo is part of the layout id');
  assert.throws(() => planBlocks(shape, [2, 30, 16], [0, 0, 0], [1, 16, 8]), fails('invalid-option', 'block'));
  assert.deepEqual([...alignBlock([2, 30, 16], [1, 16, 8])], [2, 16, 16]);
  checkChunksFitBlocks(plan, [1, 16, 16], 'out.zarr');
  assert.throws(() => checkChunksFitBlocks(plan, [2, 24, 16], 'out.zarr'), fails('mismatch', 'out.zarr'));
  const chosen = chooseBlock([100, 4000, 3000], 64 * 2 ** 20, [0, 46, 46], [1, 8, 8]);
  assert.ok(chosen.every((v, a) => v % [1, 8, 8][a]! === 0));
  assert.ok(chosen.reduce((n, v, a) => n * (v + 2 * [0, 46, 46][a]!), 1) <= 64 * 2 ** 20);
});

test('shards i/n partition the plan: every block in exactly one shard; bad --shard values are refused', () => {
  const plan = planBlocks([3, 100, 100], [1, 32, 32]);
  for (const n of [1, 3, 7, 64]) {
    const owners = [...eachBlock(plan)].map((b) => Array.from({ length: n }, (_, i) => inShard({ index: i, count: n }, plan.count)(b)).filter(Boolean).length);
    assert.ok(owners.every((o) => o === 1), `n=${n}`);
  }
  assert.deepEqual(parseShard('2/3'), { index: 2, count: 3 });
  for (const bad of ['3/3', '-1/3', '1/0', 'a/b', '1']) assert.throws(() => parseShard(bad), fails('invalid-option', '--shard'), bad);
});

/** The toy per-block computation: inverts the input, so outputs are checkable and deterministic. */
async function invertBlocks(src: VolumeReader, out: OmeZarrWriter, blocks: Iterable<Block>, markers: Awaited<ReturnType<typeof openMarkers>>): Promise<number> {
  let computed = 0;
  for (const b of blocks) {
    if (await markers.isDone(b)) continue;
    const data = await src.readRegion(b.write);
    await out.writeRegion(b.write, data.map((v) => 255 - v));
    await markers.markDone(b, out.chunkFiles(b.write));
    computed++;
  }
  return computed;
}

const identity = { model: digest('toy model v1'), input: '' };

async function setup(name: string, block: Vec3 = [1, 128, 128]): Promise<{ src: VolumeReader; out: OmeZarrWriter; plan: BlockPlan; dir: string }> {
  const src = await openVolume(join(SAMPLES, 'images'));
  const dir = join(TMP, name);
  const out = await createOmeZarr(dir, { shape: src.shape, dtype: 'uint8', chunks: block, levels: 1 }, { resume: true });
  return { src, out, plan: planBlocks(src.shape, block), dir };
}

test('a rerun recomputes only unfinished blocks; a missing or truncated chunk un-does its block; status counts done, failed, remaining', async () => {
  const { src, out, plan, dir } = await setup('resume.zarr');
  const id = { ...identity, input: volumeFingerprint(src) };
  let markers = await openMarkers(dir, plan, id);
  assert.equal(await invertBlocks(src, out, [...eachBlock(plan, 0, 13)], markers), 13); // the "killed" run got 13 of 32
  markers = await openMarkers(dir, plan, id);
  assert.equal(await invertBlocks(src, out, eachBlock(plan), markers), plan.count - 13, 'only unfinished blocks are recomputed');
  assert.equal(await invertBlocks(src, out, eachBlock(plan), markers), 0);

  const [victim, cut] = [plan.at(5), plan.at(6)];
  rmSync(out.chunkFiles(victim.write)[0]!);
  truncateSync(out.chunkFiles(cut.write)[0]!, 10);
  assert.equal(await markers.isDone(victim), false, 'a deleted chunk is not done');
  assert.equal(await markers.isDone(cut), false, 'a truncated chunk is not done');
  await markers.markFailed(victim, new EmsegError('corrupt', 'in.zarr/0/0/0/5', 'chunk cannot be decoded'), 3);
  const st = await markers.status();
  assert.deepEqual([st.total, st.done, st.remaining], [32, 30, 2]);
  assert.deepEqual(st.failed.map((f) => [f.index, f.code, f.attempts, [...f.grid]]), [[5, 'corrupt', 3, [...victim.grid]]]);
  const bin = join(REPO_ROOT, 'bin', 'emseg.js');
  // Blocks failed: the report is printed in full and the exit status says so.
  const status = (...a: string[]) => spawnSync('node', [bin, 'status', dir, ...a], { encoding: 'utf8' });
  const json = status('--json');
  assert.equal(json.status, STATUS_FAILED_EXIT, json.stderr);
  const cli = JSON.parse(json.stdout) as { done: number; remaining: number; failed: { grid: number[] }[] };
  assert.deepEqual([cli.done, cli.remaining, cli.failed.map((f) => f.grid)], [30, 2, [[...victim.grid]]]);
  const text = status();
  assert.equal(text.status, STATUS_FAILED_EXIT, text.stderr);
  assert.match(text.stdout, /30\/32 done .* 1 failed, 2 remaining[\s\S]*failed: +block 0,1,1 \(z 0-1, y 128-256, x 128-256\) after 3 attempt\(s\): \[corrupt\]/);
  assert.equal(await invertBlocks(src, out, eachBlock(plan), markers), 2);
  const after = await markers.status();
  assert.deepEqual([after.done, after.failed.length, after.remaining], [32, 0, 0]);
  const back = await (await openVolume(dir)).readRegion({ start: [0, 0, 0], end: src.shape });
  const want = (await src.readRegion({ start: [0, 0, 0], end: src.shape })).map((v) => 255 - v);
  assert.deepEqual(back, want);
});

test('markers refuse another layout, model or input unless restarted, and markDone refuses missing chunk files', async () => {
  const { src, out, plan, dir } = await setup('identity.zarr');
  await assert.rejects(createOmeZarr(dir, { shape: src.shape, dtype: 'uint8', chunks: [1, 64, 64], levels: 1 }, { resume: true }), fails('mismatch', join(dir, '0', '.zarray')));
  const id = { ...identity, input: volumeFingerprint(src) };
  const markers = await openMarkers(dir, plan, id);
  await invertBlocks(src, out, eachBlock(plan, 0, 4), markers);
  const runJson = join(dir, '.emseg', 'run.json');
  await assert.rejects(openMarkers(dir, planBlocks(src.shape, [1, 64, 64]), id), fails('resume-mismatch', runJson));
  await assert.rejects(openMarkers(dir, plan, { ...id, model: digest('toy model v2') }), fails('resume-mismatch', runJson));
  await assert.rejects(openMarkers(dir, plan, { ...id, input: digest('other input') }), fails('resume-mismatch', runJson));
  const fresh = await openMarkers(dir, plan, { ...id, model: digest('toy model v2') }, { restart: true });
  assert.equal((await fresh.status()).done, 0, 'restart clears every marker');
  assert.equal(await fresh.isDone(plan.at(0)), false);
  await assert.rejects(fresh.markDone(plan.at(9), [join(dir, '0', '0', '9', '9')]), fails('not-found'));
  assert.equal(await fresh.isDone(plan.at(9)), false);
});

test('three shards writing into one output give byte-identical chunks to a single run', async () => {
  const single = await setup('single.zarr', [1, 96, 160]);
  const id = { ...identity, input: volumeFingerprint(single.src) };
  await invertBlocks(single.src, single.out, eachBlock(single.plan), await openMarkers(single.dir, single.plan, id));
  const sharded = await setup('sharded.zarr', [1, 96, 160]);
  let total = 0;
  for (const i of [2, 0, 1]) {
    const shard = parseShard(`${i}/3`);
    const w = await createOmeZarr(sharded.dir, { shape: sharded.src.shape, dtype: 'uint8', chunks: [1, 96, 160], levels: 1 }, { resume: true });
    total += await invertBlocks(sharded.src, w, shardBlocks(sharded.plan, shard), await openMarkers(sharded.dir, sharded.plan, id));
  }
  assert.equal(total, single.plan.count);
  const files = (d: string) => readdirSync(join(d, '0'), { recursive: true }).map(String).filter((f) => statSync(join(d, '0', f)).isFile()).sort();
  assert.deepEqual(files(sharded.dir), files(single.dir));
  for (const f of files(single.dir)) assert.deepEqual(readFileSync(join(sharded.dir, '0', f)), readFileSync(join(single.dir, '0', f)), f);
  const st = await (await openMarkers(sharded.dir, sharded.plan, id)).status();
  assert.deepEqual([st.done, st.remaining], [single.plan.count, 0]);
});

test('the block runner retries a failing block, records it as failed with its coordinates after the last attempt, and never marks it done', async () => {
  const { src, out, plan, dir } = await setup('retry.zarr');
  const markers = await openMarkers(dir, plan, { ...identity, input: volumeFingerprint(src) });
  const tries = new Map<number, number>();
  const work = async (b: Block, attempt: number) => {
    tries.set(b.index, attempt);
    if (b.index === 3 && attempt < 3) throw new EmsegError('corrupt', 'in.zarr/0/0/0/3', 'flaky read');
    if (b.index === 7) throw new EmsegError('corrupt', 'in.zarr/0/0/1/3', 'chunk cannot be decoded');
    const data = await src.readRegion(b.write);
    await out.writeRegion(b.write, data.map((v) => 255 - v));
    return out.chunkFiles(b.write);
  };
  const first = await runTask(workTask(plan, markers, work), eachBlock(plan), { attempts: 3 });
  assert.deepEqual([first.computed, first.skipped, first.failed.map((f) => [f.index, f.code, f.attempts])], [31, 0, [[7, 'corrupt', 3]]]);
  assert.equal(tries.get(3), 3, 'block 3 succeeded on its third attempt');
  assert.equal(await markers.isDone(plan.at(7)), false);
  const st = await markers.status();
  assert.deepEqual([st.done, st.remaining, st.failed.map((f) => [...f.grid])], [31, 1, [[...plan.at(7).grid]]]);
  const again = await runTask(workTask(plan, markers, work), eachBlock(plan), { attempts: 1 });
  assert.deepEqual([again.computed, again.skipped, again.failed.length], [0, 31, 1], 'a rerun tries only the failed block');
});

test('a run killed with SIGKILL and rerun recomputes exactly the blocks that had no done marker', async () => {
  const dir = join(TMP, 'killed.zarr');
  const worker = join(REPO_ROOT, 'dist', 'test', 'helpers', 'block-worker.js');
  const child = spawn('node', [worker, dir, '15'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lines = 0;
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      lines += chunk.toString().split('\n').filter((l) => l.startsWith('block ')).length;
      if (lines >= 20 && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', () => resolve());
  });
  assert.equal(child.signalCode, 'SIGKILL', 'the worker was killed mid-run');
  const src = await openVolume(join(SAMPLES, 'images'));
  const plan = planBlocks(src.shape, [1, 64, 64]);
  const markers = await openMarkers(dir, plan, { model: digest('invert'), input: volumeFingerprint(src) });
  const before = (await markers.status()).done;
  assert.ok(before >= 20 && before < plan.count, `${before} blocks done when killed`);
  const rerun = execFileSync('node', [worker, dir], { encoding: 'utf8' });
  assert.match(rerun, new RegExp(`computed ${plan.count - before} skipped ${before} failed 0`));
  const back = await (await openVolume(dir)).readRegion({ start: [0, 0, 0], end: src.shape });
  assert.deepEqual(back, (await src.readRegion({ start: [0, 0, 0], end: src.shape })).map((v) => 255 - v));
});
