/**
 * Transposed 2-d convolution ("deconvolution"), reference kernels, with oneDNN's deconvolution conventions.
 *
 *   x [N, Cin, H, W] -> y [N, Cout, OH, OW], weights w [Cout, Cin, KH, KW] (OIHW of the DECONV: axis 0 = the
 *   deconv's OUTPUT channels, axis 1 = its INPUT channels, exactly as oneDNN's deconvolution weights), b [Cout] | null.
 *
 *   y[n, co, oh, ow] = b[co] + sum over (ci, ih, iw, i, j) with oh = ih*sh - pt + i*dh and ow = iw*sw - pl + j*dw
 *                      of w[co, ci, i, j] * x[n, ci, ih, iw]
 *   (every input pixel scatters a dilated kernel-sized stamp; stamp cells falling into the padding are cropped away).
 *
 *   OH = (H - 1)*sh - pt - pb + dh*(KH - 1) + 1, likewise OW; and conversely the conv2d output size of OH with the
 *   same params is H again.
 *
 * Relation to conv2d: deconv2d(x, w) is the adjoint (transpose) of x' -> conv2d(x', wT) w.r.t. its input, where
 * wT = transposeOI(w) is w with its first two axes swapped (wT [Cin, Cout, KH, KW] is a conv from Cout to Cin
 * channels). In other words deconv2d(x, w) == conv2dBackwardData(x, transposeOI(w)) with the same params, and
 *   <conv2d(u, wT), v> == <u, deconv2d(v, w)>   for all u [N, Cout, OH, OW], v [N, Cin, H, W].
 * Conversely deconv2dBackwardData(dy, w) == conv2d(dy, transposeOI(w)) (no bias).
 * Dilation 1 = dense (oneDNN's dilation is ours - 1).
 *
 * 3-d transposed convolution is the same with one more spatial axis in front: x [N, Cin, D, H, W], weights
 * [Cout, Cin, KD, KH, KW], padding [front, top, left, back, bottom, right], OD = (D - 1)*sd - pf - pk + dd*(KD - 1) + 1.
 * Its kernels walk the taps of the convolution it is the adjoint of (conv3d from y's shape by the transposed weights,
 * whose output is x's shape), so deconv3d(x, w) == conv3dBackwardData(x, transposeOI(w)) exactly as in 2-d.
 */
import type { Conv3dParams, ConvParams, DeconvOptions, Deconv3dOptions } from '../backend.js';
import { type FloatArray, type Shape, type Tensor, formatShape, numel } from '../../tensor/tensor.js';
import { EmsegError } from '../../errors.js';
import { checkWeights, convGeometry, deconv3dGeometry, dims4, dims5, expectShape } from '../geometry.js';
import { forEachTap3d } from './conv.js';
import type { RefContext } from './util.js';

/** Swap the first two axes of OIHW weights: [A, B, KH, KW] -> [B, A, KH, KW]. */
export function transposeOI<T extends FloatArray>(w: T, wShape: Shape): T {
  const [A, B, KH, KW] = dims4(wShape, 'transposeOI weights');
  if (w.length !== numel(wShape)) throw new EmsegError('invalid-option', 'transposeOI', `${w.length} elements for ${formatShape(wShape)}`);
  const out = new (w.constructor as { new (n: number): T })(w.length);
  const K = KH * KW;
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < K; k++) out[(b * A + a) * K + k] = w[(a * B + b) * K + k]!;
    }
  }
  return out;
}

// All three kernels walk (n, ci, ih, iw) x (co, i, j) with oh = ih*sh - pt + i*dh, ow = iw*sw - pl + j*dw and
// skip taps outside [0, OH) x [0, OW). Sums are accumulated in float64 and rounded once to the precision.

