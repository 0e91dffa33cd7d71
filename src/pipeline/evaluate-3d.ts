/**
 * `evaluateVolumes`: `emseg eval --seg`, a 3-D instance segmentation scored against ground-truth neuron ids with the
 * CREMI / SNEMI3D scores (docs/MODELS.md, "3-D neuron segmentations"). Both volumes are read in z-slabs of whole
 * sections (any format openVolume reads), so memory is bounded by the slab and the contingency table, never by
 * the volume; the border mask needs whole sections, which slabs are.
 */
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import { openLabels } from '../io/registry.js';
import type { LabelReader } from '../io/formats/volume.js';
import { formatVoxelSize, voxelSizeIn } from '../io/voxel-size.js';
import type { NeuronEvaluation } from '../report/index.js';
import { Contingency3d, DEFAULT_WORST_COUNT, borderMask, neuronScores, type IdArray } from '../metrics/index.js';

/** Most voxels of one slab read from each volume (whole sections; at least one section). */
export const EVAL_SLAB_VOXELS = 2 ** 24;

export interface EvaluateVolumesOptions {
  /** The segmentation (cells, neuron ids): a path openVolume reads (`cells.zarr`, `seg.h5:/ids`, a TIFF or stack). */
  seg: string;
  /** The ground-truth neuron ids, same forms; id 0 is unlabelled (ignored). */
  labels: string;
  /** CREMI border mask: leave out ground-truth voxels within this many nm (in-plane) of a label boundary. */
  borderNm?: number;
  /** Voxel size z, y, x in nm, over what the files record (needed by borderNm when they record none). */
  voxelSize?: readonly [number, number, number];
  /** Worst split neurons / merged segments listed (default DEFAULT_WORST_COUNT). */
  worst?: number;
  /** Most voxels per slab (default EVAL_SLAB_VOXELS; whole sections, at least one). */
  slabVoxels?: number;
  onProgress?: (done: number, total: number) => void;
}


/** Border radius in pixels: borderNm over the in-plane (y) voxel size in nm, as CREMI divides by resolution[1]. */
function borderPixels(o: EvaluateVolumesOptions, labels: LabelReader, seg: LabelReader): number | undefined {
  if (o.borderNm === undefined) return undefined;
  if (!(o.borderNm >= 0) || !Number.isFinite(o.borderNm)) throw new EmsegError('invalid-option', '--border-nm', `expected a distance in nm >= 0, got ${o.borderNm}`);
  if (o.voxelSize) return o.borderNm / o.voxelSize[1];
  for (const r of [labels, seg]) {
    const nm = r.voxelSize && voxelSizeIn(r.voxelSize, 'nanometer');
    if (nm) return o.borderNm / nm[1];
  }
  const recorded = labels.voxelSize ? `records ${formatVoxelSize(labels.voxelSize)}, without a unit` : 'records no voxel size';
  throw new EmsegError('invalid-option', '--voxel-size', `--border-nm needs the voxel size in nm: ${labels.path} ${recorded}; give --voxel-size z,y,x (nm)`);
}

async function openBoth(o: EvaluateVolumesOptions): Promise<[LabelReader, LabelReader]> {
  // Both are ids of any integer type (uint64 included, exact as bigint); float data is refused naming the file.
  const seg = await openLabels(o.seg);
  let labels: LabelReader;
  try {
    labels = await openLabels(o.labels);
  } catch (e) {
    await seg.close();
    throw e;
  }
  return [seg, labels];
}

/** Opens both volumes, checks them, streams them through the table and scores it. */
export async function evaluateVolumes(o: EvaluateVolumesOptions): Promise<NeuronEvaluation> {
  const [seg, labels] = await openBoth(o);
  try {
    if (seg.shape.some((v, a) => v !== labels.shape[a])) {
      throw new EmsegIoError('mismatch', seg.path, `segmentation ${seg.path} has shape ${seg.shape.join('x')} (z,y,x) but labels ${labels.path} have ${labels.shape.join('x')}`);
    }
    const radius = borderPixels(o, labels, seg);
    const table = await accumulate(seg, labels, radius, o);
    return {
      seg: seg.path, labels: labels.path, shape: seg.shape, masked: table.excluded, unlabelled: table.ignored,
      ...(radius === undefined ? {} : { border: { nm: o.borderNm!, pixels: radius } }),
      ...neuronScores(table, o.worst ?? DEFAULT_WORST_COUNT),
    };
  } finally {
    await seg.close();
    await labels.close();
  }
}

async function accumulate(seg: LabelReader, labels: LabelReader, radius: number | undefined,
  o: EvaluateVolumesOptions): Promise<Contingency3d> {
  const [d, h, w] = seg.shape;
  const depth = Math.max(1, Math.floor((o.slabVoxels ?? EVAL_SLAB_VOXELS) / (h * w)));
  const table = new Contingency3d();
  for (let z = 0; z < d; z += depth) {
    const end = Math.min(d, z + depth);
    const region = { start: [z, 0, 0] as const, end: [end, h, w] as const };
    const [s, g] = await Promise.all([seg.readLabels(region), labels.readLabels(region)]);
    const shape = [end - z, h, w] as const;
    const exclude = radius === undefined ? undefined : borderMask(g as IdArray, shape, radius);
    table.add(g as IdArray, s as IdArray, { shape, offset: [z, 0, 0], exclude });
    o.onProgress?.(end, d);
  }
  return table;
}
