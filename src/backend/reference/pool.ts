/**
 * Max pooling, reference kernels (semantics of oneDNN 2.x `pooling_max`, cpu/ref_pooling.cpp):
 *
 *   x [N, C, H, W] -> y [N, C, OH, OW], OH = floor((H + pt + pb - dh*(KH-1) - 1) / sh) + 1 (likewise OW)
 *   y[n, c, oh, ow] = max over taps (i, j) in scan order (i outer, j inner) of x[n, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
 *
 * - Padded cells never win (they act as -inf; they are simply skipped).
 * - Ties go to the FIRST maximal tap in scan order (strict `>` comparison), and the backward pass routes the whole
 *   gradient of an output cell to that single input cell (oneDNN keeps the winning tap in its workspace).
 * - A window lying entirely in the padding (possible only when a padding is >= the dilated kernel extent) has no
 *   winner: like oneDNN's reference it outputs the lowest finite value of the precision and gets no gradient.
 * - Dilation 1 = dense; oneDNN's dilation is ours - 1.
 *
 * Workspace: a Tensor shaped like y whose values are the winner's index within its (n, c) plane, ih*W + iw
 * (-1 when there is no winner). Plane indices stay exactly representable in float32 (planes up to 2^24 pixels).
 * Callers must treat it as opaque.
 *
 * maxPool3d is the same over x [N, C, D, H, W] with taps (a, i, j) scanned a outer, j inner, padding
 * [front, top, left, back, bottom, right]; its workspace holds the winner's index in its (n, c) volume,
 * (id*H + ih)*W + iw (volumes up to 2^24 voxels in float32).
 */
import type { Pool3dParams, PoolParams } from '../backend.js';
import { type Shape, type Tensor, formatShape } from '../../tensor/tensor.js';
import { EmsegError } from '../../errors.js';
import { type Pool3dGeometry, expectShape, pool3dGeometry, poolGeometry } from '../geometry.js';
import type { RefContext } from './util.js';

const LOWEST = { float32: -3.4028234663852886e38, float64: -Number.MAX_VALUE } as const;

export function maxPool2d(
  ctx: RefContext, x: Tensor, p: PoolParams, training: boolean,
): { y: Tensor; workspace: Tensor | null } {
  const what = 'maxPool2d';
  const g = poolGeometry(x.shape, p, what);
  const { N, C, H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl } = g;
  if (training && ctx.precision === 'float32' && H * W > 2 ** 24) {
    throw new EmsegError('invalid-option', what, `planes of ${H}x${W} pixels are too large for a float32 argmax workspace`);
  }
  const xd = ctx.data(x, `${what} x`);
  const y = ctx.alloc(N * C * OH * OW);
  const ws = training ? ctx.alloc(y.length) : null;
  for (let nc = 0; nc < N * C; nc++) {
    const xBase = nc * H * W;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let best = 0;
        let arg = -1;
        for (let i = 0; i < KH; i++) {
          const ih = oh * sh - pt + i * dh;
          if (ih < 0 || ih >= H) continue;
          for (let j = 0; j < KW; j++) {
            const iw = ow * sw - pl + j * dw;
            if (iw < 0 || iw >= W) continue;
            const v = xd[xBase + ih * W + iw]!;
            if (arg < 0 || v > best) {
              best = v;
              arg = ih * W + iw;
            }
          }
        }
        const yi = (nc * OH + oh) * OW + ow;
        y[yi] = arg < 0 ? LOWEST[ctx.precision] : best;
        if (ws) ws[yi] = arg;
      }
    }
  }
  return {
    y: ctx.wrap(y, [N, C, OH, OW]),
    workspace: ws ? ctx.wrap(ws, [N, C, OH, OW]) : null,
  };
}

