/**
 * `emseg segment --method watershed-agglomerate --block z,y,x`: the watershed + agglomeration of
 * segment/affinity/blockwise.ts as a job of the engine (engine/task.ts), so that memory holds one block (with its
 * halo) and the region graph, never the volume; resumable, shardable (`--shard i/n`) and queueable (queue/kinds.ts)
 * like blockwise segmentation (volume-segment.ts). Three block tasks, each block's results stored before its done
 * marker, in the output's hidden work folder `OUT/.emseg/neurons/`:
 *
 * 1. `fragments`: each block's fragments from its affinities + halo, block-local ids 1..count, into the work array
 *    `fragments/labels` (chunks = the block), and the block's count (`fragments/counts/Z.Y.X.json`).
 * 2. `edges` (prepare: every block's id offset from the counts, `edges/offsets.bin` then `edges/fragments.json`):
 *    each block's boundary edges between global fragment ids (offset of the owning block + local id), with the ids
 *    of the one-voxel margin across its faces, as `edges/blocks/Z.Y.X.bin`.
 * 3. `relabel` (prepare: the one global agglomeration of every block's edges, in block order: `table.bin`, the
 *    neuron of each global fragment, then `agglomeration.json`): each block's fragments through its slice of the
 *    table into the output; finish: the pyramid, then the work array and the edge files go.
 *
 * Every global step depends only on the stored results of the task before it, so whichever process (shard, queue
 * worker) runs it writes the same bytes, atomically, and its record is written last; a record that is not this
 * run's or whose files have other sizes is computed again. The run identity (markers.ts) is the block layout, the
 * affinities' fingerprint and the parameters: a rerun of the same command skips the done blocks and writes the same
 * output; a changed one is refused, or with `restart` started again.
 */
