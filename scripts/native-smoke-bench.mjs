#!/usr/bin/env node
// Smoke benchmark of the oneDNN backend's kernel path: the reference net chained through the Backend API.
//   forward (inference) at 1x1x512x512, training step (forward + CE + backward, no optimizer) at 1x1x256x256,
//   in float32 and (where supported) bfloat16.
// Usage: node scripts/native-smoke-bench.mjs [--iters N] [--threads T]   (after `npm run build:native && npx tsc`)
import { loadOneDnnBackend, nativeInfo, nativeStats } from '../dist/src/backend/onednn/index.js';
import { loadAddon } from '../dist/src/backend/onednn/addon.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const iters = opt('--iters', 10);
const threads = opt('--threads', undefined);
const policy = opt('--policy', undefined); // conv activation layouts: 0 any, 1 nChw16c, 2 nhwc (experiments)
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : null;
if (policy !== undefined) loadAddon().setLayoutPolicy(policy);

// conv 1->48 k5, 48->48 k5, pool2, 64 k3 x2, pool2, 96 k3 x2, 200 k3, 1x1 -> 2, nearest x4, softmax (CE)
const layers = [
  { kind: 'conv', cin: 1, cout: 48, k: 5, relu: true },
  { kind: 'conv', cin: 48, cout: 48, k: 5, relu: true },
  { kind: 'pool' },
  { kind: 'conv', cin: 48, cout: 64, k: 3, relu: true },
  { kind: 'conv', cin: 64, cout: 64, k: 3, relu: true },
  { kind: 'pool' },
  { kind: 'conv', cin: 64, cout: 96, k: 3, relu: true },
  { kind: 'conv', cin: 96, cout: 96, k: 3, relu: true },
  { kind: 'conv', cin: 96, cout: 200, k: 3, relu: true },
  { kind: 'conv', cin: 200, cout: 2, k: 1, relu: false },
];
const POOL = { kernel: [2, 2], stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] };
const same = (k) => {
  const a = Math.floor((k - 1) / 2);
  return { stride: [1, 1], padding: [a, a, k - 1 - a, k - 1 - a], dilation: [1, 1] };
};
let seed = 1;
const rnd = (n, scale) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    a[i] = ((seed / 4294967296) * 2 - 1) * scale;
  }
  return a;
};
for (const l of layers) {
  if (l.kind !== 'conv') continue;
  l.wShape = [l.cout, l.cin, l.k, l.k];
  l.w = rnd(l.cout * l.cin * l.k * l.k, Math.sqrt(6 / (l.cin * l.k * l.k)));
  l.b = rnd(l.cout, 0.01);
  l.p = same(l.k);
}

function forward(be, x, training) {
  const acts = [x]; // inputs of each layer
  const ws = [];
  let h = x;
  for (const l of layers) {
    if (l.kind === 'conv') {
      h = be.conv2d(h, l.w, l.wShape, l.b, { ...l.p, relu: l.relu });
      ws.push(null);
    } else {
      const r = be.maxPool2d(h, POOL, training);
      h = r.y;
      ws.push(r.workspace);
    }
    acts.push(h);
  }
  const up = be.upsampleNearest(h, 4);
  return { acts, ws, up };
}

function inferStep(be, xd, shape) {
  const x = be.fromArray(xd, shape);
  const { acts, up } = forward(be, x, false);
  const p = be.softmax(up);
  for (const t of acts) t.dispose();
  up.dispose();
  p.dispose();
}

function trainStep(be, xd, shape, labels) {
  const x = be.fromArray(xd, shape);
  const { acts, ws, up } = forward(be, x, true);
  const ce = be.softmaxCrossEntropy(up, { labels });
  let dy = be.upsampleNearestBackward(ce.dlogits, 4);
  up.dispose();
  ce.dlogits.dispose();
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    const xin = acts[i];
    const yout = acts[i + 1];
    if (l.kind === 'conv') {
      let g = dy;
      if (l.relu) {
        g = be.reluBackward(yout, dy);
        dy.dispose();
      }
      be.conv2dBackwardWeights(xin, g, l.wShape, l.p, true);
      dy = i > 0 ? be.conv2dBackwardData(g, l.w, l.wShape, xin.shape, l.p) : null; // no dx for the first layer
      g.dispose();
    } else {
      const d = be.maxPool2dBackward(dy, ws[i], xin.shape, POOL);
      dy.dispose();
      ws[i].dispose();
      dy = d;
    }
    yout.dispose();
  }
  x.dispose();
  return ce.loss;
}

function time(label, f) {
  for (let i = 0; i < 3; i++) f();
  const ts = [];
  const cpu = [];
  for (let i = 0; i < iters; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    f();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e3);
  }
  ts.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const med = ts[Math.floor(ts.length / 2)];
  console.log(`${label.padEnd(34)} median ${med.toFixed(1).padStart(6)} ms   min ${ts[0].toFixed(1).padStart(6)} ms` +
    `   (cpu time: median ${cpu[Math.floor(cpu.length / 2)].toFixed(1)} ms, min ${cpu[0].toFixed(1)} ms)`);
  return med;
}

const info = nativeInfo();
console.log(`oneDNN ${info.version} (${info.cpuRuntime}), isa ${info.isa}, bf16 ${info.bf16}, threads ${threads ?? info.threads}`);
const x512 = rnd(512 * 512, 1);
const x256 = rnd(256 * 256, 1);
const labels = new Int32Array(256 * 256).map((_, i) => ((i >> 5) + (i >> 13)) % 2);
for (const precision of ['float32', 'bfloat16']) {
  if (only && only !== precision) continue;
  if (precision === 'bfloat16' && !info.bf16) {
    console.log('bfloat16: not supported on this CPU');
    continue;
  }
  const be = loadOneDnnBackend({ precision, threads });
  time(`${precision} forward 1x1x512x512`, () => inferStep(be, x512, [1, 1, 512, 512]));
  time(`${precision} training step 1x1x256x256`, () => trainStep(be, x256, [1, 1, 256, 256], labels));
}
const s = nativeStats();
console.log(`live tensors ${s.tensors}, pooled ${(s.pooledBytes / 2 ** 20).toFixed(1)} MiB, primitives cached ${s.cachedPrimitives}`);
