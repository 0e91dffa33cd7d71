/**
 * What a blockwise volume prediction (`emseg predict --out x.zarr`) is asked to do, and the checks and intensity
 * mapping shared by 2-d networks (volume-predict.ts, section by section) and 3-d ones (volume-predict3d.ts).
 */
import { resolve } from 'node:path';
import { EmsegError } from '../errors.js';
import { formatIntensity, type IntensityMapping, type IntensitySpec } from '../image/intensity.js';
import { fullScale, type StackData } from '../image/stack.js';
import type { Compression } from '../io/formats/ome-zarr-write.js';
import { regionShape, type Region, type Vec3, type VolumeReader } from '../io/formats/volume.js';
import type { TileSize } from '../infer/tile-choice.js';
import { isUrl } from '../io/registry.js';
import type { Profile } from '../util/profile.js';
import type { BlockPlan, Shard } from './blocks.js';
import type { BlockFailure } from './markers.js';

export type MapDtype = 'uint8' | 'float32';

export interface VolumePredictJob {
  models: readonly string[];
  /** Any volume openVolume reads: `vol.zarr/0`, `vol.h5:/raw`, a big TIFF, a stack. */
  input: string;
  /** OME-Zarr folder (ends in .zarr). */
  out: string;
  /** Values are P(membrane) (membrane-high); otherwise the ISBI polarity (membrane-low), as stack outputs. */
  membraneProb: boolean;
  tta: boolean;
  bf16: boolean;
  /** 2-d networks: output tile edge, or 'auto' (infer/tile-choice.ts: chosen for the block's sections). */
  tile: TileSize;
  /**
   * 3-d networks: output voxels per tile (z, y, x), default DEFAULT_VOLUME_TILE per axis, at most the block; what
   * `--tile` gave when given (a 2-d network refuses one whose axes differ from `tile`).
   */
  volumeTile?: Vec3;
  threads?: number;
  backend: 'auto' | 'onednn' | 'reference';
  dtype: MapDtype;
  /**
   * Block (z, y, x). 2-d networks: y and x multiples of the networks' stride, default [1, 1024, 1024] (aligned,
   * capped). 3-d networks: rounded up to whole tiles (volume-predict3d.ts), default [64, 128, 128].
   */
  block?: Vec3;
  shard?: Shard;
  /** Clear the done markers of a run started with another layout, model or input (chunks are rewritten). */
  restart?: boolean;
  /** Replace an existing output (refused with --shard: shards would delete each other's work). */
  overwrite?: boolean;
  intensity?: string;
  toGrey?: boolean;
  /** Scale level of a multiscale OME-Zarr input. */
  scale?: number;
  /** Read absent chunk files of a Zarr input as its fill value (one notice at the end) instead of refusing them. */
  allowMissingChunks?: boolean;
  compression?: Compression;
  attempts?: number;
  /** The voxel size (z, y, x) and unit the maps record, over the input's own (io/voxel-size.ts chooseVoxelSize). */
  voxelSize?: Vec3;
  unit?: string;
  notice?: (message: string) => void;
  /** Adds where the time goes (tile steps, backend ops) to this profile (infer/profile.ts reports it). */
  profile?: Profile;
}

export interface VolumePredictResult {
  out: string;
  plan: BlockPlan;
  /** Blocks of this process (its shard), computed now / skipped as done / failed every attempt. */
  computed: number;
  skipped: number;
  failed: BlockFailure[];
  /** Every block of the plan is done (the pyramid was built). */
  complete: boolean;
  /** Output voxels computed now and the seconds this run took (open to last marker). */
  voxels: number;
  seconds: number;
}

/** The linear map (v - low) / (high - low) of the whole volume, from the rule and the dtype alone. */
export function volumeMapping(spec: IntensitySpec, dtype: VolumeReader['dtype']): IntensityMapping {
  switch (spec.kind) {
    case 'range':
      return { low: spec.low, high: spec.high };
    case 'auto':
    case 'dtype':
      return { low: 0, high: dtype === 'float32' ? 1 : fullScale(dtype) };
    default:
      throw new EmsegError('invalid-option', '--intensity', `${formatIntensity(spec)} is a per-section statistic, which blockwise `
        + 'prediction of a volume does not compute (a block sees only part of a section); use dtype or auto, or a fixed '
        + 'range LOW,HIGH for the whole volume (emseg info shows its value range)');
  }
}

/** Float input under the dtype rule must already be in [0, 1]: anything else would be clipped, not scaled. */
export function checkUnitRange(data: StackData, region: Region, path: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(v >= 0 && v <= 1)) {
      const [, h, w] = regionShape(region);
      const at = [region.start[0] + Math.floor(i / (h * w)), region.start[1] + (Math.floor(i / w) % h), region.start[2] + (i % w)];
      throw new EmsegError('intensity-range', path, `voxel [${at.join(',')}] is ${v}: float data read with --intensity auto/dtype must lie in `
        + '[0, 1]; give the volume\'s range as --intensity LOW,HIGH');
    }
  }
}

export function checkVolumePredictJob(job: VolumePredictJob, reader: VolumeReader): void {
  if (job.shard && job.overwrite) {
    throw new EmsegError('invalid-option', '--overwrite', 'cannot be combined with --shard (each shard would delete the others\' work); use --restart, or delete the output first');
  }
  const container = reader.path.replace(/[/\\]\d+$/, '').replace(/:.*$/, '');
  if (!isUrl(reader.path) && (resolve(job.out) === resolve(container) || resolve(job.out) === resolve(reader.path))) {
    throw new EmsegError('invalid-option', '--out', `is the input ${reader.path}; write the maps elsewhere`);
  }
}