import { basename } from 'node:path';
import { EmsegError, describeError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import { createOmeZarr, type OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import { missingChunksNotice, type Region, type Vec3, type VolumeReader } from '../io/formats/volume.js';
import { isUrl, openVolume, recordedVolumePath, volumeLocation } from '../io/registry.js';
import { storeFor, type VolumeStore } from '../io/stores/index.js';
import { chooseVoxelSize } from '../io/voxel-size.js';
import type { Offset3 } from '../image/affinities.js';
import { MAX_FRAGMENTS, RegionGraphBuilder, blockEdges, blockFragments, type BlockEdges } from '../segment/affinity/index.js';
import { planBlocks, eachBlock, type Block, type BlockPlan } from './blocks.js';
import { NEURON_DEFAULTS } from './defaults.js';
import { runJob, type TaskOutcome } from './engine/run.js';
import { jobsetOf, type BlockTask, type TaskJob } from './engine/task.js';
import { MARKER_DIR, digest, openMarkers, readRunStatus, volumeFingerprint, type BlockFailure, type MarkerStore, type RunStatus } from './markers.js';
import { checkMemory, idTypeOf, idsAs, nearestReaders, readChannels, type NeuronSegmentJob } from './neurons-input.js';
import type { NeuronIdType } from './defaults.js';
import { silentProgress, type ProgressFactory } from './progress.js';

/** The work folder of the first two tasks and the agglomeration, inside the output's marker folder. */
export const NEURONS_WORK_DIR = 'neurons';
/** Bumped when the meaning of the stored block results changes, so old ones are not reused. */
const NEURONS_FORMAT = 'emseg-neurons-blocks-1';
const RECORD_VERSION = 1;

/** What the tasks share: the affinities, the parameters, the stores. */
interface NeuronsContext {
  channels: VolumeReader[];
  offsets: Offset3[];
  shape: Vec3;
  seedBoundary: number;
  mergeAffinity: number;
  store: VolumeStore;
  /** OUT/.emseg/neurons */
  work: string;
  run: string;
}

/** An opened blockwise neuron segmentation: the engine's job plus what its tasks share. */
export interface NeuronsRun extends TaskJob {
  plan: BlockPlan;
  writer: OmeZarrWriter;
  context: NeuronsContext;
}

export interface BlockwiseNeuronsResult {
  plan: BlockPlan;
  /** What this process did in each task (its shard of the blocks). */
  tasks: Record<'fragments' | 'edges' | 'relabel', TaskOutcome>;
  /** Every block of the last task is done and the pyramid built. */
  complete: boolean;
  /** The task that could not start yet: other shards' blocks of the task before it are not done. */
  waiting?: string;
  /** Fragments and neurons of the whole volume, once agglomerated. */
  fragments?: number;
  neurons?: number;
  failed: BlockFailure[];
}

interface AgglomerationRecord { version: number; run: string; fragments: number; neurons: number; size: number }
interface OffsetsRecord { version: number; run: string; blocks: number; fragments: number; size: number }

const size = (r: Region): Vec3 => [r.end[0] - r.start[0], r.end[1] - r.start[1], r.end[2] - r.start[2]];
const gridName = (b: Block) => b.grid.join('.');

function paths(c: NeuronsContext) {
  const j = (...p: string[]) => c.store.join(c.work, ...p);
  return { fragments: j('fragments'), labels: j('fragments', 'labels'), count: (b: Block) => j('fragments', 'counts', `${gridName(b)}.json`),
    edges: j('edges'), edgeFile: (b: Block) => j('edges', 'blocks', `${gridName(b)}.bin`), offsets: j('edges', 'offsets.bin'),
    offsetsRecord: j('edges', 'fragments.json'), table: j('table.bin'), tableRecord: j('agglomeration.json') };
}

async function readJson<T>(store: VolumeStore, path: string): Promise<T | undefined> {
  const bytes = await store.read(path).catch(() => undefined);
  try {
    return bytes === undefined ? undefined : JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch {
    return undefined; // damaged: computed again
  }
}

/** The whole file at `path`, refused as corrupt (naming it) when it is missing or not `bytes` long. */
async function readExact(store: VolumeStore, path: string, bytes?: number): Promise<Uint8Array> {
  let out: Uint8Array | undefined;
  try {
    out = await store.read(path);
  } catch (err) {
    throw new EmsegIoError('corrupt', path, `cannot be read (${describeError(err)}); rerun with --restart`, { cause: err });
  }
  if (out === undefined || (bytes !== undefined && out.length !== bytes)) {
    throw new EmsegIoError('corrupt', path, `${out === undefined ? 'is missing' : `holds ${out.length} bytes, not ${bytes}`}; rerun with --restart`);
  }
  return out.byteOffset % 8 === 0 ? out : out.slice(); // typed views need aligned buffers
}

const f64 = (b: Uint8Array) => new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
const u8 = (a: Float64Array | Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A block's edges as float64: [n, a x n, b x n, sum x n, count x n] (ids up to 2^53, exact sums as computed). */
function encodeEdges(e: BlockEdges): Uint8Array {
  const n = e.a.length;
  const out = new Float64Array(1 + 4 * n);
  out[0] = n;
  [e.a, e.b, e.sum, e.count].forEach((v, k) => out.set(v, 1 + k * n));
  return u8(out);
}

function decodeEdges(bytes: Uint8Array, path: string): BlockEdges {
  const v = f64(bytes);
  const n = v[0]!;
  if (!Number.isSafeInteger(n) || v.length !== 1 + 4 * n) throw new EmsegIoError('corrupt', path, 'is not a block\'s edge record; rerun with --restart');
  const part = (k: number) => v.subarray(1 + k * n, 1 + (k + 1) * n); // views: no copy of the file's numbers
  return { a: part(0), b: part(1), sum: part(2), count: part(3) };
}

/** Task 1: each block's fragments over its read region, kept inside the block, with their count. */
function fragmentsTask(c: NeuronsContext, plan: BlockPlan, markers: MarkerStore, labels: OmeZarrWriter): BlockTask<Float32Array, { labels: Uint32Array; count: number }> {
  const p = paths(c);
  return { name: 'fragments', plan, markers, upstream: [],
    read: (b) => readChannels(c.channels, b.read),
    compute(b, data) {
      const write = { start: b.write.start.map((s, a) => s - b.read.start[a]!) as unknown as Vec3, end: b.write.end.map((e, a) => e - b.read.start[a]!) as unknown as Vec3 };
      return blockFragments({ data, shape: size(b.read), offsets: c.offsets }, write, { seedBoundary: c.seedBoundary });
    },
    async write(b, f) {
      await labels.writeRegion(b.write, f.labels);
      await c.store.write(p.count(b), JSON.stringify({ count: f.count }));
      return [...labels.chunkFiles(b.write), p.count(b)];
    } };
}

/** The id offset of every block (then the total), as stored by the edges task's prepare; checked against its record. */
async function readOffsets(c: NeuronsContext, plan: BlockPlan): Promise<{ offsets: Float64Array; record: OffsetsRecord } | undefined> {
  const p = paths(c);
  const record = await readJson<OffsetsRecord>(c.store, p.offsetsRecord);
  if (!record || record.version !== RECORD_VERSION || record.run !== c.run || record.blocks !== plan.count) return undefined;
  if ((await c.store.size(p.offsets).catch(() => undefined)) !== record.size) return undefined;
  return { offsets: f64(await readExact(c.store, p.offsets, record.size)), record };
}

/** The edges task's prepare: every block's offset from the stored counts (block order), written atomically, record last. */
async function computeOffsets(c: NeuronsContext, plan: BlockPlan): Promise<void> {
  if (await readOffsets(c, plan)) return;
  const p = paths(c);
  const offsets = new Float64Array(plan.count + 1);
  for (const b of eachBlock(plan)) {
    const rec = await readJson<{ count: number }>(c.store, p.count(b));
    if (!rec || !Number.isSafeInteger(rec.count)) throw new EmsegIoError('corrupt', p.count(b), 'the fragment count of a block marked done is missing or damaged; rerun with --restart');
    offsets[b.index + 1] = offsets[b.index]! + rec.count;
  }
  await c.store.write(p.offsets, u8(offsets));
  const record: OffsetsRecord = { version: RECORD_VERSION, run: c.run, blocks: plan.count, fragments: offsets[plan.count]!, size: offsets.byteLength };
  await c.store.write(p.offsetsRecord, JSON.stringify(record));
}

/** The region a block's edges read: the block and one voxel across each face its offsets point through. */
function edgeRegion(b: Block, c: NeuronsContext): Region {
  const start = [0, 1, 2].map((a) => Math.max(0, b.write.start[a]! - Math.max(0, ...c.offsets.map((o) => -o[a]!)))) as unknown as Vec3;
  const end = [0, 1, 2].map((a) => Math.min(c.shape[a]!, b.write.end[a]! + Math.max(0, ...c.offsets.map((o) => o[a]!)))) as unknown as Vec3;
  return { start, end };
}

/** A lazily read, per-process copy of the stored offsets (plan.count + 1 numbers). */
function offsetsOnce(c: NeuronsContext, plan: BlockPlan): () => Promise<Float64Array> {
  let cached: Promise<Float64Array> | undefined;
  return () => {
    cached ??= readOffsets(c, plan).then((o) => {
      if (!o) throw new EmsegIoError('corrupt', paths(c).offsetsRecord, 'the fragment offsets are missing or not this run\'s; rerun with --restart');
      return o.offsets;
    });
    cached.catch(() => { cached = undefined; });
    return cached;
  };
}

type EdgeInput = { ids: Uint32Array; affs: Float32Array; region: Region; offsets: Float64Array };

/** Task 2: each block's boundary edges between global fragment ids, stored as a file. */
function edgesTask(c: NeuronsContext, plan: BlockPlan, markers: MarkerStore): BlockTask<EdgeInput, BlockEdges> {
  const p = paths(c);
  const offsets = offsetsOnce(c, plan);
  return { name: 'edges', plan, markers, upstream: ['fragments'],
    prepare: () => computeOffsets(c, plan),
    async read(b) {
      const reader = await openVolume(c.store.join(p.labels, '0'));
      try {
        const region = edgeRegion(b, c);
        return { ids: (await reader.readRegion(region)) as Uint32Array, affs: await readChannels(c.channels, b.write), region, offsets: await offsets() };
      } finally {
        await reader.close();
      }
    },
    compute(b, { ids, affs, region, offsets: off }) {
      const [, h, w] = size(region);
      const [, bh, bw] = size(b.write);
      const bn = affs.length / c.channels.length;
      // Global id = the owning block's offset + its local id.
      const at = (z: number, y: number, x: number) => {
        const owner = (Math.floor(z / plan.block[0]) * plan.grid[1] + Math.floor(y / plan.block[1])) * plan.grid[2] + Math.floor(x / plan.block[2]);
        return off[owner]! + ids[((z - region.start[0]) * h + y - region.start[1]) * w + x - region.start[2]]!;
      };
      const affinity = (k: number, z: number, y: number, x: number) => affs[k * bn + ((z - b.write.start[0]) * bh + y - b.write.start[1]) * bw + x - b.write.start[2]]!;
      return blockEdges(b.write, c.shape, c.offsets, at, affinity);
    },
    async write(b, edges) {
      await c.store.write(p.edgeFile(b), encodeEdges(edges));
      return [p.edgeFile(b)];
    } };
}

async function readAgglomeration(c: NeuronsContext): Promise<AgglomerationRecord | undefined> {
  const p = paths(c);
  const record = await readJson<AgglomerationRecord>(c.store, p.tableRecord);
  if (!record || record.version !== RECORD_VERSION || record.run !== c.run) return undefined;
  return (await c.store.size(p.table).catch(() => undefined)) === record.size ? record : undefined;
}

/**
 * The relabel task's prepare: one region graph from every block's stored edges (block order), agglomerated down to
 * the merge affinity; the table (uint32 neuron of each global fragment, index 0 unused) written atomically, its
 * record last. Memory: the graph and the table (fragments and edges, never voxels).
 */
async function agglomerate(c: NeuronsContext, plan: BlockPlan): Promise<void> {
  if (await readAgglomeration(c)) return;
  const p = paths(c);
  const stored = await readOffsets(c, plan);
  if (!stored) throw new EmsegIoError('corrupt', p.offsetsRecord, 'the fragment offsets are missing or not this run\'s; rerun with --restart');
  const fragments = stored.record.fragments;
  if (fragments > MAX_FRAGMENTS) {
    throw new EmsegError('too-large', p.offsetsRecord, `${fragments} fragments; the global agglomeration holds at most ${MAX_FRAGMENTS} (raise --seed-boundary, or segment a smaller volume)`);
  }
  // One block's edge file at a time into the graph: the files of every block together would double its memory.
  const graph = new RegionGraphBuilder(fragments);
  for (const b of eachBlock(plan)) graph.add(decodeEdges(await readExact(c.store, p.edgeFile(b)), p.edgeFile(b)));
  const { table, count } = graph.agglomerate(c.mergeAffinity);
  await c.store.write(p.table, u8(table));
  const record: AgglomerationRecord = { version: RECORD_VERSION, run: c.run, fragments, neurons: count, size: table.byteLength };
  await c.store.write(p.tableRecord, JSON.stringify(record));
}

/** Block b's slice of the table: the neurons of its local ids 1..count (index 0 = local id 1). */
async function blockTable(c: NeuronsContext, b: Block, offsets: Float64Array): Promise<Uint32Array> {
  const p = paths(c);
  const [first, end] = [offsets[b.index]!, offsets[b.index + 1]!];
  const bytes = (end - first) * Uint32Array.BYTES_PER_ELEMENT;
  const out = await c.store.readRange(p.table, (first + 1) * Uint32Array.BYTES_PER_ELEMENT, bytes).catch(() => undefined);
  if (out?.length !== bytes) throw new EmsegIoError('corrupt', p.table, `the agglomeration table is missing or short at block [${b.grid.join(',')}]; rerun with --restart`);
  return new Uint32Array(out.slice().buffer);
}

/**
 * Task 3: each block's fragments through the table into the output (uint32, or uint64 on request); finish: the
 * pyramid, then the work files go.
 */
function relabelTask(c: NeuronsContext, plan: BlockPlan, markers: MarkerStore, out: OmeZarrWriter, type: NeuronIdType): BlockTask<{ ids: Uint32Array; table: Uint32Array }, Uint32Array | BigUint64Array> {
  const p = paths(c);
  const offsets = offsetsOnce(c, plan);
  return { name: 'relabel', plan, markers, upstream: ['edges'],
    prepare: () => agglomerate(c, plan),
    async read(b) {
      const reader = await openVolume(c.store.join(p.labels, '0'));
      try {
        return { ids: (await reader.readRegion(b.write)) as Uint32Array, table: await blockTable(c, b, await offsets()) };
      } finally {
        await reader.close();
      }
    },
    compute(b, { ids, table }) {
      for (let i = 0; i < ids.length; i++) {
        const l = ids[i]!;
        if (l === 0 || l > table.length) throw new EmsegIoError('corrupt', p.labels, `block [${b.grid.join(',')}] holds fragment ${l}, its table has 1..${table.length}; rerun with --restart`);
        ids[i] = table[l - 1]!;
      }
      return idsAs(ids, type);
    },
    async write(b, labels) {
      await out.writeRegion(b.write, labels);
      return out.chunkFiles(b.write);
    },
    async finish() {
      await out.buildPyramid();
      // The records (offsets, table, markers) stay for `emseg status`; the fragments and edges double the storage.
      await c.store.remove(p.labels, true);
      await c.store.remove(c.store.join(p.edges, 'blocks'), true);
    } };
}

function checkBlockwise(job: NeuronSegmentJob): void {
  if (job.method !== 'watershed-agglomerate') throw new EmsegError('invalid-option', '--block', `blockwise runs are made for --method watershed-agglomerate (not ${job.method}) in this version`);
  for (const [flag, v, min] of [['--block', job.block!, 1], ['--halo', job.halo ?? [0, 0, 0], 0]] as const) {
    if (!Array.isArray(v) || v.length !== 3 || !v.every((d) => Number.isSafeInteger(d) && d >= min)) throw new EmsegError('invalid-option', flag, `${JSON.stringify(v)} is not z,y,x of whole numbers >= ${min}`);
  }
  if (job.shard && job.overwrite) {
    throw new EmsegError('invalid-option', '--overwrite', 'cannot be combined with --shard (each shard would delete the others\' work); use --restart, or delete the output first');
  }
  if (isUrl(job.out)) throw new EmsegIoError('unsupported', job.out, `--method ${job.method} --block writes a local (or shared) OME-Zarr folder; not a URL yet`);
}

/** Whether an output is at `out` whose metadata records another run than `extra` (emseg's "maps" and "neurons"). */
async function recordedOtherwise(out: string, extra: { maps: string; neurons: Record<string, unknown> }): Promise<boolean> {
  const { store, loc } = storeFor(out);
  const attrs = await readJson<{ emseg?: Record<string, unknown> }>(store, store.join(loc, '.zattrs'));
  if (!attrs?.emseg) return false;
  return JSON.stringify([attrs.emseg.maps, attrs.emseg.neurons]) !== JSON.stringify([extra.maps, extra.neurons]);
}

/** Opens the output (created, or resumed), the three tasks' markers and the work array. */
async function openRun(job: NeuronSegmentJob, first: VolumeReader, readers: VolumeReader[], offsets: Offset3[]): Promise<NeuronsRun> {
  const shape = first.shape;
  const block = job.block!.map((b, a) => Math.min(b, shape[a]!)) as unknown as Vec3;
  const halo = job.halo ?? NEURON_DEFAULTS.halo.value;
  checkMemory({ ...job, method: 'watershed-agglomerate' }, block.map((b, a) => b + 2 * halo[a]!) as unknown as Vec3, offsets.length);
  const mergeAffinity = job.mergeAffinity ?? NEURON_DEFAULTS.mergeAffinity.value;
  const seedBoundary = job.seedBoundary ?? NEURON_DEFAULTS.seedBoundary.value;
  const plan = planBlocks(shape, block, [...halo] as Vec3);
  const ids = idTypeOf(job);
  const record = { method: job.method, mergeAffinity, seedBoundary, block, halo, ids };
  const voxel = chooseVoxelSize(first.voxelSize, { voxelSize: job.voxelSize, unit: job.unit }, first.path, job.notice);
  const extra = { maps: recordedVolumePath(job.pred, job.out), neurons: record };
  // A restart of a run with other parameters starts the output again: its metadata must not keep the old record.
  const overwrite = job.overwrite || (job.restart === true && await recordedOtherwise(job.out, extra));
  const writer = await createOmeZarr(job.out, { shape, dtype: ids, chunks: block, kind: 'labels', name: basename(job.out).replace(/\.zarr$/i, '') || 'neurons',
    voxelSize: voxel?.size, unit: voxel?.unit, extra }, { overwrite, resume: !overwrite, inputs: [volumeLocation(job.pred)] });
  // The affinities are named relative to the output, so queue workers mounting the storage elsewhere agree on the run.
  const identity = { model: digest(NEURONS_FORMAT, JSON.stringify({ mergeAffinity, seedBoundary, offsets })), input: volumeFingerprint(first, job.out) };
  // The last task's markers first: a restart of a changed run deletes the whole marker folder, work included.
  const final = await openMarkers(writer.dir, plan, identity, { restart: job.restart });
  const { store } = storeFor(writer.dir);
  const context: NeuronsContext = { channels: readers, offsets, shape, seedBoundary, mergeAffinity, store,
    work: store.join(writer.dir, MARKER_DIR, NEURONS_WORK_DIR), run: digest(plan.id, identity.model, identity.input) };
  const p = paths(context);
  const fragmentMarkers = await openMarkers(p.fragments, plan, identity, { restart: job.restart });
  const edgeMarkers = await openMarkers(p.edges, plan, identity, { restart: job.restart });
  const labels = await createOmeZarr(p.labels, { shape, dtype: 'uint32', chunks: block, kind: 'labels', levels: 1 }, { resume: true });
  const tasks = [fragmentsTask(context, plan, fragmentMarkers, labels), edgesTask(context, plan, edgeMarkers), relabelTask(context, plan, final, writer, ids)];
  return { kind: 'neurons', out: job.out, jobset: jobsetOf(final), notice: job.notice, tasks, plan, writer, context,
    close: async () => {
      const missing = missingChunksNotice(first);
      if (missing) job.notice?.(missing);
      await Promise.all([first, ...readers].map((r) => r.close()));
    } };
}

/** What `emseg status` shows of a blockwise neurons run besides its last task (relabel, the output's own markers). */
export interface NeuronsRunStatus {
  /** The fragments and edges tasks while their markers exist (the run's finish removes them with the work files). */
  fragments?: RunStatus;
  edges?: RunStatus;
  /** The one global agglomeration, once stored. */
  agglomerated?: { fragments: number; neurons: number };
}

/** The status of the blockwise neurons run at `out`, or undefined when `out` holds none. */
export async function readNeuronsStatus(out: string): Promise<NeuronsRunStatus | undefined> {
  const { store, loc } = storeFor(out);
  const work = store.join(loc, MARKER_DIR, NEURONS_WORK_DIR);
  const task = (name: string) => readRunStatus(store.join(work, name)).catch((err: unknown) => {
    if (err instanceof EmsegError && err.code === 'not-found') return undefined;
    throw err;
  });
  const [fragments, edges] = [await task('fragments'), await task('edges')];
  const record = await readJson<AgglomerationRecord>(store, store.join(work, 'agglomeration.json'));
  if (!fragments && !edges && !record) return undefined;
  return { fragments, edges, agglomerated: record && { fragments: record.fragments, neurons: record.neurons } };
}

/**
 * Opens a blockwise neuron segmentation as a job of the engine: the same for `emseg segment --method
 * watershed-agglomerate --block`, a `--shard` and a queue worker. The caller closes it.
 */
export async function openBlockwiseNeurons(job: NeuronSegmentJob): Promise<NeuronsRun> {
  checkBlockwise(job);
  const { readers, offsets, first } = await nearestReaders(job);
  try {
    return await openRun(job, first, readers, offsets);
  } catch (err) {
    await Promise.all([first, ...readers].map((r) => r.close()));
    throw err;
  }
}

const NOTHING: TaskOutcome = { computed: 0, skipped: 0, failed: [], voxels: 0 };

/** Runs this process's part (its shard) of a blockwise neuron segmentation; see the header. */
export async function runBlockwiseNeurons(job: NeuronSegmentJob, progress: ProgressFactory = silentProgress): Promise<BlockwiseNeuronsResult> {
  const r = await openBlockwiseNeurons(job);
  try {
    const outcome = await runJob(r, { shard: job.shard, attempts: job.attempts, wait: job.wait, pollMs: job.pollMs, progress });
    const record = await readAgglomeration(r.context);
    const task = (name: 'fragments' | 'edges' | 'relabel') => outcome.tasks.get(name) ?? NOTHING;
    return { plan: r.plan, tasks: { fragments: task('fragments'), edges: task('edges'), relabel: task('relabel') }, complete: outcome.complete,
      waiting: outcome.waiting, fragments: record?.fragments, neurons: record?.neurons, failed: outcome.failed };
  } finally {
    await r.close();
  }
}
