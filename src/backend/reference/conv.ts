/**
 * 2-d convolution (cross-correlation, as in oneDNN / every DL framework), reference kernels.
 *
 *   x [N, Cin, H, W], w [Cout, Cin, KH, KW] (OIHW), b [Cout] | null, y [N, Cout, OH, OW]
 *   y[n, co, oh, ow] = b[co] + sum_{ci, i, j} w[co, ci, i, j] * x[n, ci, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
 *   (taps that fall into the padding read 0), then optionally ReLU.
 *   OH = floor((H + pt + pb - dh*(KH-1) - 1) / sh) + 1, likewise OW with (pl, pr, dw, KW, sw).
 *
 * Dilation 1 = dense (oneDNN's dilation is ours - 1).
 *
 * 3-d convolution is the same with one more spatial axis in front:
 *   x [N, Cin, D, H, W], w [Cout, Cin, KD, KH, KW] (OIDHW), y [N, Cout, OD, OH, OW]
 *   y[n, co, od, oh, ow] = b[co] + sum_{ci, a, i, j} w[co, ci, a, i, j] *
 *                                  x[n, ci, od*sd - pf + a*dd, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
 *   with padding [front, top, left, back, bottom, right]; OD as OH with (pf, pk, dd, KD, sd).
 */
import type { Conv3dOptions, Conv3dParams, ConvOptions, ConvParams } from '../backend.js';
import { type Conv3dGeometry, checkWeights, conv3dGeometry, convGeometry, expectShape } from '../geometry.js';
import { type FloatArray, type Shape, type Tensor, formatShape, numel } from '../../tensor/tensor.js';
import { EmsegError } from '../../errors.js';
import type { RefContext } from './util.js';

// The three kernels below spell the same loop nest (output position, input channel, tap), each with its own
// accumulation. Indices: x ((n*Cin + ci)*H + ih)*W + iw, w ((co*Cin + ci)*KH + i)*KW + j,
// y ((n*Cout + co)*OH + oh)*OW + ow. Sums are accumulated in float64 and rounded once to the precision.

export function conv2d(
  ctx: RefContext, x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: ConvOptions,
): Tensor {
  const what = 'conv2d';
  // Computing float32 under int8's name would report an int8 run that never happened.
  if (p.int8) throw new EmsegError('invalid-option', '--int8', 'int8 runs only on the oneDNN backend, not the reference backend');
  const g = convGeometry(x.shape, wShape, p, false, what);
  checkWeights(w, wShape, b, what);
  const xd = ctx.data(x, `${what} x`);
  const { N, Cin, H, W, Cout, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl } = g;
  const y = ctx.alloc(N * Cout * OH * OW);  // each element is one float64 sum, rounded once on store
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      const bias = b ? b[co]! : 0;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let acc = bias;
          for (let ci = 0; ci < Cin; ci++) {
            const xBase = (n * Cin + ci) * H;
            const wBase = (co * Cin + ci) * KH;
            for (let i = 0; i < KH; i++) {
              const ih = oh * sh - pt + i * dh;
              if (ih < 0 || ih >= H) continue;
              for (let j = 0; j < KW; j++) {
                const iw = ow * sw - pl + j * dw;
                if (iw < 0 || iw >= W) continue;
                acc += w[(wBase + i) * KW + j]! * xd[(xBase + ih) * W + iw]!;
              }
            }
          }
          y[((n * Cout + co) * OH + oh) * OW + ow] = p.relu && acc < 0 ? 0 : acc;
        }
      }
    }
  }
  return ctx.wrap(y, [N, Cout, OH, OW]);
}

/** dx = conv2d^T(dy): the gradient of conv2d w.r.t. x (no ReLU: the graph applies reluBackward first). */
export function conv2dBackwardData(
  ctx: RefContext, dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: ConvParams,
): Tensor {
  const what = 'conv2dBackwardData';
  const g = convGeometry(xShape, wShape, p, false, what);
  checkWeights(w, wShape, null, what);
  expectShape(dy.shape, [g.N, g.Cout, g.OH, g.OW], `${what} dy (for x ${formatShape(xShape)})`);
  const dyd = ctx.data(dy, `${what} dy`);
  const { N, Cin, H, W, Cout, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl } = g;
  const dx = new Float64Array(N * Cin * H * W);
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const gy = dyd[((n * Cout + co) * OH + oh) * OW + ow]!;
          for (let ci = 0; ci < Cin; ci++) {
            const xBase = (n * Cin + ci) * H;
            const wBase = (co * Cin + ci) * KH;
            for (let i = 0; i < KH; i++) {
              const ih = oh * sh - pt + i * dh;
              if (ih < 0 || ih >= H) continue;
              for (let j = 0; j < KW; j++) {
                const iw = ow * sw - pl + j * dw;
                if (iw < 0 || iw >= W) continue;
                dx[(xBase + ih) * W + iw] += gy * w[(wBase + i) * KW + j]!;
              }
            }
          }
        }
      }
    }
  }
  return ctx.wrap(ctx.fromF64(dx), [N, Cin, H, W]);
}

