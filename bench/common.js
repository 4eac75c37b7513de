'use strict';
// Shared helpers of the benchmark: shape arithmetic, seeded data, error measure, timing loops.

/** Output spatial size of a PyTorch conv_transpose2d along one dimension. */
function outSize(n, k, s, p, op, d) {
  return (n - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

/** Resolved integers of one suite entry (shapes.json), plus the derived shapes and FLOP count. */
function describe(shape) {
  const [kH, kW] = shape.k;
  const [sH, sW] = shape.s;
  const [pH, pW] = shape.p;
  const [opH, opW] = shape.op;
  const [dH, dW] = shape.d;
  const { N, Cin, Cout, H, W, groups } = shape;
  const Hout = outSize(H, kH, sH, pH, opH, dH);
  const Wout = outSize(W, kW, sW, pW, opW, dW);
  const flop = 2 * N * Cin * H * W * (Cout / groups) * kH * kW;
  return {
    ...shape, kH, kW, sH, sW, pH, pW, opH, opW, dH, dW, Hout, Wout,
    inputShape: [N, Cin, H, W],
    weightShape: [Cin, Cout / groups, kH, kW],
    outputShape: [N, Cout, Hout, Wout],
    inputLength: N * Cin * H * W,
    weightLength: Cin * (Cout / groups) * kH * kW,
    outputLength: N * Cout * Hout * Wout,
    flop,
    gflop: flop / 1e9,
  };
}

/** mulberry32: a small, fast, seedable 32-bit generator; returns floats in [0, 1). */
function rng(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seedOf(id) {
  let h = 2166136261;
  for (const ch of id) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
}

/**
 * Seeded input/weight/bias for one shape (float32; the same arrays feed every implementation).
 * Input ~ U(-1, 1); weight and bias ~ U(-b, b) with PyTorch's bound b = 1/sqrt(fan_in), fan_in = (Cout/groups)*kH*kW.
 */
function makeData(sh) {
  const r = rng(seedOf(sh.id));
  const x = new Float32Array(sh.inputLength);
  for (let i = 0; i < x.length; i++) x[i] = 2 * r() - 1;
  const bound = 1 / Math.sqrt((sh.Cout / sh.groups) * sh.kH * sh.kW);
  const w = new Float32Array(sh.weightLength);
  for (let i = 0; i < w.length; i++) w[i] = (2 * r() - 1) * bound;
  const b = new Float32Array(sh.Cout);
  for (let i = 0; i < b.length; i++) b[i] = (2 * r() - 1) * bound;
  return { x, w, b };
}

/** Max absolute difference divided by the reference's max magnitude (a norm-wise relative error). */
function relErr(a, ref) {
  if (a.length !== ref.length) return Infinity;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= maxDiff)) maxDiff = d; // NaN propagates as a difference
    const m = Math.abs(ref[i]);
    if (m > maxRef) maxRef = m;
  }
  if (Number.isNaN(maxDiff)) return Infinity;
  return maxRef > 0 ? maxDiff / maxRef : maxDiff;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Timing policy. `estMs` is the duration of a first (verification) call, which also served as warm-up.
 * Slow cells (> slowMs per call) get a fixed small number of reps; others get a short warm-up, then
 * reps until at least minReps and minTimeMs, stopping at maxTimeMs. slowReps 0 (--quick) reuses the first
 * call's time as the only sample.
 */
// warmMs: 0.3 s of warm-up calls per cell, so that a cell's timed calls see its steady state: with a fresh result per
// call, the addon's result pool only fills after V8's first GC returns the earlier results (U-Net 1024->512 at
// 1 thread: the first ~7 calls 36-37 ms, on this VM's never-used memory, then 23 ms).
function policy(quick) {
  return quick
    ? { slowMs: 150, slowReps: 0, warmMs: 100, warmBytes: 32 << 20, warmMaxMs: 1000,
      minReps: 3, minTimeMs: 60, maxTimeMs: 250 }
    : { slowMs: 250, slowReps: 3, warmMs: 300, warmBytes: 128 << 20, warmMaxMs: 3000,
      minReps: 5, minTimeMs: 300, maxTimeMs: 1500 };
}

// Results from this size up come from the addon's pool of recycled buffers (kMinPooledBytes in the binding).
const POOLED_MIN_BYTES = 64 << 10;

// One event-loop turn between timed calls, outside the timed region, as a server has between requests:
// that is when Node runs finalizers (the addon's pooled result buffers come back then) and settles I/O.
const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Times fn (sync, or returning a promise: onnxruntime-node's session.run) with an event-loop turn before each
 * call; returns { ms (median), reps, samples summary }. outBytes: the size of the result each call returns; the
 * warm-up lasts until pol.warmBytes of them have been returned too (at most pol.warmMaxMs), so that results are
 * recycled (V8 collects them, and finalizers return the addon's buffers to its pool) before timing starts.
 */
async function timeCalls(fn, estMs, pol, outBytes = 0) {
  // A sync fn is timed as called; only a promise is awaited (an `await` of a plain value would add a microtask
  // hop to the timed region).
  const call = (f) => {
    const r = f();
    return r && typeof r.then === 'function' ? r : undefined;
  };
  const samples = [];
  if (estMs > pol.slowMs) {
    if (pol.slowReps === 0) samples.push(estMs);
    for (let i = 0; i < pol.slowReps; i++) {
      await turn();
      const t0 = nowMs();
      const pending = call(fn);
      if (pending) await pending;
      samples.push(nowMs() - t0);
    }
    // A slow first call that was only a cold start (e.g. ORT's first run): time it as a fast cell after all.
    if (pol.slowReps === 0 || Math.min(...samples) > pol.slowMs) return summarize(samples);
    samples.length = 0;
  }
  const w0 = nowMs();
  let warm = 0;
  const warmCalls = outBytes >= POOLED_MIN_BYTES ? Math.ceil(pol.warmBytes / outBytes) : 0;
  while (warm < 2 || ((nowMs() - w0 < pol.warmMs || warm < warmCalls) && nowMs() - w0 < pol.warmMaxMs)) {
    await turn();
    await call(fn);
    warm++;
  }
  const start = nowMs();
  for (;;) {
    await turn();
    const t0 = nowMs();
    const pending = call(fn);
    if (pending) await pending;
    const t1 = nowMs();
    samples.push(t1 - t0);
    const el = t1 - start;
    if ((samples.length >= pol.minReps && el >= pol.minTimeMs) || el >= pol.maxTimeMs) break;
  }
  return summarize(samples);
}

function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { ms: median(s), min: s[0], max: s[s.length - 1], reps: s.length };
}

function geomean(xs) {
  const v = xs.filter((x) => Number.isFinite(x) && x > 0);
  if (!v.length) return NaN;
  return Math.exp(v.reduce((a, x) => a + Math.log(x), 0) / v.length);
}

/**
 * CPU accounting snapshot (Linux): all CPUs' busy and total ticks from /proc/stat, this process's CPU time
 * (all its threads, e.g. ORT's and the addon's), wall time. null elsewhere.
 */
function cpuSnapshot() {
  try {
    const f = require('fs').readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const u = process.cpuUsage();
    // + CPU time of our finished child processes (peak probe, memory probe, the oneDNN peer): fields 16-17 of
    // /proc/self/stat (cutime, cstime), in clock ticks (USER_HZ, 100 on Linux)
    const st = require('fs').readFileSync('/proc/self/stat', 'utf8');
    const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');  // from field 3 on
    const childUs = (Number(rest[13]) + Number(rest[14])) * 1e4;
    return { busy: user + nice + system + irq + softirq + steal, total: user + nice + system + idle + iowait + irq + softirq + steal,
      ownUs: u.user + u.system + (Number.isFinite(childUs) ? childUs : 0), wallUs: Number(process.hrtime.bigint()) / 1e3 };
  } catch {
    return null;
  }
}

/** CPUs' worth of work done by other processes between two snapshots (0 = the machine was ours). */
function foreignLoad(a, b, ncpu) {
  if (!a || !b || b.total <= a.total || b.wallUs <= a.wallUs) return NaN;
  const busyCpus = ((b.busy - a.busy) / (b.total - a.total)) * ncpu;
  const ownCpus = (b.ownUs - a.ownUs) / (b.wallUs - a.wallUs);
  return Math.max(0, busyCpus - ownCpus);
}

module.exports = { cpuSnapshot, foreignLoad, outSize, describe, makeData, relErr, median, nowMs, policy, timeCalls, geomean, rng };
