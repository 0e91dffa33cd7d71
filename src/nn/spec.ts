import { z } from 'zod';
import { layerSchemas } from './layers/index.js';
import { SpecError } from './spec-error.js';

/**
 * Declarative model specs (JSON). A spec is a list of layers; each layer reads the previous layer's output
 * unless `inputs` names earlier layers ("input" is the image), so skips and merges make a DAG.
 * Everything is validated here and in shape inference (./plan.ts) before any native code runs.
 */

const positiveInt = z.number().int().positive();

/** One layer: its `type` picks the schema, from the layer's module (./layers/, registered in ./layers/index.ts). */
const layer = z.discriminatedUnion('type', layerSchemas());

export const modelSpecSchema = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
  source: z.string().optional(),
  /**
   * The image the net reads. `dims: 3`: a 3-d network, reading [channels, depth, height, width] (its layers are
   * conv3d, pool3d, upconv3d and the layers of any rank); absent: a 2-d one. `sections` (odd): consecutive sections centred on the one it predicts, one input
   * channel each (2.5D context across sections); EM sections are grey, so channels must equal sections.
   */
  input: z.object({ channels: positiveInt.default(1), sections: positiveInt.default(1), dims: z.literal(3).optional() }).strict()
    .default({ channels: 1, sections: 1 })
    .refine((i) => i.sections % 2 === 1, { message: 'must be odd (the predicted section and as many on each side)', path: ['sections'] })
    .refine((i) => i.channels === i.sections, { message: 'must equal input.sections (one grey channel per section)', path: ['channels'] })
    .refine((i) => i.dims !== 3 || i.sections === 1, { message: 'a 3-d network reads the volume itself, not sections as channels', path: ['sections'] }),
  /** Patch classifiers: the window (context) each output pixel sees; dense layers are sized from it. */
  window: positiveInt.optional(),
  classes: z.number().int().min(2).default(2),
  /**
   * A sigmoid head's channels, in order: the affinity to the neighbour at [dz, dy, dx] (image/affinities.ts's
   * conventions), or a boundary map ({ "boundary": "in-plane" | "3d" }). Checked against the output at planning.
   */
  targets: z.array(z.union([
    z.tuple([z.number().int(), z.number().int(), z.number().int()]),
    z.object({ boundary: z.enum(['in-plane', '3d']) }).strict(),
  ])).min(1).optional(),
  layers: z.array(layer).min(1),
}).strict();

export type ModelSpecInput = z.input<typeof modelSpecSchema>;
export type ModelSpec = z.output<typeof modelSpecSchema>;
export type LayerSpec = ModelSpec['layers'][number];
export type LayerType = LayerSpec['type'];

/** Sections on each side of the predicted one that a model reads (0 for a 2D model). */
export function sectionRadius(spec: Pick<ModelSpec, 'input'>): number {
  return (spec.input.sections - 1) / 2;
}

/** The spec reading `sections` consecutive sections (one channel each) instead of its own number. */
export function withInputSections(spec: ModelSpec, sections: number): ModelSpec {
  return parseModelSpec({ ...spec, input: { channels: sections, sections } });
}

export { SpecError };

/** Parse and validate a spec; errors name the layer (index, name, type) and the field. */
export function parseModelSpec(json: unknown, source?: string): ModelSpec {
  const result = modelSpecSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new SpecError(`${describePath(json, issue.path)}: ${issue.message}`, source);
  }
  return result.data;
}

function describePath(json: unknown, path: (string | number)[]): string {
  if (path[0] !== 'layers' || typeof path[1] !== 'number') return path.length ? `field "${path.join('.')}"` : 'spec';
  const raw = (json as { layers: unknown[] }).layers[path[1]] as Record<string, unknown> | undefined;
  const type = raw && typeof raw.type === 'string' ? raw.type : '?';
  const name = raw && typeof raw.name === 'string' ? ` "${raw.name}"` : '';
  const field = path.slice(2).join('.');
  return `layer ${path[1]}${name} (${type})${field ? `, field "${field}"` : ''}`;
}
