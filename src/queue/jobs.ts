/**
 * What queue jobs carry. A job set is one blockwise job (predict, segment or neurons: see kinds.ts) on one output; its jobs
 * are of three sorts, all carrying the job's kind, spec (every option that decides a voxel, with paths as the
 * submitting machine saw them) and the task they belong to:
 * - block jobs: one block of one task;
 * - start jobs: a task whose upstream tasks are complete is prepared (e.g. the stitching of segmentation), then
 *   its blocks are queued;
 * - finish jobs: a task whose blocks are all done is finished (e.g. the pyramid), then its downstream tasks start.
 * Workers on machines that mount the shared storage elsewhere rewrite path prefixes (`--path-map FROM=TO`); the
 * run identity does not depend on absolute paths (markers.ts), so every worker agrees on which run and block it
 * writes.
 */
import { EmsegError } from '../errors.js';
import type { Region } from '../io/formats/volume.js';
import { isUrl } from '../io/registry.js';
import type { JobKind } from '../pipeline/engine/task.js';
import type { VolumePredictJob } from '../pipeline/volume-predict.js';
import type { VolumeSegmentJob } from '../pipeline/volume-segment.js';
import type { NeuronSegmentJob } from '../pipeline/neurons-input.js';

/** The serialisable part of a blockwise prediction (no callbacks, no shard, no destructive flags). */
export type PredictSpec = Omit<VolumePredictJob, 'notice' | 'shard' | 'restart' | 'overwrite' | 'threads'>;
/** The serialisable part of a blockwise segmentation (no callbacks, no shard, no waiting, no destructive flags). */
export type SegmentSpec = Omit<VolumeSegmentJob, 'notice' | 'shard' | 'restart' | 'overwrite' | 'wait' | 'pollMs'>;

/** The serialisable part of a blockwise neuron segmentation (`segment --method watershed-agglomerate --block`). */
export type NeuronsSpec = Omit<NeuronSegmentJob, 'notice' | 'shard' | 'restart' | 'overwrite' | 'wait' | 'pollMs'>;

export interface SpecOf {
  predict: PredictSpec;
  segment: SegmentSpec;
  neurons: NeuronsSpec;
}

/** A job of some job set: which kind of job, its spec, and the task of it. */
export type StageJobData = { [K in JobKind]: { kind: K; jobset: string; spec: SpecOf[K]; task: string } }[JobKind];

export type BlockJobData = StageJobData & {
  index: number;
  grid: readonly number[];
  write: Region;
};

/** What a block job returns (and the worker journals): whether it computed, and where its time went. */
export interface BlockResult {
  jobset: string;
  task: string;
  index: number;
  /** False when a valid done marker was already there (a retried or duplicate job is a no-op). */
  computed: boolean;
  /** Opening the run (models, reader, writer, markers): once per child and job set, then 0. */
  openMs: number;
  readMs: number;
  computeMs: number;
  writeMs: number;
  /** Wall time inside the processor, including the marker check and opening the run (ms since epoch). */
  start: number;
  end: number;
  worker: string;
  attempt: number;
}

/** What a finish job returns: `last` when it finished the job's last task (the output is complete). */
export interface FinishResult {
  task: string;
  last: boolean;
}

export const BLOCK_JOB = 'block';
export const START_JOB = 'start';
export const FINISH_JOB = 'finish';

/** Job ids: the job set (a hash of plan and run identity), the task and the block: submitting twice adds nothing. */
export const blockJobId = (jobset: string, task: string, index: number) => `${jobset}-${task}-${index}`;
export const startJobId = (jobset: string, task: string) => `${jobset}-${task}-start`;
export const finishJobId = (jobset: string, task: string) => `${jobset}-${task}-finish`;

export interface PathMap {
  from: string;
  to: string;
}

/** Parses `FROM=TO` (both absolute): paths starting with FROM are read under TO on this machine. */
export function parsePathMap(text: string): PathMap {
  const i = text.indexOf('=');
  const from = i > 0 ? text.slice(0, i) : '';
  const to = i > 0 ? text.slice(i + 1) : '';
  if (!from.startsWith('/') || !to.startsWith('/')) {
    throw new EmsegError('invalid-option', '--path-map', `expected FROM=TO with two absolute paths (e.g. /mnt/em=/data/em), got "${text}"`);
  }
  return { from: from.replace(/\/+$/, ''), to: to.replace(/\/+$/, '') };
}

/** Rewrites a path by the first map whose FROM is a whole-component prefix of it. */
export function mapPath(path: string, maps: readonly PathMap[]): string {
  for (const m of maps) {
    if (path === m.from || path.startsWith(`${m.from}/`)) return m.to + path.slice(m.from.length);
  }
  return path;
}

/** A volume path `file[:/inner]` with its file part rewritten by `f`; a URL is read as given on every machine. */
export function rewriteVolumeFile(path: string, f: (file: string) => string): string {
  if (isUrl(path)) return path;
  return path.replace(/^(.*?)(:\/.*)?$/, (_, file: string, inner = '') => f(file) + inner);
}

/** A volume path with its file part mapped (`--path-map`). */
export const mapVolumePath = (path: string, maps: readonly PathMap[]): string => rewriteVolumeFile(path, (file) => mapPath(file, maps));

/** The block's coordinates for reports: `block z,y,x (z 0-1, y 0-64, x 64-128)`. */
export function describeBlock(grid: readonly number[], write: Region): string {
  const r = (a: number) => `${write.start[a]}-${write.end[a]}`;
  return `block ${grid.join(',')} (z ${r(0)}, y ${r(1)}, x ${r(2)})`;
}

/** Environment variables the worker sets for its processor children (BullMQ forks them with the worker's env). */
export const WORKER_ENV = {
  threads: 'EMSEG_QUEUE_THREADS',
  pathMap: 'EMSEG_QUEUE_PATH_MAP',
  journal: 'EMSEG_QUEUE_JOURNAL',
  worker: 'EMSEG_QUEUE_WORKER',
  /** The queue's Redis URL: the child records its block in the job set (bookkeeping.ts). */
  redis: 'EMSEG_QUEUE_REDIS',
} as const;
