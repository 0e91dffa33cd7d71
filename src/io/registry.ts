/**
 * One entry point for every volume format: `openVolume(path)` finds the format from the path and the file's
 * own bytes, and returns a VolumeReader (shape z,y,x, dtype, chunks, scales, readRegion). Paths name arrays
 * inside containers: `vol.zarr/0` or `vol.zarr` with `scale`, `vol.h5:/raw`; TIFF files larger than
 * LARGE_TIFF_BYTES and every BigTIFF are read by window; other PNG/TIFF files, folders and globs are stacks.
 */
import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import fg from 'fast-glob';
import { extname } from 'node:path';
import { EmsegIoError, fromFsError } from './errors.js';
import type { ColourPolicy } from './png.js';
import { HDF5_EXTENSIONS, HDF5_SIGNATURE, openHdf5, openHdf5Labels, splitHdf5Path } from './formats/hdf5.js';
import { openStackVolume } from './formats/stack-volume.js';
import { globBase } from './sources.js';
import { openTiffWindowed } from './formats/tiff-window.js';
import type { LabelData, LabelReader, Region, VolumeFormat, VolumeReader } from './formats/volume.js';
import { looksLikeZarr, openZarr, openZarrLabels } from './formats/zarr.js';
import { recordedPath } from '../util/paths.js';
import { displayPath, isUrl, storeFor } from './stores/index.js';

/** TIFF files above this size are read by window instead of whole (the stack reader loads a file at once). */
export const LARGE_TIFF_BYTES = 512 * 2 ** 20;

export interface OpenVolumeOptions {
  /** Level of a multiscale OME-Zarr group (0 = full resolution). */
  scale?: number;
  /** Colour PNG/TIFF stacks: refused by default, 'to-grey' keeps luma. */
  colour?: ColourPolicy;
  /** Zarr: refuse files whose real path lies outside the store's folder (the viewer serves only what it was given). */
  confined?: boolean;
  /**
   * Zarr: read an absent chunk file as the array's fill value (counted: reader.missingChunks) instead of refusing it
   * with 'missing-chunk'. The spec allows absent chunks, but for an input they usually mean an incomplete copy.
   */
  allowMissingChunks?: boolean;
  /** Zarr: the channel to read of a multi-channel map (a leading axis "c"; see ZarrOpenOptions.channel). */
  channel?: number;
  /**
   * PNG/TIFF stacks: the caller reads each section once, in order (outputs written in one piece): no decoded
   * sections are cached, and a whole section is returned as decoded, not copied (stack-volume.ts).
   */
  stream?: boolean;
}

interface FormatEntry {
  name: VolumeFormat;
  /** Cheap test on the path (and a few header bytes); the first entry that claims a path opens it. */
  claims(path: string): Promise<boolean>;
  open(path: string, options: OpenVolumeOptions): Promise<VolumeReader>;
}

