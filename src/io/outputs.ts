/**
 * The output registry: what `--out` (and predict's `--format`) names, decided once, and what each kind of output
 * can hold. The format registry (registry.ts) opens any readable volume; this says where the result can go. Commands
 * route by it: an OME-Zarr output is written block by block (resumable, shardable), every other kind in one piece
 * from sections read whole. A combination that cannot work is refused naming both formats, before any work is done.
 */
import { existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import { EmsegError } from '../errors.js';
import type { SampleType } from '../image/stack.js';
import { EmsegIoError } from './errors.js';
import { HDF5_EXTENSIONS, splitHdf5Path } from './formats/hdf5.js';
import { refuseRemoteOutput } from './stores/paths.js';
import { checkOutputPath, hasTiffExtension, isFolderPath, type OutputFormat } from './write.js';

/** Outputs written in one piece: predict's ISBI submission format and the stack formats of writeStack. */
export type StackFormat = 'isbi' | OutputFormat;
export type OutputKind = 'ome-zarr' | StackFormat;

/** The formats predict's --format names (an OME-Zarr output is chosen by its path, x.zarr). */
export const STACK_FORMATS: readonly StackFormat[] = ['isbi', 'tiff', 'png-folder', 'tiff-folder'];

export interface OutputTarget {
  kind: OutputKind;
  path: string;
  /** The kind in words, for messages ("a multi-page TIFF output (maps.tif)"). */
  name: string;
  /**
   * Written block by block: a block layout (--block), done markers to resume (--restart), shards (--shard). Only
   * OME-Zarr; the other kinds are written in one piece, section after section.
   */
  blockwise: boolean;
  /** The sample types it stores as they are (PNG: 8-bit maps, float maps written as round(255 p); no 32-bit labels). */
  holds: readonly SampleType[];
  /** OME-Zarr labels inside an existing OME-Zarr image (`IMAGE/labels/NAME`). */
  inside?: { image: string; name: string };
}

const ALL: readonly SampleType[] = ['uint8', 'uint16', 'uint32', 'float32'];

const KINDS: Record<OutputKind, { name: string; holds: readonly SampleType[] }> = {
  'ome-zarr': { name: 'an OME-Zarr output', holds: ALL },
  isbi: { name: 'an ISBI-format multi-page float TIFF output', holds: ['float32'] },
  tiff: { name: 'a multi-page TIFF output', holds: ALL },
  'tiff-folder': { name: 'a folder of TIFF slices', holds: ALL },
  'png-folder': { name: 'a folder of PNG slices', holds: ['uint8', 'uint16'] },
};

function target(kind: OutputKind, path: string, inside?: OutputTarget['inside']): OutputTarget {
  const { name, holds } = KINDS[kind];
  return { kind, path, name: `${name} (${path})`, blockwise: kind === 'ome-zarr', holds, ...(inside ? { inside } : {}) };
}

/** A path that names an OME-Zarr folder: it ends in .zarr (a trailing separator allowed). */
export function isZarrPath(path: string): boolean {
  return /\.zarr[/\\]?$/i.test(path);
}

/** `IMAGE/labels/NAME` where IMAGE is an existing OME-Zarr group: labels go inside that image. */
export function labelsInside(out: string): { image: string; name: string } | undefined {
  const m = /^(.+)[/\\]labels[/\\]([^/\\]+)[/\\]?$/.exec(out);
  if (!m) return undefined;
  const image = m[1]!;
  return existsSync(join(image, '.zattrs')) || existsSync(join(image, 'zarr.json')) ? { image, name: m[2]! } : undefined;
}

/** emseg reads HDF5 but writes none: an output path naming one is refused, with the formats it does write. */
function refuseHdf5(out: string, what: string): void {
  if (!splitHdf5Path(out) && !HDF5_EXTENSIONS.includes(extname(out).toLowerCase())) return;
  throw new EmsegIoError('wrong-format', out, `names an HDF5 output, but emseg reads HDF5 and does not write it; write the ${what} as an ` +
    'OME-Zarr output (x.zarr, which h5py users read with zarr-python) or as TIFF (x.tif)');
}

function stackFormat(format: string): StackFormat {
  if (!(STACK_FORMATS as readonly string[]).includes(format)) {
    throw new EmsegError('invalid-option', '--format', `must be ${STACK_FORMATS.slice(0, -1).join(', ')} or ${STACK_FORMATS.at(-1)} (got "${format}")`);
  }
  return format as StackFormat;
}

/**
 * Where predict's membrane maps go: an OME-Zarr output for a path ending in .zarr, else the stack format `format`
 * (checked against the path as today: checkOutputPath). `given`: the user chose the format (--format); a format
 * chosen for an OME-Zarr path is refused naming both, not ignored.
 */
export function mapsOutput(out: string, format: string, given = true): OutputTarget {
  refuseRemoteOutput(out, isZarrPath(out)); // http(s) is read-only; s3:// takes OME-Zarr outputs
  refuseHdf5(out, 'maps');
  if (isZarrPath(out)) {
    if (given) {
      const f = stackFormat(format);
      throw new EmsegError('invalid-option', '--format', `${f} writes ${KINDS[f].name}, but ${out} names an OME-Zarr output (x.zarr, ` +
        `written blockwise); drop --format for OME-Zarr maps, or give a .tif or folder path for ${f}`);
    }
    return target('ome-zarr', out);
  }
  return stackOutput(out, format);
}

/**
 * A stack output of `format` at `out`, for the writers that work in one piece (runPredict): an OME-Zarr or HDF5
 * path is refused naming both formats, a path that does not fit the format as checkOutputPath refuses it.
 */
export function stackOutput(out: string, format: string): OutputTarget {
  refuseRemoteOutput(out); // stores other than the file system are read-only
  refuseHdf5(out, 'maps');
  const f = stackFormat(format);
  if (isZarrPath(out)) {
    throw new EmsegIoError('wrong-format', out, `names an OME-Zarr output, which is written blockwise (emseg predict --out x.zarr: ` +
      `runVolumePredict); ${KINDS[f].name} is written in one piece: give a .tif or folder path`);
  }
  checkOutputPath(out, f);
  return target(f, out);
}

/**
 * Where segment's cells go: an OME-Zarr labels image (x.zarr, or IMAGE.zarr/labels/NAME inside an existing
 * image), else uint32 labels as one multi-page .tif or a folder of .tif slices (any other path). PNG cannot hold
 * 32-bit labels: a .png path is refused.
 */
export function labelsOutput(out: string): OutputTarget {
  refuseRemoteOutput(out, isZarrPath(out)); // http(s) is read-only; s3:// takes OME-Zarr outputs
  refuseHdf5(out, 'labels');
  const inside = labelsInside(out);
  if (isZarrPath(out) || inside) return target('ome-zarr', out, inside);
  const folder = isFolderPath(out);
  if (!folder && extname(out).toLowerCase() === '.png') {
    throw new EmsegIoError('wrong-format', out, 'labels are 32-bit integers, which PNG cannot hold; give a .tif path (one ' +
      'multi-page file), a folder path (one .tif per section) or an OME-Zarr output (x.zarr)');
  }
  const format: OutputFormat = !folder && hasTiffExtension(out) ? 'tiff' : 'tiff-folder';
  checkOutputPath(out, format);
  return target(format, out);
}

/**
 * A labels output for the writers that work in one piece (runSegment): an OME-Zarr labels path is refused naming
 * both (runVolumeSegment writes it), a stack one is returned with its format.
 */
export function labelStackOutput(out: string): OutputTarget & { kind: OutputFormat } {
  const t = labelsOutput(out);
  if (t.kind === 'ome-zarr') {
    throw new EmsegIoError('wrong-format', out, 'names an OME-Zarr labels output, which is written blockwise (emseg segment --out ' +
      'cells.zarr: runVolumeSegment); a label stack is one multi-page .tif or a folder of .tif slices');
  }
  return t as OutputTarget & { kind: OutputFormat };
}
