import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { EmsegError, isEmsegError } from '../errors.js';
import { DEFAULT_CHUNKS, DEFAULT_LABELS_NAME } from '../io/formats/convert.js';
import { convertToOmeZarr } from '../pipeline/convert.js';
import { COMPRESSIONS, MAX_LEVELS } from '../io/formats/ome-zarr-write.js';
import type { Compression, ImageKind } from '../io/formats/ome-zarr-write.js';
import { MAP_POLARITIES } from '../image/map-meaning.js';
import { missingChunksNotice, parseVec3 } from '../io/formats/volume.js';
import type { Vec3 } from '../io/formats/volume.js';
import { openVolume } from '../io/registry.js';
import type { ColourPolicy } from '../io/png.js';
import { ALLOW_MISSING_CHUNKS, JSON_FLAG, addVoxelSizeOptions, printResult } from './options.js';
import { barFactory } from './progress.js';

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected an integer >= 0, got "${value}"`);
  return n;
}

function vec3(integer: boolean) {
  return (value: string): Vec3 => {
    try {
      return parseVec3(value, 'value', integer);
    } catch (err) {
      if (isEmsegError(err)) throw new InvalidArgumentError(`expected z,y,x (or one value for all), got "${value}"`);
      throw err;
    }
  };
}

function oneOf<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}, got "${value}"`);
    return value as T;
  };
}

/** Flags every volume-reading command shares. */
export function volumeFlags(o: { toGrey?: boolean; allowMissingChunks?: boolean }): { colour: ColourPolicy; allowMissingChunks: boolean } {
  return { colour: o.toGrey ? 'to-grey' : 'reject', allowMissingChunks: o.allowMissingChunks ?? false };
}

const KINDS: readonly ImageKind[] = ['image', 'membrane', 'labels'];

export function registerConvert(program: Command): void {
  addVoxelSizeOptions(program
    .command('convert')
    .description('convert a volume (PNG/TIFF stack, TIFF/BigTIFF, HDF5 file.h5:/dataset, Zarr) to OME-Zarr (NGFF 0.4, Zarr v2) with a multiscale pyramid')
    .argument('<in>', 'input volume')
    .argument('<out>', 'output OME-Zarr folder (e.g. vol.zarr)')
    .option('--chunks <z,y,x>', `chunk shape (default ${DEFAULT_CHUNKS.join(',')})`, vec3(true))
    .option('--compression <c>', `${COMPRESSIONS.join(', ')} (default blosc: lz4 + shuffle, zarr-python's default)`, oneOf(COMPRESSIONS))
    .option('--levels <n>', `pyramid levels including full resolution, 1..${MAX_LEVELS} (default: until a level fits one chunk)`, (v) => {
      const n = nonNegativeInt(v);
      if (n < 1 || n > MAX_LEVELS) throw new InvalidArgumentError(`expected 1..${MAX_LEVELS}, got "${v}"`);
      return n;
    })
    .option('--kind <k>', `${KINDS.join(', ')}: pyramid by mean (image, membrane) or mode (labels) (default image)`, oneOf(KINDS))
    .option('--polarity <p>', `membrane maps: membrane-high (P(membrane)) or membrane-low (ISBI: 0 = membrane)`, oneOf(MAP_POLARITIES))
    .option('--labels <path>', `a labels volume of the same shape, written as the OME-Zarr labels image "${DEFAULT_LABELS_NAME}"`))
    .option('--scale <level>', 'input scale level when the input is a multiscale OME-Zarr image', nonNegativeInt)
    .option('--to-grey', 'reduce colour images to their luma instead of refusing them')
    .option(...ALLOW_MISSING_CHUNKS)
    .option('--overwrite', 'replace an existing output emseg wrote (only once the new one is complete; never a folder holding other files, a link or an input)')
    .option('--quiet', 'no progress bar')
    .option(...JSON_FLAG)
    .action(async (input: string, out: string, o) => {
      if (o.kind === 'membrane' && !o.polarity) {
        throw new EmsegError('invalid-option', '--polarity', 'a membrane map (--kind membrane) needs --polarity membrane-high or membrane-low; it is recorded, never guessed');
      }
      const src = await openVolume(input, { scale: o.scale, ...volumeFlags(o) });
      const labels = o.labels ? await openVolume(o.labels, volumeFlags(o)) : undefined;
      try {
        const w = await convertToOmeZarr(src, out, {
          chunks: o.chunks, compression: o.compression as Compression | undefined, levels: o.levels, kind: o.kind,
          polarity: o.polarity, voxelSize: o.voxelSize, unit: o.unit, labels, overwrite: o.overwrite ?? false,
          notice: (line) => process.stderr.write(`emseg convert: ${line}\n`),
        }, barFactory(o.quiet ?? false));
        printResult(o.json, 'convert', `wrote ${out}: ${src.shape.join(' x ')} ${src.dtype}, chunks ${w.chunks.join(' x ')}, ${w.levels.length} levels${labels ? `, labels/${DEFAULT_LABELS_NAME}` : ''}\n`,
          { out, shape: src.shape, dtype: src.dtype, chunks: w.chunks, levels: w.levels.length, ...(labels ? { labels: `labels/${DEFAULT_LABELS_NAME}` } : {}) });
      } finally {
        for (const v of [src, labels]) {
          const notice = v && missingChunksNotice(v);
          if (notice) process.stderr.write(`emseg convert: ${notice}\n`);
        }
        await src.close();
        await labels?.close();
      }
    });
}
