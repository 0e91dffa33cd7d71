/**
 * Any volume read section by section, as the stack reader's slices: the commands whose outputs are written in one
 * piece (emseg predict and segment to a TIFF or a folder) read every input this way, so an HDF5 dataset, an OME-Zarr
 * array or a big TIFF gives them the very slices a PNG/TIFF stack of the same data does. Memory is one section per
 * read; a stack opened with `stream` (registry.ts) hands over the decoded section itself, as openStack's slices do.
 */
import type { VolumeReader } from './formats/volume.js';
import { volumeLocation } from './registry.js';
import type { Slice } from './stack.js';

/** The sections of `reader`, whole and in order, named by the file and page they come from (stacks) or the volume. */
export async function* volumeSlices(reader: VolumeReader): AsyncGenerator<Slice> {
  const [depth, height, width] = reader.shape;
  for (let z = 0; z < depth; z++) {
    const data = await reader.readRegion({ start: [z, 0, 0], end: [z + 1, height, width] });
    const { source, page } = reader.sectionOrigin?.(z) ?? { source: reader.path, page: 0 };
    yield { width, height, data, index: z, source, page };
  }
}

/**
 * What an output of a command reading `reader` (opened from `input`) must never write over: a stack's image files
 * (as openStack resolved them), else the volume's file or folder (`vol.h5:/raw` -> vol.h5).
 */
export function volumeInputs(reader: VolumeReader, input: string): string[] {
  return reader.files ? [...reader.files] : [volumeLocation(input)];
}

/** The file messages about the volume's metadata name: a stack's first file (as the stack reader did), else the volume. */
export function volumeSource(reader: VolumeReader): string {
  return reader.files?.[0] ?? reader.path;
}
