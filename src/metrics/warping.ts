import { ComponentLabeller } from '../image/components.js';
import { PrioritySorter } from './radix-sort.js';
import { BACKGROUND_PARTS, FOREGROUND_TOUCHES, RING, SIMPLE, ringConfig } from './simple-point.js';

/** Half-size of the window used to tell splits from hole deletions (41 x 41 pixels). */
export const CLASSIFICATION_RADIUS = 20;

/** Topological errors left after warping one slice. Pixel lists are row-major indices y*W + x. */
export interface WarpingErrors {
  splits: number;
  mergers: number;
  splitPixels?: Int32Array;
  mergerPixels?: Int32Array;
}

/**
 * What flipping a mismatch left after warping would change. Only Split (the proposal cuts a ground-truth cell)
 * and Merger (the proposal joins two cells) are counted by the ISBI 2012 warping error. Of the others, seen from
 * the proposal: HoleAddition = a membrane speck inside a cell, ObjectDeletion = a labelled cell (or the last pixel
 * of one) that is membrane in the proposal, ObjectAddition = a cell-like blob inside a labelled membrane,
 * HoleDeletion = a labelled membrane island the proposal fills in; Other = any remaining non-simple configuration.
 */
export const enum MismatchKind { Split = 0, Merger = 1, HoleAddition = 2, ObjectDeletion = 3, ObjectAddition = 4, HoleDeletion = 5, Other = 6 }

/** The mismatches left after warping one slice (row-major pixel indices) and the warped ground truth's components. */
export interface WarpedMismatches {
  pixels: Int32Array;
  kinds: Uint8Array;
  components: Int32Array;
}

/**
 * Warping error of Jain et al. (2010) as the ISBI 2012 reference computes it: the ground truth
 * is warped towards the binarised proposal by flipping simple points, then the mismatches that
 * remain are classified, counting only splits and mergers (one per pixel).
 *
 * All working images carry a one-pixel zero border so neighbour reads need no bounds checks;
 * buffers are reused across calls.
 */
export class WarpingErrorCounter {
  private warped = new Uint8Array(0);
  private components = new Int32Array(0);
  /** List position of each pending mismatch (padded index), -1 elsewhere; kept all -1 between calls. */
  private positionOf = new Int32Array(0);
  private items = new Int32Array(0);
  private priorities = new Float32Array(0);
  private dueNow = new Uint32Array(0);
  private dueNext = new Uint32Array(0);
  private stamps = new Int32Array(0);
  private stampValue = 0;
  private queueX = new Int32Array(0);
  private queueY = new Int32Array(0);
  private readonly sorter = new PrioritySorter();
  private readonly labeller = new ComponentLabeller();
  /** Distinct component labels around the pixel being classified. */
  private readonly labels = new Int32Array(8);
  /** How many mismatches the last `count` left (at the front of `items`). */
  private lastRemaining = 0;

  /**
   * Counts splits and mergers for one slice. `gtFg` is nonzero on ground-truth foreground, the
   * proposal is foreground where `value > th`. With `keepPixels`, also returns where they are.
   */
  count(
    gtFg: Uint8Array,
    proposal: ArrayLike<number>,
    width: number,
    height: number,
    th: number,
    keepPixels = false,
  ): WarpingErrors {
    const stride = width + 2;
    this.reserve(width * height, stride * (height + 2));
    const warped = this.warped;
    warped.fill(0);
    for (let y = 0; y < height; y++) {
      const row = (y + 1) * stride + 1;
      for (let x = 0; x < width; x++) warped[row + x] = gtFg[y * width + x] !== 0 ? 1 : 0;
    }
    const remaining = this.warp(proposal, width, height, stride, th);
    this.lastRemaining = remaining;
    return this.classify(width, height, stride, remaining, keepPixels);
  }

  private reserve(pixels: number, padded: number): void {
    if (this.warped.length !== padded) {
      this.warped = new Uint8Array(padded);
      this.components = new Int32Array(padded);
      this.positionOf = new Int32Array(padded).fill(-1);
    }
    if (this.items.length < pixels) {
      this.items = new Int32Array(pixels);
      this.priorities = new Float32Array(pixels);
      this.dueNow = new Uint32Array((pixels >>> 5) + 1);
      this.dueNext = new Uint32Array((pixels >>> 5) + 1);
    }
  }

