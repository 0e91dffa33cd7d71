/**
 * `emseg view DIR` on emseg's own output folders (issue 27): the demo's folder was refused ("report.html: not an
 * image ... remove it from the slice folder"), and a predict png-folder output was shown as EM images. Now the demo's
 * folder opens with its maps and cells over the bundled samples it ran on, and a predict folder as a membrane map in
 * the polarity its command wrote.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SAMPLE_IMAGES, SAMPLE_LABELS } from '../src/pipeline/assets.js';
import { classifyPaths } from '../src/viewer/classify.js';
import { ViewModel } from '../src/viewer/model.js';
import type { Manifest } from '../src/viewer/protocol.js';
import { REPO_ROOT } from './helpers/data.js';

const emseg = join(REPO_ROOT, 'bin', 'emseg.js');
const dir = mkdtempSync(join(tmpdir(), 'emseg-view-outputs-'));
const run = (args: string[]) => spawnSync(process.execPath, [emseg, ...args], { cwd: dir, encoding: 'utf8', timeout: 600_000 });

/** Starts `emseg view ARGS`, fetches its manifest, stops it with Ctrl-C. */
async function viewManifest(args: string[]): Promise<Manifest> {
  const child = spawn(process.execPath, [emseg, 'view', ...args, '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /emseg view: (http:\/\/\S+)/.exec(out);
        if (m) resolveUrl(m[1]!);
      });
      void exited.then((code) => reject(new Error(`emseg view exited (${code}) before printing a URL: ${err}`)));
    });
    return (await (await fetch(`${url}api/manifest`)).json()) as Manifest;
  } finally {
    child.kill('SIGINT');
    await exited;
  }
}

test('emseg view out/demo opens the demo\'s output: samples, maps, cells, labels and the error marks', async () => {
  const demo = run(['demo', '--out', 'out/demo', '--quiet']);
  assert.equal(demo.status, 0, demo.stderr);
  const inputs = await classifyPaths([join(dir, 'out', 'demo')], {});
  assert.deepEqual(inputs, { images: SAMPLE_IMAGES, labels: SAMPLE_LABELS, map: join(dir, 'out', 'demo', 'membranes.tif'),
    cells: join(dir, 'out', 'demo', 'cells.tif') });
  const manifest = await viewManifest(['out/demo']);
  assert.deepEqual(manifest.layers.map((l) => l.kind), ['image', 'map', 'cells', 'labels', 'errors']);
  assert.equal(manifest.depth, 2);
});

test('a predict png-folder output is a membrane map, in the polarity its command wrote', async () => {
  const section = join(SAMPLE_IMAGES, '23.png');
  for (const [out, extra] of [['isbi-pngs', []], ['prob-pngs', ['--membrane-prob']]] as const) {
    const r = run(['predict', '--model', 'emseg-isbi', '--input', section, '--out', out, '--format', 'png-folder', '--quiet', ...extra]);
    assert.equal(r.status, 0, r.stderr);
  }
  assert.deepEqual(await classifyPaths([join(dir, 'isbi-pngs')], {}), { map: join(dir, 'isbi-pngs') });
  assert.deepEqual(await classifyPaths([join(dir, 'prob-pngs')], {}), { map: join(dir, 'prob-pngs'), membraneProb: true });
  // The two folders hold opposite values; read in their own polarity they are the same map.
  const a = await ViewModel.open({ map: join(dir, 'isbi-pngs') });
  const b = await ViewModel.open({ map: join(dir, 'prob-pngs'), membraneProb: true });
  for (const [x, y] of [[200, 200], [10, 300], [400, 50]] as const) {
    const pa = (await a.point(0, x, y)).pMembrane!;
    const pb = (await b.point(0, x, y)).pMembrane!;
    assert.ok(Math.abs(pa - pb) < 0.01, `${pa} vs ${pb}`);
  }
});
