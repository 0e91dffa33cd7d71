import { EmsegError } from '../errors.js';
import { planModel, type Plan, type PlanMode } from '../nn/plan.js';
import type { ModelSpec } from '../nn/spec.js';

/**
 * How an exported model turns an image of any size into an output of the same size, and the single-tile
 * forward pass of emseg that it reproduces. The image is mirrored (edge not repeated, as emseg's tiles are)
 * by `before` pixels at the top/left and `afterBase + ((residue - (n + before + afterBase)) mod step)` at the
 * bottom/right, so the padded size is one the network consumes exactly (an "aligned" size: every pooling
 * divides evenly); output pixel (i, j) of the image is then network output (i + sliceStart, j + sliceStart).
 *  - patch classifiers (a window): dense scanning; the output at j classifies the window starting at padded
 *    input j, whose centre is floor((window - 1) / 2) further on;
 *  - valid networks (U-Net): they shrink by the same amount at every aligned size; half of it on each side;
 *  - size-preserving ("same") networks: a halo of half the receptive field, rounded to the down-sampling, whose
 *    outputs (computed from zero-padded borders) are dropped.
 */
export interface ExportGeometry {
  mode: PlanMode;
  before: number;
  afterBase: number;
  /** Aligned padded sizes are residue + k * step. */
  step: number;
  residue: number;
  sliceStart: number;
  /** Pixels of context each output pixel draws on at each side (what a block-wise runner must overlap). */
  halo: number;
  /** Receptive field of one output pixel, in input pixels. */
  field: number;
}

/** Sizes tried when looking for the aligned ones: above any zoo model's minimum input. */
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
  } catch {
    return null; // too small or misfitting at this size: not a candidate
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
  const aligned: { size: number; plan: Plan }[] = [];
  for (let size = PROBE_SIZE; size < PROBE_SIZE + 2 * step; size++) {
    const plan = tryPlan(spec, size, 'strided');
    const prev = tryPlan(spec, size - 1, 'strided');
    if (plan && (!prev || prev.output[1] < plan.output[1])) aligned.push({ size, plan });
  }
  const shrinks = new Set(aligned.map((a) => a.size - a.plan.output[1]));
  if (aligned.length !== 2 || aligned[1]!.size - aligned[0]!.size !== step || shrinks.size !== 1) {
    throw new EmsegError('unsupported-export', spec.name, `found no regular set of input sizes (every ${step} px) that the network consumes exactly`);
  }
  checkCropsFixed(spec, aligned[0]!.plan, aligned[1]!.plan);
  const shrink = [...shrinks][0]!;
  const field = aligned[0]!.plan.field;
  const residue = aligned[0]!.size % step;
  if (shrink % 2 !== 0) {
    throw new EmsegError('unsupported-export', spec.name, `shrinks by an odd ${shrink} px, so its output is not centred on its input`);
  }
  if (shrink > 0) {
    return { mode: 'strided', before: shrink / 2, afterBase: shrink / 2, step, residue, sliceStart: 0,
      halo: roundUp(Math.ceil(field / 2), step), field };
  }
  const halo = roundUp(Math.ceil(field / 2), step);
  return { mode: 'strided', before: halo, afterBase: halo, step, residue, sliceStart: halo, halo, field };
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
