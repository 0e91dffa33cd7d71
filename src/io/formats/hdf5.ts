/**
 * HDF5 datasets (`vol.h5:/raw`) through h5wasm's Node build, which reads the file in place (no copy into
 * memory); regions are read as hyperslabs by libhdf5, so memory is bounded by the region.
 */
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EmsegIoError, describe, fromFsError } from '../errors.js';
import { BYTES_PER_SAMPLE } from '../../image/stack.js';
import { BYTES_PER_LABEL, allocateRawLabels, imageTypeOf, toLabelData } from './label-types.js';
import { checkVolumeExtent } from '../limits.js';
import { allocateRegion, checkRegion } from './volume.js';
import type { LabelData, LabelReader, LabelType, Region, StackData, Vec3, VolumeReader, VoxelSize } from './volume.js';
import { sameVoxelSize, voxelSizeOf } from '../voxel-size.js';

type H5 = typeof import('h5wasm/node');

/** The 8 signature bytes every HDF5 file starts with (at offset 0 for files that are not user-block padded). */
export const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** File name endings taken for HDF5 when the path names a dataset after a colon. */
export const HDF5_EXTENSIONS = ['.h5', '.hdf5', '.hdf', '.he5'];

/** h5wasm's chunk size when a dataset is contiguous: rows of this many sections are the natural unit. */
const CONTIGUOUS_CHUNK_Z = 1;

let h5Module: Promise<H5> | undefined;

/** h5wasm loads a 5 MB wasm module; do it once, on first use. */
export async function loadH5wasm(): Promise<H5> {
  h5Module ??= import('h5wasm/node').then(async (m) => {
    await m.ready;
    return m;
  });
  return h5Module;
}

/** Splits `file.h5:/group/data` into file and dataset; undefined when the path has no HDF5 dataset part. */
export function splitHdf5Path(path: string): { file: string; dataset: string } | undefined {
  const m = /^(.*\.(?:h5|hdf5|hdf|he5)):(.*)$/i.exec(path);
  if (!m) return undefined;
  return { file: m[1]!, dataset: m[2]! || '/' };
}

/** The dataset's element type: an integer type labels may have (images take uint8..uint32 of them), float32, or none. */
function elementTypeOf(meta: { type: number; size: number; signed: boolean }): LabelType | 'float32' | undefined {
  const INTEGER = 0;
  const FLOAT = 1;
  const BITS_PER_BYTE = 8;
  if (meta.type === INTEGER && [1, 2, 4, 8].includes(meta.size)) return `${meta.signed ? 'int' : 'uint'}${meta.size * BITS_PER_BYTE}` as LabelType;
  if (meta.type === FLOAT && meta.size === 4) return 'float32';
  return undefined;
}

/** Dataset paths of a file (for the error that lists what exists when the asked one does not). */
function listDatasets(h5: H5, group: InstanceType<H5['Group']>, prefix = '', out: string[] = []): string[] {
  for (const name of group.keys()) {
    const child = group.get(name);
    const path = `${prefix}/${name}`;
    if (child instanceof h5.Dataset) out.push(path);
    else if (child instanceof h5.Group && out.length < 50) listDatasets(h5, child, path, out);
  }
  return out;
}

/** Offsets where HDF5 allows its signature: 0, then 512 and every power of two after it (user blocks). */
const FIRST_USER_BLOCK = 512;

/** Is the HDF5 signature at one of the allowed offsets? (h5wasm opens a non-HDF5 file without complaint.) */
export async function hasHdf5Signature(file: string): Promise<boolean> {
  const fh = await open(file, 'r').catch((err) => {
    throw fromFsError(err, file, 'opening');
  });
  try {
    const { size } = await fh.stat();
    const buf = new Uint8Array(HDF5_SIGNATURE.length);
    for (let at = 0; at + buf.length <= size; at = at === 0 ? FIRST_USER_BLOCK : at * 2) {
      await fh.read(buf, 0, buf.length, at);
      if (HDF5_SIGNATURE.every((b, i) => buf[i] === b)) return true;
    }
    return false;
  } finally {
    await fh.close();
  }
}

export async function openHdf5(path: string, file: string, dataset: string): Promise<VolumeReader> {
  return openHdf5As(path, file, (h5, f) => imageReader(describeDataset(h5, f, path, file, dataset)));
}

/** An HDF5 dataset of integer ids (uint8..uint64, int8..int64) read as labels. */
export async function openHdf5Labels(path: string, file: string, dataset: string): Promise<LabelReader> {
  return openHdf5As(path, file, (h5, f) => labelReader(describeDataset(h5, f, path, file, dataset)));
}

async function openHdf5As<R>(path: string, file: string, make: (h5: H5, f: InstanceType<H5['File']>) => R): Promise<R> {
  if (!(await hasHdf5Signature(file))) throw new EmsegIoError('corrupt', file, 'not an HDF5 file (no HDF5 signature)');
  const h5 = await loadH5wasm();
  let f: InstanceType<H5['File']>;
  try {
    f = new h5.File(resolve(file), 'r');
  } catch (err) {
    throw new EmsegIoError('corrupt', file, `not a readable HDF5 file (${describe(err)})`, { cause: err });
  }
  try {
    return make(h5, f);
  } catch (err) {
    f.close();
    if (err instanceof EmsegIoError) throw err;
    throw new EmsegIoError('corrupt', path, `HDF5 file cannot be read (${describe(err)})`, { cause: err });
  }
}

/** A numeric attribute of a dataset as a list of numbers, or undefined (absent, text, unreadable). */
function numbersOf(node: { attrs: Record<string, { to_array(): unknown }> }, name: string): number[] | undefined {
  let value: unknown;
  try {
    value = node.attrs[name]?.to_array();
  } catch {
    return undefined; // a type h5wasm cannot convert: not a size
  }
  const list = typeof value === 'number' ? [value] : Array.isArray(value) ? value.flat() : undefined;
  return list?.every((v) => typeof v === 'number') ? list as number[] : undefined;
}

