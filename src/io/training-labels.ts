/**
 * Training labels as people have them, made into the 2D trainer's masks (1 = membrane, 0 = interior, UNKNOWN_CLASS =
 * no loss) section by section: binary membrane masks (a polarity), or instance labels (one id per cell, uint8 to
 * uint64: boundaries where ids change, image/affinities.ts, widened by --boundary-width); an ignore value (no loss)
 * and sparse labels (an unlabelled region or section is ignored pixels). From any volume openVolume / openLabels read:
 * PNG/TIFF stacks, HDF5, OME-Zarr. How the labels are read is decided once (`decideReading`) and said; a case emseg
 * cannot tell is refused asking for --label-kind.
 */
import { EmsegError } from '../errors.js';
import { UNKNOWN_CLASS, boundaryTargets } from '../image/affinities.js';
import { ComponentLabeller } from '../image/components.js';
import type { LabelPolarity } from './label-polarity.js';
import { DEFAULT_POLARITY, labelsToMask } from './dataset.js';
import type { LabelData, LabelReader, LabelType, Vec3, VolumeReader } from './formats/volume.js';
import type { VoxelSize } from './voxel-size.js';
import type { ImageStack } from '../image/stack.js';
import { EmsegIoError } from './errors.js';
import { MAX_STACK_ELEMENTS } from './limits.js';
import { MembraneCount } from './plausibility.js';
import type { ColourPolicy } from './png.js';
import { openLabels, openVolume } from './registry.js';
import type { Slice } from './stack.js';

export type LabelKind = 'mask' | 'instance';
export const LABEL_KINDS = ['mask', 'instance'] as const satisfies readonly LabelKind[];

/** Instance labels: boundary pixels on each side of an id change (1: the pixels beside it, 2 px across a contact). */
export const DEFAULT_BOUNDARY_WIDTH = 1;

/** What the user said about the labels (flags); anything not said is decided by `decideReading`. */
export interface LabelFlags {
  labelKind?: LabelKind;
  polarity?: LabelPolarity;
  /** Label value whose pixels give no loss (any id, up to 2^64 - 1). */
  ignoreLabel?: bigint;
  boundaryWidth?: number;
}

/** How the labels are read, decided once. */
export interface LabelReading {
  kind: LabelKind;
  /** Why that kind: the flag, the file's type (64-bit or signed ids are instance labels), or a PNG/TIFF stack (masks, as always). */
  decidedBy: 'flag' | 'type' | 'stack';
  polarity?: LabelPolarity;
  ignoreLabel?: bigint;
  boundaryWidth?: number;
}

const IMAGE_INTEGER_TYPES: ReadonlySet<LabelType> = new Set<LabelType>(['uint8', 'uint16', 'uint32']);
const MAX_ID: Record<LabelType, bigint> = { uint8: 0xffn, uint16: 0xffffn, uint32: 0xffff_ffffn, uint64: (1n << 64n) - 1n,
  int8: 0x7fn, int16: 0x7fffn, int32: 0x7fff_ffffn, int64: (1n << 63n) - 1n };

/** The kind: the flag, else masks for PNG/TIFF stacks (today's reading), instance for 64-bit or signed ids, else refused. */
function decideKind(reader: LabelReader, flags: LabelFlags): Pick<LabelReading, 'kind' | 'decidedBy'> {
  if (flags.labelKind !== undefined) {
    if (!(LABEL_KINDS as readonly string[]).includes(flags.labelKind)) {
      throw new EmsegError('invalid-option', '--label-kind', `must be one of ${LABEL_KINDS.join(', ')} (got "${flags.labelKind}")`);
    }
    return { kind: flags.labelKind, decidedBy: 'flag' };
  }
  if (reader.format === 'stack' || reader.format === 'tiff') return { kind: 'mask', decidedBy: 'stack' };
  if (!IMAGE_INTEGER_TYPES.has(reader.labelType)) return { kind: 'instance', decidedBy: 'type' };
  throw new EmsegError('ambiguous', '--label-kind', `${reader.path} holds ${reader.labelType} values: a membrane mask or instance `
    + 'labels (one id per cell)? Say which with --label-kind mask or --label-kind instance');
}