export function maxPool2dBackward(
  ctx: RefContext, dy: Tensor, workspace: Tensor, xShape: Shape, p: PoolParams,
): Tensor {
  const what = 'maxPool2dBackward';
  const g = poolGeometry(xShape, p, what);
  const { N, C, H, W, OH, OW } = g;
  expectShape(dy.shape, [N, C, OH, OW], `${what} dy (for x ${formatShape(xShape)})`);
  expectShape(workspace.shape, [N, C, OH, OW], `${what} workspace`);
  const dyd = ctx.data(dy, `${what} dy`);
  const wsd = ctx.data(workspace, `${what} workspace`);
  const dx = new Float64Array(N * C * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    for (let o = 0; o < OH * OW; o++) {
      const yi = nc * OH * OW + o;
      const arg = wsd[yi]!;
      if (arg < 0) continue;
      if (!Number.isInteger(arg) || arg >= H * W) {
        throw new EmsegError('invalid-option', what, `workspace entry ${arg} is not an argmax of this pooling (corrupted workspace?)`);
      }
      dx[nc * H * W + arg] += dyd[yi]!;
    }
  }
  return ctx.wrap(ctx.fromF64(dx), [N, C, H, W]);
}

/** The winner of one 3-d window in x's (n, c) volume starting at `base`: [value, index] (index -1: no winner). */
function argmax3d(xd: ArrayLike<number>, base: number, g: Pool3dGeometry, od: number, oh: number, ow: number,
): [number, number] {
  let best = 0;
  let arg = -1;
  for (let a = 0; a < g.KD; a++) {
    const id = od * g.sd - g.pf + a * g.dd;
    if (id < 0 || id >= g.D) continue;
    for (let i = 0; i < g.KH; i++) {
      const ih = oh * g.sh - g.pt + i * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (let j = 0; j < g.KW; j++) {
        const iw = ow * g.sw - g.pl + j * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        const k = (id * g.H + ih) * g.W + iw;
        const v = xd[base + k]!;
        if (arg < 0 || v > best) {
          best = v;
          arg = k;
        }
      }
    }
  }
  return [best, arg];
}

export function maxPool3d(
  ctx: RefContext, x: Tensor, p: Pool3dParams, training: boolean,
): { y: Tensor; workspace: Tensor | null } {
  const what = 'maxPool3d';
  const g = pool3dGeometry(x.shape, p, what);
  const { N, C, D, H, W, OD, OH, OW } = g;
  if (training && ctx.precision === 'float32' && D * H * W > 2 ** 24) {
    throw new EmsegError('invalid-option', what, `volumes of ${D}x${H}x${W} voxels are too large for a float32 argmax workspace`);
  }
  const xd = ctx.data(x, `${what} x`);
  const y = ctx.alloc(N * C * OD * OH * OW);
  const ws = training ? ctx.alloc(y.length) : null;
  let yi = 0;
  for (let nc = 0; nc < N * C; nc++) {
    for (let od = 0; od < OD; od++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++, yi++) {
          const [best, arg] = argmax3d(xd, nc * D * H * W, g, od, oh, ow);
          y[yi] = arg < 0 ? LOWEST[ctx.precision] : best;
          if (ws) ws[yi] = arg;
        }
      }
    }
  }
  return { y: ctx.wrap(y, g.y), workspace: ws ? ctx.wrap(ws, g.y) : null };
}

export function maxPool3dBackward(
  ctx: RefContext, dy: Tensor, workspace: Tensor, xShape: Shape, p: Pool3dParams,
): Tensor {
  const what = 'maxPool3dBackward';
  const g = pool3dGeometry(xShape, p, what);
  expectShape(dy.shape, g.y, `${what} dy (for x ${formatShape(xShape)})`);
  expectShape(workspace.shape, g.y, `${what} workspace`);
  const dyd = ctx.data(dy, `${what} dy`);
  const wsd = ctx.data(workspace, `${what} workspace`);
  const volume = g.D * g.H * g.W;
  const outVolume = g.OD * g.OH * g.OW;
  const dx = new Float64Array(g.N * g.C * volume);
  for (let yi = 0; yi < dyd.length; yi++) {
    const arg = wsd[yi]!;
    if (arg < 0) continue;
    if (!Number.isInteger(arg) || arg >= volume) {
      throw new EmsegError('invalid-option', what, `workspace entry ${arg} is not an argmax of this pooling (corrupted workspace?)`);
    }
    dx[Math.floor(yi / outVolume) * volume + arg] += dyd[yi]!;
  }
  return ctx.wrap(ctx.fromF64(dx), g.x);
}
