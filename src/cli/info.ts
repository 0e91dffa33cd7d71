import type { Command } from 'commander';
import { valueRange } from '../io/formats/inspect.js';
import type { ValueRange } from '../io/formats/inspect.js';
import type { VolumeReader } from '../io/formats/volume.js';
import { openVolume } from '../io/registry.js';
import { nonNegativeInt, volumeFlags } from './convert.js';
import { barFactory } from './progress.js';

function describeVolume(v: VolumeReader, range: ValueRange): string {
  const lines = [
    `path:    ${v.path}`,
    `format:  ${v.format}`,
    `shape:   ${v.shape.join(' x ')} (z, y, x)`,
    `dtype:   ${v.dtype}`,
    `chunks:  ${v.chunks.join(' x ')}`,
  ];
  if (v.scales.length > 1) {
    lines.push(`scales:  ${v.scales.length} levels (reading level ${v.level})`);
    v.scales.forEach((s, i) => lines.push(`  ${i}: ${s.path}  ${s.shape.join(' x ')}  scale ${s.scale.join(', ')}`));
  }
  const how = range.exact ? 'exact' : `sampled from ${range.voxels} voxels; --exact reads all`;
  lines.push(`range:   ${range.min} .. ${range.max} (${how})${range.nonFinite ? `; ${range.nonFinite} NaN/infinite values` : ''}`);
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
      const v = await openVolume(path, { scale: o.scale, ...volumeFlags(o) });
      try {
        const range = await valueRange(v, o.exact ?? false, barFactory(o.quiet ?? Boolean(o.json)));
        if (o.json) {
          const { format, shape, dtype, chunks, scales, level, attributes } = v;
          process.stdout.write(`${JSON.stringify({ path, format, shape, dtype, chunks, scales, level, attributes, range }, null, 2)}\n`);
        } else process.stdout.write(describeVolume(v, range));
      } finally {
        await v.close();
      }
    });
}
