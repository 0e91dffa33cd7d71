#!/usr/bin/env node
// Blockwise prediction from and to an S3-compatible store against the same prediction on local disk (issue 29 asks
// >= 85 % of the local rate when the store is on the same machine). Run after `make build`:
//
//   node bench/store.mjs                              # 3 x 512 x 512 uint8, blocks 1 x 256 x 256, 3 runs each
//   node bench/store.mjs --shape 8,1024,1024 --block 1,512,512 --runs 5 --model models/emseg-isbi/unet-w16-s3
//
// The store is s3rver (the devDependency the tests use) on a free loopback port, as its own process (a store on the
// same machine), with its objects in a temp folder; `--in-process` runs it inside this process instead, where its
// request handling waits while the prediction computes (a lower bound). Each run writes a fresh output (local folder, or bucket prefix);
// runs alternate local and store so that machine load hits both alike. Prints JSON: seconds per run, the medians,
// and the ratio store rate / local rate.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({ options: {
  shape: { type: 'string', default: '3,512,512' }, block: { type: 'string', default: '1,256,256' }, runs: { type: 'string', default: '3' },
  model: { type: 'string', default: join(ROOT, 'models/emseg-isbi/unet-w16-s3') }, threads: { type: 'string', default: '2' },
  'in-process': { type: 'boolean', default: false },
} });
const vec = (t) => t.split(',').map(Number);
const SHAPE = vec(values.shape);
const BLOCK = vec(values.block);
const RUNS = Number(values.runs);
const BUCKET = 'emseg-bench';

const { createOmeZarr } = await import(join(ROOT, 'dist/src/io/formats/ome-zarr-write.js'));
const { configureS3 } = await import(join(ROOT, 'dist/src/io/stores/index.js'));
const { runVolumePredict } = await import(join(ROOT, 'dist/src/pipeline/volume-predict.js'));

const dir = mkdtempSync(join(tmpdir(), 'emseg-bench-store-'));
const server = values['in-process'] ? await inProcessServer() : await serverProcess();
const { port } = server;
Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' });
configureS3({ endpoint: `http://127.0.0.1:${port}` });

/** The same random-ish EM-like volume written locally and into the bucket. */
async function writeInput(at) {
  const w = await createOmeZarr(at, { shape: SHAPE, dtype: 'uint8', chunks: BLOCK, kind: 'image', levels: 1 });
  const data = Uint8Array.from({ length: SHAPE[0] * SHAPE[1] * SHAPE[2] }, (_, i) => (Math.sin(i / 37) * 60 + 128 + ((i * 2654435761) % 31)) & 255);
  await w.writeRegion({ start: [0, 0, 0], end: SHAPE }, data);
}

const inputs = { local: join(dir, 'in.zarr'), store: `s3://${BUCKET}/in.zarr` };
await writeInput(inputs.local);
await writeInput(inputs.store);

const job = { models: [values.model], tta: false, bf16: false, tile: BLOCK[1], backend: 'auto', membraneProb: true, dtype: 'uint8', block: BLOCK, threads: Number(values.threads) };
const seconds = { local: [], store: [] };
for (let r = 0; r < RUNS; r++) {
  for (const where of ['local', 'store']) {
    const out = where === 'local' ? join(dir, `out-${r}.zarr`) : `s3://${BUCKET}/out-${r}.zarr`;
    const t0 = process.hrtime.bigint();
    const res = await runVolumePredict({ ...job, input: `${inputs[where]}/0`, out });
    if (!res.complete) throw new Error(`${where} run ${r} incomplete`);
    seconds[where].push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = { local: median(seconds.local), store: median(seconds.store) };
process.stdout.write(`${JSON.stringify({ shape: SHAPE, block: BLOCK, runs: RUNS, model: values.model, seconds, median: m, storeRateOverLocal: m.local / m.store }, null, 2)}\n`);
await server.close();
rmSync(dir, { recursive: true, force: true });

/** s3rver in this process (--in-process): its request handling waits while the prediction computes. */
async function inProcessServer() {
  const S3rver = createRequire(import.meta.url)('s3rver');
  const s = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(dir, 's3'), configureBuckets: [{ name: BUCKET }] });
  const { port } = await s.run();
  return { port, close: () => s.close() };
}

/** s3rver as its own process on a free loopback port (the default): a store on the same machine. */
async function serverProcess() {
  const port = await new Promise((done) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = probe.address();
      probe.close(() => done(p));
    });
  });
  const bin = join(dirname(createRequire(import.meta.url).resolve('s3rver/package.json')), 'bin', 's3rver.js');
  const child = spawn(process.execPath, [bin, '-d', join(dir, 's3'), '-a', '127.0.0.1', '-p', String(port), '-s', '--configure-bucket', BUCKET],
    { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await new Promise((done) => connect(port, '127.0.0.1').on('connect', function () { this.end(); done(true); }).on('error', () => done(false)));
    if (up) break;
    if (i > 100) throw new Error('s3rver did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, close: async () => { child.kill(); } };
}
