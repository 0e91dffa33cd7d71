import type { Command } from 'commander';
import { valueRange } from '../io/formats/inspect.js';
import type { ValueRange } from '../io/formats/inspect.js';
import type { VolumeReader } from '../io/formats/volume.js';
import { openVolume } from '../io/registry.js';
import { formatVoxelSize } from '../io/voxel-size.js';
import { nonNegativeInt, volumeFlags } from './convert.js';
import { readRunStatus } from '../pipeline/markers.js';
import { readSegmentStatus, type SegmentRunStatus } from '../pipeline/volume-segment.js';
import { barFactory } from './progress.js';
import { EmsegError } from '../errors.js';
import { safeUrl } from '../queue/connection.js';
import { queueStatus, type JobsetStatus } from '../queue/status.js';

function describeVolume(v: VolumeReader, range: ValueRange): string {
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
  const how = range.exact ? 'exact' : `sampled from ${range.voxels} voxels; --exact reads all`;
  lines.push(`range:   ${range.min} .. ${range.max} (${how})${range.nonFinite ? `; ${range.nonFinite} NaN/infinite values` : ''}`);
  const m = range.missingChunks;
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
    .option('--json', 'print JSON instead of text')
    .option('--quiet', 'no progress bar')
    .action(async (path: string, o) => {
      // info inspects: absent chunks are counted and shown (below the range), not refused as inputs are.
      const v = await openVolume(path, { scale: o.scale, ...volumeFlags(o), allowMissingChunks: true });
      try {
        const range = await valueRange(v, o.exact ?? false, barFactory(o.quiet ?? Boolean(o.json)));
        if (o.json) {
          const { format, shape, dtype, chunks, scales, level, attributes } = v;
          const voxelSize = v.voxelSize ?? null;
          process.stdout.write(`${JSON.stringify({ path, format, shape, dtype, chunks, voxelSize, scales, level, attributes, range }, null, 2)}\n`);
        } else process.stdout.write(describeVolume(v, range));
      } finally {
        await v.close();
      }
    });
}

function formatEta(seconds: number | undefined): string {
  if (seconds === undefined) return 'unknown (fewer than two blocks done)';
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m`;
}

function formatQueueStatus(s: JobsetStatus): string {
  const pct = s.total ? ((100 * s.done) / s.total).toFixed(1) : '100';
  const rate = s.blocksPerSecond === undefined ? 'unknown (no block completed yet)' : `${s.blocksPerSecond.toFixed(3)} blocks/s`;
  const queued = s.active + s.waiting;
  return [
    `job set:   ${s.jobset} -> ${s.out}`,
    `blocks:    ${s.done}/${s.total} done (${pct} %), ${s.active} active, ${s.waiting} waiting, ${s.failed.length} failed${s.cancelled ? `, ${s.cancelled} cancelled` : ''}`,
    `rate:      ${rate}`,
    `ETA:       ${queued === 0 ? (s.failed.length || s.cancelled ? 'stopped' : 'done') : formatEta(s.etaSeconds)}`,
    `pyramid:   ${s.pyramid}`,
    ...s.failed.map((f) => `failed:    ${f.where} after ${f.attempts} attempt(s): ${f.message}`),
  ].join('\n');
}

async function showQueueStatus(url: string, jobset: string | undefined, json: boolean): Promise<void> {
  const all = await queueStatus(url, jobset);
  process.stdout.write(json ? `${JSON.stringify(jobset ? all[0] : all, null, 2)}\n` : `${all.map(formatQueueStatus).join('\n\n') || 'no job sets'}\n`);
  const failed = all.reduce((n, s) => n + s.failed.length, 0);
  if (failed > 0) throw new EmsegError('blocks-failed', jobset ?? safeUrl(url), `${failed} block(s) failed every attempt; fix the cause and submit again (failed blocks are retried)`);
}

/** Pass 1 and the stitching of a blockwise segmentation; the usual lines then show pass 3 (the output's blocks). */
function segmentLines(seg: SegmentRunStatus): string[] {
  if (!seg.segment) return [`segment:   complete (${seg.cells ?? '?'} cells)`];
  const p = seg.segment;
  const lines = [`segment:   pass 1 (segment blocks) ${p.done}/${p.total} done, ${p.failed.length} failed, ${p.remaining} remaining` +
    (p.remaining > 0 ? `, ETA ${formatEta(p.etaSeconds)}` : '')];
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
    .option('--redis <url>', 'read the queue on this Redis instead of an output\'s markers; exits non-zero when blocks failed')
    .option('--json', 'print JSON instead of text')
    .action(async (target: string | undefined, o) => {
      if (o.redis) return showQueueStatus(o.redis, target, o.json ?? false);
      if (!target) throw new EmsegError('invalid-option', 'status', 'give the output folder of a blockwise run (or --redis URL for a queue)');
      const seg = await readSegmentStatus(target);
      const s = seg?.final ?? await readRunStatus(target);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(seg ?? s, null, 2)}\n`);
        return;
      }
      const pct = s.total ? ((100 * s.done) / s.total).toFixed(1) : '100';
      const lines = [
        ...(seg ? segmentLines(seg) : []),
        `blocks:    ${s.done}/${s.total} done (${pct} %), ${s.failed.length} failed, ${s.remaining} remaining`,
        `layout:    block ${s.layout.block.join(' x ')}, halo ${s.layout.halo.join(' x ')} on ${s.layout.shape.join(' x ')}`,
        `ETA:       ${s.remaining === 0 ? 'done' : formatEta(s.etaSeconds)}`,
        ...s.failed.map((f) => `failed:    block ${f.grid.join(',')} (z ${f.write.start[0]}-${f.write.end[0]}, y ${f.write.start[1]}-${f.write.end[1]}, x ${f.write.start[2]}-${f.write.end[2]}) after ${f.attempts} attempt(s): [${f.code}] ${f.message}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
