/** A cache bounded by total size (bytes, or any cost), dropping the least recently used entries first. */
export class LruCache<V> {
  private readonly entries = new Map<string, { value: V; cost: number }>();
  private used = 0;

  constructor(readonly capacity: number) {}

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    // Map keeps insertion order: re-inserting marks the entry as the most recent.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  set(key: string, value: V, cost: number): void {
    const old = this.entries.get(key);
    if (old) {
      this.used -= old.cost;
      this.entries.delete(key);
    }
    if (cost > this.capacity) return; // would evict everything and still not fit
    this.entries.set(key, { value, cost });
    this.used += cost;
    for (const [k, e] of this.entries) {
      if (this.used <= this.capacity) break;
      this.entries.delete(k);
      this.used -= e.cost;
    }
  }

  /** Cached value, or the one `make` computes; concurrent misses for one key share a single computation. */
  async getOrCreate(key: string, make: () => Promise<{ value: V; cost: number }>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    let pending = this.pending.get(key);
    if (!pending) {
      pending = make().then(({ value, cost }) => {
        this.set(key, value, cost);
        return value;
      }).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private readonly pending = new Map<string, Promise<V>>();

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.used;
  }
}