/** Decides how `reader`'s labels are read, refusing flags that do not apply to that kind. */
export function decideReading(reader: LabelReader, flags: LabelFlags): LabelReading {
  const { kind, decidedBy } = decideKind(reader, flags);
  const ignore = flags.ignoreLabel;
  if (ignore !== undefined && (ignore < 0n || ignore > MAX_ID[reader.labelType])) {
    throw new EmsegError('invalid-option', '--ignore-label', `${ignore} is not a value ${reader.path} (${reader.labelType}) can hold`);
  }
  const common = { decidedBy, ...(ignore === undefined ? {} : { ignoreLabel: ignore }) };
  if (kind === 'mask') {
    if (flags.boundaryWidth !== undefined) throw new EmsegError('invalid-option', '--boundary-width', 'applies to instance labels only (--label-kind instance)');
    if (!IMAGE_INTEGER_TYPES.has(reader.labelType)) {
      throw new EmsegError('invalid-option', '--label-kind', `${reader.path} holds ${reader.labelType} values, which are ids, not a membrane mask; use --label-kind instance`);
    }
    return { kind, ...common, polarity: flags.polarity ?? DEFAULT_POLARITY };
  }
  if (flags.polarity !== undefined) throw new EmsegError('invalid-option', '--polarity', 'applies to membrane masks only; instance labels have no polarity (boundaries are where ids change)');
  const width = flags.boundaryWidth ?? DEFAULT_BOUNDARY_WIDTH;
  if (!Number.isSafeInteger(width) || width < 1) throw new EmsegError('invalid-option', '--boundary-width', `must be a whole number of pixels >= 1 (got ${width})`);
  return { kind, ...common, boundaryWidth: width };
}

/** One line saying how the labels are read (the CLI prints it; `emseg labels` shows it). */
export function describeReading(r: LabelReading, path: string): string {
  const why = r.decidedBy === 'flag' ? '--label-kind' : r.decidedBy === 'type' ? 'their integer type holds ids' : 'a PNG/TIFF stack';
  const ignore = r.ignoreLabel === undefined ? 'no ignore label' : `pixels of ${r.ignoreLabel} give no loss`;
  const how = r.kind === 'mask' ? `a membrane mask, polarity ${r.polarity}`
    : `instance labels: boundaries where ids change, ${r.boundaryWidth} px on each side`;
  return `labels: ${path} read as ${how} (${why}); ${ignore}`;
}

/** Edge-replicated copy of a section, one pixel wider on each side: the section's edge is no id change. */
function padded(ids: LabelData, h: number, w: number): LabelData {
  const out = new (ids.constructor as { new (n: number): LabelData })((h + 2) * (w + 2));
  for (let y = -1; y <= h; y++) {
    const sy = Math.min(h - 1, Math.max(0, y));
    for (let x = -1; x <= w; x++) {
      (out as Uint32Array)[(y + 1) * (w + 2) + x + 1] = (ids as Uint32Array)[sy * w + Math.min(w - 1, Math.max(0, x))]!;
    }
  }
  return out;
}

/** Grows membrane (1) into interior (0) pixels by `steps` 4-neighbour steps; unknown pixels stay unknown. */
function widen(mask: Uint8Array, h: number, w: number, steps: number): void {
  const GROWING = 2;
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] !== 0) continue;
      const y = Math.floor(i / w);
      const x = i % w;
      const near = (x > 0 && mask[i - 1] === 1) || (x < w - 1 && mask[i + 1] === 1)
        || (y > 0 && mask[i - w] === 1) || (y < h - 1 && mask[i + w] === 1);
      if (near) mask[i] = GROWING;
    }
    for (let i = 0; i < mask.length; i++) if (mask[i] === GROWING) mask[i] = 1;
  }
}

/** Instance ids of one section to a training mask: boundaries in-plane, where ids change, widened. */
function instanceMask(ids: LabelData, h: number, w: number, r: LabelReading): Uint8Array {
  const t = boundaryTargets(padded(ids, h, w), [1, h + 2, w + 2], 'in-plane', r.ignoreLabel === undefined ? {} : { ignoreLabel: r.ignoreLabel });
  const out = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = (y + 1) * (w + 2) + x + 1;
      out[y * w + x] = t.mask[p] ? t.targets[p]! : UNKNOWN_CLASS;
    }
  }
  widen(out, h, w, (r.boundaryWidth ?? DEFAULT_BOUNDARY_WIDTH) - 1);
  return out;
}

/** One section of labels (`ids`, h x w) as the trainer's mask: 1 = membrane, 0 = interior, UNKNOWN_CLASS = no loss. */
export function sectionMask(ids: LabelData, h: number, w: number, r: LabelReading, path: string): Uint8Array {
  if (r.kind === 'instance') return instanceMask(ids, h, w, r);
  return labelsToMask(ids as Uint8Array | Uint16Array | Uint32Array, r.polarity!, path,
    r.ignoreLabel === undefined ? undefined : Number(r.ignoreLabel));
}

/** Per section: pixels labelled (not UNKNOWN_CLASS) and membrane among them. */
export interface SectionCounts {
  labelled: number;
  membrane: number;
}

export function countSection(mask: Uint8Array): SectionCounts {
  let labelled = 0;
  let membrane = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i]!;
    if (v === UNKNOWN_CLASS) continue;
    labelled++;
    membrane += v;
  }
  return { labelled, membrane };
}

