import { EmsegError } from '../errors.js';
import { planModel, type Plan, type PlanMode } from '../nn/plan.js';
import { SpecError, type ModelSpec } from '../nn/spec.js';

/**
 * How an exported model turns an image of any size into an output of the same size, and the single-tile
 * forward pass of emseg that it reproduces. The image is mirrored (edge not repeated, as emseg's tiles are)
 * by `before` pixels at the top/left and `afterBase + ((residue - (n + before + afterBase)) mod step)` at the
 * bottom/right, so the padded size is one emseg plans the network at (a multiple of its down-sampling, as in
 * infer/tiling.ts and training); output pixel (i, j) of the image is then network output (i + sliceStart, j + sliceStart).
 *  - patch classifiers (a window): dense scanning; the output at j classifies the window starting at padded
 *    input j, whose centre is floor((window - 1) / 2) further on;
 *  - valid networks (U-Net): they shrink by the same amount at every such size; half of it on each side;
 *  - size-preserving ("same") networks: a halo of half the receptive field, rounded to the down-sampling, whose
 *    outputs (computed from zero-padded borders) are dropped.
 */
export interface ExportGeometry {
  mode: PlanMode;
  before: number;
  afterBase: number;
  /** Padded sizes are residue + k * step. */
  step: number;
  residue: number;
  sliceStart: number;
  /** Pixels of context each output pixel draws on at each side (what a block-wise runner must overlap). */
  halo: number;
  /** Receptive field of one output pixel, in input pixels. */
  field: number;
}

/** Size at which a network's geometry is probed: above any zoo model's minimum input. */
const PROBE_SIZE = 512;

function poolStride(spec: ModelSpec): number {
  return spec.layers.reduce((d, l) => {
    if (l.type !== 'pool') return d;
    const s = l.stride ?? l.kernel;
    return d * (typeof s === 'number' ? s : s[0]);
  }, 1);
}

function roundUp(v: number, m: number): number {
  return Math.ceil(v / m) * m;
}

function tryPlan(spec: ModelSpec, size: number, mode: PlanMode): Plan | null {
  try {
    return planModel(spec, size, size, { mode });
  } catch (err) {
    if (err instanceof SpecError) return null; // too small or misfitting at this size
    throw err;
  }
}

/** The padded size for an image axis of n pixels. */
export function paddedSize(g: ExportGeometry, n: number): number {
  const base = n + g.before + g.afterBase;
  return base + ((((g.residue - base) % g.step) + g.step) % g.step);
}

export function exportGeometry(spec: ModelSpec): ExportGeometry {
  if (spec.window !== undefined) {
    const before = Math.floor((spec.window - 1) / 2);
    const plan = planModel(spec, PROBE_SIZE + spec.window - 1, PROBE_SIZE + spec.window - 1, { mode: 'dense' });
    if (plan.output[1] < PROBE_SIZE) {
      throw new EmsegError('unsupported-export', spec.name, `dense scanning yields ${plan.output[1]} outputs for ${PROBE_SIZE} windows`);
    }
    return { mode: 'dense', before, afterBase: spec.window - 1 - before, step: 1, residue: 0, sliceStart: 0,
      halo: spec.window - 1 - before, field: spec.window };
  }
  const step = poolStride(spec);
  // emseg plans valid and "same" networks at multiples of the down-sampling (infer/tiling.ts, and so training):
  // the weights were fitted to that pooling grid, so the export uses the same sizes.
  const sizes = [roundUp(PROBE_SIZE, step), roundUp(PROBE_SIZE, step) + step];
  const plans = sizes.map((size) => tryPlan(spec, size, 'strided'));
  const shrinks = new Set(plans.map((plan, k) => (plan ? sizes[k]! - plan.output[1] : NaN)));
  const [a, b] = plans;
  if (!a || !b || shrinks.size !== 1) {
    throw new EmsegError('unsupported-export', spec.name, `its output does not follow its input size in steps of ${step} px`);
  }
  checkCropsFixed(spec, a, b);
  const shrink = [...shrinks][0]!;
  const halo = roundUp(Math.ceil(a.field / 2), step);
  if (shrink % 2 !== 0 || shrink < 0) {
    throw new EmsegError('unsupported-export', spec.name, `shrinks by ${shrink} px, so its output is not centred on its input`);
  }
  if (shrink > 0) {
    return { mode: 'strided', before: shrink / 2, afterBase: shrink / 2, step, residue: 0, sliceStart: 0, halo, field: a.field };
  }
  return { mode: 'strided', before: halo, afterBase: halo, step, residue: 0, sliceStart: halo, halo, field: a.field };
}

/** Crops (U-Net skips) are exported with fixed offsets: they must not depend on the input size. */
function checkCropsFixed(spec: ModelSpec, a: Plan, b: Plan): void {
  a.nodes.forEach((node, i) => {
    const other = b.nodes[i]!;
    if (node.type === 'crop' && other.type === 'crop' && (node.top !== other.top || node.left !== other.left)) {
      throw new EmsegError('unsupported-export', `${spec.name} layer "${node.name}"`, 'crops by an amount that depends on the input size');
    }
  });
}
