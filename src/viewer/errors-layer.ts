/**
 * The split/merger marks as a layer: per section, the warping error's split and merger pixels between the
 * ground-truth labels and a membrane map (as `emseg eval` locates them), computed when first asked for and cached.
 */
import { labelsToMask, type LabelPolarity } from '../io/index.js';
import type { SampleType } from '../image/stack.js';
import { warpingErrorLocations } from '../metrics/index.js';
import { LruCache } from './lru.js';
import type { ErrorMarks } from './protocol.js';
import { cutTile, halve, type Plane, type VolumeShape, type VolumeSource } from './source.js';

/** Positions of each kind listed in /api/errors (the counts are always whole). */
export const MAX_MARKS_LISTED = 2000;
/** Marks are single pixels; they are drawn as squares this many pixels out from the centre so that they can be seen. */
export const MARK_RADIUS = 2;
/** Mask values. */
export const SPLIT = 1;
export const MERGER = 2;
const ERROR_CACHE_BYTES = 256 * 1024 * 1024;

/** Turns a map section into P(non-membrane), the metrics' convention. */
export type ToProposal = (plane: Plane, source: string) => Float32Array;

export class ErrorSource implements VolumeSource {
  readonly dtype: SampleType = 'uint8';
  private readonly cache = new LruCache<Plane>(ERROR_CACHE_BYTES);
  private readonly marks = new Map<number, ErrorMarks>();

  constructor(
    private readonly labels: VolumeSource,
    private readonly map: VolumeSource,
    private readonly polarity: LabelPolarity,
    private readonly toProposal: ToProposal,
    readonly threshold: number,
  ) {}

  get shape(): VolumeShape {
    return this.labels.shape;
  }

  sourceName(z: number): string {
    return this.labels.sourceName(z);
  }

  async errorMarks(z: number): Promise<ErrorMarks> {
    await this.section(z);
    return this.marks.get(z)!;
  }

  section(z: number): Promise<Plane> {
    return this.level(z, 0);
  }

  async tile(z: number, level: number, x: number, y: number, tileSize: number): Promise<Plane> {
    return cutTile(await this.level(z, level), x * tileSize, y * tileSize, tileSize);
  }

  private level(z: number, level: number): Promise<Plane> {
    return this.cache.getOrCreate(`${z}/${level}`, async () => {
      const value = level === 0 ? await this.compute(z) : halve(await this.level(z, level - 1), 'max');
      return { value, cost: value.data.byteLength };
    });
  }

  private async compute(z: number): Promise<Plane> {
    const [labels, map] = await Promise.all([this.labels.section(z), this.map.section(z)]);
    const { width, height } = labels;
    const membrane = labelsToMask(labels.data, this.polarity, this.labels.sourceName(z));
    const gt = new Uint8Array(membrane.length);
    for (let i = 0; i < gt.length; i++) gt[i] = 1 - membrane[i]!;
    const proposal = this.toProposal(map, this.map.sourceName(z));
    const loc = warpingErrorLocations({ width, height, depth: 1, data: gt }, { width, height, depth: 1, data: proposal }, 0, this.threshold);
    const mask = new Uint8Array(width * height);
    const mark = (p: { x: number; y: number }, v: number) => {
      for (let y = Math.max(0, p.y - MARK_RADIUS); y <= Math.min(height - 1, p.y + MARK_RADIUS); y++) {
        for (let x = Math.max(0, p.x - MARK_RADIUS); x <= Math.min(width - 1, p.x + MARK_RADIUS); x++) {
          mask[y * width + x] = Math.max(mask[y * width + x]!, v);
        }
      }
    };
    loc.splits.forEach((p) => mark(p, SPLIT));
    loc.mergers.forEach((p) => mark(p, MERGER));
    const list = (ps: { x: number; y: number }[]) => ps.slice(0, MAX_MARKS_LISTED).map((p): [number, number] => [p.x, p.y]);
    this.marks.set(z, { z, threshold: this.threshold, splits: loc.splits.length, mergers: loc.mergers.length,
      splitAt: list(loc.splits), mergerAt: list(loc.mergers) });
    return { width, height, data: mask };
  }
}
