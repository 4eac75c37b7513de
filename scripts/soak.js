#!/usr/bin/env node
'use strict';
// Soak run (issue 5.5): many sync and async calls over varied shapes (valid ones, a few invalid ones, `out`
// reuse, both dtypes), printing resident memory (RSS), V8 heap, external and ArrayBuffer memory over time.
//   npm run soak                       100,000 sync + 10,000 async calls (a few minutes on 2 cores)
//   node scripts/soak.js --sync 20000 --async 2000 [--backend js|native|auto] [--json] [--rows 10]
// Runs itself again with --expose-gc when needed, so every sample is taken after a full collection.
// With --json prints one JSON line {samples: [...], growth: {...}} instead of the table (used by test/soak.test.ts).
const path = require('path');
const { spawnSync } = require('child_process');

if (typeof global.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status === null ? 1 : r.status);
}

const lib = require(path.join(__dirname, '..', 'dist', 'index.js'));

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const SYNC = Number(arg('sync', 100000));
const ASYNC = Number(arg('async', 10000));
const BACKEND = arg('backend', 'auto');
const ROWS = Number(arg('rows', 10));
const JSON_OUT = process.argv.includes('--json');

let seed = 0x50a4;
function rnd() {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));

// A pool of shapes, each with its own input/weight/bias and a reusable `out`; calls cycle through them.
const shapes = [];
for (let i = 0; i < 48; i++) {
  const dtype = i % 2 ? 'float32' : 'float64';
  const C = dtype === 'float32' ? Float32Array : Float64Array;
  const groups = i % 5 === 0 ? 2 : 1;
  const cin = groups * int(1, 12), coutG = int(1, 16), N = int(1, 3), H = int(1, 16), W = int(1, 16), k = int(1, 4), s = int(1, 3);
  const x = { data: C.from({ length: N * cin * H * W }, () => rnd() - 0.5), shape: [N, cin, H, W] };
  const w = { data: C.from({ length: cin * coutG * k * k }, () => rnd() - 0.5), shape: [cin, coutG, k, k] };
  const o = { stride: s, groups, bias: C.from({ length: groups * coutG }, () => rnd()), backend: BACKEND };
  const outShape = lib.outputShape(x.shape, w.shape, o);
  shapes.push({ x, w, o, out: { data: new C(outShape.reduce((a, b) => a * b, 1)), shape: outShape } });
}

function sample(calls, t0) {
  global.gc();
  const m = process.memoryUsage();
  return { calls, s: (Date.now() - t0) / 1000, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

const MB = (b) => (b / 1048576).toFixed(1).padStart(8);

async function main() {
  const total = SYNC + ASYNC;
  const every = Math.max(1, Math.floor(total / ROWS));
  const t0 = Date.now();
  const samples = [sample(0, t0)];
  const errors = {};
  let calls = 0;
  const step = async (i) => {
    const sh = shapes[i % shapes.length];
    const invalid = i % 50 === 49; // now and then a rejected call: error paths must not leak either
    const o = invalid ? { ...sh.o, stride: 0 } : i % 3 === 0 ? { ...sh.o, out: sh.out } : sh.o;
    try {
      if (i < SYNC) lib.convTranspose2d(sh.x, sh.w, o);
      else await lib.convTranspose2dAsync(sh.x, sh.w, o);
    } catch (e) {
      errors[e.code || 'uncoded'] = (errors[e.code || 'uncoded'] || 0) + 1;
    }
    calls++;
  };
  for (let i = 0; i < SYNC; i++) {
    await step(i);
    if (calls % every === 0) samples.push(sample(calls, t0));
  }
  // async calls in waves of 16 concurrent calls
  for (let i = SYNC; i < total; i += 16) {
    const wave = [];
    for (let j = i; j < Math.min(total, i + 16); j++) wave.push(step(j));
    await Promise.all(wave);
    if (calls % every < 16 || calls === total) samples.push(sample(calls, t0));
  }
  if (samples[samples.length - 1].calls !== calls) samples.push(sample(calls, t0));
  // growth after the warm-up (the first sample after 10% of the calls: pools, code and caches are in place)
  const warm = samples.find((s) => s.calls >= total * 0.1) || samples[0];
  const last = samples[samples.length - 1];
  const growth = {
    rss: last.rss - warm.rss, external: last.external - warm.external, arrayBuffers: last.arrayBuffers - warm.arrayBuffers,
    heapUsed: last.heapUsed - warm.heapUsed, fromCalls: warm.calls,
  };
  const backend = BACKEND === 'auto' ? lib.getBackend().name : BACKEND;
  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify({ backend, sync: SYNC, async: ASYNC, calls, errors, samples, growth })}\n`);
    return;
  }
  console.log(`soak: ${SYNC} sync + ${ASYNC} async calls on the ${backend} backend over ${shapes.length} shapes (float32/float64, every 3rd with out, every 50th invalid)`);
  console.log('   calls   time s   RSS MiB  heap MiB  external MiB  arrayBuffers MiB');
  for (const s of samples) {
    console.log(`${String(s.calls).padStart(8)} ${s.s.toFixed(1).padStart(8)} ${MB(s.rss)}  ${MB(s.heapUsed)}  ${MB(s.external)}      ${MB(s.arrayBuffers)}`);
  }
  console.log(`growth after ${growth.fromCalls} calls: RSS ${(growth.rss / 1048576).toFixed(1)} MiB, external ${(growth.external / 1048576).toFixed(1)} MiB, ` +
    `arrayBuffers ${(growth.arrayBuffers / 1048576).toFixed(1)} MiB; errors by code: ${JSON.stringify(errors)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
