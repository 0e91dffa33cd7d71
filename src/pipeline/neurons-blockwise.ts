/**
 * `emseg segment --method watershed-agglomerate --block z,y,x`: the watershed + agglomeration of
 * segment/affinity/blockwise.ts on the engine, block by block, so that memory holds one block (with its halo) and
 * the region graph, never the volume. Three block tasks and one global step, all in one process:
 *
 * 1. `fragments`: each block's fragments from its affinities + halo, stored with block-local ids in a work array.
 * 2. `edges` (prepare: each block's id offset, from the fragment counts): each block's boundary edges, with the
 *    fragment ids of its voxels and of the one-voxel margin across its faces, into one region graph.
 * 3. `relabel` (prepare: the global agglomeration of that graph): each block's fragments through the table into
 *    the output; finish: the pyramid.
 *
 * The output is built in a hidden folder (the work array inside it) and moved into place once whole (in a bucket:
 * in place, the work array under its .emseg/, the group metadata last); markers are in memory (not resumable, not
 * shardable: a later step).
 */
import { EmsegError } from '../errors.js';
import { createOmeZarr, type OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import type { Region, Vec3, VolumeReader } from '../io/formats/volume.js';
import { openVolume } from '../io/registry.js';
import { storeFor } from '../io/stores/index.js';
import type { Offset3 } from '../image/affinities.js';
import { agglomerateBlocks, blockEdges, blockFragments, nearestChannels, type BlockEdges } from '../segment/affinity/index.js';
import { eachBlock, planBlocks, type Block, type BlockPlan } from './blocks.js';
import { runTask } from './engine/run.js';
import { memoryMarkers } from './engine/memory-markers.js';
import type { BlockTask } from './engine/task.js';

export interface BlockwiseNeuronsContext {
  /** One reader per nearest-neighbour channel (z, y, x order of the axes; absent axes skipped), and their offsets. */
  channels: VolumeReader[];
  offsets: Offset3[];
  shape: Vec3;
  block: Vec3;
  halo: Vec3;
  seedBoundary: number;
  mergeAffinity: number;
}

/** What the blockwise run leaves: the neuron count. `tmp` is the hidden output folder the caller moves into place. */
export interface BlockwiseNeuronsRun { neurons: number; fragments: number }

/** The nearest channels' affinities over `region`, channel-major, as probabilities. */
async function readAffinities(c: BlockwiseNeuronsContext, region: Region): Promise<Float32Array> {
  const parts = await Promise.all(c.channels.map((r) => r.readRegion(region)));
  const n = parts[0]!.length;
  const out = new Float32Array(n * parts.length);
  parts.forEach((p, k) => {
    if (p instanceof Float32Array) out.set(p, k * n);
    else for (let i = 0; i < n; i++) out[k * n + i] = p[i]! / 255;
  });
  return out;
}

/** The work array's level 0, in the work folder's store (a local folder or a bucket prefix). */
function workArray(work: string): string {
  const { store, loc } = storeFor(work);
  return store.join(loc, '0');
}

const size = (r: Region): Vec3 => [r.end[0] - r.start[0], r.end[1] - r.start[1], r.end[2] - r.start[2]];

function fragmentsTask(c: BlockwiseNeuronsContext, plan: BlockPlan, work: OmeZarrWriter, counts: Uint32Array): BlockTask<Float32Array, Uint32Array> {
  return { name: 'fragments', plan, markers: memoryMarkers(plan, work.dir), upstream: [],
    read: (b) => readAffinities(c, b.read),
    compute(b, data) {
      const shape = size(b.read);
      const write = { start: b.write.start.map((s, a) => s - b.read.start[a]!) as unknown as Vec3, end: b.write.end.map((e, a) => e - b.read.start[a]!) as unknown as Vec3 };
      const f = blockFragments({ data, shape, offsets: c.offsets }, write, { seedBoundary: c.seedBoundary });
      counts[b.index] = f.count;
      return f.labels;
    },
    async write(b, labels) {
      await work.writeRegion(b.write, labels);
      return [];
    } };
}

/** The region a block's edges read: the block and one voxel across each face its offsets point through. */
function edgeRegion(b: Block, c: BlockwiseNeuronsContext): Region {
  const start = [0, 1, 2].map((a) => Math.max(0, b.write.start[a]! - Math.max(0, ...c.offsets.map((o) => -o[a]!)))) as unknown as Vec3;
  const end = [0, 1, 2].map((a) => Math.min(c.shape[a]!, b.write.end[a]! + Math.max(0, ...c.offsets.map((o) => o[a]!)))) as unknown as Vec3;
  return { start, end };
}

function edgesTask(c: BlockwiseNeuronsContext, plan: BlockPlan, work: string, counts: Uint32Array, graph: BlockEdges[]): BlockTask<{ ids: Uint32Array; affs: Float32Array; region: Region }, BlockEdges> {
  const offsets = new Float64Array(plan.count + 1);
  return { name: 'edges', plan, markers: memoryMarkers(plan, work), upstream: ['fragments'],
    async prepare() {
      for (let i = 0; i < plan.count; i++) offsets[i + 1] = offsets[i]! + counts[i]!;
    },
    async read(b) {
      const region = edgeRegion(b, c);
      const reader = await openVolume(workArray(work));
      try {
        return { ids: (await reader.readRegion(region)) as Uint32Array, affs: await readAffinities(c, b.write), region };
      } finally {
        await reader.close();
      }
    },
    compute(b, { ids, affs, region }) {
      const [, h, w] = size(region);
      const [, bh, bw] = size(b.write);
      const bn = affs.length / c.channels.length;
      // Global id = the owning block's offset + its local id.
      const at = (z: number, y: number, x: number) => {
        const owner = (Math.floor(z / c.block[0]) * plan.grid[1] + Math.floor(y / c.block[1])) * plan.grid[2] + Math.floor(x / c.block[2]);
        return offsets[owner]! + ids[((z - region.start[0]) * h + y - region.start[1]) * w + x - region.start[2]]!;
      };
      const affinity = (k: number, z: number, y: number, x: number) => affs[k * bn + ((z - b.write.start[0]) * bh + y - b.write.start[1]) * bw + x - b.write.start[2]]!;
      return blockEdges(b.write, c.shape, c.offsets, at, affinity);
    },
    async write(b, edges) {
      graph[b.index] = edges;
      return [];
    } };
}

function relabelTask(c: BlockwiseNeuronsContext, plan: BlockPlan, work: string, out: OmeZarrWriter, counts: Uint32Array, graph: BlockEdges[],
  result: BlockwiseNeuronsRun): BlockTask<Uint32Array, Uint32Array> {
  let table: Uint32Array = new Uint32Array(0);
  const offsets = new Float64Array(plan.count + 1);
  return { name: 'relabel', plan, markers: memoryMarkers(plan, out.dir), upstream: ['edges'],
    async prepare() {
      for (let i = 0; i < plan.count; i++) offsets[i + 1] = offsets[i]! + counts[i]!;
      const fragments = offsets[plan.count]!;
      if (fragments >= 2 ** 32) throw new EmsegError('too-large', 'fragments', `${fragments} fragments; ids are uint32`);
      const agglomerated = agglomerateBlocks(fragments, graph, c.mergeAffinity);
      graph.length = 0; // the graph is consumed: memory goes back before the relabelling
      table = agglomerated.table;
      result.neurons = agglomerated.count;
      result.fragments = fragments;
    },
    async read(b) {
      const reader = await openVolume(workArray(work));
      try {
        return (await reader.readRegion(b.write)) as Uint32Array;
      } finally {
        await reader.close();
      }
    },
    compute(b, ids) {
      const base = offsets[b.index]!;
      for (let i = 0; i < ids.length; i++) ids[i] = table[base + ids[i]!]!;
      return ids;
    },
    async write(b, labels) {
      await out.writeRegion(b.write, labels);
      return [];
    } };
}

async function runAll(tasks: BlockTask[]): Promise<void> {
  for (const task of tasks) {
    await task.prepare?.();
    const outcome = await runTask(task, eachBlock(task.plan), { attempts: 1, stopOnFailure: true });
    if (outcome.failed.length > 0) throw new EmsegError('blocks-failed', task.name, `${outcome.failed.length} block(s) failed`);
  }
}

/**
 * Runs the three tasks into `out` (a writer of the labels, chunks = the block), with its work array in `workDir`
 * (removed at the end). Returns the neuron and fragment counts.
 */
export async function runBlockwiseNeurons(c: BlockwiseNeuronsContext, out: OmeZarrWriter, workDir: string): Promise<BlockwiseNeuronsRun> {
  nearestChannels(c.offsets, c.shape);
  const plan = planBlocks(c.shape, c.block, c.halo);
  const work = await createOmeZarr(workDir, { shape: c.shape, dtype: 'uint32', chunks: c.block, kind: 'labels', levels: 1 });
  const counts = new Uint32Array(plan.count);
  const graph: BlockEdges[] = [];
  const result: BlockwiseNeuronsRun = { neurons: 0, fragments: 0 };
  try {
    await runAll([fragmentsTask(c, plan, work, counts), edgesTask(c, plan, workDir, counts, graph), relabelTask(c, plan, workDir, out, counts, graph, result)]);
  } finally {
    const { store, loc } = storeFor(workDir);
    await store.remove(loc, true);
  }
  return result;
}
