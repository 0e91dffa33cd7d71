import { EmsegError } from '../errors.js';
import type { ModelSpec } from '../nn/spec.js';
import { planModel, type Plan, type PlanMode, type PlanNode } from '../nn/plan.js';
import { layerDef } from '../nn/layers/index.js';

/**
 * How a model covers a large section in tiles without seams.
 *
 * A tile's input is `inputH x inputW` pixels read (mirrored at the section border) from `margin` pixels above and
 * left of the tile's first output pixel; the tile keeps `stepH x stepW` outputs, so tiles are symmetric around
 * what they keep. Output pixel i of the network belongs to input pixel i + `offset` (valid convolutions lose
 * `offset` pixels per side); the first `halo` outputs on each side are thrown away, because zero padding
 * ('same' convolutions) makes them differ from the real neighbourhood. So margin = offset + halo.
 *
 * Tiles are placed at multiples of the step, and steps are multiples of the model's total stride (product of its
 * pooling strides; 1 for patch classifiers scanned densely). Every tile's input then starts at the same phase of
 * the pooling grid (-margin mod stride), and so does its end (+margin mod stride), which keeps the grid fixed
 * under flips and rotations of a tile too: a tiled prediction equals the prediction of one tile covering the
 * whole section.
 */
export interface TileGeometry {
  plan: Plan;
  inputH: number;
  inputW: number;
  /** Input pixels before the network's first output pixel (valid convolutions). */
  offset: number;
  /** Output pixels discarded at each tile edge (padded models). */
  halo: number;
  /** Output pixels each tile contributes per axis (multiples of `stride`). */
  stepH: number;
  stepW: number;
  /** Total down-sampling of the network; tile origins are aligned to it. */
  stride: number;
  /** offset + halo: input pixels on each side of the kept outputs. */
  margin: number;
}

/** Smallest output tile edge: below it a tile would be mostly halo (recomputed context). */
export const MIN_TILE = 64;
/** Output tile edge the margin search is done at: large enough that no layer is near its minimum size. */
const PROBE_STEP = 256;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

export function roundUp(v: number, m: number): number {
  return Math.ceil(v / m) * m;
}

function planMode(spec: ModelSpec): PlanMode {
  return spec.window ? 'dense' : 'strided';
}

/** Product of the pooling and convolution strides; 1 when a patch classifier is scanned densely. */
export function totalStride(spec: ModelSpec): number {
  if (spec.window) return 1;
  return spec.layers.reduce((d, l) => d * layerDef(l.type).tiling.stride(l), 1);
}

/** Least common multiple of the models' strides: one step that suits every model of an ensemble. */
export function commonStride(specs: readonly ModelSpec[]): number {
  return specs.reduce((l, s) => {
    const d = totalStride(s);
    return (l / gcd(l, d)) * d;
  }, 1);
}

/** Output tile edge for one axis: `tile` rounded up to the stride, at least MIN_TILE, at most the padded section. */
export function tileStep(tile: number, section: number, stride: number): number {
  if (!(Number.isInteger(tile) && tile > 0)) throw new EmsegError('invalid-option', 'tile', `must be a positive integer (got ${tile})`);
  return Math.min(roundUp(Math.max(tile, MIN_TILE), stride), roundUp(section, stride));
}

/** The output tile steps (height, width) of an ensemble's tiles at this tile edge on an h x w section. */
export function sectionSteps(specs: readonly ModelSpec[], tile: number, height: number, width: number): [number, number] {
  const stride = commonStride(specs);
  return [tileStep(tile, height, stride), tileStep(tile, width, stride)];
}

/** True when no strided layer floors its input and every crop is centred: outputs then align exactly. */
function isExact(plan: Plan): boolean {
  return plan.nodes.every((n: PlanNode) =>
    layerDef(n.type).tiling.aligned(n, n.inputs[0]! < 0 ? plan.input : plan.nodes[n.inputs[0]!]!.out));
}

function tryPlan(spec: ModelSpec, h: number, w: number): Plan | undefined {
  try {
    const plan = planModel(spec, h, w, { mode: planMode(spec) });
    return isExact(plan) ? plan : undefined;
  } catch {
    return undefined; // too small for the model at this size
  }
}

