/**
 * Any readable volume to OME-Zarr with a pyramid, streamed in bands of chunk rows so that memory is bounded
 * by two bands (one being read while the previous is written), not by the volume. The output is built in a
 * hidden sibling folder and renamed into place only when complete: a failed or killed conversion leaves no
 * half-written OME-Zarr under the output name.
 */
import { rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { registerTemp, releaseTemp, sweepStaleTemps, tempPathFor } from '../../util/temp-files.js';
import { EmsegIoError } from '../errors.js';
import { outputGuard } from '../output-guard.js';
import { recordedVolumePath, volumeLocation } from '../registry.js';
import { chooseVoxelSize } from '../voxel-size.js';
import { checkVolumeTarget } from '../volume-output.js';
import { createOmeZarr } from './ome-zarr-write.js';
import type { Compression, ImageKind, OmeZarrWriter } from './ome-zarr-write.js';
import type { MapPolarity } from '../../image/map-meaning.js';
import { readAhead } from './volume.js';
import type { Region, Vec3, VolumeReader } from './volume.js';

/** Default chunks: 8 sections deep (a stack band holds 8 decoded sections), 512 x 512 in plane. */
export const DEFAULT_CHUNKS: Vec3 = [8, 512, 512];
export const DEFAULT_LABELS_NAME = 'cells';

/** Progress reporting without knowing who shows it (pipeline's ProgressFactory has this shape). */
export type Reporter = (label: string, total: number) => { update(value: number): void; stop(): void };
const silent: Reporter = () => ({ update() {}, stop() {} });

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

/** Bands of whole chunk rows: chunk depth in z, a multiple of the chunk height in y (at least the source's own read unit), all of x. */
export function bandsOf(src: VolumeReader, chunks: Vec3): Region[] {
  const [d, h, w] = src.shape;
  const rows = Math.max(1, Math.ceil(Math.min(src.chunks[1], h) / chunks[1]));
  const bandH = rows * chunks[1];
  const out: Region[] = [];
  for (let z = 0; z < d; z += chunks[0]) {
    for (let y = 0; y < h; y += bandH) out.push({ start: [z, y, 0], end: [Math.min(z + chunks[0], d), Math.min(y + bandH, h), w] });
  }
  return out;
}

/** Copies `src` into `writer` band by band, reading the next band while the current one is written. */
export async function copyVolume(src: VolumeReader, writer: OmeZarrWriter, report: Reporter = silent, label = 'convert'): Promise<void> {
  const bands = bandsOf(src, writer.chunks);
  const bar = report(label, bands.length);
  try {
    let next = readAhead(src, bands[0]!);
    for (let i = 0; i < bands.length; i++) {
      const data = await next;
      if (i + 1 < bands.length) next = readAhead(src, bands[i + 1]!);
      await writer.writeRegion(bands[i]!, data);
      bar.update(i + 1);
    }
  } finally {
    bar.stop();
  }
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

export async function convertToOmeZarr(src: VolumeReader, out: string, o: ConvertOptions = {}, report: Reporter = silent): Promise<OmeZarrWriter> {
  if (o.labels) checkLabels(src, o.labels);
  checkKind(src, o.kind);
  const voxel = chooseVoxelSize(src.voxelSize, { voxelSize: o.voxelSize, unit: o.unit }, src.path, o.notice);
  const inputs = [src.path, ...(o.labels ? [o.labels.path] : [])].map(volumeLocation);
  const exists = checkVolumeTarget(out, outputGuard(o.overwrite ?? false, inputs));
  sweepStaleTemps(dirname(out)); // the half-built output of a killed conversion, named on stderr by the CLI
  const tmp = tempPathFor(out);
  registerTemp(tmp); // Ctrl-C or SIGTERM removes the half-built output
  const chunks = (o.chunks ?? DEFAULT_CHUNKS).map((c, a) => Math.min(c, src.shape[a]!)) as unknown as Vec3;
  try {
    const writer = await createOmeZarr(tmp, {
      shape: src.shape, dtype: src.dtype, chunks, kind: o.kind ?? 'image', compression: o.compression, levels: o.levels,
      voxelSize: voxel?.size, unit: voxel?.unit, polarity: o.polarity, name: basename(out).replace(/\.zarr$/i, ''),
      // The source relative to the output (util/paths.ts): the metadata names no machine's folders.
      extra: { source: recordedVolumePath(src.path, out), sourceFormat: src.format },
    });
    // One process writes every chunk: each array's chunk digests go in the output's .emseg/ (chunk-digests.ts).
    writer.recordDigests();
    await copyVolume(src, writer, report, 'convert');
    writer.sealDigests();
    await pyramid(writer, report, 'pyramid');
    if (o.labels) {
      const lw = await writer.addLabels(o.labelsName ?? DEFAULT_LABELS_NAME, { dtype: o.labels.dtype, compression: o.compression });
      lw.recordDigests();
      await copyVolume(o.labels, lw, report, 'labels');
      lw.sealDigests();
      await pyramid(lw, report, 'labels pyramid');
    }
    await replace(tmp, out, exists);
    return { ...writer, dir: out };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw namingOutput(err, tmp, out);
  } finally {
    releaseTemp(tmp);
  }
}

/** A file error inside the hidden folder is about the output the user named (a full disk, a read-only mount). */
function namingOutput(err: unknown, tmp: string, out: string): unknown {
  if (!(err instanceof EmsegIoError) || !err.path.startsWith(tmp)) return err;
  const path = out + err.path.slice(tmp.length);
  return new EmsegIoError(err.code, path, err.message.slice(err.path.length + 2).split(tmp).join(out), { cause: err });
}

async function pyramid(writer: OmeZarrWriter, report: Reporter, label: string): Promise<void> {
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
async function replace(tmp: string, out: string, exists: boolean): Promise<void> {
  const old = tmp.replace(/\.tmp$/, '.old');
  if (exists) await rename(out, old);
  await rename(tmp, out);
  if (exists) await rm(old, { recursive: true, force: true });
}
