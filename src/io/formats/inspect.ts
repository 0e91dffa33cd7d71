/** Value range of a volume: exact (every voxel, band by band) or sampled (a few chunks spread over it). */
import { bandsOf } from './convert.js';
import type { Reporter } from './convert.js';
import { chunksOverlapping, wholeRegion } from './volume.js';
import type { Region, StackData, VolumeReader } from './volume.js';

/** Chunks read for a sampled range: spread evenly through the chunk grid, first and last included. */
export const SAMPLE_CHUNKS = 16;

export interface ValueRange {
  min: number;
  max: number;
  /** true when every voxel was read. */
  exact: boolean;
  voxels: number;
  /** NaN or infinite values met (float data). */
  nonFinite: number;
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

function sampleRegions(reader: VolumeReader): Region[] {
  const all = [...chunksOverlapping(wholeRegion(reader.shape), reader.chunks, reader.shape)];
  if (all.length <= SAMPLE_CHUNKS) return all.map((c) => c.region);
  const picks = new Set<number>();
  for (let i = 0; i < SAMPLE_CHUNKS; i++) picks.add(Math.round((i * (all.length - 1)) / (SAMPLE_CHUNKS - 1)));
  return [...picks].map((i) => all[i]!.region);
}

export async function valueRange(reader: VolumeReader, exact: boolean, report?: Reporter): Promise<ValueRange> {
  const regions = exact ? bandsOf(reader, reader.chunks) : sampleRegions(reader);
  const r: ValueRange = { min: Infinity, max: -Infinity, exact: false, voxels: 0, nonFinite: 0 };
  const bar = report?.(exact ? 'value range' : 'sampling', regions.length);
  try {
    for (let i = 0; i < regions.length; i++) {
      accumulate(await reader.readRegion(regions[i]!), r);
      bar?.update(i + 1);
    }
  } finally {
    bar?.stop();
  }
  r.exact = r.voxels === reader.shape[0] * reader.shape[1] * reader.shape[2];
  return r;
}