  /**
   * Flips simple mismatches in place until a pass changes nothing; returns how many mismatches
   * remain (their padded indices stay at the front of `items`, in visiting order).
   *
   * The reference re-collects every mismatch on each pass, orders them column by column, sorts
   * them stably by float32 priority |value - th| descending and visits them all. Flips only
   * remove mismatches, so that order is fixed after the first sort. And a pixel that was not
   * simple at its last visit can only become simple once a neighbour flips, so after the first
   * pass only such pixels are revisited, in list order: a flip at list position j re-queues
   * neighbours after j for the current pass and neighbours before j for the next one.
   */
  private warp(proposal: ArrayLike<number>, width: number, height: number, stride: number, th: number): number {
    const { warped, items, priorities, positionOf } = this;
    let count = 0;
    for (let x = 0; x < width; x++) {
      for (let y = 0; y < height; y++) {
        const value = proposal[y * width + x];
        const p = (y + 1) * stride + x + 1;
        if (warped[p] !== (value > th ? 1 : 0)) {
          items[count] = p;
          priorities[count] = Math.abs(value - th);
          count++;
        }
      }
    }
    if (count === 0) return 0;
    this.sorter.sort(items, new Uint32Array(priorities.buffer, 0, count), count);
    for (let i = 0; i < count; i++) positionOf[items[i]] = i;

    // Bit sets of list positions to visit in this pass and in the next one.
    const words = (count + 31) >>> 5;
    let dueNow = this.dueNow.fill(0xffffffff, 0, words);
    let dueNext = this.dueNext.fill(0, 0, words);
    if ((count & 31) !== 0) dueNow[words - 1] = (1 << (count & 31)) - 1;
    const neighbours = Int32Array.of(-stride - 1, -stride, -stride + 1, 1, stride + 1, stride, stride - 1, -1);

    for (let pending = true; pending; ) {
      pending = false;
      for (let w = 0; w < words; w++) {
        // Re-read the word after each visit: a flip may schedule later bits of it.
        for (let bits = dueNow[w]; bits !== 0; bits = dueNow[w]) {
          const bit = 31 - Math.clz32(bits & -bits);
          dueNow[w] = bits & ~(1 << bit);
          const pos = (w << 5) | bit;
          const p = items[pos];
          if (SIMPLE[ringConfig(warped, p, stride)] === 0) continue;
          warped[p] ^= 1;
          positionOf[p] = -1;
          for (let k = 0; k < 8; k++) {
            const q = positionOf[p + neighbours[k]];
            if (q < 0) continue;
            if (q > pos) {
              dueNow[q >>> 5] |= 1 << (q & 31);
            } else {
              dueNext[q >>> 5] |= 1 << (q & 31);
              pending = true;
            }
          }
        }
      }
      [dueNow, dueNext] = [dueNext, dueNow];
    }

    let kept = 0;
    for (let i = 0; i < count; i++) {
      const p = items[i];
      if (positionOf[p] >= 0) {
        positionOf[p] = -1;
        items[kept++] = p;
      }
    }
    return kept;
  }

  /**
   * Classifies the remaining mismatches with C = 4-connected labels of the warped ground truth
   * and N = the C labels of the in-image 8 neighbours: |N| >= 3 is a merger on background and a
   * split on foreground; a foreground pixel with |N| == 2 is a split when removing it
   * disconnects its foreground neighbours within the 41 x 41 window. Other cases (object or
   * hole additions/deletions) are not counted by the ISBI metric.
   */
  private classify(width: number, height: number, stride: number, remaining: number, keepPixels: boolean): WarpingErrors {
    const { components, items } = this;
    this.labeller.label(this.warped, stride, height + 2, components);
    const splitPixels: number[] = [];
    const mergerPixels: number[] = [];
    let splits = 0;
    let mergers = 0;
    for (let i = 0; i < remaining; i++) {
      const p = items[i];
      const kind = this.kindOf(p, width, height, stride);
      const x = (p % stride) - 1;
      const y = ((p / stride) | 0) - 1;
      if (kind === MismatchKind.Split) {
        splits++;
        if (keepPixels) splitPixels.push(y * width + x);
      } else if (kind === MismatchKind.Merger) {
        mergers++;
        if (keepPixels) mergerPixels.push(y * width + x);
      }
    }
    const result: WarpingErrors = { splits, mergers };
    if (keepPixels) {
      result.splitPixels = Int32Array.from(splitPixels);
      result.mergerPixels = Int32Array.from(mergerPixels);
    }
    return result;
  }

  /**
   * Every mismatch the warping leaves, with its kind, and the 4-connected components of the warped ground truth
   * (row-major, unpadded; 0 = background). Split and merger are exactly the pixels `count` counts; the other kinds
   * name the topological change the metric does not count (see MismatchKind).
   */
  mismatches(gtFg: Uint8Array, proposal: ArrayLike<number>, width: number, height: number, th: number): WarpedMismatches {
    this.count(gtFg, proposal, width, height, th); // leaves the mismatches in `items` and labels `components`
    const stride = width + 2;
    const remaining = this.lastRemaining;
    const pixels = new Int32Array(remaining);
    const kinds = new Uint8Array(remaining);
    for (let i = 0; i < remaining; i++) {
      const p = this.items[i];
      pixels[i] = (((p / stride) | 0) - 1) * width + (p % stride) - 1;
      kinds[i] = this.kindOf(p, width, height, stride);
    }
    const components = new Int32Array(width * height);
    for (let y = 0; y < height; y++) components.set(this.components.subarray((y + 1) * stride + 1, (y + 1) * stride + 1 + width), y * width);
    return { pixels, kinds, components };
  }

