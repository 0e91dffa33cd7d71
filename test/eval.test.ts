// `emseg eval`: CLI output against the ISBI 2012 reference values in test/fixtures/isbi-metrics,
// input checks naming files, and the reports (self-contained HTML, SVG plots, PNG overlay mosaic).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CommanderError } from 'commander';
import { decode } from 'fast-png';
import { buildProgram } from '../src/cli/main.js';
import { EmsegIoError, encodeTiff, readStack } from '../src/io/index.js';
import { toFloat32 } from '../src/image/stack.js';
import { evaluateFiles } from '../src/pipeline/evaluate.js';
import { errorOverlay, MERGER_COLOUR, SPLIT_COLOUR } from '../src/report/index.js';
import { METRIC_FIXTURES, REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';

const repoRoot = REPO_ROOT;
const fixtureDir = METRIC_FIXTURES;
const fixture = (name: string): string => join(fixtureDir, name);
const GT = fixture('gt.tif');
const METRICS = ['pixel_error', 'rand_error', 'warping_error', 'v_rand', 'v_info'] as const;

interface ExpectedProposal {
  best_threshold_index: Record<string, number>;
  per_threshold: Record<string, number[]>;
  per_slice: Record<string, number[][]>;
  [metric: string]: unknown;
}
function expected(): { thresholds: number[]; warping_thresholds: number[]; proposals: Record<string, ExpectedProposal> } {
  if (!existsSync(fixture('expected.json'))) assert.fail(`ISBI metric fixtures not found in ${fixtureDir}`);
  return JSON.parse(readFileSync(fixture('expected.json'), 'utf8'));
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'emseg-eval-'));

/** Runs `emseg eval ...` through buildProgram() and returns what it printed on stdout. */
async function runCli(args: string[]): Promise<string> {
  let out = '';
  const program = buildProgram().exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => {} });
  for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: () => {} });
  await program.parseAsync(['node', 'emseg', 'eval', '--quiet', ...args]);
  return out;
}

function close(actual: unknown, want: number, what: string, tol = 1e-9): void {
  assert.equal(typeof actual, 'number', `${what}: missing`);
  assert.ok(Math.abs((actual as number) - want) <= tol, `${what}: got ${actual}, expected ${want}`);
}

/** A float TIFF of a stack transformed value by value (e.g. flipped). */
async function writeTransformed(from: string, to: string, f: (v: number) => number, pages?: number): Promise<void> {
  const s = await readStack(from);
  const n = s.width * s.height;
  const slices = Array.from({ length: pages ?? s.depth }, (_, z) => Float32Array.from(toFloat32(s.data.subarray(z * n, (z + 1) * n)), f));
  writeFileSync(to, encodeTiff(slices, s.width, s.height));
}

test('--json gives the reference values, best thresholds and details of a proposal', async () => {
  const exp = expected();
  const want = exp.proposals.noisy!;
  const doc = JSON.parse(await runCli(['--labels', GT, '--pred', fixture('noisy.tif'), '--json', '--per-threshold', '--per-slice']));
  for (const m of METRICS) close(doc[m], want[m] as number, m);
  assert.deepEqual(doc.best_threshold_index, want.best_threshold_index);
  assert.deepEqual(doc.metrics, [...METRICS]);
  assert.equal(doc.best_threshold.warping_error, exp.warping_thresholds[want.best_threshold_index.warping_error!]);
  assert.deepEqual(doc.thresholds, exp.thresholds);
  for (const [key, values] of Object.entries(want.per_threshold)) {
    values.forEach((v, t) => close(doc.per_threshold[key][t], v, `per_threshold.${key}[${t}]`));
  }
  for (const [key, table] of Object.entries(want.per_slice)) {
    table.forEach((row, t) => row.forEach((v, z) => close(doc.per_slice[key][t][z], v, `per_slice.${key}[${t}][${z}]`)));
  }
  // Per-section error locations add up to the counts the metric reports at its best threshold.
  const best = want.best_threshold_index.warping_error!;
  assert.equal(doc.sections.length, 5);
  const sum = (k: string): number => doc.sections.reduce((a: number, s: Record<string, number>) => a + s[k]!, 0);
  assert.equal(sum('warping_splits'), want.per_threshold.warping_splits![best]);
  assert.equal(sum('warping_mergers'), want.per_threshold.warping_mergers![best]);
});

