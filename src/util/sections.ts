import { EmsegError } from '../errors.js';

/** A range of sections as volumes give it: `z=150:170`, start included, end excluded (Python's slice). */
const Z_RANGE = /^\s*z\s*=\s*(\d+)\s*:\s*(\d+)\s*$/;

/**
 * Parses "20-24", "0,3,5-7", "none" or a half-open range "z=150:170" (150..169) into sorted, distinct section
 * indices; throws naming the bad part.
 */
export function parseSections(value: string): number[] {
  if (value.trim() === 'none') return [];
  const out = new Set<number>();
  for (const part of value.split(',')) {
    const range = Z_RANGE.exec(part);
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])];
      if (b <= a) throw new EmsegError('invalid-option', 'sections', `empty section range "${part.trim()}" in "${value}" (z=start:end, end excluded)`);
      for (let z = a; z < b; z++) out.add(z);
      continue;
    }
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new EmsegError('invalid-option', 'sections', `bad section list "${value}" (e.g. 20-24, 0,3,5-7, z=150:170 or none)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new EmsegError('invalid-option', 'sections', `bad section range "${part.trim()}" in "${value}"`);
    for (let z = a; z <= b; z++) out.add(z);
  }
  return [...out].sort((x, y) => x - y);
}
