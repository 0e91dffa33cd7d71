/**
 * Block plans for blockwise processing of volumes. A block owns a `write` region (the output voxels it alone
 * produces: output chunks == blocks, so no two writers ever touch one chunk file) and reads a larger `read`
 * region, its write region grown by the network's halo and clipped to the volume; the part of the halo that
 * falls outside the volume is reported in `pad` (the caller mirrors it, as whole-section prediction does).
 * Write regions start at multiples of the block size, which must be a multiple of the network's stride
 * (`align`), so every block's dense output lands on the same grid as a whole-volume prediction.
 */
import { createHash } from 'node:crypto';
import { EmsegError } from '../errors.js';
import type { Region, Vec3 } from '../io/formats/volume.js';

export interface Block {
  /** Position in the plan's raster order (z, then y, then x), from 0. */
  index: number;
  /** Block coordinates in the grid. */
  grid: Vec3;
  /** Output voxels this block owns. */
  write: Region;
  /** Input voxels it needs: `write` plus the halo, clipped to the volume. */
  read: Region;
  /** Halo voxels outside the volume on each side (before = low side, after = high side). */
  pad: { before: Vec3; after: Vec3 };
}

export interface BlockPlan {
  shape: Vec3;
  block: Vec3;
  halo: Vec3;
  align: Vec3;
  /** Blocks along z, y, x. */
  grid: Vec3;
  /** Number of blocks (grid z * y * x). */
  count: number;
  /**
   * Block `index` (raster order), computed on demand: a plan never holds its blocks, so a volume of millions of
   * blocks costs nothing to plan (see eachBlock).
   */
  at(index: number): Block;
  /** Hash of shape, block, halo and align: two plans with the same id cut the volume identically. */
  id: string;
}

/** One of n static parts of a plan (`--shard i/n`, i from 0, as SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX). */
export interface Shard {
  index: number;
  count: number;
}

/** Characters of the sha256 hex digest kept in ids (64 bits: collisions are not a practical concern). */
const ID_HEX = 16;

function invalid(field: string, message: string): EmsegError {
  return new EmsegError('invalid-option', field, message);
}

function checkVec(v: Vec3, field: string, min: number): void {
  if (v.length !== 3 || v.some((x) => !Number.isInteger(x) || x < min)) {
    throw invalid(field, `must be three integers >= ${min} (z,y,x), got [${v.join(',')}]`);
  }
}

export function planId(shape: Vec3, block: Vec3, halo: Vec3, align: Vec3): string {
  const text = JSON.stringify({ shape, block, halo, align });
  return createHash('sha256').update(text).digest('hex').slice(0, ID_HEX);
}

/** Cuts a volume of `shape` into blocks of `block` voxels (edge blocks smaller), each read with `halo` around it. */
export function planBlocks(shape: Vec3, block: Vec3, halo: Vec3 = [0, 0, 0], align: Vec3 = [1, 1, 1]): BlockPlan {
  checkVec(shape, 'shape', 1);
  checkVec(block, 'block', 1);
  checkVec(halo, 'halo', 0);
  checkVec(align, 'align', 1);
  for (let a = 0; a < 3; a++) {
    if (block[a]! % align[a]! !== 0) {
      throw invalid('block', `[${block.join(',')}] is not a multiple of the stride [${align.join(',')}] (alignBlock rounds it down to one)`);
    }
  }
  const grid = [0, 1, 2].map((a) => Math.ceil(shape[a]! / block[a]!)) as unknown as Vec3;
  const count = grid[0] * grid[1] * grid[2];
  const at = (index: number): Block => {
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new EmsegError('mismatch', 'block', `index ${index} is not in the plan of ${count} blocks`);
    }
    const g: Vec3 = [Math.floor(index / (grid[1] * grid[2])), Math.floor(index / grid[2]) % grid[1], index % grid[2]];
    return makeBlock(index, g, shape, block, halo);
  };
  return { shape, block, halo, align, grid, count, at, id: planId(shape, block, halo, align) };
}

/** The plan's blocks with index in [first, end), in raster order, made one at a time. */
export function* eachBlock(plan: BlockPlan, first = 0, end = plan.count): Generator<Block> {
  for (let i = first; i < end; i++) yield plan.at(i);
}

/** The block at grid position `g`, or undefined outside the grid. */
export function blockAtGrid(plan: BlockPlan, g: readonly number[]): Block | undefined {
  if (g.length !== 3 || g.some((v, a) => !Number.isInteger(v) || v < 0 || v >= plan.grid[a]!)) return undefined;
  return plan.at((g[0]! * plan.grid[1] + g[1]!) * plan.grid[2] + g[2]!);
}