interface ModelLayout {
  stride: number;
  offset: number;
  margin: number;
}

const layouts = new WeakMap<ModelSpec, ModelLayout>();

/**
 * The model's per-axis margin, the same for every tile size (so every tile sees one pooling grid). Padded models
 * need every kept output's receptive field inside the tile: margin >= offset + field/2 + stride (the stride
 * covers where a pooled or up-sampled output sits within its cell). Square kernels are assumed (all zoo models).
 */
function modelLayout(spec: ModelSpec): ModelLayout {
  const known = layouts.get(spec);
  if (known) return known;
  if (spec.input.dims === 3) {
    // Tiles are of sections; a 3-d network reads blocks of a volume (its plans: nn/plan.ts smallestInput3d).
    throw new EmsegError('invalid-spec', spec.name, 'is a 3-d network: section-by-section prediction and training ' +
      'from image stacks serve 2-d networks only; emseg predict writes a 3-d network\'s maps into an OME-Zarr (--out x.zarr)');
  }
  const stride = totalStride(spec);
  const probeStep = roundUp(PROBE_STEP, stride);
  // Exactness depends on the input size modulo the stride: two periods hold every phase.
  let probe: Plan | undefined;
  for (let s = probeStep; !probe && s < probeStep + 2 * stride; s++) probe = tryPlan(spec, s, s);
  if (!probe) throw new EmsegError('invalid-spec', spec.name, 'found no input size at which the network\'s outputs align with its input');
  const shrink = probe.input[1] - probe.output[1];
  const offset = Math.floor(shrink / 2);
  const reach = probe.paddingFree ? 0 : Math.ceil((probe.field - 1) / 2) + stride;
  // 2 x margin runs through every even residue modulo the stride within stride / 2 steps; the rest is slack.
  for (let margin = Math.max(offset, reach); margin < Math.max(offset, reach) + 4 * stride + 2; margin++) {
    const fits = [probeStep, probeStep + stride].every((step) => {
      const plan = tryPlan(spec, step + 2 * margin, step + 2 * margin);
      return plan !== undefined && keptInsideOutput(plan, [step, step], margin, offset);
    });
    if (fits) {
      const layout = { stride, offset, margin };
      layouts.set(spec, layout);
      return layout;
    }
  }
  throw new EmsegError('invalid-spec', spec.name, `found no tile margin that keeps stride-${stride} tiles aligned`);
}

/** The kept outputs [margin, margin + step) lie inside the network's outputs, read forwards and mirrored. */
function keptInsideOutput(plan: Plan, steps: [number, number], margin: number, offset: number): boolean {
  return [1, 2].every((axis) => {
    const step = steps[axis - 1]!;
    const size = plan.input[axis]!;
    const out = plan.output[axis]!;
    const flippedStart = size - offset - out;
    return margin >= offset && margin + step <= offset + out && margin >= flippedStart && margin + step <= flippedStart + out;
  });
}

/** Geometry for explicit output steps (multiples of the model's stride). */
export function geometryForSteps(spec: ModelSpec, stepH: number, stepW: number): TileGeometry {
  const { stride, offset, margin } = modelLayout(spec);
  if (stepH % stride !== 0 || stepW % stride !== 0) {
    throw new EmsegError('invalid-option', 'tile', `${spec.name}: tile steps ${stepH}x${stepW} are not multiples of the network's stride ${stride}`);
  }
  const plan = tryPlan(spec, stepH + 2 * margin, stepW + 2 * margin);
  if (!plan || !keptInsideOutput(plan, [stepH, stepW], margin, offset)) {
    throw new EmsegError('invalid-option', 'tile', `${spec.name}: a ${stepH}x${stepW} tile does not fit the network (try a larger --tile)`);
  }
  return { plan, inputH: stepH + 2 * margin, inputW: stepW + 2 * margin, offset, halo: margin - offset, stepH, stepW,
    stride, margin };
}

/** Geometry for output tiles of about `tile` pixels (at least MIN_TILE, capped by the padded section). */
export function tileGeometry(spec: ModelSpec, tile: number, sectionH: number, sectionW: number): TileGeometry {
  const stride = totalStride(spec);
  return geometryForSteps(spec, tileStep(tile, sectionH, stride), tileStep(tile, sectionW, stride));
}
