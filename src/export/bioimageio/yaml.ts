import { EmsegError } from '../../errors.js';

/**
 * A tiny YAML writer for rdf.yaml. No YAML package is installed in this project, and an rdf holds only
 * JSON-compatible values, so they are written in block style with every scalar in its JSON form: strings are
 * always double-quoted (YAML's double-quoted style accepts JSON's escapes), which sidesteps YAML's implicit
 * typing (no, on, 1e3, dates...). readYamlSubset reads exactly this subset back (for checks and tests).
 */

export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

const INDENT = 2;
const PLAIN_KEY = /^[A-Za-z_][\w.-]*$/;

function scalar(v: YamlValue, path: string): string {
  if (Array.isArray(v)) return '[]';
  if (v !== null && typeof v === 'object') return '{}';
  if (typeof v === 'number' && !Number.isFinite(v)) throw new EmsegError('invalid-option', path, `is ${v}, which YAML cannot hold as JSON`);
  return JSON.stringify(v);
}

function isBlock(v: YamlValue): v is YamlValue[] | { [key: string]: YamlValue } {
  return v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
}

function writeBlock(v: YamlValue[] | { [key: string]: YamlValue }, indent: number, path: string): string[] {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    return v.flatMap((item, i) => {
      if (!isBlock(item)) return [`${pad}- ${scalar(item, `${path}[${i}]`)}`];
      const inner = writeBlock(item, indent + INDENT, `${path}[${i}]`);
      if (Array.isArray(item)) return [`${pad}-`, ...inner];
      return [`${pad}- ${inner[0]!.slice(indent + INDENT)}`, ...inner.slice(1)];
    });
  }
  return Object.entries(v).flatMap(([key, value]) => {
    if (!PLAIN_KEY.test(key)) throw new EmsegError('invalid-option', `${path}.${key}`, 'is not a plain YAML key');
    return isBlock(value) ? [`${pad}${key}:`, ...writeBlock(value, indent + INDENT, `${path}.${key}`)]
      : [`${pad}${key}: ${scalar(value, `${path}.${key}`)}`];
  });
}

/** A YAML document of a mapping. */
export function writeYaml(doc: { [key: string]: YamlValue }): string {
  return `${writeBlock(doc, 0, 'rdf').join('\n')}\n`;
}

interface Line {
  indent: number;
  text: string;
  number: number;
}

/** Reads the block-style subset writeYaml produces (JSON scalars, plain keys, two-space indentation). */
export function readYamlSubset(text: string, path: string): YamlValue {
  const lines: Line[] = text.split('\n').map((raw, i) => ({ indent: raw.length - raw.trimStart().length,
    text: raw.trim(), number: i + 1 })).filter((l) => l.text !== '' && !l.text.startsWith('#'));
  const bad = (line: Line | undefined, why: string): never => {
    throw new EmsegError('corrupt', path, `line ${line?.number ?? 'end'}: ${why}`);
  };
  const json = (line: Line, s: string): YamlValue => {
    try {
      return JSON.parse(s) as YamlValue;
    } catch {
      return bad(line, `"${s}" is not a JSON scalar`);
    }
  };
  let at = 0;
  const block = (indent: number): YamlValue => {
    const first = lines[at];
    if (!first || first.indent !== indent) return bad(first, `expected indentation ${indent}`);
    if (first.text === '-' || first.text.startsWith('- ')) {
      const items: YamlValue[] = [];
      while (lines[at] && lines[at]!.indent === indent && (lines[at]!.text === '-' || lines[at]!.text.startsWith('- '))) {
        const line = lines[at]!;
        const rest = line.text.slice(1).trimStart();
        if (rest === '') {
          at++;
          items.push(block(indent + INDENT));
        } else if (/^[A-Za-z_][\w.-]*:( |$)/.test(rest)) {
          lines[at] = { ...line, indent: indent + INDENT, text: rest }; // the item's first key, at the item's indentation
          items.push(block(indent + INDENT));
        } else {
          at++;
          items.push(json(line, rest));
        }
      }
      return items;
    }
    const map: { [key: string]: YamlValue } = {};
    while (lines[at] && lines[at]!.indent === indent && !lines[at]!.text.startsWith('-')) {
      const line = lines[at]!;
      const m = /^([A-Za-z_][\w.-]*):(?: (.*))?$/.exec(line.text);
      if (!m) return bad(line, 'expected "key: value"');
      at++;
      if (m[2] !== undefined) {
        map[m[1]!] = json(line, m[2]);
      } else {
        const next = lines[at];
        if (!next || next.indent <= indent) bad(line, `"${m[1]}" has no value`);
        map[m[1]!] = block(next!.indent);
      }
    }
    return map;
  };
  const doc = block(0);
  if (at < lines.length) bad(lines[at], 'unexpected indentation');
  return doc;
}
