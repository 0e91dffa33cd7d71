/** Pixel storage of a stack of 2-D sections, slice-major then row-major: (x, y, z) is at z*W*H + y*W + x. */
export type StackData = Uint8Array | Uint16Array | Uint32Array | Float32Array;

export interface ImageStack<T extends StackData = StackData> {
  width: number;
  height: number;
  depth: number;
  data: T;
}

/** One section of a stack, as a view (no copy). */
export function sliceOf<T extends StackData>(stack: ImageStack<T>, z: number): T {
  const n = stack.width * stack.height;
  return stack.data.subarray(z * n, (z + 1) * n) as T;
}