/** Images and labels for the 2D trainer, from any volumes: PNG/TIFF stacks, HDF5 datasets, OME-Zarr (labels groups). */
export interface LabelledVolumeOptions extends LabelFlags {
  images: string;
  labels: string;
  colour?: ColourPolicy;
  /** One image section to network input (the intensity rule). */
  toFloat: (s: Slice) => Float32Array;
  /** Where the line saying how the labels are read goes, and the polarity warning of given masks. */
  notice?: (line: string) => void;
}

export interface LabelledVolume {
  images: ImageStack<Float32Array>;
  /** 1 = membrane, 0 = interior, UNKNOWN_CLASS = no loss. */
  labels: ImageStack<Uint8Array>;
  reading: LabelReading;
  sections: SectionCounts[];
}

async function openBoth(o: LabelledVolumeOptions): Promise<[VolumeReader, LabelReader]> {
  const images = await openVolume(o.images, { colour: o.colour });
  try {
    const labels = await openLabels(o.labels);
    if (labels.shape.some((v, a) => v !== images.shape[a])) {
      await labels.close();
      throw new EmsegIoError('mismatch', labels.path, `labels have shape ${labels.shape.join('x')} (z,y,x) but images ${images.path} have ${images.shape.join('x')}`);
    }
    return [images, labels];
  } catch (err) {
    await images.close();
    throw err;
  }
}

/** Reads every section of both volumes (the 2D trainer holds the stack), labels made into masks as decided once. */
export async function loadLabelledVolume(o: LabelledVolumeOptions): Promise<LabelledVolume> {
  const [images, labels] = await openBoth(o);
  try {
    const reading = decideReading(labels, o);
    o.notice?.(describeReading(reading, labels.path));
    const [depth, height, width] = images.shape;
    const n = width * height;
    if (n * depth > MAX_STACK_ELEMENTS) {
      throw new EmsegIoError('too-large', images.path, `${depth} sections of ${width}x${height} are too many to train on at once (the 2D trainer holds them); cut the volume`);
    }
    const out = { images: { width, height, depth, data: new Float32Array(n * depth) }, labels: { width, height, depth, data: new Uint8Array(n * depth) } };
    const sections: SectionCounts[] = [];
    for (let z = 0; z < depth; z++) {
      const region = { start: [z, 0, 0] as const, end: [z + 1, height, width] as const };
      const origin = images.sectionOrigin?.(z) ?? { source: images.path, page: z };
      out.images.data.set(o.toFloat({ index: z, width, height, data: await images.readRegion(region), ...origin }), z * n);
      const mask = sectionMask(await labels.readLabels(region), height, width, reading, labels.sectionOrigin?.(z).source ?? labels.path);
      out.labels.data.set(mask, z * n);
      sections.push(countSection(mask));
    }
    if (reading.kind === 'mask') checkMaskPolarity(sections, reading, o, labels.path);
    return { ...out, reading, sections };
  } finally {
    await images.close();
    await labels.close();
  }
}

/** Masks that read as mostly membrane: refused with the default polarity, a warning with a given one (as stacks are). */
function checkMaskPolarity(sections: SectionCounts[], reading: LabelReading, o: LabelledVolumeOptions, path: string): void {
  const count = new MembraneCount();
  for (const s of sections) count.addCounts(s.membrane, s.labelled);
  count.check(reading.polarity!, o.polarity !== undefined, path, o.notice);
}

/** Images and compact neuron ids for the 3-d trainer (targets are made from the ids on the fly). */
export interface LabelledIds {
  images: Float32Array;
  /** 0 stays 0 (background); every other id becomes 1, 2, ... in order of first appearance. */
  ids: Uint32Array;
  shape: Vec3;
  reading: LabelReading;
  /** The compact id of the ignore label (absent: none, or it never occurs). */
  ignoreId?: number;
  /** Distinct ids, background included. */
  idCount: number;
  voxelSize?: VoxelSize;
}

/**
 * Reads both volumes whole, section by section (the 3-d trainer holds the volume, as the 2-d one holds its stack).
 * Instance labels, or with `cellsFromMasks` (a network whose targets all lie in a section) membrane masks too: each
 * section's cells are then the 4-connected components of its interior, membrane the background (a mask says nothing
 * of which cells continue into the next section, so only in-plane targets can learn from it).
 */
