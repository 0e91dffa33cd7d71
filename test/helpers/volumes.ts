/** Synthetic volumes for the volume tests: HDF5 files made with h5wasm, BigTIFFs built byte by byte. */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { loadH5wasm } from '../../src/io/formats/hdf5.js';

/** A deterministic test pattern of `n` voxels (not a ramp, so misplaced copies show). */
export function pattern(n: number, max = 255, seed = 1): number[] {
  const out = new Array<number>(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = s % (max + 1);
  }
  return out;
}

/**
 * Writes an HDF5 file with the given datasets (path -> typed array and shape), chunked and gzip-compressed when asked,
 * with numeric attributes (e.g. CREMI's `resolution`) as float64 lists.
 */
export async function writeHdf5(file: string, datasets: { path: string; data: ArrayBufferView; shape: number[]; dtype: string; chunks?: number[];
  attrs?: Record<string, number[]> }[]): Promise<void> {
  const h5 = await loadH5wasm();
  const f = new h5.File(resolve(file), 'w');
  try {
    for (const d of datasets) {
      const parts = d.path.split('/').filter(Boolean);
      let g: InstanceType<typeof h5.Group> = f;
      for (const p of parts.slice(0, -1)) g = (g.get(p) as InstanceType<typeof h5.Group> | null) ?? g.create_group(p);
      const ds = g.create_dataset({ name: parts[parts.length - 1]!, data: d.data as never, shape: d.shape, dtype: d.dtype, chunks: d.chunks ?? null, ...(d.chunks ? { compression: 'gzip' as const } : {}) });
      for (const [name, values] of Object.entries(d.attrs ?? {})) ds.create_attribute(name, Float64Array.from(values), [values.length], '<d');
    }
  } finally {
    f.close();
  }
}

/**
 * A little-endian BigTIFF (version 43, 8-byte offsets) of uint16 grey pages, uncompressed, in strips of
 * `rowsPerStrip` rows: enough to check that pages and strip windows are read right.
 */
export function writeBigTiff(file: string, pages: Uint16Array[], width: number, height: number, rowsPerStrip: number): void {
  const strips = Math.ceil(height / rowsPerStrip);
  const TAGS = 10;
  const ifdBytes = 8 + TAGS * 20 + 8;
  const pageBytes = width * height * 2;
  const arrays = strips * 16; // offsets + counts, 8 bytes each
  const perPage = ifdBytes + arrays + pageBytes;
  const buf = Buffer.alloc(16 + pages.length * perPage);
  buf.write('II', 0, 'latin1');
  buf.writeUInt16LE(43, 2);
  buf.writeUInt16LE(8, 4);
  buf.writeUInt16LE(0, 6);
  buf.writeBigUInt64LE(16n, 8);
  pages.forEach((data, p) => {
    const base = 16 + p * perPage;
    const offsetsAt = base + ifdBytes;
    const countsAt = offsetsAt + strips * 8;
    const dataAt = countsAt + strips * 8;
    const entries: [number, number, number, bigint][] = [
      [256, 4, 1, BigInt(width)], [257, 4, 1, BigInt(height)], [258, 3, 1, 16n], [259, 3, 1, 1n], [262, 3, 1, 1n],
      [273, 16, strips, BigInt(strips === 1 ? dataAt : offsetsAt)], [277, 3, 1, 1n], [278, 4, 1, BigInt(rowsPerStrip)],
      [279, 16, strips, BigInt(strips === 1 ? pageBytes : countsAt)], [339, 3, 1, 1n],
    ];
    buf.writeBigUInt64LE(BigInt(TAGS), base);
    entries.forEach(([tag, type, count, value], i) => {
      const e = base + 8 + i * 20;
      buf.writeUInt16LE(tag, e);
      buf.writeUInt16LE(type, e + 2);
      buf.writeBigUInt64LE(BigInt(count), e + 4);
      if (type === 3) buf.writeUInt16LE(Number(value), e + 12);
      else if (type === 4) buf.writeUInt32LE(Number(value), e + 12);
      else buf.writeBigUInt64LE(value, e + 12);
    });
    const next = p + 1 < pages.length ? BigInt(base + perPage) : 0n;
    buf.writeBigUInt64LE(next, base + 8 + TAGS * 20);
    for (let s = 0; s < strips; s++) {
      const rows = Math.min(rowsPerStrip, height - s * rowsPerStrip);
      buf.writeBigUInt64LE(BigInt(dataAt + s * rowsPerStrip * width * 2), offsetsAt + s * 8);
      buf.writeBigUInt64LE(BigInt(rows * width * 2), countsAt + s * 8);
    }
    for (let i = 0; i < data.length; i++) buf.writeUInt16LE(data[i]!, dataAt + 2 * i);
  });
  writeFileSync(file, buf);
}

/** Every file of a volume output except its run records (`.emseg/`: markers and work files), with its bytes. */
export function outputFiles(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (n === '.emseg') continue;
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(root, p), readFileSync(p));
    }
  };
  walk(root);
  return out;
}
