/** RGBA PNG encoding for overlays (the io module's encodePng writes grey only). */
import { encode } from 'fast-png';
import type { RgbaImage } from './overlay.js';

/** 8-bit RGBA PNG; `text` goes into tEXt chunks (e.g. a legend, since the image carries no lettering). */
export function encodeRgbaPng(img: RgbaImage, text?: Record<string, string>): Uint8Array {
  if (img.data.length !== img.width * img.height * 4) { // invariant: emseg's own drawing code made the image
    throw new RangeError(`RGBA image of ${img.width}x${img.height} holds ${img.data.length} bytes, expected ${img.width * img.height * 4}`);
  }
  return encode({ width: img.width, height: img.height, data: img.data, channels: 4, depth: 8, ...(text ? { text } : {}) });
}

export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString('base64')}`;
}
