/** Elementwise reference kernels: ReLU, addition, inverted dropout. */
import type { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/rng.js';
import { checkDropout, sameShape } from '../geometry.js';
import type { RefContext } from './util.js';

/** y = max(x, 0). */
export function relu(ctx: RefContext, x: Tensor): Tensor {
  const xd = ctx.data(x, 'relu x');
  const y = ctx.alloc(xd.length);
  for (let i = 0; i < xd.length; i++) y[i] = xd[i]! > 0 ? xd[i]! : 0;
  return ctx.wrap(y, x.shape);
}

/** dx = dy where y > 0, else 0 (the derivative at 0 is taken as 0, as oneDNN's eltwise_relu backward from dst). */
export function reluBackward(ctx: RefContext, y: Tensor, dy: Tensor): Tensor {
  sameShape(y.shape, dy.shape, 'reluBackward (y vs dy)');
  const yd = ctx.data(y, 'reluBackward y');
  const dyd = ctx.data(dy, 'reluBackward dy');
  const dx = ctx.alloc(yd.length);
  for (let i = 0; i < yd.length; i++) dx[i] = yd[i]! > 0 ? dyd[i]! : 0;
  return ctx.wrap(dx, y.shape);
}

export function add(ctx: RefContext, a: Tensor, b: Tensor): Tensor {
  sameShape(a.shape, b.shape, 'add');
  const ad = ctx.data(a, 'add a');
  const bd = ctx.data(b, 'add b');
  const y = ctx.alloc(ad.length);
  for (let i = 0; i < ad.length; i++) y[i] = ad[i]! + bd[i]!;
  return ctx.wrap(y, a.shape);
}

/**
 * The dropout stream: mulberry32 (src/util/rng.ts) seeded with `seed`, one uniform [0, 1) draw per element.
 * Exported so that other backends can reproduce the reference dropout masks bit for bit.
 */
export function mulberry32(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/**
 * Inverted dropout. Element i (NCHW order) draws u_i from mulberry32(seed) in order and is kept iff u_i >= rate;
 * mask_i = kept ? 1 / (1 - rate) : 0, y = x * mask. rate must lie in [0, 1).
 */
export function dropout(ctx: RefContext, x: Tensor, rate: number, seed: number): { y: Tensor; mask: Tensor } {
  checkDropout(rate, seed);
  const xd = ctx.data(x, 'dropout x');
  const rng = mulberry32(seed);
  const scale = 1 / (1 - rate);
  const mask = ctx.alloc(xd.length);
  const y = ctx.alloc(xd.length);
  for (let i = 0; i < xd.length; i++) {
    const m = rng() >= rate ? scale : 0;
    mask[i] = m;
    y[i] = xd[i]! * mask[i]!;
  }
  return { y: ctx.wrap(y, x.shape), mask: ctx.wrap(mask, x.shape) };
}

export function dropoutBackward(ctx: RefContext, dy: Tensor, mask: Tensor): Tensor {
  sameShape(dy.shape, mask.shape, 'dropoutBackward (dy vs mask)');
  const dyd = ctx.data(dy, 'dropoutBackward dy');
  const md = ctx.data(mask, 'dropoutBackward mask');
  const dx = ctx.alloc(dyd.length);
  for (let i = 0; i < dyd.length; i++) dx[i] = dyd[i]! * md[i]!;
  return ctx.wrap(dx, dy.shape);
}
