/**
 * Blockwise segmentation of a membrane-map volume into an OME-Zarr labels image (`emseg segment --out cells.zarr`,
 * or `--out maps.zarr/labels/cells` inside an image), for sections larger than a block; resumable and shardable.
 * Sections are segmented in 2-D, as `emseg segment` does. Three passes, daisy-style, each leaving files that a
 * later process can trust:
 *
 * 1. Per block (sharded): segment the read region (block + halo), write the block's provisional labels
 *    (block-local ids) and its border record (segment-blocks.ts); done markers in `OUT/.emseg/segment/.emseg/`.
 * 2. Once every pass-1 block is done, by whichever process sees that: stitch the border records into one
 *    relabel table (segment-stitch.ts), written atomically; its content depends only on pass 1, so two processes
 *    that both compute it write the same bytes.
 * 3. Per block (sharded): rewrite the provisional labels with the final consecutive ids into the output; done
 *    markers in `OUT/.emseg/` (what `emseg status OUT` shows). Whoever finds every block done builds the pyramid
 *    and removes the provisional labels and border records.
 *
 * Every pass's run identity is the block layout + the maps' fingerprint + the segmentation parameters, so a
 * rerun with the same command skips what is done and refuses (or with --restart discards) a changed run.
 */
import { labelsInside } from '../io/outputs.js';
import { basename, join, resolve } from 'node:path';
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import { createLabelsImage, createOmeZarr, type OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import { missingChunksNotice, type StackData, type Vec3, type VolumeReader } from '../io/formats/volume.js';
import { recordedAsMap, volumeSpread } from '../io/plausibility.js';
import { isUrl, openVolume, recordedVolumePath, volumeLocation } from '../io/registry.js';
import { storeFor } from '../io/stores/index.js';
import { chooseVoxelSize, type VoxelSize } from '../io/voxel-size.js';
import type { SegmentOptions } from '../segment/index.js';
import { planBlocks, type Block, type BlockPlan, type Shard } from './blocks.js';
import { mapSegmentOptions } from './close-gaps.js';
import { MEMBRANE_POLARITY, decideMapPolarity, flagPolarity, type MapPolarity } from '../image/map-meaning.js';
import { MARKER_DIR, digest, openMarkers, readRunStatus, volumeFingerprint, type BlockFailure, type MarkerStore, type RunStatus } from './markers.js';
import { runJob, type TaskOutcome } from './engine/run.js';
import { jobsetOf, type BlockTask, type TaskJob } from './engine/task.js';
import { silentProgress, type ProgressFactory } from './progress.js';
import { segmentBlock, storeSegmentedBlock, type SegmentContext, type SegmentedBlock } from './segment-blocks.js';
import { blockTable, computeStitch, readStitch, readStitchRecord } from './segment-stitch.js';

/** Default block edge in y and x. */
export const DEFAULT_SEGMENT_BLOCK_EDGE = 1024;
/** Default halo in y and x: wide enough that smoothing, seeds and merges near a block border see the cell. */
export const DEFAULT_SEGMENT_HALO = 128;
/** The work folder of passes 1 and 2, inside the output's marker folder (hidden from Zarr readers). */
export const SEGMENT_WORK_DIR = 'segment';
/** Bumped when the meaning of the pass-1 records changes, so old records are not reused. */
const SEGMENT_FORMAT = 'emseg-segment-blocks-1';

export interface VolumeSegmentJob {
  /** A membrane-map volume (e.g. `maps.zarr` from emseg predict). */
  pred: string;
  /** OME-Zarr labels output: a folder ending in .zarr, or `IMAGE.zarr/labels/NAME` inside an OME-Zarr image. */
  out: string;
  /** Values are P(membrane); default: the polarity recorded in the maps' metadata, else the ISBI polarity. */
  membraneProb?: boolean;
  /** Watershed options the user gave; the rest come from the maps' metadata (the model's tuned record), else the defaults. */
  options: Partial<SegmentOptions>;
  /** Told which options came from the maps' metadata. */
  notice?: (line: string) => void;
  /** The maps are maps even if their values are spread like a raw image's (else refused, code 'not-a-map'). */
  predIsMap?: boolean;
  block?: Vec3;
  halo?: number;
  overwrite?: boolean;
  scale?: number;
  shard?: Shard;
  /** Discard the progress of a run with another layout, maps or parameters. */
  restart?: boolean;
  /** Allow adding labels inside an OME-Zarr image emseg did not write. */
  foreignImage?: boolean;
  /** Read absent chunk files of the maps as their fill value (one notice at the end) instead of refusing them. */
  allowMissingChunks?: boolean;
  /**
   * After this process's pass 1, wait (polling the markers every `pollMs`) until every block's pass 1 is done,
   * then stitch and relabel: for shards that all start together. Stops waiting when a block has failed.
   */
  wait?: boolean;
  pollMs?: number;
  attempts?: number;
  /**
   * The voxel size (z, y, x) and unit a standalone labels output records, over the maps' own (io/voxel-size.ts);
   * labels inside an image take the image's.
   */
  voxelSize?: Vec3;
  unit?: string;
}

export interface VolumeSegmentResult {
  out: string;
  plan: BlockPlan;
  /** Pass 1 and pass 3 of this process's blocks (its shard). */
  segmented: TaskOutcome;
  relabelled: TaskOutcome;
  /** Whether this process computed the stitching, found it done, or could not yet (pass 1 unfinished). */
  stitch: 'computed' | 'found' | 'waiting';
  /** Every block of pass 3 is done and the pyramid is built. */
  complete: boolean;
  /** Cells in the whole volume (ids 1..cells) and pairs joined across block borders, once stitched. */
  cells?: number;
  joined?: number;
  failed: BlockFailure[];
}

const NOTHING: TaskOutcome = { computed: 0, skipped: 0, failed: [], voxels: 0 };

/** What the maps' values mean: the flag, else the maps' recorded polarity, else the ISBI polarity (as stack segment). */
function mapPolarity(job: VolumeSegmentJob, reader: VolumeReader): MapPolarity {
  return decideMapPolarity(reader.attributes, reader.path, { given: flagPolarity(job.membraneProb) });
}

function checkJob(job: VolumeSegmentJob, reader: VolumeReader): void {
  if (job.shard && job.overwrite) {
    throw new EmsegError('invalid-option', '--overwrite', 'cannot be combined with --shard (each shard would delete the others\' work); use --restart, or delete the output first');
  }
  if (!isUrl(job.pred) && resolve(job.out) === resolve(job.pred.replace(/[/\\]\d+[/\\]?$/, ''))) {
    throw new EmsegError('invalid-option', '--out', `is the input ${job.pred}; write the labels elsewhere (or inside it, as ${join(job.pred, 'labels', 'cells')})`);
  }
  if (reader.dtype !== 'uint8' && reader.dtype !== 'float32') {
    throw new EmsegIoError('unsupported', reader.path, `is ${reader.dtype}; membrane maps are uint8 (0..255) or float32 (0..1)`);
  }
}

/** Refuses a raw image given as maps (it segments into noise with no error), judged on a bounded sample of sections. */
async function checkMaps(job: VolumeSegmentJob, reader: VolumeReader): Promise<void> {
  if (job.predIsMap || recordedAsMap(reader.attributes)) return;
  (await volumeSpread(reader)).check(job.pred);
}

/**
 * The labels output: a standalone multiscale labels image (with the maps' voxel size, or the user's), or a labels
 * image inside an OME-Zarr image (with the image's: NGFF labels share their image's scale, so a flag is refused).
 */
async function createOutput(job: VolumeSegmentJob, reader: VolumeReader, options: SegmentOptions, plan: BlockPlan, halo: number): Promise<OmeZarrWriter> {
  const mode = { overwrite: job.overwrite, resume: !job.overwrite, inputs: [volumeLocation(job.pred)] };
  // Paths relative to the labels image that records them (util/paths.ts): the metadata names no machine's folders.
  const extra = { maps: recordedVolumePath(job.pred, job.out), segment: options, halo };
  const inside = labelsInside(job.out);
  if (inside) {
    if (job.voxelSize || job.unit) {
      throw new EmsegError('invalid-option', job.voxelSize ? '--voxel-size' : '--unit', `labels inside the image ${inside.image} take its voxel size; set it on the image, or write a standalone cells.zarr`);
    }
    return createLabelsImage(inside.image, inside.name, { shape: plan.shape, dtype: 'uint32', chunks: plan.block, extra, foreign: job.foreignImage }, mode);
  }
  const voxel: VoxelSize | undefined = chooseVoxelSize(reader.voxelSize, { voxelSize: job.voxelSize, unit: job.unit }, reader.path, job.notice);
  return createOmeZarr(job.out, { shape: plan.shape, dtype: 'uint32', chunks: plan.block, kind: 'labels',
    name: basename(job.out).replace(/\.zarr$/i, '') || 'cells', voxelSize: voxel?.size, unit: voxel?.unit, extra }, mode);
}

/** An opened blockwise segmentation: pass 1 ('segment') and pass 3 ('relabel', whose prepare is the stitching). */
export interface VolumeSegmentRun extends TaskJob {
  job: VolumeSegmentJob;
  plan: BlockPlan;
  writer: OmeZarrWriter;
  final: MarkerStore;
  first: MarkerStore;
  context: SegmentContext;
  /** The work folder of passes 1 and 2. */
  work: string;
  runId: string;
  /** Whether the stitching was computed by this process or found (set by the relabel task's prepare). */
  stitch: 'computed' | 'found';
  /** Progress of the stitching. */
  progress: ProgressFactory;
}

/** Opens the output, both passes' markers and the provisional labels; refuses a changed run unless restart. */
async function openRun(job: VolumeSegmentJob, reader: VolumeReader, progress: ProgressFactory): Promise<VolumeSegmentRun> {
  const [, h, w] = reader.shape;
  const block = job.block ?? [1, Math.min(DEFAULT_SEGMENT_BLOCK_EDGE, h), Math.min(DEFAULT_SEGMENT_BLOCK_EDGE, w)] as Vec3;
  const halo = job.halo ?? DEFAULT_SEGMENT_HALO;
  const plan = planBlocks(reader.shape, block, [0, halo, halo]);
  const polarity = mapPolarity(job, reader);
  const options = mapSegmentOptions(reader.attributes, reader.path, job.options, job.notice, job.pred);
  const identity = { model: digest(SEGMENT_FORMAT, JSON.stringify({ options, membraneHigh: polarity === MEMBRANE_POLARITY })), input: volumeFingerprint(reader) };
  const writer = await createOutput(job, reader, options, plan, halo);
  await checkSameParameters(writer.dir, identity.model, job.restart);
  // The final pass's markers first: a restart of a changed run deletes the whole marker folder, work included.
  const final = await openMarkers(writer.dir, plan, identity, { restart: job.restart });
  const { store } = storeFor(writer.dir); // a local folder or an s3:// prefix
  const work = store.join(writer.dir, MARKER_DIR, SEGMENT_WORK_DIR);
  const first = await openMarkers(work, plan, identity, { restart: job.restart });
  const provisional = await createOmeZarr(store.join(work, 'labels'), { shape: plan.shape, dtype: 'uint32', chunks: plan.block, kind: 'labels', levels: 1 }, { resume: true });
  const context: SegmentContext = { reader, polarity, options, near: Math.floor(halo / 2), provisional, recordDir: store.join(work, 'blocks') };
  const runId = digest(plan.id, identity.model, identity.input);
  const run = { kind: 'segment' as const, out: job.out, jobset: jobsetOf(final), notice: job.notice, job, plan, writer, final, first, context, work, runId,
    stitch: 'found' as VolumeSegmentRun['stitch'], progress, tasks: [] as BlockTask[],
    close: async () => {
      const missing = missingChunksNotice(reader);
      if (missing) job.notice?.(missing);
      await reader.close();
    } };
  run.tasks = [segmentTask(run), relabelTask(run)];
  return run;
}

/** Pass 1: every block segmented over its read region into provisional labels and a border record. */
function segmentTask(r: VolumeSegmentRun): BlockTask<StackData, SegmentedBlock> {
  return { name: 'segment', plan: r.plan, markers: r.first, upstream: [],
    read: (b) => r.context.reader.readRegion(b.read),
    compute: (b, data) => segmentBlock(r.context, b, data),
    write: (b, s) => storeSegmentedBlock(r.context, b, s) };
}

/**
 * Pass 3: each block's provisional labels through its slice of the relabel table, into the output. Its prepare is
 * pass 2, the stitching (computed once pass 1 is complete; found when another process computed it); its finish
 * builds the pyramid and removes the provisional labels and border records.
 */
function relabelTask(r: VolumeSegmentRun): BlockTask<{ data: Uint32Array; table: Uint32Array; path: string }, Uint32Array> {
  return { name: 'relabel', plan: r.plan, markers: r.final, upstream: ['segment'],
    async prepare() {
      if (await readStitch(r.work, r.runId)) return;
      await computeStitch(r.plan, r.context.recordDir, r.context.near, r.work, r.runId, r.progress);
      r.stitch = 'computed';
    },
    read: (b) => readProvisional(r, b),
    compute: (b, { data, table, path }) => relabel(b, data, table, path),
    write: (b, data) => r.writer.writeBlock(b.write, data),
    finish: () => finish(r) };
}

/**
 * The markers refuse a changed run too, but call the segmentation parameters "model"; this names them. Only
 * the recorded digest is compared (the run record's identity), so the refusal is the same as openMarkers'.
 */
async function checkSameParameters(outDir: string, model: string, restart: boolean | undefined): Promise<void> {
  const { store, loc } = storeFor(outDir);
  const runPath = store.join(loc, MARKER_DIR, 'run.json');
  // A missing or damaged run record holds no parameters to compare (openMarkers reads a damaged record as none too).
  const recorded = await store.read(runPath).then((b) => (JSON.parse(new TextDecoder().decode(b)) as { identity?: { model?: string } }).identity?.model).catch(() => undefined);
  if (recorded === undefined || recorded === model || restart) return;
  throw new EmsegError('resume-mismatch', runPath, 'the output was started with other segmentation parameters (--sigma, --seed-threshold, '
    + '--min-seed-area, --merge-threshold) or map polarity; pass --restart (deletes its progress) or write elsewhere');
}

/**
 * Opens a blockwise segmentation as a job of the engine (engine/task.ts): the same for `emseg segment --out
 * x.zarr`, a `--shard` and a queue worker. The caller closes it.
 */
export async function openVolumeSegment(job: VolumeSegmentJob, progress: ProgressFactory = silentProgress): Promise<VolumeSegmentRun> {
  const reader = await openVolume(job.pred, { scale: job.scale, allowMissingChunks: job.allowMissingChunks });
  try {
    checkJob(job, reader);
    await checkMaps(job, reader);
    return await openRun(job, reader, progress);
  } catch (err) {
    await reader.close();
    throw err;
  }
}

/** Segments a membrane-map volume block by block and stitches the blocks into one labels image. */
export async function runVolumeSegment(job: VolumeSegmentJob, progress: ProgressFactory = silentProgress): Promise<VolumeSegmentResult> {
  const r = await openVolumeSegment(job, progress);
  try {
    const outcome = await runJob(r, { shard: job.shard, attempts: job.attempts, wait: job.wait, pollMs: job.pollMs, progress });
    const record = outcome.waiting ? undefined : await readStitch(r.work, r.runId);
    const pass = (name: string) => outcome.tasks.get(name) ?? NOTHING;
    return { out: job.out, plan: r.plan, segmented: pass('segment'), relabelled: pass('relabel'), stitch: outcome.waiting ? 'waiting' : r.stitch,
      complete: outcome.complete, cells: record?.cells, joined: record?.joined, failed: outcome.failed };
  } finally {
    await r.close();
  }
}

/** Pass 3's input for one block: its provisional labels and its slice of the relabel table. */
async function readProvisional(r: VolumeSegmentRun, b: Block): Promise<{ data: Uint32Array; table: Uint32Array; path: string }> {
  const provisional = await openVolume(storeFor(r.work).store.join(r.work, 'labels', '0'));
  try {
    return { data: (await provisional.readRegion(b.write)) as Uint32Array, table: await blockTable(r.work, b), path: provisional.path };
  } finally {
    await provisional.close();
  }
}

/** The provisional ids of a block replaced by the final ones, in place. */
function relabel(b: Block, data: Uint32Array, table: Uint32Array, path: string): Uint32Array {
  for (let i = 0; i < data.length; i++) {
    const l = data[i]!;
    if (l === 0 || l > table.length) throw new EmsegIoError('corrupt', path, `block [${b.grid.join(',')}] holds provisional id ${l}, its table has 1..${table.length}; rerun with --restart`);
    data[i] = table[l - 1]!;
  }
  return data;
}

/**
 * Once every block is final: the pyramid (the same bytes whoever builds it), then the provisional labels and
 * border records go (they double the storage); the markers and the stitch record stay for `emseg status`.
 */
async function finish(r: VolumeSegmentRun): Promise<void> {
  await r.writer.buildPyramid();
  const { store } = storeFor(r.work);
  await store.remove(store.join(r.work, 'labels'), true);
  await store.remove(r.context.recordDir, true);
}

export interface SegmentRunStatus {
  /** Pass 3 (the output's own markers): what `emseg status` shows for any blockwise run. */
  final: RunStatus & { layout: Awaited<ReturnType<typeof readRunStatus>>['layout'] };
  /** Pass 1; undefined once the run is complete (its records are removed then). */
  segment?: RunStatus;
  stitched: boolean;
  cells?: number;
}

/** Status of a blockwise segmentation output, or undefined when `out` holds another kind of blockwise run. */
export async function readSegmentStatus(out: string): Promise<SegmentRunStatus | undefined> {
  const { store, loc } = storeFor(out);
  const work = store.join(loc, MARKER_DIR, SEGMENT_WORK_DIR);
  if (!(await store.isFile(store.join(work, MARKER_DIR, 'run.json')))) return undefined;
  const final = await readRunStatus(out);
  const stitch = await readStitchRecord(work); // damaged: not stitched
  const segment = final.remaining === 0 ? undefined : await readRunStatus(work);
  return { final, segment, stitched: stitch !== undefined, cells: stitch?.cells };
}
