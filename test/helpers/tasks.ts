/**
 * A block task around one function, for tests of the engine's runner (src/pipeline/engine/run.ts): the function
 * does the block's whole work and returns its files; it is told which attempt of the block this is.
 */
import type { Block, BlockPlan } from '../../src/pipeline/blocks.js';
import type { BlockTask } from '../../src/pipeline/engine/task.js';
import type { MarkerStore } from '../../src/pipeline/markers.js';

export function workTask(plan: BlockPlan, markers: MarkerStore, work: (b: Block, attempt: number) => Promise<readonly string[]>): BlockTask<undefined, undefined> {
  const attempts = new Map<number, number>();
  return {
    name: 'work', plan, markers, upstream: [],
    read: async () => undefined,
    compute: () => undefined,
    write(b) {
      const attempt = (attempts.get(b.index) ?? 0) + 1;
      attempts.set(b.index, attempt);
      return work(b, attempt);
    },
  };
}
