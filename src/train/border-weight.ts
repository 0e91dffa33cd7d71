/**
 * U-Net's border weight map (Ronneberger et al., 2015, eq. 2): each pixel's loss weight gains
 *   w0 * exp(-(d1 + d2)^2 / (2 sigma^2)),
 * d1 and d2 being its distances to the nearest and the second-nearest cell. The term is large on the thin membranes
 * between touching cells (and on the cell pixels beside them), where one missed pixel merges two cells: the errors
 * that cost Rand and warping error but hardly any pixel error.
 *
 * Cells are the 4-connected components of interior pixels of a label tile. d1 and d2 come from a two-pass
 * propagation of each pixel's two nearest cells of different identity, with the positions of the cell pixels that
 * give them (as in a vector distance transform). Written here because no image library computes the distance to
 * the second-nearest region; the propagation can overestimate a distance by a fraction of a pixel where the
 * nearest pixel is reached only around a corner, which does not matter for a smooth weight of width sigma.
 */

/** Defaults of U-Net's paper for cells of ~100 px: membranes a few pixels thick. */
export const BORDER_SIGMA_DEFAULT = 5;

const NONE = -1;

interface Nearest {
  /** Per pixel and slot (0: nearest cell, 1: second-nearest different cell): the cell id, NONE if not known yet. */
  cell: Int32Array;
  /** Per pixel and slot: row and column of the cell pixel giving that distance, and the squared distance. */
  fromY: Int32Array;
  fromX: Int32Array;
  d2: Float64Array;
}

/** 4-connected components of pixels with label 0 (interior); membrane (1) and ignored (-1) pixels get NONE. */
export function cellsOf(labels: Int32Array, h: number, w: number): Int32Array {
  const id = new Int32Array(h * w).fill(NONE);
  const stack: number[] = [];
  let next = 0;
  for (let start = 0; start < h * w; start++) {
    if (labels[start] !== 0 || id[start] !== NONE) continue;
    id[start] = next;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop()!;
      const y = Math.floor(p / w), x = p - y * w;
      const visit = (q: number) => {
        if (labels[q] === 0 && id[q] === NONE) { id[q] = next; stack.push(q); }
      };
      if (y > 0) visit(p - w);
      if (y < h - 1) visit(p + w);
      if (x > 0) visit(p - 1);
      if (x < w - 1) visit(p + 1);
    }
    next++;
  }
  return id;
}

function put(n: Nearest, slot: number, c: number, y: number, x: number, d2: number): void {
  n.cell[slot] = c; n.fromY[slot] = y; n.fromX[slot] = x; n.d2[slot] = d2;
}

/** Pixel p (at y, x) is offered the cell pixel (sy, sx) of cell c: keeps two different cells, nearest first. */
function offer(n: Nearest, p: number, y: number, x: number, c: number, sy: number, sx: number): void {
  const a = 2 * p, b = a + 1;
  const d = (y - sy) * (y - sy) + (x - sx) * (x - sx);
  if (c === n.cell[a]) {
    if (d < n.d2[a]!) put(n, a, c, sy, sx, d);
  } else if (d < n.d2[a]!) { // c becomes the nearest; the old nearest (a different cell) the second
    put(n, b, n.cell[a]!, n.fromY[a]!, n.fromX[a]!, n.d2[a]!);
    put(n, a, c, sy, sx, d);
  } else if (d < n.d2[b]!) {
    put(n, b, c, sy, sx, d); // a nearer pixel of the second cell, or a nearer third cell
  }
}

/** Pixel p (at y, x) takes both candidates of its neighbour q. */
function take(n: Nearest, p: number, y: number, x: number, q: number): void {
  if (n.cell[2 * q] !== NONE) offer(n, p, y, x, n.cell[2 * q]!, n.fromY[2 * q]!, n.fromX[2 * q]!);
  if (n.cell[2 * q + 1] !== NONE) offer(n, p, y, x, n.cell[2 * q + 1]!, n.fromY[2 * q + 1]!, n.fromX[2 * q + 1]!);
}

/** One raster pass: every pixel takes the candidates of its already-visited neighbours (forward or backward). */
function pass(n: Nearest, h: number, w: number, forward: boolean): void {
  const s = forward ? 1 : -1;
  for (let k = 0; k < h * w; k++) {
    const p = forward ? k : h * w - 1 - k;
    const y = Math.floor(p / w), x = p - y * w;
    const yy = y - s; // the row already visited: above going forward, below going backward
    if (yy >= 0 && yy < h) {
      if (x > 0) take(n, p, y, x, p - s * w - 1);
      take(n, p, y, x, p - s * w);
      if (x < w - 1) take(n, p, y, x, p - s * w + 1);
    }
    if (x - s >= 0 && x - s < w) take(n, p, y, x, p - s);
  }
}

/**
 * The border term w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) for every pixel of an h x w label tile (1 = membrane,
 * 0 = interior, -1 = ignored); 0 where the tile shows fewer than two cells.
 */
export function borderWeights(labels: Int32Array, h: number, w: number, w0: number, sigma: number): Float32Array {
  const cells = cellsOf(labels, h, w);
  const n: Nearest = { cell: new Int32Array(2 * h * w).fill(NONE), fromY: new Int32Array(2 * h * w),
    fromX: new Int32Array(2 * h * w), d2: new Float64Array(2 * h * w).fill(Infinity) };
  for (let p = 0; p < h * w; p++) {
    if (cells[p] !== NONE) put(n, 2 * p, cells[p]!, Math.floor(p / w), p % w, 0);
  }
  // Two rounds of forward + backward passes: the second carries second-nearest cells around corners.
  for (let round = 0; round < 2; round++) {
    pass(n, h, w, true);
    pass(n, h, w, false);
  }
  const out = new Float32Array(h * w);
  const scale = 1 / (2 * sigma * sigma);
  for (let p = 0; p < h * w; p++) {
    if (n.cell[2 * p + 1] === NONE) continue;
    const sum = Math.sqrt(n.d2[2 * p]!) + Math.sqrt(n.d2[2 * p + 1]!);
    out[p] = w0 * Math.exp(-sum * sum * scale);
  }
  return out;
}
