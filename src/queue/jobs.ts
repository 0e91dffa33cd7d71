/**
 * What a block job carries: the prediction job (every option that decides a voxel, with its paths as the
 * submitting machine saw them), the job set and the block's place in the plan. Workers on machines that mount the
 * shared storage elsewhere rewrite path prefixes (`--path-map FROM=TO`); the run identity does not depend on
 * absolute paths (markers.ts), so every worker agrees on which run and block it writes.
 */
import { resolve } from 'node:path';
import { EmsegError } from '../errors.js';
import type { Region } from '../io/formats/volume.js';
import { digest, type MarkerStore } from '../pipeline/markers.js';
import type { VolumePredictJob } from '../pipeline/volume-predict.js';

/** The serialisable part of a blockwise prediction (no callbacks, no shard, no destructive flags). */
export type PredictSpec = Omit<VolumePredictJob, 'notice' | 'shard' | 'restart' | 'overwrite' | 'threads'>;

export interface BlockJobData {
  kind: 'predict';
  jobset: string;
  spec: PredictSpec;
  index: number;
  grid: readonly number[];
  write: Region;
}

/** The last job of a set: builds the pyramid once every block is done. */
export interface FinishJobData {
  kind: 'predict';
  jobset: string;
  spec: PredictSpec;
}

/** What a block job returns (and the worker journals): whether it computed, and where its time went. */
export interface BlockResult {
  jobset: string;
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

export const BLOCK_JOB = 'block';
export const FINISH_JOB = 'finish';

/**
 * The job set of an opened run: its run id (plan, model and input identity) and the creation time of its run
 * record, read from the shared output, so every machine derives the same id, and two outputs computed from the
 * same plan (two folders) never share job ids.
 */
export function jobsetOf(markers: MarkerStore): string {
  return digest(markers.run, markers.created ?? '').slice(0, JOBSET_HEX);
}

/** Hex characters of a job-set id (64 bits). */
const JOBSET_HEX = 16;

/** Job ids are the job set (a hash of plan and run identity) plus the block: submitting twice adds nothing. */
export const blockJobId = (jobset: string, index: number) => `${jobset}-${index}`;
export const finishJobId = (jobset: string) => `${jobset}-finish`;

/** The spec with absolute paths, as the submitting machine resolves them. */
export function specOf(job: VolumePredictJob): PredictSpec {
  const { notice: _n, shard: _s, restart: _r, overwrite: _o, threads: _t, ...rest } = job;
  return { ...rest, models: job.models.map((m) => resolve(m)), input: resolve(job.input), out: resolve(job.out) };
}

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

export function mapSpec(spec: PredictSpec, maps: readonly PathMap[]): PredictSpec {
  const input = spec.input.replace(/^(.*?)(:\/.*)?$/, (_, file: string, inner = '') => mapPath(file, maps) + inner);
  return { ...spec, models: spec.models.map((m) => mapPath(m, maps)), input, out: mapPath(spec.out, maps) };
}

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
