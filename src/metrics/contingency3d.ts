/**
 * Contingency table of a 3-D instance segmentation against its ground truth, accumulated block by block: the
 * number of voxels of every (ground-truth id, segmentation id) pair. Memory grows with the number of distinct
 * pairs, never with the volume, so a volume of any size streams through `add` in slabs.
 *
 * Ids are any unsigned integers up to 2^64 - 1. An id is held as a number when it is at most
 * Number.MAX_SAFE_INTEGER and as a bigint above (one form per value, so each id is one Map key): ids above 2^53
 * are never rounded onto each other.
 */
import { EmsegError } from '../errors.js';

/** Label arrays `add` accepts (z-major, then y, then x). */
export type IdArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | BigUint64Array | BigInt64Array;

/** An id: a number up to 2^53 - 1, a bigint above. */
export type LabelId = number | bigint;

/** A voxel position (z, y, x) in the whole volume. */
export type VoxelPosition = readonly [number, number, number];

const MAX_UINT64 = 2n ** 64n - 1n;

/** The one form of an id: a number when it is exactly representable, else a bigint. */
export function labelId(v: number | bigint): LabelId {
  if (typeof v === 'number') return v;
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n ? Number(v) : v;
}

/** One ground-truth neuron: its counted voxels, the first voxel seen and its voxels per segmentation id. */
export interface GtRow {
  size: number;
  first: VoxelPosition;
  pieces: Map<LabelId, number>;
}

/** One segmentation id: its voxels on counted ground truth and the first voxel seen. */
export interface SegColumn {
  size: number;
  first: VoxelPosition;
}

export interface AddOptions {
  /** Block shape (z, y, x); the arrays hold its voxels. */
  shape: VoxelPosition;
  /** Position of the block's first voxel in the volume (default 0, 0, 0): the positions reported are the volume's. */
  offset?: VoxelPosition;
  /** Voxels to leave out (nonzero = excluded), e.g. the border mask; same length as the arrays. */
  exclude?: Uint8Array;
}

export interface ContingencyOptions {
  /** Ground-truth id whose voxels are ignored (default 0: unlabelled). */
  gtBackground?: number | bigint;
}

function checkId(id: LabelId, what: string): void {
  if (typeof id === 'number' ? id < 0 || !Number.isInteger(id) : id < 0n || id > MAX_UINT64) {
    throw new EmsegError('invalid-data', what, `label id ${id} is not an unsigned integer id`);
  }
}

/** The table. `add` blocks in any order; read `rows` / `columns` / `counted` / `ignored` when done. */
export class Contingency3d {
  /** Ground-truth id -> its row (ground-truth background and excluded voxels never enter). */
  readonly rows = new Map<LabelId, GtRow>();
  /** Segmentation id -> its column (label 0 included: what it means is up to each score). */
  readonly columns = new Map<LabelId, SegColumn>();
  /** Voxels counted (ground-truth foreground, not excluded). */
  counted = 0;
  /** Voxels on the ground-truth background id. */
  ignored = 0;
  /** Voxels left out by `exclude` (not also background). */
  excluded = 0;
  private readonly background: LabelId;

  constructor(o: ContingencyOptions = {}) {
    this.background = labelId(o.gtBackground ?? 0);
  }

  /** Counts one block: `gt` and `seg` hold the same voxels (shape `o.shape`). */
  add(gt: IdArray, seg: IdArray, o: AddOptions): void {
    const [d, h, w] = o.shape;
    const n = d * h * w;
    if (gt.length !== n || seg.length !== n || (o.exclude && o.exclude.length !== n)) {
      throw new EmsegError('mismatch', 'contingency', `block arrays (${gt.length}, ${seg.length} voxels) do not fit the shape ${o.shape.join('x')}`);
    }
    const gtBig = typeof gt[0] === 'bigint';
    const segBig = typeof seg[0] === 'bigint';
    const exclude = o.exclude;
    let prevG: LabelId | undefined;
    let prevS: LabelId | undefined;
    let run = 0;
    let runStart = 0;
    for (let i = 0; i < n; i++) {
      if (exclude !== undefined && exclude[i] !== 0) {
        if (labelId(gt[i]!) === this.background) this.ignored++;
        else this.excluded++;
        continue;
      }
      const g = gtBig ? labelId(gt[i]!) : (gt[i] as number);
      if (g === this.background) {
        this.ignored++;
        continue;
      }
      const s = segBig ? labelId(seg[i]!) : (seg[i] as number);
      // Runs of one pair are the rule in labels: one Map update per run, not per voxel.
      if (g === prevG && s === prevS) {
        run++;
        continue;
      }
      if (run > 0) this.flush(prevG!, prevS!, run, runStart, o);
      prevG = g;
      prevS = s;
      run = 1;
      runStart = i;
    }
    if (run > 0) this.flush(prevG!, prevS!, run, runStart, o);
  }

  private flush(g: LabelId, s: LabelId, count: number, index: number, o: AddOptions): void {
    let row = this.rows.get(g);
    if (row === undefined) {
      checkId(g, 'labels');
      row = { size: 0, first: position(index, o), pieces: new Map() };
      this.rows.set(g, row);
    }
    let column = this.columns.get(s);
    if (column === undefined) {
      checkId(s, 'segmentation');
      column = { size: 0, first: position(index, o) };
      this.columns.set(s, column);
    }
    row.size += count;
    row.pieces.set(s, (row.pieces.get(s) ?? 0) + count);
    column.size += count;
    this.counted += count;
  }
}

function position(index: number, o: AddOptions): VoxelPosition {
  const [, h, w] = o.shape;
  const [oz, oy, ox] = o.offset ?? [0, 0, 0];
  const x = index % w;
  const y = Math.floor(index / w) % h;
  const z = Math.floor(index / (w * h));
  return [oz + z, oy + y, ox + x];
}
