/**
 * Local response normalisation, reference kernels, with oneDNN's definition (dev_guide_lrn, and the reference
 * implementation cpu/ref_lrn.cpp of oneDNN 2.x that the docs' formula describes):
 *
 *   half = floor((size - 1) / 2)
 *   across channels:  O(n,c,h,w) = k + alpha/size   * sum_{c' = max(c-half, 0)}^{min(c+half, C-1)} x(n,c',h,w)^2
 *   within channel:   O(n,c,h,w) = k + alpha/size^2 * sum_{h' = h-half..h+half, w' = w-half..w+half, clipped} x(n,c,h',w')^2
 *   y = x * O^(-beta)
 *
 * The docs write the window as i = -(size-1)/2 .. (size+1)/2 - 1 in integer arithmetic, which is the symmetric
 * window [-half, +half] for every size: an EVEN size therefore sums only size - 1 neighbours (e.g. size 4 -> c-1..c+1)
 * while the divisor stays `size` (resp. size^2). Windows are clipped at the borders (no wrap-around), and the divisor
 * does not shrink there. (The docs' within-channel formula shows alpha/size; the implementation divides by size^2,
 * which is what the Backend contract states and what is implemented here.)
 *
 * Backward (windows are symmetric, so j lies in the window of i iff i lies in the window of j):
 *   dx_j = dy_j * O_j^(-beta) - (2*alpha*beta/S) * x_j * sum_{i in window(j)} dy_i * x_i * O_i^(-beta-1)
 * with S = size (across) or size^2 (within): the same formula as oneDNN's ref_lrn backward.
 */
import type { LrnParams } from '../backend.js';
import type { Tensor } from '../../tensor/tensor.js';
import { checkLrnParams, dims4, sameShape } from '../geometry.js';
import type { RefContext } from './util.js';

/**
 * out[n,c,h,w] = sum of src over the LRN window of (n,c,h,w) (across channels, or the square spatial window),
 * clipped at the borders. src and out are NCHW float64.
 */
function windowSum(src: Float64Array, shape: readonly number[], p: LrnParams): Float64Array {
  const [N, C, H, W] = shape as [number, number, number, number];
  const half = Math.floor((p.size - 1) / 2);
  const out = new Float64Array(src.length);
  const plane = H * W;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const base = (n * C + c) * plane;
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++) {
          let s = 0;
          if (p.region === 'across') {
            const c0 = Math.max(c - half, 0);
            const c1 = Math.min(c + half, C - 1);
            for (let cc = c0; cc <= c1; cc++) s += src[(n * C + cc) * plane + h * W + w]!;
          } else {
            const h0 = Math.max(h - half, 0);
            const h1 = Math.min(h + half, H - 1);
            const w0 = Math.max(w - half, 0);
            const w1 = Math.min(w + half, W - 1);
            for (let hh = h0; hh <= h1; hh++) {
              for (let ww = w0; ww <= w1; ww++) s += src[base + hh * W + ww]!;
            }
          }
          out[base + h * W + w] = s;
        }
      }
    }
  }
  return out;
}

/** O = k + alpha/S * (window sum of x^2), in float64. */
function omega(xd: ArrayLike<number>, shape: readonly number[], p: LrnParams): { O: Float64Array; S: number } {
  const sq = new Float64Array(xd.length);
  for (let i = 0; i < sq.length; i++) sq[i] = xd[i]! * xd[i]!;
  const S = p.region === 'across' ? p.size : p.size * p.size;
  const O = windowSum(sq, shape, p);
  for (let i = 0; i < O.length; i++) O[i] = p.k + (p.alpha / S) * O[i]!;
  return { O, S };
}

export function lrn(ctx: RefContext, x: Tensor, p: LrnParams, _training: boolean): { y: Tensor; workspace: Tensor | null } {
  const what = 'lrn';
  checkLrnParams(p, what);
  dims4(x.shape, `${what} input`);
  const xd = ctx.data(x, `${what} x`);
  const { O } = omega(xd, x.shape, p);
  const y = ctx.alloc(xd.length);
  for (let i = 0; i < y.length; i++) y[i] = xd[i]! * Math.pow(O[i]!, -p.beta);
  // No workspace: the backward pass recomputes O from x (as oneDNN's reference implementation does).
  return { y: ctx.wrap(y, x.shape), workspace: null };
}

export function lrnBackward(ctx: RefContext, x: Tensor, dy: Tensor, _workspace: Tensor | null, p: LrnParams): Tensor {
  const what = 'lrnBackward';
  checkLrnParams(p, what);
  dims4(x.shape, `${what} x`);
  sameShape(x.shape, dy.shape, `${what} (x vs dy)`);
  const xd = ctx.data(x, `${what} x`);
  const dyd = ctx.data(dy, `${what} dy`);
  const { O, S } = omega(xd, x.shape, p);
  const t = new Float64Array(xd.length);
  for (let i = 0; i < t.length; i++) t[i] = dyd[i]! * xd[i]! * Math.pow(O[i]!, -p.beta - 1);
  const tSum = windowSum(t, x.shape, p);
  const c = (2 * p.alpha * p.beta) / S;
  const dx = ctx.alloc(xd.length);
  for (let j = 0; j < dx.length; j++) {
    dx[j] = dyd[j]! * Math.pow(O[j]!, -p.beta) - c * xd[j]! * tSum[j]!;
  }
  return ctx.wrap(dx, x.shape);
}
