import { InvalidArgumentError } from 'commander';
import { parseSections } from '../util/sections.js';

/** Commander parser for section lists ("20-24", "0,3,5-7", "none"). */
export function sectionList(value: string): number[] {
  try {
    return parseSections(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
