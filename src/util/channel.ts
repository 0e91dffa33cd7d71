/**
 * A one-item hand-over between a producer that pushes and a consumer that pulls (an async iterable), for writers
 * that take their input as an async generator (the stack writers of io/) fed by a block runner that pushes its
 * results one by one. `push` resolves once the consumer has finished with the item (it asked for the next one, or
 * stopped), so the producer's "written" means written; `fail` ends the consumer with an error; when the consumer
 * stops early (an error of its own), pending and later pushes reject with `abort`'s error. Hand-written because a
 * stream library's buffering would hold items the consumer has not asked for, and memory is bounded by one item. A
 * consumer that stops early refuses the item it holds and every later push.
 */
export interface Channel<T> extends AsyncIterable<T> {
  push(item: T): Promise<void>;
  /** No more items: the consumer's loop ends. */
  close(): void;
  /** The consumer's loop throws `error`. */
  fail(error: unknown): void;
  /** The consumer is gone: pushes reject with `error`. */
  abort(error: unknown): void;
}

interface Waiter<T> {
  resolve: (r: IteratorResult<T>) => void;
  reject: (e: unknown) => void;
}

export function channel<T>(): Channel<T> {
  let offered: { item: T; taken: () => void; refused: (e: unknown) => void } | undefined;
  let waiting: Waiter<T> | undefined;
  // The push whose item the consumer holds: done when it asks for the next, refused if it fails with the item.
  let handed: { taken: () => void; refused: (e: unknown) => void } | undefined;
  let ended: { error?: unknown } | undefined;
  let aborted: { error: unknown } | undefined;

  const settleHanded = () => {
    handed?.taken();
    handed = undefined;
  };
  const deliver = () => {
    if (!waiting) return;
    const w = waiting;
    if (offered) {
      waiting = undefined;
      const o = offered;
      offered = undefined;
      handed = { taken: o.taken, refused: o.refused };
      w.resolve({ value: o.item, done: false });
    } else if (ended) {
      waiting = undefined;
      if ('error' in ended) w.reject(ended.error);
      else w.resolve({ value: undefined, done: true });
    }
  };
  return {
    push(item) {
      if (aborted) return Promise.reject(aborted.error);
      return new Promise<void>((taken, refused) => {
        offered = { item, taken, refused };
        deliver();
      });
    },
    close() {
      ended ??= {};
      deliver();
    },
    fail(error) {
      ended ??= { error };
      deliver();
    },
    abort(error) {
      aborted = { error };
      handed?.refused(error);
      handed = undefined;
      offered?.refused(error);
      offered = undefined;
    },
    [Symbol.asyncIterator]() {
      return {
        next() {
          settleHanded();
          return new Promise<IteratorResult<T>>((resolve, reject) => {
            waiting = { resolve, reject };
            deliver();
          });
        },
        async return() {
          // The consumer stopped with an item in hand (an error of its own, or it broke off): that item is not
          // known to be done, and nothing after it will be taken.
          const stopped = new Error('the consumer stopped');
          aborted ??= { error: stopped };
          handed?.refused(aborted.error);
          handed = undefined;
          offered?.refused(aborted.error);
          offered = undefined;
          return { value: undefined, done: true };
        },
      };
    },
  };
}
