/** Shape reference kernels: crop (2-d and 3-d), channel concatenation (4-d or 5-d), nearest-neighbour upsampling, and their gradients. */
import {
  concatBackwardGeometry, concatGeometry, crop3dBackwardGeometry, crop3dGeometry, cropBackwardGeometry, cropGeometry,
  upsampleBackwardGeometry, upsampleGeometry,
} from '../geometry.js';
import { numel, type Shape, type Tensor } from '../../tensor/tensor.js';
import type { RefContext } from './util.js';

/** y[n, c, i, j] = x[n, c, top + i, left + j] for i < h, j < w. */
export function crop(ctx: RefContext, x: Tensor, top: number, left: number, h: number, w: number): Tensor {
  const [N, C] = cropGeometry(x.shape, top, left, h, w, 'crop');
  const [, , H, W] = x.shape as [number, number, number, number];
  const xd = ctx.data(x, 'crop x');
  const y = ctx.alloc(N * C * h * w);
  for (let nc = 0; nc < N * C; nc++) {
    for (let i = 0; i < h; i++) {
      const src = (nc * H + top + i) * W + left;
      y.set(xd.subarray(src, src + w), (nc * h + i) * w);
    }
  }
  return ctx.wrap(y, [N, C, h, w]);
}

/** dx = zeros(xShape) with dy written into the crop window. */
export function cropBackward(ctx: RefContext, dy: Tensor, xShape: Shape, top: number, left: number): Tensor {
  const what = 'cropBackward';
  const [N, C, H, W] = cropBackwardGeometry(dy.shape, xShape, top, left);
  const [, , h, w] = dy.shape as [number, number, number, number];
  const dyd = ctx.data(dy, `${what} dy`);
  const dx = ctx.alloc(N * C * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    for (let i = 0; i < h; i++) {
      const src = (nc * h + i) * w;
      dx.set(dyd.subarray(src, src + w), (nc * H + top + i) * W + left);
    }
  }
  return ctx.wrap(dx, [N, C, H, W]);
}

/** y[n, c, a, i, j] = x[n, c, front + a, top + i, left + j] for a < d, i < h, j < w. */
export function crop3d(ctx: RefContext, x: Tensor, front: number, top: number, left: number, d: number, h: number,
  w: number): Tensor {
  const y = crop3dGeometry(x.shape, [front, top, left], [d, h, w], 'crop3d');
  const [, , D, H, W] = x.shape as [number, number, number, number, number];
  const xd = ctx.data(x, 'crop3d x');
  const out = ctx.alloc(numel(y));
  for (let nc = 0; nc < y[0] * y[1]; nc++) {
    for (let a = 0; a < d; a++) {
      for (let i = 0; i < h; i++) {
        const src = ((nc * D + front + a) * H + top + i) * W + left;
        out.set(xd.subarray(src, src + w), ((nc * d + a) * h + i) * w);
      }
    }
  }
  return ctx.wrap(out, y);
}

/** dx = zeros(xShape) with dy written into the 3-d crop window. */
export function crop3dBackward(ctx: RefContext, dy: Tensor, xShape: Shape, front: number, top: number, left: number): Tensor {
  const x = crop3dBackwardGeometry(dy.shape, xShape, [front, top, left]);
  const [, , d, h, w] = dy.shape as [number, number, number, number, number];
  const [N, C, D, H, W] = x;
  const dyd = ctx.data(dy, 'crop3dBackward dy');
  const dx = ctx.alloc(numel(x));
  for (let nc = 0; nc < N * C; nc++) {
    for (let a = 0; a < d; a++) {
      for (let i = 0; i < h; i++) {
        const src = ((nc * d + a) * h + i) * w;
        dx.set(dyd.subarray(src, src + w), ((nc * D + front + a) * H + top + i) * W + left);
      }
    }
  }
  return ctx.wrap(dx, x);
}

/** Concatenation along channels: y[n] = [xs[0][n]; xs[1][n]; ...] (4-d or 5-d). */
export function concat(ctx: RefContext, xs: readonly Tensor[]): Tensor {
  const what = 'concat';
  const shape = concatGeometry(xs.map((x) => x.shape));
  const [N, C] = shape;
  const plane = numel(shape) / (N * C);
  const y = ctx.alloc(N * C * plane);
  let c0 = 0;
  xs.forEach((x, k) => {
    const xd = ctx.data(x, `${what} input ${k}`);
    const c = x.shape[1]!;
    for (let n = 0; n < N; n++) {
      y.set(xd.subarray(n * c * plane, (n + 1) * c * plane), (n * C + c0) * plane);
    }
    c0 += c;
  });
  return ctx.wrap(y, shape);
}

/** Splits dy [N, sum(channels), (D,) H, W] back into pieces [N, channels[k], (D,) H, W]. */
export function concatBackward(ctx: RefContext, dy: Tensor, channels: readonly number[]): Tensor[] {
  const what = 'concatBackward';
  const shape = concatBackwardGeometry(dy.shape, channels);
  const [N, C] = shape;
  const dyd = ctx.data(dy, `${what} dy`);
  const plane = numel(shape) / (N * C);
  const out: Tensor[] = [];
  let c0 = 0;
  for (const c of channels) {
    const dx = ctx.alloc(N * c * plane);
    for (let n = 0; n < N; n++) {
      const src = (n * C + c0) * plane;
      dx.set(dyd.subarray(src, src + c * plane), n * c * plane);
    }
    out.push(ctx.wrap(dx, [N, c, ...shape.slice(2)]));
    c0 += c;
  }
  return out;
}

/** y[n, c, i, j] = x[n, c, floor(i / f), floor(j / f)], y [N, C, H*f, W*f]. */
export function upsampleNearest(ctx: RefContext, x: Tensor, factor: number): Tensor {
  const what = 'upsampleNearest';
  const [N, C, OH, OW] = upsampleGeometry(x.shape, factor);
  const [, , H, W] = x.shape as [number, number, number, number];
  const xd = ctx.data(x, `${what} x`);
  const y = ctx.alloc(N * C * OH * OW);
  for (let nc = 0; nc < N * C; nc++) {
    for (let i = 0; i < OH; i++) {
      const src = (nc * H + Math.floor(i / factor)) * W;
      const dst = (nc * OH + i) * OW;
      for (let j = 0; j < OW; j++) y[dst + j] = xd[src + Math.floor(j / factor)]!;
    }
  }
  return ctx.wrap(y, [N, C, OH, OW]);
}

/** dx[n, c, h, w] = sum of dy over the f x f block it was copied to. */
export function upsampleNearestBackward(ctx: RefContext, dy: Tensor, factor: number): Tensor {
  const what = 'upsampleNearestBackward';
  const [N, C, H, W] = upsampleBackwardGeometry(dy.shape, factor);
  const [, , OH, OW] = dy.shape as [number, number, number, number];
  const dyd = ctx.data(dy, `${what} dy`);
  const dx = new Float64Array(N * C * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    for (let i = 0; i < OH; i++) {
      const dst = (nc * H + Math.floor(i / factor)) * W;
      const src = (nc * OH + i) * OW;
      for (let j = 0; j < OW; j++) dx[dst + Math.floor(j / factor)] += dyd[src + j]!;
    }
  }
  return ctx.wrap(ctx.fromF64(dx), [N, C, H, W]);
}
