import { EmsegError } from '../errors.js';
import type { Backend, Precision } from './backend.js';
import { loadOneDnnBackend, NativeUnavailableError } from './onednn/index.js';
import { createReferenceBackend } from './reference/index.js';

export type BackendKind = 'auto' | 'onednn' | 'reference';

export interface BackendOptions {
  kind?: BackendKind;
  precision?: Precision;
  /** int8 inference convolutions (ConvOptions.int8): oneDNN, float32, an AVX-512 VNNI CPU; refused elsewhere. */
  int8?: boolean;
  /** CPU threads for oneDNN; default EMSEG_THREADS, else all cores. */
  threads?: number;
  /** Where the one-time fallback warning goes (default stderr). */
  warn?: (message: string) => void;
}

let warnedFallback = false;

/** oneDNN when its addon loads; otherwise the reference backend, with one clear warning that it is slow. */
export function createBackend(options: BackendOptions = {}): Backend {
  const kind = options.kind ?? 'auto';
  const precision = options.precision ?? 'float32';
  const envThreads = Number(process.env.EMSEG_THREADS);
  const threads = options.threads ?? (Number.isInteger(envThreads) && envThreads > 0 ? envThreads : undefined);
  if (kind === 'reference') {
    // The reference backend computes in float32 or float64 only; bf16 there would silently be float32.
    if (precision === 'bfloat16') throw new EmsegError('invalid-option', '--bf16', 'bf16 runs only on the oneDNN backend, not with --backend reference');
    if (options.int8) throw new EmsegError('invalid-option', '--int8', 'int8 runs only on the oneDNN backend, not with --backend reference');
    return createReferenceBackend(precision === 'float64' ? 'float64' : 'float32');
  }
  if (precision === 'float64') throw new EmsegError('invalid-option', '--backend', 'float64 runs only on the reference backend (--backend reference)');
  try {
    return loadOneDnnBackend({ precision, threads, int8: options.int8 });
  } catch (err) {
    if (kind === 'onednn' || !(err instanceof NativeUnavailableError)) throw err;
    if (precision === 'bfloat16') throw new EmsegError('native-unavailable', '--bf16', `bf16 needs the oneDNN addon: ${err.message}`);
    if (options.int8) throw new EmsegError('native-unavailable', '--int8', `int8 needs the oneDNN addon: ${err.message}`);
    if (!warnedFallback) {
      (options.warn ?? ((m) => process.stderr.write(`${m}\n`)))(
        `emseg: warning: native oneDNN backend unavailable (${err.message}); using the plain TypeScript ` +
        'reference backend, which is orders of magnitude slower. Run `make build` to build the addon.');
      warnedFallback = true;
    }
    return createReferenceBackend('float32');
  }
}

export type { Backend, Precision } from './backend.js';