export function deconv2d(
  ctx: RefContext, x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: DeconvOptions,
): Tensor {
  const what = 'deconv2d';
  const g = convGeometry(x.shape, wShape, p, true, what);
  checkWeights(w, wShape, b, what);
  const xd = ctx.data(x, `${what} x`);
  const { N, Cin, H, W, Cout, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl } = g;
  const y = new Float64Array(N * Cout * OH * OW);
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      const yBase = (n * Cout + co) * OH;
      if (b) y.fill(b[co]!, yBase * OW, (yBase + OH) * OW);
      for (let ci = 0; ci < Cin; ci++) {
        const xBase = (n * Cin + ci) * H;
        const wBase = (co * Cin + ci) * KH;
        for (let ih = 0; ih < H; ih++) {
          for (let iw = 0; iw < W; iw++) {
            const v = xd[(xBase + ih) * W + iw]!;
            for (let i = 0; i < KH; i++) {
              const oh = ih * sh - pt + i * dh;
              if (oh < 0 || oh >= OH) continue;
              for (let j = 0; j < KW; j++) {
                const ow = iw * sw - pl + j * dw;
                if (ow < 0 || ow >= OW) continue;
                y[(yBase + oh) * OW + ow] += v * w[(wBase + i) * KW + j]!;
              }
            }
          }
        }
      }
    }
  }
  if (p.relu) for (let i = 0; i < y.length; i++) if (y[i]! < 0) y[i] = 0;
  return ctx.wrap(ctx.fromF64(y), [N, Cout, OH, OW]);
}

/** dx[n, ci, ih, iw] = sum_{co, i, j} w[co, ci, i, j] * dy[n, co, ih*sh - pt + i*dh, iw*sw - pl + j*dw]. */
export function deconv2dBackwardData(
  ctx: RefContext, dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: ConvParams,
): Tensor {
  const what = 'deconv2dBackwardData';
  const g = convGeometry(xShape, wShape, p, true, what);
  checkWeights(w, wShape, null, what);
  expectShape(dy.shape, [g.N, g.Cout, g.OH, g.OW], `${what} dy (for x ${formatShape(xShape)})`);
  const dyd = ctx.data(dy, `${what} dy`);
  const { N, Cin, H, W, Cout, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl } = g;
  const dx = ctx.alloc(N * Cin * H * W);
  for (let n = 0; n < N; n++) {
    for (let ci = 0; ci < Cin; ci++) {
      for (let ih = 0; ih < H; ih++) {
        for (let iw = 0; iw < W; iw++) {
          let acc = 0;
          for (let co = 0; co < Cout; co++) {
            const yBase = (n * Cout + co) * OH;
            const wBase = (co * Cin + ci) * KH;
            for (let i = 0; i < KH; i++) {
              const oh = ih * sh - pt + i * dh;
              if (oh < 0 || oh >= OH) continue;
              for (let j = 0; j < KW; j++) {
                const ow = iw * sw - pl + j * dw;
                if (ow < 0 || ow >= OW) continue;
                acc += w[(wBase + i) * KW + j]! * dyd[(yBase + oh) * OW + ow]!;
              }
            }
          }
          dx[((n * Cin + ci) * H + ih) * W + iw] = acc;
        }
      }
    }
  }
  return ctx.wrap(dx, [N, Cin, H, W]);
}

/** dw[co, ci, i, j] = sum_{n, ih, iw} x[n, ci, ih, iw] * dy[n, co, oh, ow] (oh, ow as above); db[co] = sum dy[:, co]. */
export function deconv2dBackwardWeights(
  ctx: RefContext, x: Tensor, dy: Tensor, wShape: Shape, p: ConvParams, withBias: boolean,
): { dw: FloatArray; db: FloatArray | null } {
  const what = 'deconv2dBackwardWeights';
  const g = convGeometry(x.shape, wShape, p, true, what);
  expectShape(dy.shape, [g.N, g.Cout, g.OH, g.OW], `${what} dy (for x ${formatShape(x.shape)})`);
  const xd = ctx.data(x, `${what} x`);
  const dyd = ctx.data(dy, `${what} dy`);
  const { N, Cin, H, W, Cout, KH, KW, OH, OW, sh, sw, dh, dw: dil, pt, pl } = g;
  const dw = new Float64Array(numel(wShape));
  const db = new Float64Array(Cout);
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      const yBase = (n * Cout + co) * OH;
      if (withBias) {
        for (let k = yBase * OW; k < (yBase + OH) * OW; k++) db[co] += dyd[k]!;
      }
      for (let ci = 0; ci < Cin; ci++) {
        const xBase = (n * Cin + ci) * H;
        const wBase = (co * Cin + ci) * KH;
        for (let ih = 0; ih < H; ih++) {
          for (let iw = 0; iw < W; iw++) {
            const v = xd[(xBase + ih) * W + iw]!;
            for (let i = 0; i < KH; i++) {
              const oh = ih * sh - pt + i * dh;
              if (oh < 0 || oh >= OH) continue;
              for (let j = 0; j < KW; j++) {
                const ow = iw * sw - pl + j * dil;
                if (ow < 0 || ow >= OW) continue;
                dw[(wBase + i) * KW + j] += v * dyd[(yBase + oh) * OW + ow]!;
              }
            }
          }
        }
      }
    }
  }
  return { dw: ctx.fromF64(dw), db: withBias ? ctx.fromF64(db) : null };
}