  /** The kind of the remaining mismatch at padded index `p` (components must be labelled). */
  private kindOf(p: number, width: number, height: number, stride: number): MismatchKind {
    const { components, labels } = this;
    const x = (p % stride) - 1;
    const y = ((p / stride) | 0) - 1;
    const interior = x > 0 && y > 0 && x < width - 1 && y < height - 1;
    let distinct = 0;
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        if ((dx === 0 && dy === 0) || (!interior && (x + dx < 0 || y + dy < 0 || x + dx >= width || y + dy >= height))) continue;
        const label = components[p + dy * stride + dx];
        let seen = false;
        for (let k = 0; k < distinct; k++) if (labels[k] === label) seen = true;
        if (!seen) labels[distinct++] = label;
      }
    }
    const onForeground = components[p] !== 0;
    if (distinct >= 3) return onForeground ? MismatchKind.Split : MismatchKind.Merger;
    if (distinct === 2 && onForeground && this.disconnectsNeighbours(p, x, y, width, height, stride)) return MismatchKind.Split;
    // Not counted by the metric: name the change that flipping the pixel would make.
    const config = ringConfig(this.warped, p, stride);
    if (FOREGROUND_TOUCHES[config] === 0) return onForeground ? MismatchKind.ObjectDeletion : MismatchKind.ObjectAddition;
    if (BACKGROUND_PARTS[config] === 0) return onForeground ? MismatchKind.HoleAddition : MismatchKind.HoleDeletion;
    return MismatchKind.Other;
  }

  /**
   * Whether the foreground 8-neighbours of foreground pixel (x, y) fall into more than one
   * 4-connected component of the window once the pixel itself is removed. Here the neighbours
   * always include background, so this is the reference's "more than 2 labels" test.
   * Like the reference, the whole image is the window when it is narrower than the radius.
   */
  private disconnectsNeighbours(p: number, x: number, y: number, width: number, height: number, stride: number): boolean {
    const warped = this.warped;
    const config = ringConfig(warped, p, stride);
    // Consecutive ring cells are 4-adjacent, so one run of foreground cells is one component.
    let runs = 0;
    let fgCells = 0;
    for (let k = 0; k < 8; k++) {
      if (((config >> k) & 1) === 0) continue;
      fgCells++;
      if (((config >> ((k + 7) & 7)) & 1) === 0) runs++;
    }
    if (runs < 2) return false;

    const r = CLASSIFICATION_RADIUS;
    const wholeImage = r > width || r > height;
    const x0 = wholeImage ? 0 : Math.max(0, x - r);
    const y0 = wholeImage ? 0 : Math.max(0, y - r);
    const x1 = wholeImage ? width - 1 : Math.min(width - 1, x + r);
    const y1 = wholeImage ? height - 1 : Math.min(height - 1, y + r);
    const ww = x1 - x0 + 1;
    const wh = y1 - y0 + 1;
    if (this.stamps.length < ww * wh) {
      this.stamps = new Int32Array(ww * wh);
      this.queueX = new Int32Array(ww * wh);
      this.queueY = new Int32Array(ww * wh);
      this.stampValue = 0;
    }
    const { stamps, queueX, queueY } = this;
    const stamp = ++this.stampValue;
    // Window-local coordinates: pixel (lx, ly) is stamps[ly*ww + lx] and warped[origin + ly*stride + lx].
    const origin = (y0 + 1) * stride + x0 + 1;
    const cx = x - x0;
    const cy = y - y0;

    // Breadth-first flood from one foreground neighbour with the centre blocked, so that nearby
    // connections are found first; stop once all foreground neighbours are reached.
    stamps[cy * ww + cx] = stamp;
    const [startDx, startDy] = RING[31 - Math.clz32(config & -config)];
    let toReach = fgCells - 1;
    let head = 0;
    let tail = 0;
    stamps[(cy + startDy) * ww + cx + startDx] = stamp;
    queueX[tail] = cx + startDx;
    queueY[tail++] = cy + startDy;
    const visit = (lx: number, ly: number): boolean => {
      const local = ly * ww + lx;
      if (stamps[local] === stamp || warped[origin + ly * stride + lx] !== 1) return false;
      stamps[local] = stamp;
      queueX[tail] = lx;
      queueY[tail++] = ly;
      return lx - cx <= 1 && cx - lx <= 1 && ly - cy <= 1 && cy - ly <= 1 && --toReach === 0;
    };
    while (head < tail) {
      const lx = queueX[head];
      const ly = queueY[head++];
      if ((lx > 0 && visit(lx - 1, ly)) || (ly > 0 && visit(lx, ly - 1)) || (lx < ww - 1 && visit(lx + 1, ly)) || (ly < wh - 1 && visit(lx, ly + 1))) {
        return false;
      }
    }
    return true;
  }
}
