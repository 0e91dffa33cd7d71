/**
 * The registry of blockwise job kinds the queue carries: how a spec is made from a job (absolute paths, as the
 * submitting machine resolves them), how a worker maps its paths (`--path-map`) and opens it as a TaskJob. A new
 * blockwise job becomes queueable by one entry here.
 */
import { resolve } from 'node:path';
import { resolveModelDir } from '../models/shipped.js';
import type { JobKind, TaskJob } from '../pipeline/engine/task.js';
import { openVolumePredict, type VolumePredictJob } from '../pipeline/volume-predict.js';
import { openVolumeSegment, type VolumeSegmentJob } from '../pipeline/volume-segment.js';
import { isUrl } from '../io/registry.js';
import { openBlockwiseNeurons } from '../pipeline/neurons-blockwise.js';
import type { NeuronSegmentJob } from '../pipeline/neurons-input.js';
import { mapPath, mapVolumePath, rewriteVolumeFile, type PathMap, type SpecOf } from './jobs.js';

interface JobKindDef<K extends JobKind, J> {
  /** The serialisable spec of a job (no callbacks, no shard, no destructive flags), paths made absolute. */
  specOf(job: J): SpecOf[K];
  /** The spec with its paths under this machine's mount points. */
  mapSpec(spec: SpecOf[K], maps: readonly PathMap[]): SpecOf[K];
  /** Opens the job as the in-process run does (the output must exist: submit created it). */
  open(spec: SpecOf[K], threads?: number): Promise<TaskJob>;
}

/** A volume path made absolute (`file[:/inner]`); a URL (http://...) is the same on every machine and kept as given. */
const volume = (p: string) => rewriteVolumeFile(p, (file) => resolve(file));
/** An output folder made absolute; an s3:// output is the same on every machine and kept as given. */
const output = (p: string) => (isUrl(p) ? p : resolve(p));

const predict: JobKindDef<'predict', VolumePredictJob> = {
  specOf(job) {
    const { notice: _n, shard: _s, restart: _r, overwrite: _o, threads: _t, ...rest } = job;
    // A shipped model's name becomes its folder here: a worker elsewhere would read it as a path in the submit folder.
    return { ...rest, models: job.models.map((m) => resolve(resolveModelDir(m))), input: volume(job.input), out: output(job.out) };
  },
  mapSpec: (spec, maps) => ({ ...spec, models: spec.models.map((m) => mapPath(m, maps)), input: mapVolumePath(spec.input, maps), out: mapPath(spec.out, maps) }),
  open: (spec, threads) => openVolumePredict({ ...spec, threads }),
};

const segment: JobKindDef<'segment', VolumeSegmentJob> = {
  specOf(job) {
    const { notice: _n, shard: _s, restart: _r, overwrite: _o, wait: _w, pollMs: _p, ...rest } = job;
    return { ...rest, pred: volume(job.pred), out: output(job.out) };
  },
  mapSpec: (spec, maps) => ({ ...spec, pred: mapVolumePath(spec.pred, maps), out: mapPath(spec.out, maps) }),
  open: (spec) => openVolumeSegment(spec),
};

const neurons: JobKindDef<'neurons', NeuronSegmentJob> = {
  specOf(job) {
    const { notice: _n, shard: _s, restart: _r, overwrite: _o, wait: _w, pollMs: _p, ...rest } = job;
    return { ...rest, pred: volume(job.pred), out: output(job.out) };
  },
  mapSpec: (spec, maps) => ({ ...spec, pred: mapVolumePath(spec.pred, maps), out: mapPath(spec.out, maps) }),
  open: (spec) => openBlockwiseNeurons(spec),
};

interface JobOf { predict: VolumePredictJob; segment: VolumeSegmentJob; neurons: NeuronSegmentJob }

export const JOB_KINDS: { [K in JobKind]: JobKindDef<K, JobOf[K]> } = { predict, segment, neurons };

/** Opens the job a queue job belongs to, on this machine (paths mapped). */
export function openQueuedJob<K extends JobKind>(kind: K, spec: SpecOf[K], maps: readonly PathMap[], threads?: number): Promise<TaskJob> {
  const def = JOB_KINDS[kind] as unknown as JobKindDef<K, unknown>;
  return def.open(def.mapSpec(spec, maps), threads);
}
