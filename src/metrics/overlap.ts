/**
 * Contingency table between a ground-truth segmentation T and a proposal segmentation S,
 * restricted to ground-truth foreground (T label >= 1), as the Rand and information scores
 * need it. Only the nonzero cells are produced, so a slice with thousands of tiny proposal
 * segments costs O(pixels), not O(|T| x |S|).
 */
export interface Overlap {
  /** Number of ground-truth foreground pixels. */
  n: number;
  /** Ground-truth foreground pixels on proposal label 0 (each one is its own segment). */
  singletons: number;
  /** `tSizes[i]` = size of T segment i (i >= 1), singletons included; index 0 unused. */
  tSizes: Int32Array;
  tCount: number;
  /** `sSizes[j]` = ground-truth foreground pixels in S segment j (j >= 1); index 0 unused. */
  sSizes: Int32Array;
  sCount: number;
  /** The nonzero counts c_ij for i, j >= 1, in no particular order (first `cellCount` entries). */
  cells: Int32Array;
  cellCount: number;
}

/**
 * Builds overlaps with reusable buffers. The returned object's arrays are views into this
 * instance's buffers and are overwritten by the next call.
 */
export class OverlapCounter {
  private tSizes = new Int32Array(1);
  private sSizes = new Int32Array(1);
  private starts = new Int32Array(2);
  private grouped = new Int32Array(0);
  private cells = new Int32Array(0);
  private tally = new Int32Array(1);
  private touched = new Int32Array(0);

  /**
   * `tLabels` / `sLabels` hold labels 0..tCount / 0..sCount for the same pixels.
   */
  count(tLabels: Int32Array, tCount: number, sLabels: Int32Array, sCount: number): Overlap {
    const len = tLabels.length;
    if (this.tSizes.length < tCount + 1) {
      this.tSizes = new Int32Array(tCount + 1);
      this.tally = new Int32Array(tCount + 1);
    }
    if (this.sSizes.length < sCount + 1) {
      this.sSizes = new Int32Array(sCount + 1);
      this.starts = new Int32Array(sCount + 2);
    }
    if (this.grouped.length < len) {
      this.grouped = new Int32Array(len);
      this.cells = new Int32Array(len);
      this.touched = new Int32Array(len);
    }
    const { tSizes, sSizes, starts, grouped, cells, tally, touched } = this;
    tSizes.fill(0, 0, tCount + 1);
    sSizes.fill(0, 0, sCount + 1);

    let n = 0;
    let singletons = 0;
    for (let p = 0; p < len; p++) {
      const t = tLabels[p];
      if (t === 0) continue;
      n++;
      tSizes[t]++;
      const s = sLabels[p];
      if (s === 0) singletons++;
      else sSizes[s]++;
    }

    // Counting sort of the T labels by S label, then one tally per S segment.
    starts[1] = 0;
    for (let j = 1; j <= sCount; j++) starts[j + 1] = starts[j] + sSizes[j];
    for (let p = 0; p < len; p++) {
      const t = tLabels[p];
      const s = sLabels[p];
      if (t !== 0 && s !== 0) grouped[starts[s]++] = t;
    }
    // The scatter advanced `starts`, so the groups are walked with a running offset instead.
    let cellCount = 0;
    let begin = 0;
    for (let j = 1; j <= sCount; j++) {
      const end = begin + sSizes[j];
      let touchedCount = 0;
      for (let k = begin; k < end; k++) {
        const t = grouped[k];
        if (tally[t]++ === 0) touched[touchedCount++] = t;
      }
      for (let k = 0; k < touchedCount; k++) {
        const t = touched[k];
        cells[cellCount++] = tally[t];
        tally[t] = 0;
      }
      begin = end;
    }
    return {
      n,
      singletons,
      tSizes: tSizes.subarray(0, tCount + 1),
      tCount,
      sSizes: sSizes.subarray(0, sCount + 1),
      sCount,
      cells: cells.subarray(0, cellCount),
      cellCount,
    };
  }
}
