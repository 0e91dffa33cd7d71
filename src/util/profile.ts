/**
 * Where time goes: milliseconds and call counts per named step, summed. Steps may nest (a network's ops inside the
 * step that runs the network); the report says which are parts of which, the profile only sums.
 */
export interface ProfileEntry {
  name: string;
  ms: number;
  calls: number;
}

export class Profile {
  private readonly steps = new Map<string, ProfileEntry>();

  add(name: string, ms: number): void {
    const e = this.steps.get(name);
    if (e) {
      e.ms += ms;
      e.calls++;
    } else {
      this.steps.set(name, { name, ms, calls: 1 });
    }
  }

  /** Runs `fn`, adding its wall time to `name` (also when it throws). */
  time<T>(name: string, fn: () => T): T {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.add(name, performance.now() - t0);
    }
  }

  /** Entries whose names start with `prefix`, slowest first. */
  entries(prefix = ''): ProfileEntry[] {
    return [...this.steps.values()].filter((e) => e.name.startsWith(prefix)).sort((a, b) => b.ms - a.ms);
  }

  total(prefix = ''): number {
    return this.entries(prefix).reduce((s, e) => s + e.ms, 0);
  }
}
