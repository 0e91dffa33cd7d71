/**
 * Done markers held in memory, for a task whose output is built whole in a hidden folder and moved into place only
 * once complete (convert): nothing of a killed run survives to resume, so nothing needs to be recorded on disk.
 */
import type { Block, BlockPlan } from '../blocks.js';
import { blockFailure, type BlockFailure, type MarkerStore } from '../markers.js';

export function memoryMarkers(plan: BlockPlan, dir: string): MarkerStore {
  const done = new Set<number>();
  const failed = new Map<number, BlockFailure>();
  return {
    dir,
    run: '',
    isDone: async (b: Block) => done.has(b.index),
    async markDone(b) {
      done.add(b.index);
      failed.delete(b.index);
    },
    async markFailed(b, error, attempts) {
      done.delete(b.index);
      failed.set(b.index, blockFailure(b, error, attempts));
    },
    status: async () => ({ total: plan.count, done: done.size, failed: [...failed.values()], remaining: plan.count - done.size }),
  };
}
