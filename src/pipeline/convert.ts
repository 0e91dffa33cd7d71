/**
 * `emseg convert`: any readable volume (and a labels volume beside it) to an OME-Zarr with a pyramid. The copy
 * of each array is a block task run by the engine (engine/run.ts): bands of whole chunk rows, the next band read
 * while one is written, so memory holds the bands in flight, not the volume. The output is built in a hidden
 * folder and moved into place only once complete (io/formats/convert.ts), so its done markers live in memory: a
 * conversion is not resumed, it is redone; a band that fails stops it with its own error.
 */
import { EmsegError } from '../errors.js';
import { DEFAULT_LABELS_NAME, bandBlock, openConversion, pyramid, type ConvertOptions, type Reporter } from '../io/formats/convert.js';
import type { OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import type { StackData, VolumeReader } from '../io/formats/volume.js';
import { eachBlock, planBlocks } from './blocks.js';
import { runTask } from './engine/run.js';
import { memoryMarkers } from './engine/memory-markers.js';
import type { BlockTask } from './engine/task.js';

export type { ConvertOptions } from '../io/formats/convert.js';

/** One array copied from `src` into `writer`, band by band. */
function copyTask(name: string, src: VolumeReader, writer: OmeZarrWriter): BlockTask<StackData, StackData> {
  const plan = planBlocks(src.shape, bandBlock(src, writer.chunks));
  return { name, plan, markers: memoryMarkers(plan, writer.dir), upstream: [],
    read: (b) => src.readRegion(b.write),
    compute: (_b, data) => data,
    async write(b, data) {
      await writer.writeRegion(b.write, data);
      return [];
    } };
}

/** Copies `src` into `writer` (one pass, no retry: a band that fails stops the copy with its error). */
async function copyVolume(src: VolumeReader, writer: OmeZarrWriter, report: Reporter, label: string): Promise<void> {
  const task = copyTask(label, src, writer);
  const outcome = await runTask(task, eachBlock(task.plan), { attempts: 1, stopOnFailure: true, progress: report });
  if (outcome.failed.length > 0) throw new EmsegError('blocks-failed', writer.dir, `${outcome.failed.length} band(s) failed`);
}

const silent: Reporter = () => ({ update() {}, stop() {} });

export async function convertToOmeZarr(src: VolumeReader, out: string, o: ConvertOptions = {}, report: Reporter = silent): Promise<OmeZarrWriter> {
  const c = await openConversion(src, out, o);
  try {
    // One process writes every chunk: each array's chunk digests go in the output's .emseg/ (chunk-digests.ts).
    await c.writer.recordDigests();
    await copyVolume(src, c.writer, report, 'convert');
    await c.writer.sealDigests();
    await pyramid(c.writer, report, 'pyramid');
    if (o.labels) {
      const lw = await c.writer.addLabels(o.labelsName ?? DEFAULT_LABELS_NAME, { dtype: o.labels.dtype, compression: o.compression });
      await lw.recordDigests();
      await copyVolume(o.labels, lw, report, 'labels');
      await lw.sealDigests();
      await pyramid(lw, report, 'labels pyramid');
    }
    return await c.finish();
  } catch (err) {
    throw await c.abort(err);
  }
}
