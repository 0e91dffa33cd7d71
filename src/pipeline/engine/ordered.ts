/**
 * A task whose output is written in one piece, in order, by a writer that takes its input as an async iterable
 * (a multi-page TIFF, a folder of slices: io/write.ts): the engine's runner computes the blocks, and each block's
 * result is handed to the writer in block order, the write of one while the next is read. Such an output is not
 * resumable (the writer commits it whole at the end, or leaves nothing), so its markers live in memory, a block is
 * tried once, and one that fails stops the run: the writer then removes what it began.
 */
import { channel } from '../../util/channel.js';
import { eachBlock } from '../blocks.js';
import { runTask, type RunOptions } from './run.js';
import type { BlockTask } from './task.js';

/** Runs `task` (its own `write` is not used) into `writer`; the writer's result once it has committed. */
export async function runInOrder<In, Out, R>(task: BlockTask<In, Out>, writer: (items: AsyncIterable<Out>) => Promise<R>,
  options: Pick<RunOptions, 'progress'> = {}): Promise<R> {
  const items = channel<Out>();
  const writing = writer(items);
  writing.catch((err: unknown) => items.abort(err)); // a writer that stops refuses the blocks after
  const handed: BlockTask<In, Out> = {
    ...task,
    async write(_b, out) {
      await items.push(out);
      return [];
    },
  };
  try {
    // No block is read beyond the next: a section-sized block is large.
    await runTask(handed, eachBlock(task.plan), { ...options, attempts: 1, stopOnFailure: true, readAhead: 0 });
  } catch (err) {
    items.fail(err);
    // A writer that stopped first has the cause (the runner only saw its blocks refused); else the block's error.
    const stopped = await writing.then(() => undefined, (e: unknown) => ({ e }));
    throw stopped ? stopped.e : err;
  }
  items.close();
  return writing;
}
