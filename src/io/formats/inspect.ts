/**
 * Value range of a volume: exact (every voxel, tile by tile) or sampled (a few chunks spread over it). Neither
 * lists the volume's chunks or tiles: the sampled chunks are found by arithmetic on the chunk grid and the exact
 * pass walks its tiles one at a time, so opening a volume of any shape costs the same, and memory is one tile.
 */
import type { Reporter } from './convert.js';
import { voxelCount } from './volume.js';
import type { LabelData, LabelReader, MissingChunks, Region, StackData, Vec3, VolumeReader } from './volume.js';

/** Chunks read for a sampled range: spread evenly through the chunk grid, first and last included. */
export const SAMPLE_CHUNKS = 16;

/** Largest region one sample or one tile of the exact pass reads (voxels: 256 MB of float32). */
export const RANGE_TILE_VOXELS = 2 ** 26;

export interface ValueRange {
  min: number;
  max: number;
  /** true when every voxel was read. */
  exact: boolean;
  voxels: number;
  /** NaN or infinite values met (float data). */
  nonFinite: number;
  /** Absent chunk files met (Zarr), read as the fill value: the range then includes the fill value. */
  missingChunks?: MissingChunks;
}

function accumulate(data: StackData, r: ValueRange): void {
  let { min, max, nonFinite } = r;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isFinite(v)) nonFinite++;
    else {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  Object.assign(r, { min, max, nonFinite, voxels: r.voxels + data.length });
}

const gridOf = (shape: Vec3, step: Vec3): Vec3 => [0, 1, 2].map((a) => Math.ceil(shape[a]! / step[a]!)) as unknown as Vec3;

/** The box of grid cell `index` (raster order) of a grid of `step`-sized cells over `shape`, clipped to the volume. */
function cell(index: number, grid: Vec3, step: Vec3, shape: Vec3): Region {
  const coords = [Math.floor(index / (grid[1] * grid[2])), Math.floor(index / grid[2]) % grid[1], index % grid[2]];
  const start = coords.map((c, a) => c * step[a]!) as unknown as Vec3;
  const end = start.map((s, a) => Math.min(s + step[a]!, shape[a]!)) as unknown as Vec3;
  return { start, end };
}

/** A box of at most RANGE_TILE_VOXELS: the chunk itself when it fits, else thinner (z, then y, then x). */
function fitTile(box: Vec3): Vec3 {
  const t = [...box];
  for (let a = 0; a < 3 && voxelCount(t as unknown as Vec3) > RANGE_TILE_VOXELS; a++) {
    const others = t.reduce((p, v, b) => (b === a ? p : p * v), 1);
    t[a] = Math.max(1, Math.min(t[a]!, Math.floor(RANGE_TILE_VOXELS / others)));
  }
  return t as unknown as Vec3;
}

/** SAMPLE_CHUNKS chunks spread evenly in raster order (each cut to one tile at its origin). */
function sampleRegions(reader: Pick<VolumeReader, 'chunks' | 'shape'>): Region[] {
  const chunk = reader.chunks.map((c, a) => Math.min(c, reader.shape[a]!)) as unknown as Vec3;
  const grid = gridOf(reader.shape, chunk);
  const total = voxelCount(grid);
  const picks = new Set<number>();
  for (let i = 0; i < Math.min(SAMPLE_CHUNKS, total); i++) {
    picks.add(total <= SAMPLE_CHUNKS ? i : Math.min(total - 1, Math.round((i / (SAMPLE_CHUNKS - 1)) * (total - 1))));
  }
  const tile = fitTile(chunk);
  return [...picks].map((i) => {
    const r = cell(i, grid, chunk, reader.shape);
    return { start: r.start, end: r.start.map((s, a) => Math.min(s + tile[a]!, r.end[a]!)) as unknown as Vec3 };
  });
}

/** The tiles of the exact pass: whole chunks, as many along x as fit a tile (a chunk too big for one is cut). */
function exactTile(reader: Pick<VolumeReader, 'chunks' | 'shape'>): Vec3 {
  const chunk = reader.chunks.map((c, a) => Math.min(c, reader.shape[a]!)) as unknown as Vec3;
  const tile = fitTile(chunk);
  if (tile[2] < chunk[2] || tile[1] < chunk[1] || tile[0] < chunk[0]) return tile;
  const across = Math.max(1, Math.floor(RANGE_TILE_VOXELS / voxelCount(chunk)));
  return [chunk[0], chunk[1], Math.min(reader.shape[2], across * chunk[2])];
}

export async function valueRange(reader: VolumeReader, exact: boolean, report?: Reporter): Promise<ValueRange> {
  const r: ValueRange = { min: Infinity, max: -Infinity, exact: false, voxels: 0, nonFinite: 0 };
  await readRanged(reader, exact, report, async (region) => accumulate(await reader.readRegion(region), r));
  r.exact = r.voxels === voxelCount(reader.shape);
  const missing = reader.missingChunks?.();
  if (missing && missing.count > 0) r.missingChunks = missing;
  return r;
}

/** Reads the sampled regions, or every tile when exact, handing each to `use`, with a progress bar. */
async function readRanged(reader: Pick<VolumeReader, 'chunks' | 'shape'>, exact: boolean, report: Reporter | undefined,
  use: (region: Region) => Promise<void>): Promise<void> {
  const samples = exact ? undefined : sampleRegions(reader);
  const tile = exactTile(reader);
  const grid = gridOf(reader.shape, tile);
  const count = samples?.length ?? voxelCount(grid);
  const bar = report?.(exact ? 'value range' : 'sampling', count);
  try {
    for (let i = 0; i < count; i++) {
      await use(samples?.[i] ?? cell(i, grid, tile, reader.shape));
      bar?.update(i + 1);
    }
  } finally {
    bar?.stop();
  }
}

/** The id range of a label volume: ids up to 2^53 - 1 as numbers, larger ones (uint64) as decimal text, exact. */
export interface LabelRange {
  min: number | string;
  max: number | string;
  exact: boolean;
  voxels: number;
  missingChunks?: MissingChunks;
}

const asId = (v: number | bigint): number | string => (typeof v === 'bigint' && v > BigInt(Number.MAX_SAFE_INTEGER) ? v.toString() : Number(v));

/** Smallest and largest id of a label volume, sampled or exact as valueRange does it. */
export async function labelRange(reader: LabelReader, exact: boolean, report?: Reporter): Promise<LabelRange> {
  let min: number | bigint | undefined;
  let max: number | bigint | undefined;
  let voxels = 0;
  await readRanged(reader, exact, report, async (region) => {
    const data: LabelData = await reader.readLabels(region);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (min === undefined || v < min) min = v;
      if (max === undefined || v > max) max = v;
    }
    voxels += data.length;
  });
  const missing = reader.missingChunks?.();
  return { min: asId(min ?? 0), max: asId(max ?? 0), exact: voxels === voxelCount(reader.shape), voxels,
    ...(missing && missing.count > 0 ? { missingChunks: missing } : {}) };
}