function makeBlock(index: number, g: Vec3, shape: Vec3, block: Vec3, halo: Vec3): Block {
  const ws = [0, 1, 2].map((a) => g[a]! * block[a]!);
  const we = [0, 1, 2].map((a) => Math.min(ws[a]! + block[a]!, shape[a]!));
  const rs = ws.map((s, a) => Math.max(0, s - halo[a]!));
  const re = we.map((e, a) => Math.min(shape[a]!, e + halo[a]!));
  const before = ws.map((s, a) => halo[a]! - (s - rs[a]!));
  const after = we.map((e, a) => halo[a]! - (re[a]! - e));
  const v = (x: number[]) => x as unknown as Vec3;
  return { index, grid: g, write: { start: v(ws), end: v(we) }, read: { start: v(rs), end: v(re) }, pad: { before: v(before), after: v(after) } };
}

/**
 * Refuses output chunks that would be shared by two blocks: every block must consist of whole chunks
 * (chunks == block, or chunks that divide it), so parallel writers never touch one chunk file.
 */
export function checkChunksFitBlocks(plan: BlockPlan, chunks: Vec3, path: string): void {
  if (plan.block.some((b, a) => b % chunks[a]! !== 0)) {
    throw new EmsegError('mismatch', path, `output chunks [${chunks.join(',')}] do not divide the blocks [${plan.block.join(',')}]; two blocks would write one chunk`);
  }
}

/** Rounds a block size down to a multiple of the stride (never below one stride). */
export function alignBlock(block: Vec3, align: Vec3): Vec3 {
  return block.map((b, a) => Math.max(align[a]!, Math.floor(b / align[a]!) * align[a]!)) as unknown as Vec3;
}

/**
 * A block size whose read region (block + 2 halo) holds at most `maxVoxels`: starts from the whole volume
 * (rounded up to the stride) and halves the longest of y, x, then z, keeping multiples of the stride.
 */
export function chooseBlock(shape: Vec3, maxVoxels: number, halo: Vec3 = [0, 0, 0], align: Vec3 = [1, 1, 1]): Vec3 {
  const b = shape.map((s, a) => Math.ceil(s / align[a]!) * align[a]!);
  const readVoxels = () => b.reduce((n, v, a) => n * (v + 2 * halo[a]!), 1);
  while (readVoxels() > maxVoxels) {
    const canHalve = (a: number) => b[a]! > align[a]!;
    const a = pickAxis(b, canHalve);
    if (a === undefined) throw invalid('block', `even one stride [${align.join(',')}] plus halo [${halo.join(',')}] exceeds ${maxVoxels} voxels`);
    b[a] = Math.max(align[a]!, Math.ceil(b[a]! / 2 / align[a]!) * align[a]!);
  }
  return b as unknown as Vec3;
}

/** The longest halvable of y and x, then z; undefined when no axis can shrink. */
function pickAxis(b: number[], canHalve: (a: number) => boolean): number | undefined {
  const inPlane = [1, 2].filter(canHalve).sort((p, q) => b[q]! - b[p]!);
  if (inPlane.length > 0) return inPlane[0];
  return canHalve(0) ? 0 : undefined;
}

/** Parses `i/n` (0 <= i < n); `flag` names the option in errors. */
export function parseShard(text: string, flag = '--shard'): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw invalid(flag, `expected i/n with 0 <= i < n (e.g. 0/3, 1/3, 2/3), got "${text}"`);
  }
  return { index, count };
}

/**
 * Shard i of n owns a contiguous run of blocks in raster order (neighbouring blocks share input chunks, so runs
 * read less than round-robin would); together the n shards own every block exactly once.
 */
export function inShard(shard: Shard, total: number): (block: Block) => boolean {
  const { first, end } = shardRange(shard, total);
  return (b) => b.index >= first && b.index < end;
}

/** The block indices [first, end) shard i of n owns. */
export function shardRange(shard: Shard, total: number): { first: number; end: number } {
  return { first: Math.floor((shard.index * total) / shard.count), end: Math.floor(((shard.index + 1) * total) / shard.count) };
}

/** The blocks of a shard (every block without one), made lazily. */
export function shardBlocks(plan: BlockPlan, shard?: Shard): Generator<Block> {
  if (!shard) return eachBlock(plan);
  const { first, end } = shardRange(shard, plan.count);
  return eachBlock(plan, first, end);
}
