#!/usr/bin/env node
// After an incremental build (`make build-fast`): removes compiled files in dist/src and dist/test whose TypeScript
// source no longer exists, so a deleted or moved test or module does not keep running from a stale dist/.
// (`make build` starts from an empty dist/ instead.) Only tsc's outputs are touched; dist/viewer is left alone.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const OUTPUT = /\.(d\.ts\.map|d\.ts|js\.map|js)$/;

function prune(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      prune(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
    } else if (OUTPUT.test(entry.name)) {
      const source = join(root, relative(join(root, 'dist'), path).replace(OUTPUT, '.ts'));
      if (!existsSync(source)) {
        rmSync(path);
        console.log(`removed stale ${relative(root, path)}`);
      }
    }
  }
}

for (const top of ['src', 'test']) prune(join(root, 'dist', top));
