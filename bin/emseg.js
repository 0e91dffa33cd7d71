#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled TypeScript (dist/), built by `make build`.
import { main } from '../dist/src/cli/main.js';
main(process.argv).catch((err) => {
  process.stderr.write(`emseg: ${err?.message ?? err}\n`);
  process.exit(1);
});
