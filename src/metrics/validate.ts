import { EmsegError } from '../errors.js';
import type { ImageStack } from '../image/stack.js';

const describe = (s: ImageStack): string => `${s.width}x${s.height}x${s.depth} (width x height x depth)`;

function checkShape(stack: ImageStack, name: string): void {
  const { width, height, depth, data } = stack;
  for (const [key, v] of [['width', width], ['height', height], ['depth', depth]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new EmsegError('invalid-option', name, `${key} must be a positive integer, got ${v}`);
  }
  if (data.length !== width * height * depth) {
    throw new EmsegError('mismatch', name, `is ${describe(stack)} = ${width * height * depth} pixels but holds ${data.length} values`);
  }
}

/** "slice z, pixel (x, y)" of flat index i. */
function locate(stack: ImageStack, i: number): string {
  const n = stack.width * stack.height;
  const z = Math.floor(i / n);
  const r = i - z * n;
  return `slice ${z}, pixel (${r % stack.width}, ${Math.floor(r / stack.width)})`;
}

/** Flat index range of `slice` (the whole stack when undefined). */
function range(stack: ImageStack, slice: number | undefined): [number, number] {
  if (slice === undefined) return [0, stack.data.length];
  if (!Number.isInteger(slice) || slice < 0 || slice >= stack.depth) {
    throw new EmsegError('invalid-option', 'slice', `${slice} is out of range 0..${stack.depth - 1}`);
  }
  const n = stack.width * stack.height;
  return [slice * n, (slice + 1) * n];
}

function checkProposalValues(proposal: ImageStack, from: number, to: number): void {
  const p = proposal.data;
  for (let i = from; i < to; i++) {
    const v = p[i];
    if (Number.isNaN(v)) throw new EmsegError('invalid-data', 'proposal', `has NaN at ${locate(proposal, i)}`);
    if (v < 0 || v > 1) {
      throw new EmsegError('invalid-data', 'proposal', `value ${v} at ${locate(proposal, i)} is outside [0, 1] (expected the probability of non-membrane)`);
    }
  }
}

/** Checks a proposal alone: shape, values in [0, 1] without NaN (only slice `slice` if given). */
export function validateProposal(proposal: ImageStack, slice?: number): void {
  checkShape(proposal, 'proposal');
  checkProposalValues(proposal, ...range(proposal, slice));
}

/**
 * Checks the inputs of the metrics: same size, ground truth without NaN or negative values
 * (0 = membrane, anything else = interior), proposal values in [0, 1] without NaN. Errors name
 * the first offending pixel. With `slice`, only that slice's values are checked.
 */
export function validateInputs(gt: ImageStack, proposal: ImageStack, slice?: number): void {
  checkShape(gt, 'ground truth');
  checkShape(proposal, 'proposal');
  if (gt.width !== proposal.width || gt.height !== proposal.height || gt.depth !== proposal.depth) {
    throw new EmsegError('mismatch', 'proposal', `size mismatch: ground truth is ${describe(gt)} but proposal is ${describe(proposal)}`);
  }
  const [from, to] = range(gt, slice);
  const g = gt.data;
  for (let i = from; i < to; i++) {
    const v = g[i];
    if (Number.isNaN(v)) throw new EmsegError('invalid-data', 'ground truth', `has NaN at ${locate(gt, i)}`);
    if (v < 0) {
      throw new EmsegError('invalid-data', 'ground truth', `value ${v} at ${locate(gt, i)} is negative (expected 0 for membrane, > 0 for cell interior)`);
    }
  }
  checkProposalValues(proposal, from, to);
}
