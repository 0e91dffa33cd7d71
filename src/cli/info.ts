import type { Command } from 'commander';
import { labelRange, valueRange } from '../io/formats/inspect.js';
import type { LabelRange, ValueRange } from '../io/formats/inspect.js';
import { LabelTypeRefusal } from '../io/formats/label-types.js';
import { ChannelsRefusal } from '../io/formats/zarr.js';
import type { LabelReader, VolumeReader } from '../io/formats/volume.js';
import { displayPath, openLabels, openVolume, type OpenVolumeOptions } from '../io/registry.js';
import { formatVoxelSize } from '../io/voxel-size.js';
import { nonNegativeInt, volumeFlags } from './convert.js';
import { readRunStatus, type RunStatus } from '../pipeline/markers.js';
import { isStalled } from '../pipeline/progress.js';
import { readSegmentStatus, type SegmentRunStatus } from '../pipeline/volume-segment.js';
import { readNeuronsStatus, type NeuronsRunStatus } from '../pipeline/neurons-blockwise.js';
import { barFactory } from './progress.js';
import { EmsegError } from '../errors.js';
import { safeUrl } from '../queue/connection.js';
import { queueStatus, type JobsetStatus } from '../queue/status.js';

/** A volume only a label read takes (uint64 ids...): its layout and id range. */
function describeLabelVolume(v: LabelReader, range: LabelRange): string {
  const how = range.exact ? 'exact' : `sampled from ${range.voxels} voxels; --exact reads all`;
  const lines = [
    `path:    ${v.path}`,
    `format:  ${v.format}`,
    `shape:   ${v.shape.join(' x ')} (z, y, x)`,
    `dtype:   ${v.labelType} (read as labels only: neuron ids for eval --labels, train --labels, emseg labels)`,
    `chunks:  ${v.chunks.join(' x ')}${typeof v.attributes.compression === 'string' ? `, ${v.attributes.compression}` : ''}`,
    `voxel:   ${v.voxelSize ? formatVoxelSize(v.voxelSize) : 'none recorded'}`,
    `ids:     ${range.min} .. ${range.max} (${how})`,
  ];
  return `${lines.join('\n')}\n`;
}

/** `emseg info` of a label-only volume (the image read refused it as such). */
async function infoLabels(path: string, options: OpenVolumeOptions, o: { exact?: boolean; json?: boolean; quiet?: boolean }): Promise<void> {
  const v = await openLabels(path, options);
  try {
    const range = await labelRange(v, o.exact ?? false, barFactory(o.quiet ?? Boolean(o.json)));
    if (o.json) {
      const { format, shape, labelType, chunks, scales, level, attributes } = v;
      process.stdout.write(`${JSON.stringify({ path: displayPath(path), kind: 'labels', format, shape, dtype: labelType, chunks,
        voxelSize: v.voxelSize ?? null, scales, level, attributes, range }, null, 2)}\n`);
    } else process.stdout.write(describeLabelVolume(v, range));
  } finally {
    await v.close();
  }
}

/** What channel c of a map holds, from emseg's record of the map (`emseg.channels`), or nothing. */
function channelMeaning(v: VolumeReader, c: number): string {
  const channels = (v.attributes.emseg as { channels?: unknown } | undefined)?.channels;
  const m = Array.isArray(channels) ? channels[c] as { kind?: unknown; offset?: unknown } | undefined : undefined;
  if (!m || typeof m.kind !== 'string') return '';
  return Array.isArray(m.offset) ? `${m.kind} (${m.offset.join(', ')})` : m.kind;
}

/** `emseg info` of a multi-channel map: the layout once, then each channel's meaning and value range. */
async function infoChannels(path: string, count: number, options: OpenVolumeOptions, o: { exact?: boolean; json?: boolean; quiet?: boolean }): Promise<void> {
  const ranges: (ValueRange & { channel: number; meaning: string })[] = [];
  let first: VolumeReader | undefined;
  try {
    for (let c = 0; c < count; c++) {
      const v = await openVolume(path, { ...options, channel: c });
      try {
        const range = await valueRange(v, o.exact ?? false, barFactory(o.quiet ?? Boolean(o.json)));
        ranges.push({ channel: c, meaning: channelMeaning(v, c), ...range });
      } finally {
        if (c === 0) first = v;
        else await v.close();
      }
    }
    const v = first!;
    if (o.json) {
      const { format, shape, dtype, chunks, scales, level, attributes } = v;
      process.stdout.write(`${JSON.stringify({ path: displayPath(path), kind: 'maps', channels: count, format, shape, dtype, chunks,
        voxelSize: v.voxelSize ?? null, scales, level, attributes, ranges }, null, 2)}\n`);
      return;
    }
    const head = describeVolume(v, undefined).replace(/^shape: {3}(.*) \(z, y, x\)$/m, `shape:   ${count} x $1 (c, z, y, x)`);
    const lines = ranges.map((r) => `  ${String(r.channel).padStart(2)}: ${rangeText(r)}${r.meaning ? `  ${r.meaning}` : ''}`);
    process.stdout.write(`${head}channels: ${count} (ranges ${ranges[0]?.exact ? 'exact' : 'sampled; --exact reads all'})\n${lines.join('\n')}\n`);
  } finally {
    await first?.close();
  }
}

