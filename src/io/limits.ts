/** Size limits shared by the readers; checked against headers before any pixel buffer is allocated. */

/** Largest slice we agree to decode (2^31 pixels, as the issue asks). */
export const MAX_SLICE_PIXELS = 2 ** 31;

/** Largest whole stack readStack will put in one typed array; beyond it, iterate slices instead. */
export const MAX_STACK_ELEMENTS = 2 ** 32 - 1;