async function head(path: string, n: number): Promise<Uint8Array | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
    const buf = new Uint8Array(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

function isBigTiff(bytes: Uint8Array): boolean {
  const BIGTIFF_VERSION = 43;
  const le = bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === BIGTIFF_VERSION;
  const be = bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[3] === BIGTIFF_VERSION;
  return bytes.length >= 4 && (le || be);
}

const FORMATS: FormatEntry[] = [
  {
    name: 'hdf5',
    async claims(path) {
      if (splitHdf5Path(path)) return true;
      const bytes = await head(path, HDF5_SIGNATURE.length);
      return bytes !== undefined && HDF5_SIGNATURE.every((b, i) => bytes[i] === b);
    },
    async open(path) {
      const parts = splitHdf5Path(path);
      if (!parts) {
        const ext = HDF5_EXTENSIONS.includes(extname(path).toLowerCase()) ? '' : ' (an HDF5 file)';
        throw new EmsegIoError('not-found', path, `is an HDF5 file${ext}; name the dataset after a colon, e.g. ${path}:/raw`);
      }
      return openHdf5(path, parts.file, parts.dataset);
    },
  },
  {
    name: 'zarr',
    claims: async (path) => (await isDirectory(path)) && looksLikeZarr(path),
    open: (path, o) => openZarr(path, { scale: o.scale, confined: o.confined, allowMissingChunks: o.allowMissingChunks, channel: o.channel }),
  },
  {
    name: 'tiff',
    async claims(path) {
      if (await isDirectory(path)) return false;
      const bytes = await head(path, 4);
      if (!bytes || !(bytes[0] === 0x49 || bytes[0] === 0x4d)) return false;
      if (isBigTiff(bytes)) return true;
      const size = (await stat(path).catch(() => undefined))?.size ?? 0;
      return size > LARGE_TIFF_BYTES;
    },
    open: (path) => openTiffWindowed(path),
  },
  {
    name: 'stack',
    claims: async () => true,
    open: (path, o) => openStackVolume(path, o.colour, o.stream),
  },
];

/**
 * The file or folder on disk that a volume path reads (`vol.h5:/raw` -> `vol.h5`, a glob -> its static folder), so
 * that outputs can be checked against the command's inputs.
 */
export function volumeLocation(path: string): string {
  if (isUrl(path)) return displayPath(path); // nothing on this machine: no output can be it
  const file = splitHdf5Path(path)?.file;
  if (file !== undefined) return file;
  return fg.isDynamicPattern(path) && !existsSync(path) ? globBase(path) : path;
}

/** A volume path as an output's metadata records it: relative to the output folder `dir` (util/paths.ts), the HDF5 dataset kept. */
export function recordedVolumePath(path: string, dir: string): string {
  if (isUrl(path)) return displayPath(path); // a URL is the same from anywhere; its credentials are never recorded
  const h5 = splitHdf5Path(path);
  return h5 ? `${recordedPath(h5.file, dir)}:${h5.dataset}` : recordedPath(path, dir);
}

/** The formats openVolume knows, in the order it tries them. */
export const VOLUME_FORMATS: readonly VolumeFormat[] = FORMATS.map((f) => f.name);

/** A volume read through a store other than the file system: OME-Zarr / Zarr only (other formats are whole files). */
function openRemote(path: string, options: OpenVolumeOptions): Promise<VolumeReader> {
  storeFor(path); // refuses a scheme no store serves
  const name = displayPath(path).replace(/[?#].*$/, '').replace(/\/+$/, '');
  if (splitHdf5Path(path) || /\.(tiff?|png|h5|hdf5|hdf)$/i.test(name)) {
    throw new EmsegIoError('unsupported', displayPath(path), 'only Zarr and OME-Zarr volumes are read from a URL; copy other formats to a local file first');
  }
  return openZarr(path, { scale: options.scale, allowMissingChunks: options.allowMissingChunks, channel: options.channel });
}

/** Is `path` an HDF5 dataset, a Zarr / OME-Zarr or a URL (a volume container), rather than PNG/TIFF files? */
export async function isContainerPath(path: string): Promise<boolean> {
  if (isUrl(path) || splitHdf5Path(path)) return true;
  return (await isDirectory(path)) && looksLikeZarr(path);
}

/** Opens any supported volume; lists of paths are PNG/TIFF stacks. */
export async function openVolume(path: string | readonly string[], options: OpenVolumeOptions = {}): Promise<VolumeReader> {
  if (typeof path !== 'string') return openStackVolume(path, options.colour, options.stream);
  if (isUrl(path)) return openRemote(path, options);
  if (options.scale !== undefined && !(await isDirectory(path))) {
    const file = splitHdf5Path(path)?.file ?? path;
    await stat(file).catch((err) => {
      throw fromFsError(err, file, 'opening'); // a missing file is reported as such, not as a scale problem
    });
    throw new EmsegIoError('invalid-option', path, 'has no scale levels; a scale level can be chosen only in an OME-Zarr image');
  }
  for (const f of FORMATS) {
    if (await f.claims(path)) return f.open(path, options);
  }
  throw new EmsegIoError('not-image', path, 'is not a volume emseg reads');
}

/**
 * Opens a label volume (neuron ids, instance labels): HDF5 and Zarr / OME-Zarr of any integer type, uint64 and signed
 * included (read as unsigned ids, 64-bit ones as bigint); TIFF, BigTIFF and PNG/TIFF stacks as their uint8..uint32
 * samples. Float data is refused ('invalid-data', naming the file). Images are never read through this.
 */
export async function openLabels(path: string | readonly string[], options: OpenVolumeOptions = {}): Promise<LabelReader> {
  if (typeof path === 'string' && !isUrl(path)) {
    const h5 = splitHdf5Path(path);
    if (h5 && options.scale === undefined) return openHdf5Labels(path, h5.file, h5.dataset);
    if ((await isDirectory(path)) && (await looksLikeZarr(path))) return openZarrLabels(path, options);
  }
  if (typeof path === 'string' && isUrl(path)) {
    storeFor(path);
    if (!splitHdf5Path(path)) return openZarrLabels(path, options);
  }
  return labelsOfImage(await openVolume(path, options));
}

/** An image reader's integer samples as ids (uint8..uint32, already unsigned). */
function labelsOfImage(reader: VolumeReader): LabelReader {
  if (reader.dtype === 'float32') {
    void reader.close();
    throw new EmsegIoError('invalid-data', reader.path, 'holds float32 values; label ids must be integers (uint8..uint64, int8..int64)');
  }
  const { dtype, readRegion, ...rest } = reader;
  return { ...rest, labelType: dtype, readLabels: (region: Region) => readRegion.call(reader, region) as Promise<LabelData>,
    close: () => reader.close() };
}

export { displayPath, isUrl } from './stores/index.js';
export type { LabelData, LabelReader, LabelType } from './formats/volume.js';
export type { Region, ScaleLevel, Vec3, VolumeFormat, VolumeReader } from './formats/volume.js';
