const INIT = -1;
const MASK = -2;
const INQUEUE = -3;
const WSHED = 0;

/**
 * Thinning of the proposal membrane by the 4-connected watershed that the ISBI 2016 evaluation
 * (Fiji `WatershedTransform2D`) runs before V_rand and V_info. Where the pixels of a line fall
 * depends on scan order and tie-breaking, so this follows the reference step by step: a
 * two-level image (non-membrane first, then membrane), pixels of a level in column-major order
 * (x outer, y inner), neighbours in the order left, up, right, down, a FIFO queue, and one
 * `flag` shared by the whole run.
 */
export class WatershedThinner {
  private queue = new Int32Array(0);
  private readonly around = new Int32Array(4);

  /**
   * `membrane[y*W + x]` is nonzero on proposal membrane. Writes basin labels (>= 1) into `out`,
   * with 0 on the 1-pixel watershed lines, and returns the highest label.
   */
  thin(membrane: Uint8Array, width: number, height: number, out: Int32Array): number {
    const n = width * height;
    if (this.queue.length < n) this.queue = new Int32Array(n);
    const queue = this.queue;
    const lab = out;
    lab.fill(INIT, 0, n);
    let flag = false;
    let currentLabel = 0;

    // The neighbours of p (left, up, right, down), -1 outside the image.
    const around = this.around;
    const findNeighbours = (p: number): void => {
      const x = p % width;
      around[0] = x > 0 ? p - 1 : -1;
      around[1] = p >= width ? p - width : -1;
      around[2] = x < width - 1 ? p + 1 : -1;
      around[3] = p < n - width ? p + width : -1;
    };

    for (let level = 0; level <= 1; level++) {
      let head = 0;
      let tail = 0;
      // 1. Mask the level; pixels touching a basin or a line wait in the queue.
      for (let x = 0; x < width; x++) {
        for (let p = x; p < n; p += width) {
          if ((membrane[p] !== 0 ? 1 : 0) !== level) continue;
          lab[p] = MASK;
          findNeighbours(p);
          for (let d = 0; d < 4; d++) {
            const q = around[d];
            if (q >= 0 && lab[q] >= 0) {
              lab[p] = INQUEUE;
              queue[tail++] = p;
              break;
            }
          }
        }
      }
      // 2. Grow the basins through the level; where two meet, the pixel becomes a line.
      while (head < tail) {
        const p = queue[head++];
        findNeighbours(p);
        for (let d = 0; d < 4; d++) {
          const q = around[d];
          if (q < 0) continue;
          const lq = lab[q];
          if (lq > 0) {
            if (lab[p] === INQUEUE || (lab[p] === WSHED && flag)) {
              lab[p] = lq;
            } else if (lab[p] > 0 && lab[p] !== lq) {
              lab[p] = WSHED;
              flag = false;
            }
          } else if (lq === WSHED) {
            if (lab[p] === INQUEUE) {
              lab[p] = WSHED;
              flag = true;
            }
          } else if (lq === MASK) {
            lab[q] = INQUEUE;
            queue[tail++] = q;
          }
        }
      }
      // 3. Masked pixels not reached are new minima: each 4-connected group becomes a basin.
      for (let x = 0; x < width; x++) {
        for (let p = x; p < n; p += width) {
          if (lab[p] !== MASK) continue;
          currentLabel++;
          lab[p] = currentLabel;
          head = 0;
          tail = 0;
          queue[tail++] = p;
          while (head < tail) {
            findNeighbours(queue[head++]);
            for (let d = 0; d < 4; d++) {
              const q = around[d];
              if (q >= 0 && lab[q] === MASK) {
                lab[q] = currentLabel;
                queue[tail++] = q;
              }
            }
          }
        }
      }
    }
    return currentLabel;
  }
}
