import { z } from 'zod';

/** Spec fields several layer types share (each layer's own schema lives in its module). */

export const positiveInt = z.number().int().positive();
export const nonNegativeInt = z.number().int().nonnegative();
/** A size for both spatial axes, or [height, width]. */
export const pair = z.union([positiveInt, z.tuple([positiveInt, positiveInt])]);
export const padding = z.union([
  z.literal('valid'),
  z.literal('same'),
  nonNegativeInt,
  z.tuple([nonNegativeInt, nonNegativeInt, nonNegativeInt, nonNegativeInt]),
]);
export const init = z.enum(['he', 'xavier']);
/** 3-d layers: a size for all three axes, or [depth, height, width] (anisotropic kernels such as [1, 3, 3]). */
export const triple = z.union([positiveInt, z.tuple([positiveInt, positiveInt, positiveInt])]);
/** 3-d padding: 'valid', 'same', one size for every side, or [front, top, left, back, bottom, right]. */
export const padding3 = z.union([
  z.literal('valid'),
  z.literal('same'),
  nonNegativeInt,
  z.tuple([nonNegativeInt, nonNegativeInt, nonNegativeInt, nonNegativeInt, nonNegativeInt, nonNegativeInt]),
]);

/** Fields every layer has: an optional name, the layers it reads (default: the previous one), a comment. */
export const common = {
  name: z.string().min(1).optional(),
  inputs: z.array(z.string().min(1)).min(1).optional(),
  comment: z.string().optional(),
};
