import { EmsegError } from '../errors.js';
import { neighbourSections } from '../image/mirror.js';
import type { Slice } from '../io/index.js';

/** A slice of a stack with the slices a model reading `radius` sections on each side sees with it. */
export interface SliceWithNeighbours {
  slice: Slice;
  /** neighbourSections(slice.index, depth, radius): the slice itself in the middle. */
  planes: Slice[];
}

/**
 * Streams a stack's slices with their neighbours, holding at most 2 radius + 1 decoded slices: mirrored
 * neighbours (neighbourSections) always lie within radius of the slice, so reading ahead by radius suffices.
 */
export async function* withNeighbours(slices: AsyncIterable<Slice>, depth: number, radius: number):
  AsyncGenerator<SliceWithNeighbours> {
  const held = new Map<number, Slice>();
  const source = slices[Symbol.asyncIterator]();
  let read = 0;
  for (let z = 0; z < depth; z++) {
    while (read <= Math.min(depth - 1, z + radius)) {
      const next = await source.next();
      if (next.done) throw new EmsegError('internal', 'stack', `ended after ${read} of ${depth} slices`);
      held.set(next.value.index, next.value);
      read++;
    }
    const planes = neighbourSections(z, depth, radius).map((i) => held.get(i)!);
    yield { slice: held.get(z)!, planes };
    held.delete(z - radius);
  }
}