test('--breakdown splits the reference warping counts by kind, per section, in JSON and text', async () => {
  const exp = expected();
  for (const name of ['gaps', 'spurious']) {
    const want = exp.proposals[name]!;
    const best = want.best_threshold_index.warping_error!;
    const doc = JSON.parse(await runCli(['--labels', GT, '--pred', fixture(`${name}.tif`), '--json', '--breakdown']));
    const b = doc.breakdown;
    assert.equal(b.threshold, exp.warping_thresholds[best]);
    assert.equal(b.small_cell_area, 400);
    assert.equal(b.sections.length, 5);
    assert.equal(b.total.gap + b.total.small_cell, want.per_threshold.warping_mergers![best], `${name} mergers`);
    assert.equal(b.total.false_boundary + b.total.small_piece, want.per_threshold.warping_splits![best], `${name} splits`);
  }
  const text = await runCli(['--labels', GT, '--pred', fixture('gaps.tif'), '--breakdown', '--small-cell-area', '50']);
  assert.match(text, /warping error by kind at threshold .* \(small cell: < 50 px\)/);
  assert.match(text, /^total\s+\d+/m);
  await assert.rejects(runCli(['--labels', GT, '--pred', fixture('gaps.tif'), '--breakdown', '--small-cell-area', '0']), CommanderError);
});

test('the text table lists each metric with its value and best threshold', async () => {
  const out = await runCli(['--labels', GT, '--pred', fixture('perfect.tif'), '--metrics', 'pixel_error,v_rand']);
  assert.match(out, /pixel_error\s+0\.000000\s+0\s+lower/);
  assert.match(out, /v_rand\s+1\.000000\s+0\s+higher/);
  assert.doesNotMatch(out, /warping_error/);
});

test('--membrane-prob on a flipped prediction gives the same numbers', async () => {
  const want = expected().proposals.noisy!;
  const flipped = join(tmp(), 'membrane.tif');
  await writeTransformed(fixture('noisy.tif'), flipped, (v) => 1 - v);
  const doc = JSON.parse(await runCli(['--labels', GT, '--pred', flipped, '--membrane-prob', '--json']));
  for (const m of METRICS) close(doc[m], want[m] as number, m);
  assert.deepEqual(doc.best_threshold_index, want.best_threshold_index);
  assert.equal(doc.membrane_prob, true);
});

test('--metrics computes only the metrics asked for; unknown names are refused', async () => {
  const want = expected().proposals.gaps!;
  const doc = JSON.parse(await runCli(['--labels', GT, '--pred', fixture('gaps.tif'), '--metrics', 'pixel_error,rand_error', '--json', '--per-threshold']));
  assert.deepEqual(doc.metrics, ['pixel_error', 'rand_error']);
  close(doc.pixel_error, want.pixel_error as number, 'pixel_error');
  close(doc.rand_error, want.rand_error as number, 'rand_error');
  for (const m of ['warping_error', 'v_rand', 'v_info']) assert.equal(doc[m], undefined, `${m} should not be computed`);
  assert.deepEqual(Object.keys(doc.best_threshold_index).sort(), ['pixel_error', 'rand_error']);
  assert.equal(doc.per_threshold.warping_splits, undefined);
  assert.equal(doc.per_threshold.v_rand, undefined);
  await assert.rejects(runCli(['--labels', GT, '--pred', fixture('gaps.tif'), '--metrics', 'pixel_error,rand_eror']),
    (err: unknown) => err instanceof CommanderError && /unknown metric "rand_eror"/.test(err.message));
});

