/** A usage error prints one error line and the command's usage (issue 27), not the whole help. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/main.js';
import { REPO_ROOT } from './helpers/data.js';

const emseg = join(REPO_ROOT, 'bin', 'emseg.js');

/** Every command (submit's subcommands included) with required options, as its path of names. */
function withRequiredOptions(command: Command, path: string[] = []): string[][] {
  const own = command.options.some((o) => o.mandatory) ? [path] : [];
  return [...own, ...command.commands.flatMap((c) => withRequiredOptions(c, [...path, c.name()]))];
}

test('a missing required option: the error, the usage with the required options, where the help is; nothing more', () => {
  const commands = withRequiredOptions(buildProgram());
  assert.ok(commands.length >= 8, commands.join('; '));
  for (const path of commands) {
    const args = path[0] === 'export' ? [...path, 'models/emseg-isbi'] : path;
    const r = spawnSync(process.execPath, [emseg, ...args], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 1, path.join(' '));
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 3, r.stderr);
    assert.match(lines[0]!, /^error: required option '--[\w-]+ <[^>]+>' not specified$/);
    assert.match(lines[1]!, new RegExp(`^usage: emseg ${path.join(' ')} (--[\\w-]+ <[^>]+> )+\\[options\\]`));
    assert.equal(lines[2], `(see emseg ${path.join(' ')} --help)`);
  }
});

test('a bad value gets the same three lines; an unknown command the suggestion too, not the list of commands', () => {
  const bad = spawnSync(process.execPath, [emseg, 'train', '--steps', 'x'], { encoding: 'utf8' });
  assert.deepEqual(bad.stderr.trimEnd().split('\n').slice(1), ['usage: emseg train --images <path> --labels <path> --out <dir> [options]',
    '(see emseg train --help)']);
  const unknown = spawnSync(process.execPath, [emseg, 'trian'], { encoding: 'utf8' });
  assert.deepEqual(unknown.stderr.trimEnd().split('\n'), ['error: unknown command \'trian\'', '(Did you mean train?)',
    'usage: emseg [options] [command]', '(see emseg --help)']);
});
