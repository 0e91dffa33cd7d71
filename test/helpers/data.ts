/**
 * Where the tests find their data. The default suite (`make test`) reads only what is in the repository: the
 * metric fixtures in test/fixtures/ and the sample sections in samples/. The full-data suite (`make test-full`,
 * test/full/) also reads ../shared/ beside the repository, which a fresh clone does not have: there a missing
 * path fails the test with a message saying so, never a silent skip.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Compiled to dist/test/helpers/, so the repository root is three levels up. */
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** The ISBI 2012 metric fixtures kept in the repository (TIFFs and expected.json; see its README). */
export const METRIC_FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'isbi-metrics');

/** Two ISBI 2012 training sections (23, 24) with labels, shipped for the demo. */
export const SAMPLES = join(REPO_ROOT, 'samples', 'isbi2012');

/** The data folder beside the repository that CI and developers have. */
export const SHARED = join(REPO_ROOT, '..', 'shared');

/** A path under ../shared for a full-data test; fails with what is missing and why when it is not there. */
export function sharedPath(...parts: string[]): string {
  const path = join(SHARED, ...parts);
  if (!existsSync(path)) {
    assert.fail(`the full-data tests (make test-full) need ${path}, which is not there: they read the ISBI 2012 data ` +
      `and metric fixtures in ../shared/ beside the repository (as CI has them). \`make test\` runs the suite that ` +
      'needs only the repository.');
  }
  return path;
}