test('--polarity converts the labels to the metrics\' convention', async () => {
  const dir = tmp();
  const inverted = join(dir, 'gt-inverted.tif');
  const gt = await readStack(GT);
  const n = gt.width * gt.height;
  writeFileSync(inverted, encodeTiff(Array.from({ length: gt.depth }, (_, z) => Uint8Array.from(gt.data.subarray(z * n, (z + 1) * n), (v) => 255 - v)), gt.width, gt.height));
  const want = expected().proposals.eroded!;
  const args = ['--pred', fixture('eroded.tif'), '--metrics', 'pixel_error,v_info', '--json'];
  const doc = JSON.parse(await runCli(['--labels', inverted, '--polarity', 'membrane-255-interior-0', ...args]));
  close(doc.pixel_error, want.pixel_error as number, 'pixel_error');
  close(doc.v_info, want.v_info as number, 'v_info');
  // The default (ISBI) polarity would read these labels inside out (mostly membrane): refused, naming the fix.
  await assert.rejects(runCli(['--labels', inverted, ...args]), (e: unknown) =>
    e instanceof EmsegIoError && e.code === 'polarity' && e.path === inverted && e.message.includes('--polarity membrane-255-interior-0'));
  // Given explicitly, that reading is the user's choice (a warning on stderr, tested in plausibility.test.ts): a
  // different, worse score.
  const wrong = JSON.parse(await runCli(['--labels', inverted, '--polarity', 'membrane-0-interior-255', ...args]));
  assert.ok(wrong.pixel_error > doc.pixel_error + 0.1);
});

test('errors name the files: mismatched sizes and counts, values outside [0, 1], missing files', async () => {
  const dir = tmp();
  const short = join(dir, 'four-pages.tif');
  await writeTransformed(fixture('noisy.tif'), short, (v) => v, 4);
  await assert.rejects(evaluateFiles({ labels: GT, prediction: short }), (err: unknown) => {
    assert.ok(err instanceof EmsegIoError && err.code === 'mismatch', String(err));
    assert.ok(err.message.includes(short) && err.message.includes(GT), err.message);
    return true;
  });
  const small = join(dir, 'small.tif');
  writeFileSync(small, encodeTiff(Array.from({ length: 5 }, () => new Float32Array(64 * 64).fill(1)), 64, 64));
  await assert.rejects(runCli(['--labels', GT, '--pred', small]), (err: unknown) => {
    assert.ok(err instanceof EmsegIoError && err.code === 'mismatch');
    assert.ok(err.message.includes(small) && err.message.includes(GT) && /64x64/.test(err.message), err.message);
    return true;
  });
  const outside = join(dir, 'outside.tif');
  await writeTransformed(fixture('noisy.tif'), outside, (v) => v * 1.5);
  await assert.rejects(evaluateFiles({ labels: GT, prediction: outside }), (err: unknown) => {
    assert.ok(err instanceof EmsegIoError && err.code === 'invalid-data' && err.path === outside, String(err));
    return true;
  });
  const missing = join(dir, 'nope.tif');
  await assert.rejects(evaluateFiles({ labels: GT, prediction: missing }), refused('not-found', missing));
  await assert.rejects(evaluateFiles({ labels: GT, prediction: fixture('noisy.tif'), report: join(dir, 'r.pdf') }), refused('unsupported', 'r.pdf'));
});

