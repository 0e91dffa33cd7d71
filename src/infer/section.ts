import type { IntensityMapping } from '../image/intensity.js';
import { reflect } from '../image/mirror.js';
import { fullScale, sampleTypeOf, type StackData } from '../image/stack.js';

/**
 * A section the predictor reads window by window, so no whole-section float copy is ever made. `read` fills `out`
 * (h x w, row-major) with the float intensities of the window at (top, left), mirrored outside the section (the one
 * border rule of training and prediction). Normalisation belongs inside `read`.
 */
export interface SectionSource {
  height: number;
  width: number;
  read(top: number, left: number, h: number, w: number, out: Float32Array): void;
}

/**
 * A section held in its own sample type (uint8/uint16: 1-2 bytes per pixel), mapped to [0,1] as it is read. The
 * default mapping divides integers by their full scale (as toFloat32 does) and reads floats as they are.
 */
export function sectionFrom(data: StackData, height: number, width: number,
  mapping: IntensityMapping = { low: 0, high: fullScale(sampleTypeOf(data)) }): SectionSource {
  const { low } = mapping;
  const span = mapping.high - low;
  // Divided, not multiplied by a reciprocal, so the values equal applyMapping's (training's) to the bit; a flat
  // section (high = low) reads as all 0, as applyMapping makes it.
  const flat = !(span > 0);
  let colsFor = { left: NaN, w: 0, cols: new Int32Array(0) };
  return {
    height,
    width,
    read(top, left, h, w, out) {
      if (colsFor.left !== left || colsFor.w !== w) {
        // Mirrored column indices are shared by every row of the window.
        const c = new Int32Array(w);
        for (let x = 0; x < w; x++) c[x] = reflect(left + x, width);
        colsFor = { left, w, cols: c };
      }
      const c = colsFor.cols;
      for (let y = 0; y < h; y++) {
        const row = reflect(top + y, height) * width;
        const o = y * w;
        for (let x = 0; x < w; x++) {
          const v = flat ? 0 : (data[row + c[x]!]! - low) / span;
          out[o + x] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
      }
    },
  };
}
