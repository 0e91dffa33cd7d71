import { describeError } from '../errors.js';
import { openStack, type StackReader } from '../io/index.js';
import type { ResolvedStudy } from './schema.js';

/** Size of the study's stacks (images and labels agree when this is known). */
export interface StackShape {
  width: number;
  height: number;
  depth: number;
}

/** What checking a study's data found: the problems (each naming its field), and the stacks' shape when readable. */
export interface DataCheck {
  problems: string[];
  shape?: StackShape;
}

const field = (name: string, message: string): string => `field "${name}": ${message}`;

/** Opens a stack by its headers only (no pixels are decoded); a failure becomes a problem naming the field. */
async function openField(name: string, path: string, problems: string[]): Promise<StackReader | undefined> {
  try {
    return await openStack(path);
  } catch (err) {
    problems.push(field(name, describeError(err)));
    return undefined;
  }
}

function outOfRange(name: string, sections: readonly number[] | undefined, depth: number): string | undefined {
  const bad = sections?.filter((z) => z >= depth) ?? [];
  if (bad.length === 0) return undefined;
  return field(name, `section${bad.length > 1 ? 's' : ''} ${bad.join(', ')} ${bad.length > 1 ? 'do' : 'does'} not exist ` +
    `(the stack has ${depth} section${depth === 1 ? '' : 's'}, 0-${depth - 1})`);
}

/**
 * Checks the study's data before anything is trained: both stacks exist and are readable, have the same number of
 * sections of the same size, the validation and training sections lie within the stack, and some are left to train on.
 */
export async function checkStudyData(study: ResolvedStudy): Promise<DataCheck> {
  const problems: string[] = [];
  const { data } = study;
  const images = await openField('data.images', data.images, problems);
  const labels = await openField('data.labels', data.labels, problems);
  if (problems.length && data.needs) problems.push(field('data.needs', `this study needs ${data.needs}`));
  if (!images) return { problems };
  const shape = { width: images.width, height: images.height, depth: images.depth };
  if (labels && (labels.width !== images.width || labels.height !== images.height || labels.depth !== images.depth)) {
    problems.push(field('data.labels', `${labels.depth} section(s) of ${labels.width}x${labels.height} (${data.labels}), but ` +
      `"data.images" has ${images.depth} of ${images.width}x${images.height} (${data.images}); they must match section for section`));
  }
  for (const p of [outOfRange('data.validation', data.validation, shape.depth), outOfRange('data.train', data.train, shape.depth)]) {
    if (p) problems.push(p);
  }
  const training = data.train ?? [...Array(shape.depth).keys()].filter((z) => !data.validation.includes(z));
  if (data.train === undefined && training.length === 0) {
    problems.push(field('data.validation', `holds all ${shape.depth} sections of the stack; none are left to train on`));
  }
  return { problems, shape };
}
