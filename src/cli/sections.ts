import { InvalidArgumentError } from 'commander';

/** Parses "20-24", "0,3,5-7" or "none" into section indices. */
export function sectionList(value: string): number[] {
  if (value === 'none') return [];
  const out: number[] = [];
  for (const part of value.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new InvalidArgumentError(`bad section list "${value}" (e.g. 20-24 or 0,3,5-7 or none)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new InvalidArgumentError(`bad section range "${part}"`);
    for (let z = a; z <= b; z++) out.push(z);
  }
  return out;
}
