/**
 * Compact containers for the region graph of a whole volume (the global agglomeration of a blockwise run holds one
 * for every fragment and edge of the volume): typed arrays instead of JS Maps and arrays of numbers, which cost 5-10
 * times the bytes per entry (a Map entry with a boxed key is about 60 bytes; one Map per fragment another 100 or so).
 */

/** Slots of a PairTable: free (never used) and deleted (skipped by lookups, reused by inserts). */
const FREE = -1;
const DELETED = -2;
/** The table grows when used + deleted slots pass this fraction of its capacity (linear probing stays short). */
const MAX_LOAD = 0.5;
const MIN_CAPACITY = 16;

const powerOfTwoAbove = (n: number): number => {
  let c = MIN_CAPACITY;
  while (c < n) c *= 2;
  return c;
};

/**
 * An open-addressing hash table from an unordered pair of ids (each below `width`) to an edge number: the pair's key
 * lo * width + hi in a Float64Array (exact below 2^53), the edge in an Int32Array; 24-48 bytes per pair.
 */
export class PairTable {
  private keys: Float64Array;
  private values: Int32Array;
  private used = 0;
  private deleted = 0;

  constructor(private readonly width: number, expected = 0) {
    const capacity = powerOfTwoAbove(expected / MAX_LOAD);
    this.keys = new Float64Array(capacity).fill(FREE);
    this.values = new Int32Array(capacity);
  }

  get size(): number { return this.used; }

  /** The slot of the pair's key, or of the free slot that ends its probe. */
  private find(key: number, lo: number, hi: number): number {
    const mask = this.keys.length - 1;
    let h = Math.imul(lo, 0x9e3779b1) ^ Math.imul(hi + 0x7f4a7c15, 0x85ebca77);
    h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
    let i = (h ^ (h >>> 16)) & mask;
    for (let k = this.keys[i]!; k !== FREE && k !== key; k = this.keys[i]!) i = (i + 1) & mask;
    return i;
  }

  /** The edge of the pair (x, y), or -1. */
  get(x: number, y: number): number {
    const lo = x < y ? x : y;
    const hi = x < y ? y : x;
    const key = lo * this.width + hi;
    const i = this.find(key, lo, hi);
    return this.keys[i] === key ? this.values[i]! : -1;
  }

  set(x: number, y: number, edge: number): void {
    const lo = x < y ? x : y;
    const hi = x < y ? y : x;
    const key = lo * this.width + hi;
    const i = this.find(key, lo, hi);
    if (this.keys[i] !== key) {
      if ((this.used + this.deleted + 1) > this.keys.length * MAX_LOAD) {
        this.rehash(this.used + 1);
        this.set(x, y, edge);
        return;
      }
      this.keys[i] = key;
      this.used++;
    }
    this.values[i] = edge;
  }

  delete(x: number, y: number): void {
    const lo = x < y ? x : y;
    const hi = x < y ? y : x;
    const key = lo * this.width + hi;
    const i = this.find(key, lo, hi);
    if (this.keys[i] !== key) return;
    this.keys[i] = DELETED;
    this.used--;
    this.deleted++;
  }

  /** Reinserts every pair into a table sized for `n` (deleted slots dropped). */
  private rehash(n: number): void {
    const [keys, values] = [this.keys, this.values];
    const capacity = powerOfTwoAbove((2 * n) / MAX_LOAD);
    this.keys = new Float64Array(capacity).fill(FREE);
    this.values = new Int32Array(capacity);
    this.deleted = 0;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (key < 0) continue;
      const lo = Math.floor(key / this.width);
      const j = this.find(key, lo, key - lo * this.width);
      this.keys[j] = key;
      this.values[j] = values[i]!;
    }
  }
}

/** A growable Int32Array or Float64Array (doubling), read through `view()`. */
export class GrowingArray<T extends Int32Array | Float64Array> {
  private data: T;
  length = 0;

  constructor(private readonly make: (n: number) => T, capacity = MIN_CAPACITY) {
    this.data = make(Math.max(MIN_CAPACITY, capacity));
  }

  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = this.make(2 * this.data.length);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }

  /** The array itself (index 0..length - 1 are its values); valid until the next push. */
  get items(): T { return this.data; }

  /** The values, a view without copying. */
  view(): T { return this.data.subarray(0, this.length) as T; }
}
