/**
 * Any readable volume to OME-Zarr with a pyramid: the checks, the target and its hidden build folder. The output
 * is built in a hidden sibling folder and renamed into place only when complete: a failed or killed conversion
 * leaves no half-written OME-Zarr under the output name. The copy, in bands of chunk rows (memory bounded by the
 * bands in flight, not by the volume), is a block task run by the pipeline's engine (pipeline/convert.ts).
 */
import { rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { registerTemp, releaseTemp, sweepStaleTemps, tempPathFor } from '../../util/temp-files.js';
import { EmsegIoError } from '../errors.js';
import { outputGuard } from '../output-guard.js';
import { recordedVolumePath, volumeLocation } from '../registry.js';
import { chooseVoxelSize } from '../voxel-size.js';
import { checkStoredVolumeTarget, checkVolumeTarget } from '../volume-output.js';
import { storeFor } from '../stores/index.js';
import { isS3Url } from '../stores/s3-url.js';
import { createOmeZarr } from './ome-zarr-write.js';
import type { Compression, ImageKind, OmeZarrOptions, OmeZarrWriter } from './ome-zarr-write.js';
import type { MapPolarity } from '../../image/map-meaning.js';
import type { Vec3, VolumeReader } from './volume.js';

/** Default chunks: 8 sections deep (a stack band holds 8 decoded sections), 512 x 512 in plane. */
export const DEFAULT_CHUNKS: Vec3 = [8, 512, 512];
export const DEFAULT_LABELS_NAME = 'cells';

/** Progress reporting without knowing who shows it (pipeline's ProgressFactory has this shape). */
export type Reporter = (label: string, total: number) => { update(value: number): void; stop(): void };

export interface ConvertOptions {
  chunks?: Vec3;
  compression?: Compression;
  levels?: number;
  kind?: ImageKind;
  polarity?: MapPolarity;
  /** Voxel size (z, y, x) and unit to record over the source's own (io/voxel-size.ts chooseVoxelSize). */
  voxelSize?: Vec3;
  unit?: string;
  /** Told when the recorded voxel size differs from the source's. */
  notice?: (line: string) => void;
  /** A labels volume of the same shape, written as the OME-Zarr labels image `labelsName`. */
  labels?: VolumeReader;
  labelsName?: string;
  overwrite?: boolean;
}

/**
 * The band a conversion copies at a time, as a block: chunk depth in z, a multiple of the chunk height in y (at
 * least the source's own read unit, so a stack or a strip TIFF is decoded once), all of x.
 */
export function bandBlock(src: VolumeReader, chunks: Vec3): Vec3 {
  const [, h, w] = src.shape;
  const rows = Math.max(1, Math.ceil(Math.min(src.chunks[1], h) / chunks[1]));
  return [chunks[0], rows * chunks[1], w];
}

function checkLabels(src: VolumeReader, labels: VolumeReader): void {
  if (labels.shape.some((v, a) => v !== src.shape[a])) {
    throw new EmsegIoError('mismatch', labels.path, `labels volume is [${labels.shape.join(',')}] (z,y,x) but the image ${src.path} is [${src.shape.join(',')}]; they must have the same shape`);
  }
  if (labels.dtype === 'float32') throw new EmsegIoError('invalid-data', labels.path, 'labels must be integers (uint8, uint16 or uint32), got float32');
}

/** A labels image is integers: said of the input and --kind, before the writer refuses its own 'dtype' field. */
function checkKind(src: VolumeReader, kind: ImageKind | undefined): void {
  if (kind === 'labels' && src.dtype === 'float32') {
    throw new EmsegIoError('invalid-data', src.path, 'is float32, but a labels image (--kind labels) holds integers (uint8, uint16 or uint32)');
  }
}

/**
 * Opens the hidden folder a conversion builds the output in (registered: Ctrl-C or SIGTERM removes it), after
 * checking the inputs and the target; `finish` moves the finished folder into place, `abort` removes it. The copy
 * itself is a block task of the pipeline (pipeline/convert.ts): this module knows nothing of runners.
 */
export async function openConversion(src: VolumeReader, out: string, o: ConvertOptions = {}): Promise<Conversion> {
  if (o.labels) checkLabels(src, o.labels);
  checkKind(src, o.kind);
  const voxel = chooseVoxelSize(src.voxelSize, { voxelSize: o.voxelSize, unit: o.unit }, src.path, o.notice);
  const inputs = [src.path, ...(o.labels ? [o.labels.path] : [])].map(volumeLocation);
  const chunks = (o.chunks ?? DEFAULT_CHUNKS).map((c, a) => Math.min(c, src.shape[a]!)) as unknown as Vec3;
  const options: OmeZarrOptions = {
    shape: src.shape, dtype: src.dtype, chunks: chunks, kind: o.kind ?? 'image', compression: o.compression, levels: o.levels,
    voxelSize: voxel?.size, unit: voxel?.unit, polarity: o.polarity, name: basename(out).replace(/\.zarr$/i, ''),
    // The source relative to the output (util/paths.ts): the metadata names no machine's folders.
    extra: { source: recordedVolumePath(src.path, out), sourceFormat: src.format },
  };
  if (isS3Url(out)) return openStoredConversion(out, options, o.overwrite ?? false, inputs);
  const exists = checkVolumeTarget(out, outputGuard(o.overwrite ?? false, inputs));
  sweepStaleTemps(dirname(out)); // the half-built output of a killed conversion, named on stderr by the CLI
  const tmp = tempPathFor(out);
  registerTemp(tmp); // Ctrl-C or SIGTERM removes the half-built output
  const abort = async (err: unknown) => {
    await rm(tmp, { recursive: true, force: true });
    releaseTemp(tmp);
    return namingOutput(err, tmp, out);
  };
  try {
    const writer = await createOmeZarr(tmp, options);
    const finish = async () => {
      await replace(tmp, out, exists);
      releaseTemp(tmp);
      return { ...writer, dir: out };
    };
    return { writer, finish, abort };
  } catch (err) {
    throw await abort(err);
  }
}

/**
 * A conversion into a bucket, which has no rename: built in place with the group's metadata left out until every
 * array is written (no reader takes it for an image before), and removed again if it fails. An existing output is
 * refused, or with `overwrite` (if emseg wrote it and it holds only Zarr objects) deleted first.
 */
async function openStoredConversion(out: string, options: OmeZarrOptions, overwrite: boolean, inputs: string[]): Promise<Conversion> {
  const { store, loc } = storeFor(out);
  if (await checkStoredVolumeTarget(store, loc, { overwrite, inputs })) await store.remove(loc, true);
  const abort = async (err: unknown) => {
    await store.remove(loc, true).catch(() => undefined); // the error that stopped it is the one to report
    return err;
  };
  try {
    const writer = await createOmeZarr(loc, options, { unpublished: true });
    const finish = async () => {
      await writer.publish();
      return writer;
    };
    return { writer, finish, abort };
  } catch (err) {
    throw await abort(err);
  }
}

/** A conversion in progress: its writer (in the hidden folder), and the two ways it ends. */
export interface Conversion {
  writer: OmeZarrWriter;
  /** Moves the finished output into place (an old one is removed only then); the writer, named by the output. */
  finish(): Promise<OmeZarrWriter>;
  /** Removes the hidden folder; returns the error to throw, its paths naming the output instead of the folder. */
  abort(err: unknown): Promise<unknown>;
}

/** A file error inside the hidden folder is about the output the user named (a full disk, a read-only mount). */
function namingOutput(err: unknown, tmp: string, out: string): unknown {
  if (!(err instanceof EmsegIoError) || !err.path.startsWith(tmp)) return err;
  const path = out + err.path.slice(tmp.length);
  return new EmsegIoError(err.code, path, err.message.slice(err.path.length + 2).split(tmp).join(out), { cause: err });
}

/** The writer's lower levels, with a bar once their total is known. */
export async function pyramid(writer: OmeZarrWriter, report: Reporter, label: string): Promise<void> {
  if (writer.levels.length < 2) return;
  let bar: ReturnType<Reporter> | undefined;
  try {
    await writer.buildPyramid((done, total) => {
      bar ??= report(label, total);
      bar.update(done);
    });
  } finally {
    bar?.stop();
  }
}

/**
 * Moves the finished folder into place; an old output is removed only after the new one is whole. The old one is
 * not registered as a temporary: between the two renames it is the only copy of the previous output.
 */
export async function replace(tmp: string, out: string, exists: boolean): Promise<void> {
  const old = tmp.replace(/\.tmp$/, '.old');
  if (exists) await rename(out, old);
  await rename(tmp, out);
  if (exists) await rm(old, { recursive: true, force: true });
}
