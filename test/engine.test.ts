/**
 * The blockwise engine's own rules (src/pipeline/engine/): plans that never hold their blocks, tasks that wait for
 * their upstream tasks, the hand-over of ordered outputs, and the runner's refusals. The jobs built on it (predict,
 * segment, convert, the queue) have their own tests.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockAtGrid, eachBlock, planBlocks, shardBlocks, type Block, type BlockPlan } from '../src/pipeline/blocks.js';
import { memoryMarkers } from '../src/pipeline/engine/memory-markers.js';
import { runInOrder } from '../src/pipeline/engine/ordered.js';
import { runJob } from '../src/pipeline/engine/run.js';
import type { BlockTask, TaskJob } from '../src/pipeline/engine/task.js';
import { channel } from '../src/util/channel.js';
import { refused } from './helpers/errors.js';

test('a plan of a huge volume is made at once and holds no blocks: any block by index or grid position, shards by range', () => {
  const plan = planBlocks([100_000, 1_000_000, 1_000_000], [1, 64, 64]);
  assert.equal(plan.count, 100_000 * 15_625 * 15_625);
  const last = plan.at(plan.count - 1);
  assert.deepEqual([...last.grid], [99_999, 15_624, 15_624]);
  assert.deepEqual([...last.write.end], [100_000, 1_000_000, 1_000_000]);
  assert.deepEqual(blockAtGrid(plan, [5, 6, 7]), plan.at((5 * 15_625 + 6) * 15_625 + 7));
  assert.equal(blockAtGrid(plan, [0, 15_625, 0]), undefined);
  assert.throws(() => plan.at(plan.count), refused('mismatch'));
  const shard = shardBlocks(plan, { index: 3, count: 1_000_000 });
  assert.equal(shard.next().value!.index, Math.floor((3 * plan.count) / 1_000_000));
  const small = planBlocks([2, 10, 10], [1, 4, 4]);
  assert.deepEqual([...eachBlock(small)].map((b) => b.index), [...Array(18).keys()]);
});

/** A task that records what it computes, in memory; `fail` makes a block throw. */
function recordingTask(name: string, plan: BlockPlan, upstream: string[], log: string[], fail?: (b: Block) => boolean): BlockTask<number, number> {
  return {
    name, plan, markers: memoryMarkers(plan, name), upstream,
    read: async (b) => b.index,
    compute(b, i) {
      if (fail?.(b)) throw new Error(`block ${i} broke`);
      log.push(`${name}:${i}`);
      return i;
    },
    write: async () => [],
    prepare: async () => { log.push(`${name}:prepare`); },
    finish: async () => { log.push(`${name}:finish`); },
  };
}

function job(tasks: BlockTask[]): TaskJob {
  return { kind: 'segment', out: 'job', jobset: 'test', tasks, close: async () => {} };
}

test('runJob: a task starts after its upstream is complete (prepare, blocks, finish); a shard stops where the upstream is incomplete', async () => {
  const plan = planBlocks([1, 8, 8], [1, 4, 4]);
  const log: string[] = [];
  const done = await runJob(job([recordingTask('a', plan, [], log), recordingTask('b', plan, ['a'], log)]));
  assert.equal(done.complete, true);
  assert.deepEqual(log, ['a:prepare', 'a:0', 'a:1', 'a:2', 'a:3', 'a:finish', 'b:prepare', 'b:0', 'b:1', 'b:2', 'b:3', 'b:finish']);

  const shardLog: string[] = [];
  const tasks = [recordingTask('a', plan, [], shardLog), recordingTask('b', plan, ['a'], shardLog)];
  const first = await runJob(job(tasks), { shard: { index: 0, count: 2 } });
  assert.deepEqual([first.complete, first.waiting], [false, 'b'], 'b waits: half of a is not done');
  assert.deepEqual(shardLog, ['a:prepare', 'a:0', 'a:1']);
  await runJob(job(tasks), { shard: { index: 1, count: 2 } });
  assert.deepEqual(shardLog.slice(3), ['a:prepare', 'a:2', 'a:3', 'a:finish', 'b:prepare', 'b:2', 'b:3']);
});

test('runJob: a block that fails every attempt is recorded, the others run, and the downstream task does not start', async () => {
  const plan = planBlocks([1, 8, 8], [1, 4, 4]);
  const log: string[] = [];
  const r = await runJob(job([recordingTask('a', plan, [], log, (b) => b.index === 2), recordingTask('b', plan, ['a'], log)]), { attempts: 2 });
  assert.deepEqual([r.complete, r.waiting, r.failed.map((f) => [f.index, f.attempts])], [false, 'b', [[2, 2]]]);
  assert.deepEqual(log, ['a:prepare', 'a:0', 'a:1', 'a:3']);
});

test('runInOrder hands results to the writer in block order; a failing block or a failing writer stops both, with its error', async () => {
  const plan = planBlocks([5, 2, 2], [1, 2, 2]);
  const got: number[] = [];
  const all = await runInOrder(recordingTask('t', plan, [], []), async (items) => {
    for await (const i of items) got.push(i);
    return got.length;
  });
  assert.deepEqual([all, got], [5, [0, 1, 2, 3, 4]]);

  let cleaned = false;
  await assert.rejects(runInOrder(recordingTask('t', plan, [], [], (b) => b.index === 3), async (items) => {
    try {
      for await (const _ of items) { /* consumed */ }
    } finally {
      cleaned = true; // a writer removes its temporary output here
    }
  }), /block 3 broke/);
  assert.ok(cleaned, 'the writer saw the failure and cleaned up');

  const computed: string[] = [];
  await assert.rejects(runInOrder(recordingTask('t', plan, [], computed), async (items) => {
    for await (const i of items) if (i === 1) throw new Error('disk gone');
  }), /disk gone/);
  assert.ok(computed.length <= 3, `the run stopped soon after the writer did (computed ${computed.join(', ')})`);
});

test('a channel hands one item at a time: push resolves when the consumer asks for the next one', async () => {
  const c = channel<number>();
  const it = c[Symbol.asyncIterator]();
  let taken = false;
  const pushed = c.push(1).then(() => { taken = true; });
  assert.deepEqual(await it.next(), { value: 1, done: false });
  await Promise.resolve();
  assert.equal(taken, false, 'the consumer still holds item 1');
  const second = it.next();
  await pushed;
  assert.equal(taken, true);
  c.close();
  assert.deepEqual(await second, { value: undefined, done: true });
});
