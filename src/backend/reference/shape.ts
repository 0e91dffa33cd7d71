/** Shape reference kernels: crop, channel concatenation, nearest-neighbour upsampling, and their gradients. */
import { type Shape, type Tensor, formatShape } from '../../tensor/tensor.js';
import { type RefContext, dims4 } from './util.js';

function checkNonNegInt(v: number, name: string, what: string): void {
  if (!Number.isInteger(v) || v < 0) throw new Error(`${what}: ${name} must be a non-negative integer, got ${v}`);
}

function checkWindow(xShape: Shape, top: number, left: number, h: number, w: number, what: string): void {
  const [, , H, W] = dims4(xShape, `${what} input`);
  checkNonNegInt(top, 'top', what);
  checkNonNegInt(left, 'left', what);
  if (!Number.isInteger(h) || h < 1 || !Number.isInteger(w) || w < 1) {
    throw new Error(`${what}: crop size must be positive integers, got ${h}x${w}`);
  }
  if (top + h > H || left + w > W) {
    throw new Error(`${what}: window [${top}, ${left}] + ${h}x${w} does not fit in input ${formatShape(xShape)}`);
  }
}

/** y[n, c, i, j] = x[n, c, top + i, left + j] for i < h, j < w. */
export function crop(ctx: RefContext, x: Tensor, top: number, left: number, h: number, w: number): Tensor {
  checkWindow(x.shape, top, left, h, w, 'crop');
  const [N, C, H, W] = dims4(x.shape, 'crop input');
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
  const [N, C, h, w] = dims4(dy.shape, `${what} dy`);
  const [xN, xC, H, W] = dims4(xShape, `${what} xShape`);
  if (xN !== N || xC !== C) {
    throw new Error(`${what}: dy ${formatShape(dy.shape)} and x ${formatShape(xShape)} differ in batch or channels`);
  }
  checkWindow(xShape, top, left, h, w, what);
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

/** Concatenation along channels: y[n] = [xs[0][n]; xs[1][n]; ...]. */
export function concat(ctx: RefContext, xs: readonly Tensor[]): Tensor {
  const what = 'concat';
  if (xs.length === 0) throw new Error(`${what}: needs at least one tensor`);
  const [N, , H, W] = dims4(xs[0]!.shape, `${what} input 0`);
  let C = 0;
  xs.forEach((x, k) => {
    const [n, c, h, w] = dims4(x.shape, `${what} input ${k}`);
    if (n !== N || h !== H || w !== W) {
      throw new Error(`${what}: input ${k} ${formatShape(x.shape)} differs from input 0 ${formatShape(xs[0]!.shape)} ` +
        `outside the channel axis (shapes: ${xs.map((t) => formatShape(t.shape)).join(', ')})`);
    }
    C += c;
  });
  const plane = H * W;
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
  return ctx.wrap(y, [N, C, H, W]);
}

/** Splits dy [N, sum(channels), H, W] back into pieces [N, channels[k], H, W]. */
export function concatBackward(ctx: RefContext, dy: Tensor, channels: readonly number[]): Tensor[] {
  const what = 'concatBackward';
  const [N, C, H, W] = dims4(dy.shape, `${what} dy`);
  if (channels.length === 0 || !channels.every((c) => Number.isInteger(c) && c >= 1)) {
    throw new Error(`${what}: channel counts must be positive integers, got [${channels.join(', ')}]`);
  }
  const total = channels.reduce((a, c) => a + c, 0);
  if (total !== C) {
    throw new Error(`${what}: channel counts [${channels.join(', ')}] sum to ${total} but dy ${formatShape(dy.shape)} has ${C}`);
  }
  const dyd = ctx.data(dy, `${what} dy`);
  const plane = H * W;
  const out: Tensor[] = [];
  let c0 = 0;
  for (const c of channels) {
    const dx = ctx.alloc(N * c * plane);
    for (let n = 0; n < N; n++) {
      const src = (n * C + c0) * plane;
      dx.set(dyd.subarray(src, src + c * plane), n * c * plane);
    }
    out.push(ctx.wrap(dx, [N, c, H, W]));
    c0 += c;
  }
  return out;
}

function checkFactor(factor: number, what: string): void {
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`${what}: factor must be a positive integer, got ${factor}`);
}

/** y[n, c, i, j] = x[n, c, floor(i / f), floor(j / f)], y [N, C, H*f, W*f]. */
export function upsampleNearest(ctx: RefContext, x: Tensor, factor: number): Tensor {
  const what = 'upsampleNearest';
  checkFactor(factor, what);
  const [N, C, H, W] = dims4(x.shape, `${what} input`);
  const xd = ctx.data(x, `${what} x`);
  const OH = H * factor;
  const OW = W * factor;
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
  checkFactor(factor, what);
  const [N, C, OH, OW] = dims4(dy.shape, `${what} dy`);
  if (OH % factor !== 0 || OW % factor !== 0) {
    throw new Error(`${what}: dy ${formatShape(dy.shape)} is not a multiple of the factor ${factor}`);
  }
  const H = OH / factor;
  const W = OW / factor;
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
