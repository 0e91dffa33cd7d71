#!/usr/bin/env node
// Queue scale-out benchmark (docs/BENCHMARKS.md, "Block queue"): 1 worker x 1 thread against 2 workers x 1 thread
// on the same volume, with a private redis-server, real `emseg worker` processes and their journals. Run on a quiet
// machine after `make build`:
//
//   node bench/queue.mjs                       # 16 x 1024 x 1024 tiled ISBI sections, blocks 1,512,512: 64 blocks
//   node bench/queue.mjs --sections 1 --block 1,256,256   # a quick check that it works (16 blocks)
//
// Options: --sections N (volume depth), --block z,y,x, --model DIR (default the shipped U-Net unet-w16-s3),
// --work DIR (kept; default a temp folder), --no-single (skip the single-process `emseg predict` run).
// It prints a JSON report: per configuration the blocks, the span (first block start to last block end), blocks/s,
// mean read/compute/write per block, and the queue overhead per block: the time a worker spent on a block that is
// not read, compute, write or the one-time opening of the run (fetching the job, locks, IPC, the done-marker
// check, completing the job), from the workers' journals. Outputs are checked to be byte-identical.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = new URL('..', import.meta.url).pathname;
const lib = await import(join(ROOT, 'dist/src/index.js'));
const { queueStatus } = await import(join(ROOT, 'dist/src/queue/status.js'));
const { EmsegError } = await import(join(ROOT, 'dist/src/errors.js'));
const { startRedis } = await import(join(ROOT, 'dist/test/helpers/redis-server.js'));
const CLI = join(ROOT, 'bin/emseg.js');
const ISBI = join(ROOT, '..', 'shared', 'data', 'isbi2012');
const POLL_MS = 500;

const { values: o } = parseArgs({ options: {
  sections: { type: 'string', default: '16' }, block: { type: 'string', default: '1,512,512' },
  model: { type: 'string', default: join(ROOT, 'models/emseg-isbi/unet-w16-s3') }, work: { type: 'string' },
  'no-single': { type: 'boolean', default: false },
} });
const work = o.work ?? mkdtempSync(join(tmpdir(), 'emseg-qbench-'));
const EDGE = 1024; // each section: 2 x 2 ISBI sections of 512 x 512

/** 16 x 1024 x 1024 (by default) uint8 volume: section z tiles ISBI train + test sections 4z .. 4z + 3 (cyclic). */
async function buildVolume() {
  const sources = [await lib.openVolume(join(ISBI, 'train', 'images')), await lib.openVolume(join(ISBI, 'test', 'images'))];
  const sections = [];
  for (const s of sources) for (let z = 0; z < s.shape[0]; z++) sections.push([s, z]);
  const depth = Number(o.sections);
  const zarr = join(work, 'vol.zarr');
  const w = await lib.createOmeZarr(zarr, { shape: [depth, EDGE, EDGE], dtype: 'uint8', chunks: [1, 512, 512], levels: 1 }, { overwrite: true });
  for (let z = 0; z < depth; z++) {
    const plane = new Uint8Array(EDGE * EDGE);
    for (let t = 0; t < 4; t++) {
      const [src, sz] = sections[(4 * z + t) % sections.length];
      const tile = await src.readRegion({ start: [sz, 0, 0], end: [sz + 1, 512, 512] });
      const y0 = (t >> 1) * 512;
      const x0 = (t & 1) * 512;
      for (let y = 0; y < 512; y++) plane.set(tile.subarray(y * 512, (y + 1) * 512), (y0 + y) * EDGE + x0);
    }
    await w.writeRegion({ start: [z, 0, 0], end: [z + 1, EDGE, EDGE] }, plane);
  }
  for (const s of sources) await s.close();
  return join(zarr, '0');
}

const common = (input, out) => ['--model', o.model, '--input', input, '--out', out, '--block', o.block];

