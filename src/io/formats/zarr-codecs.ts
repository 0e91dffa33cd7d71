/**
 * zarrita decodes zlib and gzip chunks but cannot encode them (its encoders throw), and its decoders inflate
 * without a size limit. These entries replace them in zarrita's codec registry with Node's native zlib, which
 * encodes (so we can write Zarr that zarr-python and Neuroglancer read) and stops a hostile chunk from
 * inflating past the size its chunk shape allows. Blosc comes from numcodecs (zarrita's default), which encodes;
 * its decoder trusts the chunk's 16-byte header, so a truncated chunk whose header says "stored uncompressed"
 * decodes to the full size with whatever memory follows. The blosc entry here checks the header first: the
 * compressed size it records must be the file's size, and the decoded size the chunk's.
 */
import { deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import * as zarr from 'zarrita';
import { EmsegError } from '../../errors.js';

/** Bytes per element of the zarr data types we may meet; unknown types get no inflate limit beyond the cap. */
const ITEM_SIZE: Record<string, number> = {
  int8: 1, uint8: 1, bool: 1, int16: 2, uint16: 2, float16: 2,
  int32: 4, uint32: 4, float32: 4, int64: 8, uint64: 8, float64: 8,
};

/** Inflate limit when the chunk size cannot be known (2 GiB, the largest Buffer Node makes everywhere). */
const INFLATE_CAP = 2 ** 31 - 1;

/** zlib level when the metadata names none (1: fastest, EM data compress poorly anyway). */
const DEFAULT_LEVEL = 1;

interface ChunkMeta {
  dataType: string;
  shape: number[];
}

function decodedBytes(meta: ChunkMeta): number {
  const size = ITEM_SIZE[meta.dataType];
  if (size === undefined) return INFLATE_CAP;
  return Math.min(INFLATE_CAP, Math.max(1, meta.shape.reduce((a, b) => a * b, 1) * size));
}

function nodeCodec(format: 'zlib' | 'gzip') {
  return {
    kind: 'bytes_to_bytes' as const,
    fromConfig(config: unknown, meta: ChunkMeta) {
      const level = (config as { level?: number } | undefined)?.level ?? DEFAULT_LEVEL;
      const maxOutputLength = decodedBytes(meta);
      return {
        kind: 'bytes_to_bytes' as const,
        encode: async (bytes: Uint8Array) => new Uint8Array(format === 'zlib' ? deflateSync(bytes, { level }) : gzipSync(bytes, { level })),
        decode: async (bytes: Uint8Array) => new Uint8Array(format === 'zlib' ? inflateSync(bytes, { maxOutputLength }) : gunzipSync(bytes, { maxOutputLength })),
      };
    },
  };
}

/** Blosc 1 header: version, versionlz, flags, typesize, then uint32 LE nbytes, blocksize, cbytes. */
const BLOSC_HEADER_BYTES = 16;
const BLOSC_NBYTES_AT = 4;
const BLOSC_CBYTES_AT = 12;

/** Why a blosc chunk cannot be what its header claims, or undefined when the header is consistent. */
export function bloscHeaderProblem(bytes: Uint8Array, expectedBytes: number | undefined): string | undefined {
  if (bytes.length < BLOSC_HEADER_BYTES) return `${bytes.length} bytes, shorter than a blosc header (${BLOSC_HEADER_BYTES})`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nbytes = view.getUint32(BLOSC_NBYTES_AT, true);
  const cbytes = view.getUint32(BLOSC_CBYTES_AT, true);
  if (cbytes !== bytes.length) return `the blosc header records ${cbytes} compressed bytes but the chunk holds ${bytes.length}; truncated or damaged`;
  if (expectedBytes !== undefined && nbytes !== expectedBytes) {
    return `the blosc header records ${nbytes} decoded bytes but the chunk's shape and data type need ${expectedBytes}`;
  }
  return undefined;
}

interface BytesCodec {
  encode(bytes: Uint8Array): Promise<Uint8Array>;
  decode(bytes: Uint8Array): Promise<Uint8Array>;
}

/** numcodecs' blosc with the header checked before decoding and the decoded size checked after. */
function guardedBlosc(load: () => Promise<{ fromConfig(config: unknown, meta: ChunkMeta): BytesCodec }>) {
  return async () => {
    const Blosc = await load();
    return {
      kind: 'bytes_to_bytes' as const,
      fromConfig(config: unknown, meta: ChunkMeta) {
        const inner = Blosc.fromConfig(config, meta);
        const expected = ITEM_SIZE[meta.dataType] === undefined ? undefined : decodedBytes(meta);
        return {
          kind: 'bytes_to_bytes' as const,
          encode: (bytes: Uint8Array) => inner.encode(bytes),
          async decode(bytes: Uint8Array) {
            const problem = bloscHeaderProblem(bytes, expected);
            if (problem) throw new EmsegError('corrupt', 'blosc', problem);
            const out = await inner.decode(bytes);
            if (expected !== undefined && out.length !== expected) throw new EmsegError('corrupt', 'blosc', `decoded ${out.length} bytes, the chunk needs ${expected}`);
            return out;
          },
        };
      },
    };
  };
}

let registered = false;

/** Installs the encoders once per process; safe to call from every module that writes Zarr. */
export function registerZarrCodecs(): void {
  if (registered) return;
  registered = true;
  type Entry = Parameters<typeof zarr.registry.set>[1];
  const zlib = (async () => nodeCodec('zlib')) as unknown as Entry;
  const gzip = (async () => nodeCodec('gzip')) as unknown as Entry;
  for (const name of ['zlib', 'numcodecs.zlib']) zarr.registry.set(name, zlib);
  for (const name of ['gzip', 'numcodecs.gzip']) zarr.registry.set(name, gzip);
  const blosc = zarr.registry.get('blosc');
  if (blosc) {
    const guarded = guardedBlosc(blosc as never) as unknown as Entry;
    for (const name of ['blosc', 'numcodecs.blosc']) zarr.registry.set(name, guarded);
  }
}