/**
 * The dataset's voxel size from its attributes: `element_size_um` (ilastik, Fiji's HDF5 plugin: z,y,x in micrometer)
 * or `resolution` (CREMI: z,y,x in nanometer), one entry per dimension (a 2-D dataset's z is 1). When both are
 * there and disagree, element_size_um wins: its unit is in its name, CREMI's is a convention.
 */
function hdf5VoxelSize(node: { attrs: Record<string, { to_array(): unknown }> }, dims: number): VoxelSize | undefined {
  const read = (name: string, unit: string) => {
    const v = numbersOf(node, name);
    if (v?.length !== dims) return undefined;
    return voxelSizeOf(dims === 2 ? [1, ...v] : v, [unit, unit, unit]);
  };
  const um = read('element_size_um', 'micrometer');
  const nm = read('resolution', 'nanometer');
  if (um && nm && sameVoxelSize({ size: nm.size.map((v) => v / 1000) as unknown as Vec3, unit: 'micrometer' }, um)) return nm;
  return um ?? nm;
}

/** What both reads of a dataset share: its node, type, shape, chunks, voxel size and attributes. */
interface Described {
  node: InstanceType<H5['Dataset']>;
  f: InstanceType<H5['File']>;
  path: string;
  type: LabelType | 'float32';
  dims: number[];
  base: Omit<VolumeReader, 'dtype' | 'readRegion' | 'close'>;
}

function describeDataset(h5: H5, f: InstanceType<H5['File']>, path: string, file: string, dataset: string): Described {
  const node = dataset === '/' ? null : f.get(dataset);
  if (!(node instanceof h5.Dataset)) {
    const found = listDatasets(h5, f);
    const what = node ? 'is a group, not a dataset' : 'has no dataset';
    throw new EmsegIoError('not-found', path, `${file} ${what} "${dataset}"; datasets in the file: ${found.join(', ') || 'none'}`);
  }
  const meta = node.metadata;
  const type = elementTypeOf(meta);
  if (!type) throw new EmsegIoError('unsupported', path, `data type ${JSON.stringify(node.dtype)} is not read (uint8, uint16, uint32, float32; labels also uint64 and int8..int64)`);
  const dims = node.shape ?? [];
  if (dims.length < 2 || dims.length > 3) throw new EmsegIoError('unsupported', path, `dataset has ${dims.length} dimensions; expected 2 (y,x) or 3 (z,y,x)`);
  const c = meta.chunks;
  // libhdf5 decodes a chunk whole for any hyperslab touching it (a contiguous dataset is read by range, no chunk).
  checkVolumeExtent(path, dims, c ?? undefined, type === 'float32' ? BYTES_PER_SAMPLE.float32 : BYTES_PER_LABEL[type]);
  const shape = (dims.length === 2 ? [1, dims[0]!, dims[1]!] : dims) as unknown as Vec3;
  const chunks = (c ? (c.length === 2 ? [1, c[0]!, c[1]!] : c) : [CONTIGUOUS_CHUNK_Z, shape[1], shape[2]]) as unknown as Vec3;
  const voxelSize = hdf5VoxelSize(node as never, dims.length);
  const base = { path, format: 'hdf5' as const, shape, chunks, level: 0, ...(voxelSize ? { voxelSize } : {}),
    scales: [{ path: dataset, shape, scale: [1, 1, 1] as Vec3 }],
    attributes: { compression: node.filters.map((x) => x.name).join('+') || 'none' } };
  return { node, f, path, type, dims, base };
}

/** A region as libhdf5 returns it (the file's own type), checked for its length. */
function readSlice(d: Described, region: Region, length: number): ArrayLike<unknown> {
  const ranges = [0, 1, 2].map((a) => [region.start[a]!, region.end[a]!] as [number, number]);
  let data: unknown;
  try {
    data = d.node.slice(d.dims.length === 2 ? ranges.slice(1) : ranges);
  } catch (err) {
    throw new EmsegIoError('corrupt', d.path, `reading region failed; the file may be truncated or damaged (${describe(err)})`, { cause: err });
  }
  if (!ArrayBuffer.isView(data) || (data as unknown as ArrayLike<unknown>).length !== length) {
    throw new EmsegIoError('corrupt', d.path, 'region read returned the wrong number of values; the file may be truncated or damaged');
  }
  return data as unknown as ArrayLike<unknown>;
}

function imageReader(d: Described): VolumeReader {
  const dtype = d.type === 'float32' ? 'float32' : imageTypeOf(d.type, d.path);
  return {
    ...d.base, dtype,
    async readRegion(region: Region): Promise<StackData> {
      checkRegion(region, d.base.shape, d.path);
      const out = allocateRegion(dtype, region, d.path);
      out.set(readSlice(d, region, out.length) as ArrayLike<number>);
      return out;
    },
    async close() {
      d.f.close();
    },
  };
}

function labelReader(d: Described): LabelReader {
  if (d.type === 'float32') throw new EmsegIoError('invalid-data', d.path, 'holds float32 values; label ids must be integers (uint8..uint64, int8..int64)');
  const labelType = d.type;
  return {
    ...d.base, labelType,
    async readLabels(region: Region): Promise<LabelData> {
      checkRegion(region, d.base.shape, d.path);
      const raw = allocateRawLabels(labelType, region, d.path);
      (raw as Uint8Array).set(readSlice(d, region, raw.length) as Uint8Array);
      return toLabelData(raw, labelType, region, d.path);
    },
    async close() {
      d.f.close();
    },
  };
}
