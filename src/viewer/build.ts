/**
 * Builds the viewer page: bundles src/viewer/page/main.ts (with OpenSeadragon) into dist/viewer/viewer.js with
 * esbuild and copies the HTML and CSS beside it. Run by `npm run build:viewer` (make setup does it after tsc).
 * esbuild is a dev dependency: a built package ships the bundle, not the bundler.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { BUNDLE_DIR } from './server.js';

/** Compiled to dist/src/viewer/, so the repository root is three levels up. */
const PAGE_DIR = fileURLToPath(new URL('../../../src/viewer/page/', import.meta.url));

export async function buildViewer(): Promise<void> {
  mkdirSync(BUNDLE_DIR, { recursive: true });
  await build({
    entryPoints: [`${PAGE_DIR}main.ts`],
    outfile: `${BUNDLE_DIR}viewer.js`,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'chrome110',
    minify: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'viewer.css']) copyFileSync(`${PAGE_DIR}${file}`, `${BUNDLE_DIR}${file}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildViewer();
