/**
 * A blockwise job for the SIGKILL test: inverts the ISBI sample sections block by block into an OME-Zarr with
 * done markers, printing one line per finished block, then `computed N skipped M failed F`.
 * Usage: node dist/test/helpers/block-worker.js OUT [delayMs]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { createOmeZarr } from '../../src/io/formats/ome-zarr-write.js';
import { openVolume } from '../../src/io/registry.js';
import { eachBlock, planBlocks } from '../../src/pipeline/blocks.js';
import { runTask } from '../../src/pipeline/engine/run.js';
import { digest, openMarkers, volumeFingerprint } from '../../src/pipeline/markers.js';
import { workTask } from './tasks.js';
import { SAMPLES } from './data.js';

export const WORKER_BLOCK = [1, 64, 64] as const;

const [out, delay = '0'] = process.argv.slice(2);
const src = await openVolume(join(SAMPLES, 'images'));
const plan = planBlocks(src.shape, WORKER_BLOCK);
const writer = await createOmeZarr(out!, { shape: src.shape, dtype: 'uint8', chunks: WORKER_BLOCK, levels: 1 }, { resume: true });
const markers = await openMarkers(out!, plan, { model: digest('invert'), input: volumeFingerprint(src) });
const task = workTask(plan, markers, async (b) => {
  const data = await src.readRegion(b.write);
  await sleep(Number(delay));
  await writer.writeRegion(b.write, data.map((v) => 255 - v));
  return writer.chunkFiles(b.write);
});
const progress = () => ({ update: (n: number) => process.stdout.write(`block ${n}\n`), stop() {} });
const result = await runTask(task, eachBlock(plan), { progress });
process.stdout.write(`computed ${result.computed} skipped ${result.skipped} failed ${result.failed.length}\n`);
process.exitCode = result.failed.length > 0 ? 1 : 0;