test('the HTML report is self-contained, and is not overwritten without --overwrite', async () => {
  const dir = tmp();
  const report = join(dir, 'sub', 'report.html');
  const out = await runCli(['--labels', GT, '--pred', fixture('gaps.tif'), '--images', fixture('raw.tif'), '--report', report]);
  assert.match(out, new RegExp(`wrote ${report.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const html = readFileSync(report, 'utf8');
  assert.ok(html.startsWith('<!doctype html>'));
  assert.ok(html.includes('<svg'), 'inline SVG plots');
  assert.equal(html.match(/<img src="data:image\/png;base64,/g)?.length, 5, 'one overlay per section');
  assert.doesNotMatch(html, /<script|<link|src="(?!data:)|href="(?!#)/, 'no external resources');
  assert.ok(html.includes('warping_error') && html.includes('raw.tif'));
  assert.deepEqual(readdirSync(dirname(report)), ['report.html'], 'no temporary file left behind');

  const before = statSync(report).mtimeMs;
  await assert.rejects(runCli(['--labels', GT, '--pred', fixture('noisy.tif'), '--report', report]),
    (err: unknown) => err instanceof EmsegIoError && err.code === 'exists' && err.message.includes(report) && /--overwrite/.test(err.message));
  let progressed = false;
  await assert.rejects(evaluateFiles({ labels: GT, prediction: fixture('noisy.tif'), report, onProgress: () => { progressed = true; } }), refused('exists', 'sub/report.html'));
  assert.equal(progressed, false, 'refused before reading or evaluating anything');
  assert.equal(statSync(report).mtimeMs, before);
  assert.equal(readFileSync(report, 'utf8'), html);

  await runCli(['--labels', GT, '--pred', fixture('perfect.tif'), '--metrics', 'pixel_error', '--report', report, '--overwrite']);
  const again = readFileSync(report, 'utf8');
  assert.notEqual(again, html);
  assert.match(again, /warping_error was not computed/);
});

test('.png writes the error-overlay mosaic, .svg the plots', async () => {
  const dir = tmp();
  const png = join(dir, 'errors.png');
  const res = await evaluateFiles({ labels: GT, prediction: fixture('gaps.tif'), report: png, reportSections: 2 });
  assert.equal(res.report?.kind, 'png');
  const img = decode(readFileSync(png));
  assert.equal(img.channels, 4);
  const colours = new Set<string>();
  for (let i = 0; i < img.data.length; i += 4) colours.add(`${img.data[i]},${img.data[i + 1]},${img.data[i + 2]}`);
  assert.ok(colours.has(MERGER_COLOUR.join(',')), 'gaps in membranes give mergers');
  assert.match(img.text.Description ?? '', /split pixels in orange-red, merger pixels in sky blue/);
  assert.ok(img.width > img.height, 'two sections side by side');

  const svg = join(dir, 'plots.svg');
  await evaluateFiles({ labels: GT, prediction: fixture('noisy.tif'), metrics: ['v_rand', 'pixel_error'], report: svg });
  const text = readFileSync(svg, 'utf8');
  assert.ok(text.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(text.includes('V_rand') && text.includes('pixel_error') && !text.includes('Warping errors ('));
});

test('overlays mark split and merger pixels in their colours', () => {
  const base = new Float32Array(16 * 16).fill(0.5);
  const img = errorOverlay({ base, width: 16, height: 16, splits: [{ x: 3, y: 4 }], mergers: [{ x: 12, y: 10 }], scale: 2 });
  assert.equal(img.width, 32);
  const at = (x: number, y: number): number[] => [...img.data.subarray((y * 32 + x) * 4, (y * 32 + x) * 4 + 3)];
  assert.deepEqual(at(6, 8), [...SPLIT_COLOUR]);
  assert.deepEqual(at(25, 21), [...MERGER_COLOUR]);
  assert.deepEqual(at(16, 0), [124, 124, 124]);
});

test('bin/emseg.js eval: stdout JSON, exit status 1 and the file named on errors', async () => {
  const run = promisify(execFile);
  const bin = join(repoRoot, 'bin', 'emseg.js');
  const { stdout } = await run(process.execPath, [bin, 'eval', '--labels', GT, '--pred', fixture('perfect.tif'), '--json', '--quiet']);
  const doc = JSON.parse(stdout);
  assert.equal(doc.pixel_error, 0);
  assert.equal(doc.v_info, 1);
  const missing = join(tmp(), 'missing.tif');
  await assert.rejects(run(process.execPath, [bin, 'eval', '--labels', GT, '--pred', missing]), (err: { code?: number; stderr?: string }) => {
    assert.equal(err.code, 1);
    assert.ok(err.stderr?.includes(missing), err.stderr);
    return true;
  });
});
