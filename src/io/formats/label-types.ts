/**
 * The integer types of label volumes (neuron ids, instance labels: CREMI, SNEMI3D and Paintera store uint64, others
 * int64, int32 or less) as the HDF5 and Zarr readers meet them, and their conversion to the unsigned arrays
 * `readLabels` returns. Images never see these types: an image read of a type beyond SampleType is refused with a
 * LabelTypeRefusal, which says the data can be read as labels.
 */
import { EmsegIoError } from '../errors.js';
import type { SampleType } from '../../image/stack.js';
import type { LabelData, LabelType, Region } from './volume.js';
import { MAX_REGION_ELEMENTS, regionShape, voxelCount } from './volume.js';

export const BYTES_PER_LABEL: Readonly<Record<LabelType, number>> = {
  uint8: 1, uint16: 2, uint32: 4, uint64: 8, int8: 1, int16: 2, int32: 4, int64: 8,
};

/** The label types an image read takes as they are (the others are labels only). */
const IMAGE_TYPES: ReadonlySet<LabelType> = new Set<LabelType>(['uint8', 'uint16', 'uint32']);

/** An image read of a volume whose type only a label read takes (uint64 ids...): 'unsupported', with the type. */
export class LabelTypeRefusal extends EmsegIoError {
  constructor(path: string, readonly labelType: LabelType) {
    super('unsupported', path, `holds ${labelType} values, which emseg reads only as labels (neuron ids): give it as --labels `
      + '(eval, train) or to emseg labels, not as an image');
  }
}

/** The image sample type of a label type, or the refusal naming the file when images cannot hold it. */
export function imageTypeOf(type: LabelType, path: string): SampleType {
  if (!IMAGE_TYPES.has(type)) throw new LabelTypeRefusal(path, type);
  return type as SampleType;
}

type RawLabels = Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array | BigInt64Array;

/** A region's worth of the file's own type, to copy chunks into (refused beyond MAX_REGION_ELEMENTS, as images are). */
export function allocateRawLabels(type: LabelType, region: Region, path: string): RawLabels {
  const n = voxelCount(regionShape(region));
  if (n > MAX_REGION_ELEMENTS) {
    throw new EmsegIoError('too-large', path, `region of ${n} voxels exceeds ${MAX_REGION_ELEMENTS}; read it in smaller regions`);
  }
  const make = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
    int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array }[type];
  return new make(n);
}

/** The first negative value's index, or -1. */
function firstNegative(raw: Int8Array | Int16Array | Int32Array | BigInt64Array): number {
  for (let i = 0; i < raw.length; i++) if (raw[i]! < 0) return i;
  return -1;
}

/**
 * Raw values of `type` read for `region` as unsigned ids: the same memory for unsigned types, a reinterpreting view
 * for signed ones once no value is negative (a negative id is no neuron id: refused naming the voxel, not wrapped to
 * a huge one silently).
 */
export function toLabelData(raw: RawLabels, type: LabelType, region: Region, path: string): LabelData {
  if (type.startsWith('uint')) return raw as LabelData;
  const signed = raw as Int8Array | Int16Array | Int32Array | BigInt64Array;
  const at = firstNegative(signed);
  if (at >= 0) {
    const [, h, w] = regionShape(region);
    const voxel = [Math.floor(at / (h * w)) + region.start[0], Math.floor(at / w) % h + region.start[1], at % w + region.start[2]];
    throw new EmsegIoError('invalid-data', path, `holds the negative id ${signed[at]} (${type}) at z,y,x ${voxel.join(',')}; `
      + 'label ids must be whole numbers from 0');
  }
  const { buffer, byteOffset, length } = signed;
  if (signed instanceof BigInt64Array) return new BigUint64Array(buffer, byteOffset, length);
  if (signed instanceof Int32Array) return new Uint32Array(buffer, byteOffset, length);
  if (signed instanceof Int16Array) return new Uint16Array(buffer, byteOffset, length);
  return new Uint8Array(buffer, byteOffset, length);
}
