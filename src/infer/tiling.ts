import type { ModelSpec } from '../nn/spec.js';
import { planModel, type Plan } from '../nn/plan.js';

/**
 * How a model covers a large section in tiles without seams.
 * Every model is run on input tiles of `inputH x inputW`; a tile's output pixel (i, j) belongs to input pixel
 * (i + offset, j + offset). "Valid" models (patch classifiers scanned densely, U-Net) lose `offset` pixels per
 * side and their outputs are exact; "same"-padded models keep their size, so an extra `halo` of outputs at each
 * tile edge (where zero padding would differ from the real neighbourhood) is thrown away. Tiles step by a
 * multiple of the model's total down-sampling, so every tile sees the same pooling grid.
 */
export interface TileGeometry {
  plan: Plan;
  inputH: number;
  inputW: number;
  /** Input pixels before the first output pixel (valid convolutions). */
  offset: number;
  /** Output pixels discarded at each tile edge (padded models). */
  halo: number;
  /** Output pixels each tile contributes per axis. */
  stepH: number;
  stepW: number;
}

function downsampling(spec: ModelSpec): number {
  return spec.layers.reduce((d, l) => (l.type === 'pool' ? d * (typeof (l.stride ?? l.kernel) === 'number'
    ? (l.stride ?? l.kernel) as number : ((l.stride ?? l.kernel) as [number, number])[0]) : d), 1);
}

function roundUp(v: number, m: number): number {
  return Math.ceil(v / m) * m;
}

/** Geometry for output tiles of about `tile` pixels (capped by the section size). */
export function tileGeometry(spec: ModelSpec, tile: number, sectionH: number, sectionW: number): TileGeometry {
  if (spec.window) {
    // Dense scanning: every output pixel is one window; the output is exact, no halo needed.
    const th = Math.min(tile, sectionH);
    const tw = Math.min(tile, sectionW);
    const plan = planModel(spec, th + spec.window - 1, tw + spec.window - 1, { mode: 'dense' });
    // Output j classifies the window starting at input j, whose centre is floor((window - 1) / 2) further on.
    // (A pooling that floors an odd size leaves the last window pixels unused; the plan then has more than
    // th outputs, and the extra ones are simply not used.)
    return { plan, inputH: th + spec.window - 1, inputW: tw + spec.window - 1, offset: Math.floor((spec.window - 1) / 2),
      halo: 0, stepH: th, stepW: tw };
  }
  const d = downsampling(spec);
  const probe = planModel(spec, roundUp(Math.max(tile, 64), d) + 256, roundUp(Math.max(tile, 64), d) + 256);
  const shrink = probe.input[1] - probe.output[1];
  if (shrink === 0) {
    const halo = roundUp(Math.ceil(probe.field / 2), d);
    const step = roundUp(Math.min(tile, Math.max(sectionH, sectionW)), d);
    const size = step + 2 * halo;
    const plan = planModel(spec, size, size);
    return { plan, inputH: size, inputW: size, offset: 0, halo, stepH: step, stepW: step };
  }
  // Valid model with pooling: find the smallest input giving at least `tile` outputs.
  for (let size = roundUp(tile + shrink, d); ; size += d) {
    try {
      const plan = planModel(spec, size, size);
      const out = plan.output[1];
      if (out >= Math.min(tile, 64) && (size - out) % 2 === 0) {
        return { plan, inputH: size, inputW: size, offset: (size - out) / 2, halo: 0, stepH: out, stepW: out };
      }
    } catch {
      // too small for the model yet: keep growing
    }
    if (size > tile + shrink + 64 * d) throw new Error(`${spec.name}: found no tile size near ${tile} px`);
  }
}
