/**
 * Any volume read section by section, as the stack reader's slices: the commands whose outputs are written in one
 * piece (emseg predict and segment to a TIFF or a folder) read every input this way, so an HDF5 dataset, an OME-Zarr
 * array or a big TIFF gives them the very slices a PNG/TIFF stack of the same data does. Memory is one section per
 * read; a stack opened with `stream` (registry.ts) hands over the decoded section itself, as openStack's slices do.
 */
import type { VolumeReader } from './formats/volume.js';
import { isContainerPath, openVolume, volumeLocation } from './registry.js';
import { openStack, type ReadOptions, type Slice, type StackReader } from './stack.js';

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

/**
 * Any input as a stack reader, for the commands that read whole stacks (emseg eval's maps, labels and images): PNG/TIFF
 * files as openStack reads them, and a volume container (HDF5 dataset, (OME-)Zarr, URL) section by section, with its
 * emseg record as the description, so that what a map's values mean is read from it as from a TIFF's.
 */
export async function openSections(path: string, options: ReadOptions = {}): Promise<StackReader> {
  if (!(await isContainerPath(path))) return openStack(path, options);
  const reader = await openVolume(path, { colour: options.colour });
  const [depth, height, width] = reader.shape;
  const record = reader.attributes.emseg;
  return {
    files: [reader.path], width, height, depth, sampleType: reader.dtype,
    ...(record === undefined ? {} : { description: JSON.stringify({ emseg: record }) }),
    ...(reader.voxelSize ? { voxelSize: reader.voxelSize } : {}),
    async *slices() {
      try {
        yield* volumeSlices(reader);
      } finally {
        await reader.close();
      }
    },
  };
}