export async function loadLabelledIds(o: LabelledVolumeOptions & { cellsFromMasks?: boolean }): Promise<LabelledIds> {
  const [images, labels] = await openBoth(o);
  try {
    const reading = decideReading(labels, o);
    if (reading.kind !== 'instance' && !o.cellsFromMasks) {
      throw new EmsegError('invalid-option', '--label-kind', `${labels.path} is read as a membrane mask; a 3-d network learns from neuron ids `
        + '(--label-kind instance); only a network whose targets all lie in a section (unet2d-affinities-w16) learns from masks');
    }
    o.notice?.(reading.kind === 'instance' ? idsNotice(reading, labels) : `${describeReading(reading, labels.path)}; `
      + 'cells: the 4-connected components of each section\'s interior (ids per section), membrane the background');
    const [depth, height, width] = images.shape;
    const n = width * height;
    if (n * depth > MAX_STACK_ELEMENTS) {
      throw new EmsegIoError('too-large', images.path, `${depth} x ${height} x ${width} voxels are too many to train on at once (the trainer holds them); cut the volume`);
    }
    const out = { images: new Float32Array(n * depth), ids: new Uint32Array(n * depth) };
    // Background is 0 whether the file's ids are numbers or (uint64) bigints.
    const compact = { table: new Map<number | bigint, number>([[0, 0], [0n, 0]]), next: 1 };
    const cells = reading.kind === 'mask' ? new MaskCells(n) : undefined;
    const counts: SectionCounts[] = [];
    for (let z = 0; z < depth; z++) {
      const region = { start: [z, 0, 0] as const, end: [z + 1, height, width] as const };
      const origin = images.sectionOrigin?.(z) ?? { source: images.path, page: z };
      out.images.set(o.toFloat({ index: z, width, height, data: await images.readRegion(region), ...origin }), z * n);
      const section = out.ids.subarray(z * n, (z + 1) * n);
      const data = await labels.readLabels(region);
      if (!cells) {
        compactIds(data, compact, section);
        continue;
      }
      const mask = sectionMask(data, height, width, reading, labels.sectionOrigin?.(z).source ?? labels.path);
      cells.label(mask, width, height, section);
      counts.push(countSection(mask));
    }
    if (cells) checkMaskPolarity(counts, reading, o, labels.path);
    const ignore = cells ? cells.ignoreId
      : reading.ignoreLabel === undefined ? undefined : compact.table.get(labels.labelType === 'uint64' ? reading.ignoreLabel : Number(reading.ignoreLabel));
    return { ...out, shape: images.shape, reading, idCount: cells ? cells.next : compact.next,
      ...(ignore === undefined ? {} : { ignoreId: ignore }), ...(images.voxelSize ? { voxelSize: images.voxelSize } : {}) };
  } finally {
    await images.close();
    await labels.close();
  }
}

function idsNotice(reading: LabelReading, labels: LabelReader): string {
  const ignoring = reading.ignoreLabel === undefined ? 'no ignore label' : `voxels of ${reading.ignoreLabel} give no loss`;
  return `labels: ${labels.path} read as neuron ids (${labels.labelType}); the model's targets are made from them; ${ignoring}`;
}

/** Mask sections to ids: interior components numbered on through the volume, membrane 0, unknown pixels IGNORE_CELL. */
class MaskCells {
  /** The id of pixels that give no loss (UNKNOWN_CLASS in the mask); cells count from IGNORE_CELL + 1. */
  static readonly IGNORE_CELL = 1;
  next = MaskCells.IGNORE_CELL + 1;
  ignoreId: number | undefined;
  private readonly labeller = new ComponentLabeller();
  private readonly interior: Uint8Array;
  private readonly components: Int32Array;

  constructor(pixels: number) {
    this.interior = new Uint8Array(pixels);
    this.components = new Int32Array(pixels);
  }

  label(mask: Uint8Array, width: number, height: number, out: Uint32Array): void {
    for (let i = 0; i < mask.length; i++) this.interior[i] = mask[i] === 0 ? 1 : 0;
    const count = this.labeller.label(this.interior, width, height, this.components);
    if (this.next + count > 0xffff_ffff) throw new EmsegIoError('too-large', 'labels', 'more than 2^32 - 1 cells');
    for (let i = 0; i < mask.length; i++) {
      const m = mask[i]!;
      if (m === UNKNOWN_CLASS) this.ignoreId = out[i] = MaskCells.IGNORE_CELL;
      else out[i] = m === 0 ? this.next - 1 + this.components[i]! : 0;
    }
    this.next += count;
  }
}

/** Ids through the compaction table (extended with ids not seen before). */
export function compactIds(ids: LabelData, compact: { table: Map<number | bigint, number>; next: number }, out: Uint32Array): void {
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    let c = compact.table.get(v);
    if (c === undefined) {
      if (compact.next > 0xffff_ffff) throw new EmsegIoError('too-large', 'labels', 'more than 2^32 - 1 distinct ids');
      compact.table.set(v, c = compact.next++);
    }
    out[i] = c;
  }
}