async function queued(url, input, nWorkers) {
  const out = join(work, `queue-${nWorkers}.zarr`);
  const journal = join(work, `queue-${nWorkers}.jsonl`);
  const sub = spawnSync(process.execPath, [CLI, 'submit', 'predict', ...common(input, out), '--redis', url], { encoding: 'utf8' });
  if (sub.status !== 0) throw new EmsegError('bench-failed', 'bench/queue.mjs', sub.stderr);
  const jobset = sub.stdout.trim();
  const workers = [];
  for (let i = 0; i < nWorkers; i++) {
    const p = spawn(process.execPath, [CLI, 'worker', '--redis', url, '--threads', '1', '--concurrency', '1', '--name', `w${i}`,
      '--journal', journal, '--quiet'], { stdio: 'inherit' });
    workers.push({ p, exited: new Promise((res) => p.on('exit', res)) });
  }
  let s;
  for (;;) {
    [s] = await queueStatus(url, jobset);
    if (s.active + s.waiting === 0 && (s.pyramid === 'completed' || s.failed.length > 0)) break;
    await sleep(POLL_MS);
  }
  for (const w of workers) { w.p.kill('SIGTERM'); await w.exited; }
  if (s.failed.length) throw new EmsegError('bench-failed', 'bench/queue.mjs', `blocks failed: ${JSON.stringify(s.failed)}`);
  return { out, ...summarise(journal, nWorkers) };
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

function summarise(journal, nWorkers) {
  const lines = readFileSync(journal, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const span = (Math.max(...lines.map((l) => l.end)) - Math.min(...lines.map((l) => l.start))) / 1000;
  const perWorker = {};
  for (const l of lines) (perWorker[l.worker] ??= []).push(l);
  let overheadMs = 0;
  for (const ls of Object.values(perWorker)) {
    const wspan = Math.max(...ls.map((l) => l.end)) - Math.min(...ls.map((l) => l.start));
    overheadMs += wspan - ls.reduce((n, l) => n + l.openMs + l.readMs + l.computeMs + l.writeMs, 0);
  }
  const compute = mean(lines.map((l) => l.computeMs));
  return {
    workers: nWorkers, blocks: lines.length, spanSeconds: span, blocksPerSecond: lines.length / span,
    meanOpenMs: mean(lines.filter((l) => l.openMs > 0).map((l) => l.openMs)),
    meanReadMs: mean(lines.map((l) => l.readMs)), meanComputeMs: compute, meanWriteMs: mean(lines.map((l) => l.writeMs)),
    overheadMsPerBlock: overheadMs / lines.length, overheadPercentOfCompute: (100 * overheadMs) / lines.length / compute,
  };
}

function files(root) {
  const out = new Map();
  const walk = (d) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (n === '.emseg') continue;
      if (statSync(p).isDirectory()) walk(p); else out.set(relative(root, p), readFileSync(p));
    }
  };
  walk(root);
  return out;
}

function identical(a, b) {
  const fa = files(a);
  const fb = files(b);
  return fa.size === fb.size && [...fa].every(([k, v]) => fb.has(k) && v.equals(fb.get(k)));
}

const input = existsSync(join(work, 'vol.zarr', '0', '.zarray')) ? join(work, 'vol.zarr', '0') : await buildVolume();
const redis = await startRedis();
const report = { work, input, model: o.model, block: o.block, loadavg: (await import('node:os')).loadavg(), runs: [] };
try {
  for (const n of [1, 2]) report.runs.push(await queued(redis.url, input, n));
} finally {
  await redis.stop();
}
if (!o['no-single']) {
  const out = join(work, 'single.zarr');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'predict', ...common(input, out), '--threads', '1', '--quiet', '--overwrite'], { encoding: 'utf8' });
  if (r.status !== 0) throw new EmsegError('bench-failed', 'bench/queue.mjs', r.stderr);
  report.single = { seconds: (Date.now() - t0) / 1000, identicalToQueue: identical(out, report.runs[0].out) };
}
report.ratio2over1 = report.runs[1].blocksPerSecond / report.runs[0].blocksPerSecond;
report.queueOutputsIdentical = identical(report.runs[0].out, report.runs[1].out);
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
