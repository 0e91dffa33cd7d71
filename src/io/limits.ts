/** Size limits shared by the readers; checked against headers before any pixel buffer is allocated. */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { EmsegIoError } from './errors.js';

/** Largest slice we agree to decode (2^31 pixels, as the issue asks). */
export const MAX_SLICE_PIXELS = 2 ** 31;

/** Largest whole stack readStack will put in one typed array; beyond it, iterate slices instead. */
export const MAX_STACK_ELEMENTS = 2 ** 32 - 1;

/**
 * Memory the process can still take without swapping or being killed: MemAvailable from /proc/meminfo (which counts
 * reclaimable page cache), else os.freemem(). EMSEG_MEMORY_LIMIT (bytes) lowers it, e.g. for a container or tests.
 */
export function availableMemoryBytes(): number {
  let available = freemem();
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) available = Number(m[1]) * 1024;
  } catch {
    // not Linux: os.freemem() is the best we have
  }
  const limit = Number(process.env.EMSEG_MEMORY_LIMIT);
  return Number.isFinite(limit) && limit > 0 ? Math.min(available, limit) : available;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/**
 * Decoders hold the compressed file, the inflated rows and the grey result at once; PNG decoding (fast-png/pako)
 * also grows its output buffer by doubling. Bytes needed per raw pixel byte, measured on large grey PNGs.
 */
export const DECODE_BYTES_PER_RAW_BYTE = 3;

/** Refuses a decode whose buffers (estimated from the header) exceed the memory available now. */
export function checkDecodeMemory(path: string, what: string, rawBytes: number, fileBytes: number): void {
  const needed = DECODE_BYTES_PER_RAW_BYTE * rawBytes + fileBytes;
  const available = availableMemoryBytes();
  if (needed > available) {
    throw new EmsegIoError('too-large', path, `decoding ${what} needs about ${formatBytes(needed)} but only ${formatBytes(available)} of memory is available`);
  }
}
