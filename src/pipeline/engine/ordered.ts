/**
 * A task whose output is written in one piece, in order, by a writer that takes its input as an async iterable
 * (a multi-page TIFF, a folder of slices: io/write.ts): the engine's runner computes the blocks, and each block's
 * result is handed to the writer in block order, the write of one while the next is read. Such an output is not
 * resumable (the writer commits it whole at the end, or leaves nothing), so its markers live in memory, a block is
 * tried once, and one that fails stops the run: the writer then removes what it began.
 */
import { EmsegError } from '../../errors.js';
import { channel } from '../../util/channel.js';
import { eachBlock, type Block } from '../blocks.js';
import { runTask, type RunOptions } from './run.js';
import type { BlockTask } from './task.js';

/**
 * A task's `read` for blocks of whole sections taken from a stream of sections (the runner reads blocks in order,
 * one at a time): the next item, checked to be the block's section (`zOf`); `path` names the input in the error.
 */
export function sectionReader<T>(sections: AsyncIterator<T>, zOf: (item: T) => number, path: string): (b: Block) => Promise<T> {
  return async (b) => {
    const next = await sections.next();
    if (next.done || zOf(next.value) !== b.write.start[0]) throw new EmsegError('internal', path, `section ${b.write.start[0]} was not read in order`);
    return next.value;
  };
}

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
