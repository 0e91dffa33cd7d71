import type { RgbaImage } from '../image/stack.js';
import { segmentBoundaries } from './segment.js';

/**
 * A picture of a segmentation: each segment in its own colour (golden-angle hues, so neighbours differ), blended
 * over the EM section when one is given (values in [0, 1]), boundaries in black.
 */
export function segmentationPicture(labels: Int32Array, height: number, width: number, image?: Float32Array): RgbaImage {
  const lines = segmentBoundaries(labels, height, width);
  const data = new Uint8Array(height * width * 4);
  for (let i = 0; i < labels.length; i++) {
    const [r, g, b] = lines[i] ? [0, 0, 0] : segmentColour(labels[i]!);
    const grey = image ? 255 * Math.min(1, Math.max(0, image[i]!)) : 255;
    const mix = image ? 0.45 : 1;
    data[4 * i] = Math.round(mix * r + (1 - mix) * grey);
    data[4 * i + 1] = Math.round(mix * g + (1 - mix) * grey);
    data[4 * i + 2] = Math.round(mix * b + (1 - mix) * grey);
    data[4 * i + 3] = 255;
  }
  return { width, height, data };
}

function segmentColour(label: number): [number, number, number] {
  const hue = (label * 137.508) % 360;
  const lightness = label % 2 === 0 ? 0.55 : 0.7;
  return hslToRgb(hue, 0.75, lightness);
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const x = c * (1 - Math.abs(((h / 60) % 2) - 1));
  const m = l - c / 2;
  const [r, g, b] = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x] : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
  return [Math.round(255 * (r + m)), Math.round(255 * (g + m)), Math.round(255 * (b + m))];
}