function rangeText(range: ValueRange): string {
  return `${range.min} .. ${range.max}${range.nonFinite ? `; ${range.nonFinite} NaN/infinite values` : ''}`;
}

function describeVolume(v: VolumeReader, range: ValueRange | undefined): string {
  const lines = [
    `path:    ${v.path}`,
    `format:  ${v.format}`,
    `shape:   ${v.shape.join(' x ')} (z, y, x)`,
    `dtype:   ${v.dtype}`,
    `chunks:  ${v.chunks.join(' x ')}${typeof v.attributes.compression === 'string' ? `, ${v.attributes.compression}` : ''}`,
    `voxel:   ${v.voxelSize ? formatVoxelSize(v.voxelSize) : 'none recorded'}`,
  ];
  if (v.scales.length > 1) {
    lines.push(`scales:  ${v.scales.length} levels (reading level ${v.level})`);
    v.scales.forEach((s, i) => lines.push(`  ${i}: ${s.path}  ${s.shape.join(' x ')}  scale ${s.scale.join(', ')}`));
  }
  if (range) lines.push(`range:   ${rangeText(range)} (${range.exact ? 'exact' : `sampled from ${range.voxels} voxels; --exact reads all`})`);
  const m = range?.missingChunks;
  if (m) {
    lines.push(`missing: ${m.atLeast ? 'at least ' : ''}${m.count} of the chunk files read ${m.count === 1 ? 'is' : 'are'} absent (counted in the range as the fill value ${m.fill}); `
      + 'an incomplete copy? predict, segment and convert refuse absent chunks unless given --allow-missing-chunks');
  }
  const emseg = v.attributes.emseg as Record<string, unknown> | undefined;
  if (emseg) lines.push(`emseg:   ${JSON.stringify(emseg)}`);
  if (Array.isArray(v.attributes.labels)) lines.push(`labels:  ${(v.attributes.labels as string[]).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('shape, dtype, chunks, scales and value range of a volume (OME-Zarr, Zarr, HDF5 file.h5:/dataset, TIFF/BigTIFF, PNG/TIFF stack)')
    .argument('<path>', 'volume: vol.zarr, vol.zarr/0, vol.h5:/raw, big.tif, folder or glob of sections')
    .option('--scale <level>', 'scale level of a multiscale OME-Zarr image (0 = full resolution)', nonNegativeInt)
    .option('--exact', 'read every voxel for the value range (default: sample a few chunks)')
    .option('--channel <c>', 'one channel of a multi-channel map (affinities; default: every channel)', nonNegativeInt)
    .option('--json', 'print JSON instead of text')
    .option('--quiet', 'no progress bar')
    .action(async (path: string, o) => {
      // info inspects: absent chunks are counted and shown (below the range), not refused as inputs are.
      const options = { scale: o.scale, ...volumeFlags(o), allowMissingChunks: true, channel: o.channel };
      let v: VolumeReader;
      try {
        v = await openVolume(path, options);
      } catch (err) {
        if (err instanceof LabelTypeRefusal) return infoLabels(path, options, o); // uint64 ids: shown as labels
        if (err instanceof ChannelsRefusal) return infoChannels(path, err.channels, options, o);
        throw err;
      }
      try {
        const range = await valueRange(v, o.exact ?? false, barFactory(o.quiet ?? Boolean(o.json)));
        if (o.json) {
          const { format, shape, dtype, chunks, scales, level, attributes } = v;
          const voxelSize = v.voxelSize ?? null;
          // A URL is shown without its credentials.
          process.stdout.write(`${JSON.stringify({ path: displayPath(path), format, shape, dtype, chunks, voxelSize, scales, level, attributes, range }, null, 2)}\n`);
        } else {
          const channel = o.channel === undefined ? '' : `channel: ${o.channel}${channelMeaning(v, o.channel) ? `  ${channelMeaning(v, o.channel)}` : ''}\n`;
          process.stdout.write(describeVolume(v, range) + channel);
        }
      } finally {
        await v.close();
      }
    });
}

const S_PER_MIN = 60;
const S_PER_H = 3600;

/** A duration in whole minutes (`< 1m`, `12m`, `2h05m`): ETAs and idle times are not meant to the second. */
function formatMinutes(seconds: number): string {
  if (seconds < S_PER_MIN) return '< 1m';
  const h = Math.floor(seconds / S_PER_H);
  const m = Math.round((seconds % S_PER_H) / S_PER_MIN);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m`;
}

/**
 * The ETA of a run from its done markers: a time only while blocks are being finished. None when every remaining
 * block failed (nothing will run them until a rerun) or when no block finished recently (nothing seems to run).
 */
function runEta(s: RunStatus): string {
  if (s.remaining === 0) return 'done';
  if (s.failed.length >= s.remaining) return `none: stopped with ${s.failed.length} failed block(s); run the command again to retry them`;
  if (s.stoppedBy) return `none: the run stopped at block ${s.stoppedBy.grid.join(',')} [${s.stoppedBy.code}]; fix the cause and run the command again to resume`;
  if (s.etaSeconds !== undefined) return formatMinutes(s.etaSeconds);
  // With two blocks done and no ETA the run stalled (markers.ts); with one, only a long silence tells.
  if (s.idleSeconds === undefined || (s.done < 2 && !isStalled(s.idleSeconds, undefined))) return 'unknown (fewer than two blocks done)';
  return `none: no block finished in the last ${formatMinutes(s.idleSeconds)} (no run seems to be active; run the command again to resume)`;
}

/** The ETA of a job set on the queue: a time only while its blocks are being computed. */
function queueEta(s: JobsetStatus): string {
  if (s.active + s.waiting === 0) return s.failed.length || s.cancelled ? 'none: stopped' : 'done';
  if (s.etaSeconds !== undefined) return formatMinutes(s.etaSeconds);
  const idle = s.active === 0 ? 'no block is being computed' : '';
  if (s.blocksPerSecond === undefined || s.idleSeconds === undefined) return `unknown (no block completed yet${idle ? `; ${idle}` : ''})`;
  return `none: ${idle} and none finished in the last ${formatMinutes(s.idleSeconds)} (is a worker running?)`;
}

function formatQueueStatus(s: JobsetStatus): string {
  const pct = s.total ? ((100 * s.done) / s.total).toFixed(1) : '100';
  const rate = s.blocksPerSecond === undefined ? 'unknown (no block completed yet)' : `${s.blocksPerSecond.toFixed(3)} blocks/s`;
  return [
    `job set:   ${s.jobset} (${s.kind}) -> ${s.out}`,
    `blocks:    ${s.done}/${s.total} done (${pct} %), ${s.active} active, ${s.waiting} waiting, ${s.failed.length} failed${s.cancelled ? `, ${s.cancelled} cancelled` : ''}`,
    ...(s.tasks.length > 1 ? s.tasks.map((t) => `  ${`${t.task}:`.padEnd(9)}${t.done}/${t.total} done, ${t.active} active, ${t.waiting} waiting${t.pending ? `, ${t.pending} not queued yet` : ''}`) : []),
    `rate:      ${rate}`,
    `ETA:       ${queueEta(s)}`,
    `pyramid:   ${s.pyramid}`,
    ...s.failed.map((f) => `failed:    ${f.where} after ${f.attempts} attempt(s): ${f.message}`),
  ].join('\n');
}

/**
 * Exit status of `emseg status` when the run or job set has failed blocks: the status was read and printed, but
 * blocks failed (0: none failed; 1: the status could not be read).
 */
export const STATUS_FAILED_EXIT = 3;

/** Says that blocks failed and sets the exit status; the report itself was printed in full. */
function failedBlocks(count: number, what: string, again: string): void {
  if (count === 0) return;
  process.stderr.write(`emseg status: ${what}: ${count} block(s) failed; fix the cause and ${again} (failed blocks are retried) (exit status ${STATUS_FAILED_EXIT})\n`);
  process.exitCode = STATUS_FAILED_EXIT;
}

async function showQueueStatus(url: string, jobset: string | undefined, json: boolean): Promise<void> {
  const all = await queueStatus(url, jobset);
  process.stdout.write(json ? `${JSON.stringify(jobset ? all[0] : all, null, 2)}\n` : `${all.map(formatQueueStatus).join('\n\n') || 'no job sets'}\n`);
  failedBlocks(all.reduce((n, s) => n + s.failed.length, 0), jobset ?? safeUrl(url), 'submit again');
}

/** A task's blocks as one status line. */
function taskLine(label: string, p: RunStatus): string {
  return `${label.padEnd(11)}${p.done}/${p.total} done, ${p.failed.length} failed, ${p.remaining} remaining${p.remaining > 0 ? `, ETA ${runEta(p)}` : ''}`;
}

/** The lines of a blockwise neurons run before its last task's (fragments, edges, the agglomeration). */
function neuronsLines(n: NeuronsRunStatus): string[] {
  // Once agglomerated, both tasks are done (their work files, which their markers vouch for, may be gone).
  if (n.agglomerated) {
    return ['fragments: done', 'edges:     done', `agglomerate: done (${n.agglomerated.fragments} fragments into ${n.agglomerated.neurons} neurons)`,
      'relabel:   (final ids), below'];
  }
  const lines = [n.fragments ? taskLine('fragments:', n.fragments) : 'fragments: not started', n.edges ? taskLine('edges:', n.edges) : 'edges:     waiting for the fragments'];
  for (const [name, t] of [['fragments', n.fragments], ['edges', n.edges]] as const) {
    lines.push(...(t?.failed ?? []).map((f) => `failed:    ${name} block ${f.grid.join(',')} after ${f.attempts} attempt(s): [${f.code}] ${f.message}`));
  }
  lines.push('agglomerate: waiting for the edges', 'relabel:   (final ids), below');
  return lines;
}

/** Pass 1 and the stitching of a blockwise segmentation; the usual lines then show pass 3 (the output's blocks). */
function segmentLines(seg: SegmentRunStatus): string[] {
  if (!seg.segment) return [`segment:   complete (${seg.cells ?? '?'} cells)`];
  const p = seg.segment;
  const lines = [`segment:   pass 1 (segment blocks) ${p.done}/${p.total} done, ${p.failed.length} failed, ${p.remaining} remaining` +
    (p.remaining > 0 ? `, ETA ${runEta(p)}` : '')];
  lines.push(...p.failed.map((f) => `failed:    pass 1 block ${f.grid.join(',')} (z ${f.write.start[0]}-${f.write.end[0]}, y ${f.write.start[1]}-${f.write.end[1]}, x ${f.write.start[2]}-${f.write.end[2]}) after ${f.attempts} attempt(s): [${f.code}] ${f.message}`));
  lines.push(`stitch:    ${seg.stitched ? `done (${seg.cells} cells)` : 'waiting for pass 1'}`);
  lines.push('relabel:   pass 3 (final ids), below');
  return lines;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('progress of a blockwise run: from the done markers of its output, or (--redis) from the queue: done/active/failed/waiting, rate, ETA')
    .argument('[target]', 'output folder of a blockwise run (e.g. maps.zarr); with --redis, a job set id (default: all)')
    .option('--redis <url>', 'read the queue on this Redis instead of an output\'s markers')
    .option('--json', 'print JSON instead of text')
    .addHelpText('after', `\nExit status: 0 when no block failed (the run is done or in progress), ${STATUS_FAILED_EXIT} when blocks failed `
      + '(the report lists them), 1 when the status could not be read.\nETA: shown only while blocks are being finished; '
      + '"none" when every remaining block failed or no block finished recently.')
    .action(async (target: string | undefined, o) => {
      if (o.redis) return showQueueStatus(o.redis, target, o.json ?? false);
      if (!target) throw new EmsegError('invalid-option', 'status', 'give the output folder of a blockwise run (or --redis URL for a queue)');
      const seg = await readSegmentStatus(target);
      const neurons = seg ? undefined : await readNeuronsStatus(target);
      const s = seg?.final ?? await readRunStatus(target);
      const failed = s.failed.length + (seg?.segment?.failed.length ?? 0) + (neurons?.fragments?.failed.length ?? 0) + (neurons?.edges?.failed.length ?? 0);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(seg ?? (neurons ? { final: s, ...neurons } : s), null, 2)}\n`);
        failedBlocks(failed, target, 'run the command again');
        return;
      }
      const pct = s.total ? ((100 * s.done) / s.total).toFixed(1) : '100';
      const lines = [
        ...(seg ? segmentLines(seg) : []),
        ...(neurons ? neuronsLines(neurons) : []),
        `blocks:    ${s.done}/${s.total} done (${pct} %), ${s.failed.length} failed, ${s.remaining} remaining`,
        `layout:    block ${s.layout.block.join(' x ')}, halo ${s.layout.halo.join(' x ')} on ${s.layout.shape.join(' x ')}`,
        `ETA:       ${runEta(s)}`,
        ...s.failed.map((f) => `failed:    block ${f.grid.join(',')} (z ${f.write.start[0]}-${f.write.end[0]}, y ${f.write.start[1]}-${f.write.end[1]}, x ${f.write.start[2]}-${f.write.end[2]}) after ${f.attempts} attempt(s): [${f.code}] ${f.message}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      failedBlocks(failed, target, 'run the command again');
    });
}
