import { EmsegError } from '../errors.js';

/** Parses "20-24", "0,3,5-7" or "none" into sorted, distinct section indices; throws naming the bad part. */
export function parseSections(value: string): number[] {
  if (value.trim() === 'none') return [];
  const out = new Set<number>();
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new EmsegError('invalid-option', 'sections', `bad section list "${value}" (e.g. 20-24 or 0,3,5-7 or none)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new EmsegError('invalid-option', 'sections', `bad section range "${part.trim()}" in "${value}"`);
    for (let z = a; z <= b; z++) out.add(z);
  }
  return [...out].sort((x, y) => x - y);
}