/** dw[co, ci, i, j] = sum dy[n, co, oh, ow] * x[n, ci, tap]; db[co] = sum dy[n, co, :, :]. */
export function conv2dBackwardWeights(
  ctx: RefContext, x: Tensor, dy: Tensor, wShape: Shape, p: ConvParams, withBias: boolean,
): { dw: FloatArray; db: FloatArray | null } {
  const what = 'conv2dBackwardWeights';
  const g = convGeometry(x.shape, wShape, p, false, what);
  expectShape(dy.shape, [g.N, g.Cout, g.OH, g.OW], `${what} dy (for x ${formatShape(x.shape)})`);
  const xd = ctx.data(x, `${what} x`);
  const dyd = ctx.data(dy, `${what} dy`);
  const { N, Cin, H, W, Cout, KH, KW, OH, OW, sh, sw, dh, dw: dil, pt, pl } = g;
  // accumulate in float64 whatever the precision, then round once
  const dw = new Float64Array(numel(wShape));
  const db = new Float64Array(Cout);
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const gy = dyd[((n * Cout + co) * OH + oh) * OW + ow]!;
          db[co] += gy;
          for (let ci = 0; ci < Cin; ci++) {
            const xBase = (n * Cin + ci) * H;
            const wBase = (co * Cin + ci) * KH;
            for (let i = 0; i < KH; i++) {
              const ih = oh * sh - pt + i * dh;
              if (ih < 0 || ih >= H) continue;
              for (let j = 0; j < KW; j++) {
                const iw = ow * sw - pl + j * dil;
                if (iw < 0 || iw >= W) continue;
                dw[(wBase + i) * KW + j] += gy * xd[(xBase + ih) * W + iw]!;
              }
            }
          }
        }
      }
    }
  }
  return { dw: ctx.fromF64(dw), db: withBias ? ctx.fromF64(db) : null };
}

/**
 * Calls visit(yIndex, xIndex, wIndex) for every (output element, input channel, tap) of a 3-d convolution whose tap
 * falls inside x (padding reads 0, so it contributes nothing). The three 3-d kernels are this one loop nest, each
 * with its own accumulation; indices are plain row-major NCDHW / OIDHW.
 */
export function forEachTap3d(g: Conv3dGeometry, visit: (yi: number, xi: number, wi: number) => void): void {
  const { N, Cin, D, H, W, Cout, KD, KH, KW, OD, OH, OW, sd, sh, sw, dd, dh, dw, pf, pt, pl } = g;
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      for (let od = 0; od < OD; od++) {
        for (let oh = 0; oh < OH; oh++) {
          for (let ow = 0; ow < OW; ow++) {
            const yi = (((n * Cout + co) * OD + od) * OH + oh) * OW + ow;
            for (let ci = 0; ci < Cin; ci++) {
              for (let a = 0; a < KD; a++) {
                const id = od * sd - pf + a * dd;
                if (id < 0 || id >= D) continue;
                for (let i = 0; i < KH; i++) {
                  const ih = oh * sh - pt + i * dh;
                  if (ih < 0 || ih >= H) continue;
                  for (let j = 0; j < KW; j++) {
                    const iw = ow * sw - pl + j * dw;
                    if (iw < 0 || iw >= W) continue;
                    visit(yi, (((n * Cin + ci) * D + id) * H + ih) * W + iw, (((co * Cin + ci) * KD + a) * KH + i) * KW + j);
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

export function conv3d(
  ctx: RefContext, x: Tensor, w: FloatArray, wShape: Shape, b: FloatArray | null, p: Conv3dOptions,
): Tensor {
  const what = 'conv3d';
  const g = conv3dGeometry(x.shape, wShape, p, what);
  checkWeights(w, wShape, b, what);
  const xd = ctx.data(x, `${what} x`);
  const acc = new Float64Array(numel(g.y));
  forEachTap3d(g, (yi, xi, wi) => { acc[yi] += w[wi]! * xd[xi]!; });
  const plane = g.OD * g.OH * g.OW;
  for (let k = 0; k < acc.length; k++) {
    const v = acc[k]! + (b ? b[Math.floor(k / plane) % g.Cout]! : 0);
    acc[k] = p.relu && v < 0 ? 0 : v;
  }
  return ctx.wrap(ctx.fromF64(acc), g.y);
}

/** dx = conv3d^T(dy): the gradient of conv3d w.r.t. x (no ReLU: the graph applies reluBackward first). */
export function conv3dBackwardData(
  ctx: RefContext, dy: Tensor, w: FloatArray, wShape: Shape, xShape: Shape, p: Conv3dParams,
): Tensor {
  const what = 'conv3dBackwardData';
  const g = conv3dGeometry(xShape, wShape, p, what);
  checkWeights(w, wShape, null, what);
  expectShape(dy.shape, g.y, `${what} dy (for x ${formatShape(xShape)})`);
  const dyd = ctx.data(dy, `${what} dy`);
  const dx = new Float64Array(numel(g.x));
  forEachTap3d(g, (yi, xi, wi) => { dx[xi] += dyd[yi]! * w[wi]!; });
  return ctx.wrap(ctx.fromF64(dx), g.x);
}

/** dw[co, ci, a, i, j] = sum dy[n, co, od, oh, ow] * x[n, ci, tap]; db[co] = sum dy[n, co, :, :, :]. */
export function conv3dBackwardWeights(
  ctx: RefContext, x: Tensor, dy: Tensor, wShape: Shape, p: Conv3dParams, withBias: boolean,
): { dw: FloatArray; db: FloatArray | null } {
  const what = 'conv3dBackwardWeights';
  const g = conv3dGeometry(x.shape, wShape, p, what);
  expectShape(dy.shape, g.y, `${what} dy (for x ${formatShape(x.shape)})`);
  const xd = ctx.data(x, `${what} x`);
  const dyd = ctx.data(dy, `${what} dy`);
  const dw = new Float64Array(numel(g.w));
  forEachTap3d(g, (yi, xi, wi) => { dw[wi] += dyd[yi]! * xd[xi]!; });
  const db = new Float64Array(g.Cout);
  const plane = g.OD * g.OH * g.OW;
  for (let k = 0; k < dyd.length; k++) db[Math.floor(k / plane) % g.Cout] += dyd[k]!;
  return { dw: ctx.fromF64(dw), db: withBias ? ctx.fromF64(db) : null };
}