/** Swap the first two axes of OIDHW weights: [A, B, KD, KH, KW] -> [B, A, KD, KH, KW]. */
export function transposeOI3d<T extends FloatArray>(w: T, wShape: Shape): T {
  const [A, B, KD, KH, KW] = dims5(wShape, 'transposeOI3d weights');
  if (w.length !== numel(wShape)) throw new EmsegError('invalid-option', 'transposeOI3d', `${w.length} elements for ${formatShape(wShape)}`);
  const out = new (w.constructor as { new (n: number): T })(w.length);
  const K = KD * KH * KW;
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < K; k++) out[(b * A + a) * K + k] = w[(a * B + b) * K + k]!;
    }
  }
  return out;
}

// The three 3-d kernels visit (deconv input element xi, deconv output element yi, transposed-weight index wi) through
// forEachTap3d of the adjoint convolution (its "y" is our x, its "x" is our y); sums in float64, rounded once.

export function deconv3d(
  ctx: RefContext, x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: Deconv3dOptions,
): Tensor {
  const what = 'deconv3d';
  const { g, y } = deconv3dGeometry(x.shape, wShape, p, what);
  checkWeights(w, wShape, b, what);
  const xd = ctx.data(x, `${what} x`);
  const wT = transposeOI3d(Float64Array.from(w), wShape);
  const acc = new Float64Array(numel(y));
  forEachTap3d(g, (xi, yi, wi) => { acc[yi] += xd[xi]! * wT[wi]!; });
  if (b) {
    const plane = y[2] * y[3] * y[4];
    for (let k = 0; k < acc.length; k++) acc[k] += b[Math.floor(k / plane) % y[1]]!;
  }
  return ctx.wrap(ctx.fromF64(acc), y);
}

/** dx = the gradient of deconv3d w.r.t. x: conv3d(dy, transposeOI3d(w)) with the same params, no bias. */
export function deconv3dBackwardData(
  ctx: RefContext, dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: Conv3dParams,
): Tensor {
  const what = 'deconv3dBackwardData';
  const { g, y } = deconv3dGeometry(xShape, wShape, p, what);
  checkWeights(w, wShape, null, what);
  expectShape(dy.shape, y, `${what} dy (for x ${formatShape(xShape)})`);
  const dyd = ctx.data(dy, `${what} dy`);
  const wT = transposeOI3d(Float64Array.from(w), wShape);
  const dx = new Float64Array(numel(g.y));
  forEachTap3d(g, (xi, yi, wi) => { dx[xi] += dyd[yi]! * wT[wi]!; });
  return ctx.wrap(ctx.fromF64(dx), g.y);
}

/** dw[co, ci, a, i, j] = sum x[n, ci, in] * dy[n, co, out] over the taps linking them; db[co] = sum dy[:, co]. */
export function deconv3dBackwardWeights(
  ctx: RefContext, x: Tensor, dy: Tensor, wShape: Shape, p: Conv3dParams, withBias: boolean,
): { dw: FloatArray; db: FloatArray | null } {
  const what = 'deconv3dBackwardWeights';
  const { g, y } = deconv3dGeometry(x.shape, wShape, p, what);
  expectShape(dy.shape, y, `${what} dy (for x ${formatShape(x.shape)})`);
  const xd = ctx.data(x, `${what} x`);
  const dyd = ctx.data(dy, `${what} dy`);
  const dwT = new Float64Array(numel(wShape));
  forEachTap3d(g, (xi, yi, wi) => { dwT[wi] += xd[xi]! * dyd[yi]!; });
  const dw = transposeOI3d(dwT, g.w);
  const db = new Float64Array(y[1]);
  const plane = y[2] * y[3] * y[4];
  for (let k = 0; k < dyd.length; k++) db[Math.floor(k / plane) % y[1]] += dyd[k]!;
  return { dw: ctx.fromF64(dw), db: withBias ? ctx.fromF64(db) : null };
}
