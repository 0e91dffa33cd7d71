/**
 * Loading of the N-API addon (native/build/Release/emseg_native.node) and its raw, typed API (./addon-api.ts,
 * generated from native/ops.json).
 * Tensors are numeric handles into the addon's registry; parameters and gradients cross as Float32Arrays.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmsegError } from '../../errors.js';
import { ADDON_OPS, type Addon } from './addon-api.js';

/** The addon is missing or failed to load (the caller may fall back to the reference backend). */
export class NativeUnavailableError extends EmsegError {
  override readonly name = 'NativeUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('native-unavailable', '', message, options);
  }
}

/** The addon loaded, but this CPU cannot do what was asked (e.g. bfloat16 without avx512_core_bf16 / AMX). */
export class NativeCapabilityError extends EmsegError {
  override readonly name = 'NativeCapabilityError';
  constructor(message: string) {
    super('native-capability', '', message);
  }
}

export type { Addon } from './addon-api.js';
export type { Handle, NativeInfo, NativeStats } from './native-types.js';

/** The package root: the nearest ancestor of this module holding emseg's package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'emseg') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  // Fall back to the layout of the sources: src/backend/onednn -> root.
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
}

/** Where the addon is expected (EMSEG_NATIVE_ADDON overrides it). */
export function nativeAddonPath(): string {
  return process.env.EMSEG_NATIVE_ADDON || join(packageRoot(), 'native', 'build', 'Release', 'emseg_native.node');
}

let loaded: Addon | null = null;
let loadError: NativeUnavailableError | null = null;

/** Loads the addon once (throws NativeUnavailableError, also on later calls, if it is missing or broken). */
export function loadAddon(): Addon {
  if (loaded) return loaded;
  if (loadError) throw loadError;
  const path = nativeAddonPath();
  if (!existsSync(path)) {
    loadError = new NativeUnavailableError(
      `emseg native addon not found at ${path}; build it with 'npm run build:native' in a checkout, or 'npm rebuild emseg' ` +
      'where emseg is installed as a package (needs libdnnl-dev and a C++ toolchain, see scripts/ensure-system-deps.sh)');
    throw loadError;
  }
  try {
    const req = createRequire(import.meta.url);
    const mod = req(path) as Addon;
    const missing = ADDON_OPS.filter((op) => typeof mod?.[op] !== 'function');
    if (missing.length) {
      throw new EmsegError('native-unavailable', '', `the module does not export the emseg kernel API (stale build?): `
        + `missing ${missing.join(', ')}`);
    }
    loaded = mod;
    return mod;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    loadError = new NativeUnavailableError(`emseg native addon at ${path} failed to load: ${why}`, { cause: err });
    throw loadError;
  }
}
