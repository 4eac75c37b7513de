#!/usr/bin/env node
'use strict';
// conv-transpose benchmark: the package's native and TypeScript backends against onnxruntime-node and
// tfjs-cpu on the shape suite (../shared/bench/shapes.json, copied here as bench/shapes.json when the shared
// one is absent), in one process. Usage: npm run bench -- [--shapes A2,B1] [--quick] [--no-ts] [--no-peers]
// [--no-fp64] [--no-mem]. Writes bench/results.json and bench/chart.svg.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const C = require('./common');
const { ANCHORS, bestPeer } = require('./anchors');
const { machinePeak } = require('./peak');
const { renderChart } = require('./chart');

const HERE = __dirname;
const FP64_SHAPES = ['A2', 'A3', 'A4', 'B1', 'B2', 'E', 'F', 'G']; // compute-bound: where a float64 peak % means something
const MEM_SHAPES = ['B3', 'G'];
const BUSY = 0.25; // CPUs used by other processes above which a shape's timings are flagged
const ERR_TOL = 1e-4; // float32 results further than this (norm-wise, vs the reference) are flagged

function parseArgs(argv) {
  const o = { shapes: null, quick: false, ts: true, peers: true, fp64: true, mem: true, out: HERE };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--no-ts') o.ts = false;
    else if (a === '--no-peers') o.peers = false;
    else if (a === '--no-fp64') o.fp64 = false;
    else if (a === '--no-mem') o.mem = false;
    else if (a === '--shapes' || a.startsWith('--shapes=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!v) throw new Error('--shapes needs a comma-separated list, e.g. --shapes A2,B1');
      o.shapes = v.split(',').map((s) => s.trim()).filter(Boolean);
    } else if (a === '--help' || a === '-h') {
      console.log('usage: node bench/run.js [--shapes A2,B1] [--quick] [--no-ts] [--no-peers] [--no-fp64] [--no-mem]');
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  return o;
}

function loadSuite() {
  const candidates = [path.resolve(HERE, '../../shared/bench/shapes.json'), path.join(HERE, 'shapes.json')];
  for (const p of candidates) if (fs.existsSync(p)) return { file: p, shapes: JSON.parse(fs.readFileSync(p, 'utf8')).shapes };
  throw new Error(`shapes.json not found (looked in ${candidates.join(', ')})`);
}

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch { /* not Linux */ }
  return (os.cpus()[0] || {}).model || 'unknown';
}

// ---------- formatting ----------

const isMicro = (id) => id === 'H' || id === 'Z';
function fmtTime(ms, id) {
  if (!(ms > 0)) return '–';
  if (isMicro(id)) return `${ms >= 1 ? (ms * 1000).toFixed(0) : (ms * 1000).toPrecision(3)} µs`;
  return ms >= 100 ? ms.toFixed(0) : ms.toPrecision(3);
}
function fmtG(g) {
  if (!(g > 0)) return '–';
  if (g >= 100) return g.toFixed(0);
  if (g >= 1) return g.toPrecision(3);
  return g.toPrecision(2);
}
const fmtPct = (p) => (p >= 0 ? `${p >= 10 ? p.toFixed(0) : p.toFixed(1)}%` : '');
const fmtX = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : '–');
const fmtErr = (e) => (e === undefined || e === null ? '' : Number.isFinite(e) ? e.toExponential(1) : 'NaN/inf');

function cellText(c, id, withPct = true) {
  if (!c) return '–';
  if (c.skipped) return 'skip';
  if (c.error) return 'ERR';
  const pct = withPct && c.pctPeak >= 0 ? `, ${fmtPct(c.pctPeak)}` : '';
  const flag = c.mismatch ? ' !' : '';
  return `${fmtTime(c.ms, id)} (${fmtG(c.gflops)}${pct})${flag}`;
}

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

// ---------- measuring ----------

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const pol = C.policy(opt.quick);
  const t0 = C.nowMs();
  const log = (...a) => console.log(...a);

  const suite = loadSuite();
  let shapes = suite.shapes;
  if (opt.shapes) {
    const known = new Set(shapes.map((s) => s.id));
    const bad = opt.shapes.filter((s) => !known.has(s));
    if (bad.length) throw new Error(`unknown shape id(s) ${bad.join(', ')}; known: ${[...known].join(', ')}`);
    shapes = shapes.filter((s) => opt.shapes.includes(s.id));
  }

  // The package under test.
  let pkg = null;
  let pkgError = null;
  try {
    pkg = require(process.env.CONVT_BENCH_PKG ? path.resolve(process.env.CONVT_BENCH_PKG) : '../dist/index.js');
  } catch (e) {
    pkgError = e && e.message ? e.message.split('\n')[0] : String(e);
  }
  const backend = pkg ? pkg.getBackend() : { name: 'none', threads: 0, loadError: pkgError };
  const nativeOk = !!pkg && backend.name === 'native';
  const notes = [];
  if (!pkg) notes.push(`package not loadable (../dist/index.js: ${pkgError}); run npm run build first. Only peers are measured.`);
  else if (!nativeOk) notes.push(`native backend not loaded (${backend.loadError || `getBackend().name = ${backend.name}`}): native cells skipped`);
  const tsOk = !!pkg && opt.ts;

  // Peers.
  let ort = null;
  let tfjs = null;
  let onednn = null;
  const peerInfo = {};
  if (opt.peers) {
    try { ort = require('./peers/ort'); } catch (e) { peerInfo.ort = { available: false, note: e.message }; }
    try { tfjs = require('./peers/tfjs'); } catch (e) { peerInfo.tfjs = { available: false, note: e.message }; }
    onednn = require('./peers/onednn');
    if (ort) peerInfo.ort = ort.info();
    if (tfjs) peerInfo.tfjs = tfjs.info();
    peerInfo.onednn = onednn.info();
    for (const [k, v] of Object.entries(peerInfo)) if (!v.available) notes.push(`${k} skipped: ${v.note}`);
    if (ort && !peerInfo.ort.available) ort = null;
    if (tfjs && !peerInfo.tfjs.available) tfjs = null;
    if (!peerInfo.onednn.available) onednn = null;
  }

  const peak = machinePeak(nativeOk ? backend.isa : undefined, log);
  for (const n of peak.notes) notes.push(`peak: ${n}`);

  const machine = {
    cpu: cpuModel(),
    logicalCpus: os.cpus().length,
    availableParallelism: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    backend: backend.name,
    isa: backend.isa || null,
    defaultThreads: backend.threads,
    date: new Date().toISOString(),
    peak,
    peers: peerInfo,
  };

  log('');
  log(`conv-transpose bench  ${machine.date}`);
  log(`cpu: ${machine.cpu} (${machine.logicalCpus} logical), node ${machine.node}, backend ${backend.name}` +
    `${backend.isa ? ` (${backend.isa})` : ''}, default threads ${backend.threads}`);
  log(`peak fp32: T1 ${peak.fp32[1]} / T2 ${peak.fp32[2]} GFLOP/s, fp64: T1 ${peak.fp64[1]} / T2 ${peak.fp64[2]} GFLOP/s — ${peak.source}`);
  log(`peers: ORT ${peerInfo.ort ? (peerInfo.ort.available ? peerInfo.ort.version : 'unavailable') : 'off'}, ` +
    `tfjs-cpu ${peerInfo.tfjs ? (peerInfo.tfjs.available ? peerInfo.tfjs.version : 'unavailable') : 'off'}, ` +
    `oneDNN here ${peerInfo.onednn ? (peerInfo.onednn.available ? peerInfo.onednn.version : 'unavailable') : 'off'}`);
  for (const n of notes) log(`note: ${n}`);
  log(`timing: median of >= ${pol.minReps} calls and >= ${pol.minTimeMs} ms per cell after warm-up` +
    ` (calls slower than ${pol.slowMs} ms: ${pol.slowReps ? `${pol.slowReps} reps` : 'the checked first call only'})${opt.quick ? ' [--quick]' : ''}`);
  log('cells: time (GFLOP/s, % of fp32 peak at that thread count); err = max|y - ref| / max|ref|');

  const snapStart = C.cpuSnapshot(); // after the peak measurement (a child process) and before the memory probe
  const results = [];
  for (const s of shapes) {
    const r = await benchShape(s, { opt, pol, pkg, nativeOk, tsOk, ort, tfjs, onednn, peak, log });
    results.push(r);
  }

  const fp64 = nativeOk && opt.fp64 ? await benchFp64(shapes, { pkg, pol, peak, log }) : [];
  const otherLoad = C.foreignLoad(snapStart, C.cpuSnapshot(), os.cpus().length);
  machine.otherLoadCpus = +otherLoad.toFixed(2);
  const memory = nativeOk && opt.mem ? benchMemory(shapes, log) : [];

  const summary = summarize(results);
  printSummary(results, summary, fp64, memory, peak, log);
  if (Number.isFinite(otherLoad)) {
    log('');
    log(`other processes used ${otherLoad.toFixed(2)} of ${os.cpus().length} CPUs on average while timing` +
      `${otherLoad > BUSY ? ': the machine was busy, timings are pessimistic and noisy (flagged per shape)' : ''}`);
  }

  const elapsed = (C.nowMs() - t0) / 1000;
  const json = {
    machine,
    options: { quick: opt.quick, ts: opt.ts, peers: opt.peers, shapes: shapes.map((s) => s.id), suite: path.relative(path.resolve(HERE, '..'), suite.file), policy: pol },
    notes,
    definitions: {
      gflop: '2*N*Cin*H*W*(Cout/groups)*kH*kW / 1e9',
      err: 'max_i |y_i - ref_i| / max_i |ref_i|',
      ratios: 'speed ratios (time of the other / time of ours): > 1 means ours is faster',
      bestPeerAnchors: 'best of oneDNN and ORT at that thread count in anchors.md; "scaled" multiplies its ms by ORT(measured now)/ORT(anchors)',
    },
    shapes: results,
    geomeans: summary,
    fp64,
    memory,
    elapsedSeconds: +elapsed.toFixed(1),
  };
  fs.writeFileSync(path.join(opt.out, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  fs.writeFileSync(path.join(opt.out, 'chart.svg'), renderChart(json));
  log('');
  log(`wrote bench/results.json and bench/chart.svg (${elapsed.toFixed(0)} s)`);
}

/** One shape: every implementation's first call is checked against the reference, then timed. */
async function benchShape(s, ctx) {
  const { pol, pkg, nativeOk, tsOk, ort, tfjs, onednn, peak, log } = ctx;
  const sh = C.describe(s);
  const data = C.makeData(sh);
  const snap0 = C.cpuSnapshot();
  const cells = {};
  const shapeNotes = [];
  const input = { data: data.x, shape: sh.inputShape };
  const weight = { data: data.w, shape: sh.weightShape };
  const convOpts = {
    bias: data.b, stride: [sh.sH, sh.sW], padding: [sh.pH, sh.pW], outputPadding: [sh.opH, sh.opW],
    groups: sh.groups, dilation: [sh.dH, sh.dW],
  };
  const cell = (ms, threads, extra = {}) => {
    const gflops = sh.flop / (ms * 1e6);
    const pk = peak.fp32[threads];
    return { ms, gflops, pctPeak: pk ? (100 * gflops) / pk : undefined, threads, ...extra };
  };

  log('');
  log(`── ${sh.id}  ${sh.desc}  N${sh.N}  ${sh.inputShape.join('x')} → ${sh.outputShape.join('x')}  ${sh.gflop.toPrecision(4)} GFLOP`);

  // Reference: the native kernel in float64 when it loaded (fast), else the TS backend in float64.
  let ref = null;
  let refName = null;
  const x64 = Float64Array.from(data.x);
  const w64 = Float64Array.from(data.w);
  const b64 = Float64Array.from(data.b);
  const ref64 = (backendName) => pkg.convTranspose2d({ data: x64, shape: sh.inputShape }, { data: w64, shape: sh.weightShape },
    { ...convOpts, bias: b64, backend: backendName, threads: 2 }).data;
  try {
    if (nativeOk) { ref = ref64('native'); refName = 'native fp64'; }
    else if (tsOk) { ref = ref64('js'); refName = 'TS fp64'; }
  } catch (e) {
    shapeNotes.push(`float64 reference failed: ${e.message}`);
  }

  const check = (name, y) => {
    if (!ref) return { err: undefined, mismatch: false };
    const err = C.relErr(y, ref);
    return { err, mismatch: !(err <= ERR_TOL) };
  };

  const outBytes = sh.outputLength * 4;  // float32 results
  const runSync = async (key, threads, fn, extra = {}) => {
    try {
      const a = C.nowMs();
      const y0 = fn();
      const est = C.nowMs() - a;
      const y = extra.view ? extra.view(y0) : y0;
      if (!ref) { ref = Float64Array.from(y); refName = key; }
      const chk = check(key, y);
      if (chk.mismatch) shapeNotes.push(`${key}: err ${fmtErr(chk.err)} vs ${refName} exceeds ${ERR_TOL}`);
      if (extra.skipOnMismatch && chk.mismatch) {
        cells[key] = { skipped: true, err: chk.err, note: 'output differs from reference: not timed' };
        return;
      }
      const t = await C.timeCalls(fn, est, pol, outBytes);
      cells[key] = cell(t.ms, threads, { ...t, err: chk.err, mismatch: chk.mismatch, ...(extra.fields || {}) });
    } catch (e) {
      cells[key] = { error: e.message.split('\n')[0] };
      shapeNotes.push(`${key} failed: ${cells[key].error}`);
    }
  };

  if (nativeOk) {
    // Each cell builds its options object once, as a caller keeps one per layer (a spread per call cost ~2 µs of Z).
    const nat = (threads) => {
      const o = { ...convOpts, backend: 'native', threads };
      return () => pkg.convTranspose2d(input, weight, o).data;
    };
    await runSync('nativeT1', 1, nat(1));
    await runSync('nativeT2', 2, nat(2));
    const out = { data: new Float32Array(sh.outputLength), shape: sh.outputShape };
    out.data.fill(0); // touch the pages once, outside the timing
    const natOut = (threads) => {
      const o = { ...convOpts, backend: 'native', threads, out };
      return () => pkg.convTranspose2d(input, weight, o).data;
    };
    await runSync('nativeT2out', 2, natOut(2), { fields: { mode: 'out' } });
    // The module path: weights packed on the first forward and kept, as an ORT session keeps its initializers.
    const mod = new pkg.ConvTranspose2d(sh.Cin, sh.Cout, [sh.kH, sh.kW], {
      stride: [sh.sH, sh.sW], padding: [sh.pH, sh.pW], outputPadding: [sh.opH, sh.opW], groups: sh.groups, dilation: [sh.dH, sh.dW], seed: 1,
    });
    mod.weight = weight;
    mod.bias = { data: data.b, shape: [sh.Cout] };
    const threadsBefore = pkg.getBackend().threads;
    pkg.setNumThreads(2);
    try {
      await runSync('nativeT2module', 2, () => mod.forward(input).data, { fields: { mode: 'module' } });
    } finally {
      pkg.setNumThreads(threadsBefore);
    }
  }
  if (tsOk) {
    const o = { ...convOpts, backend: 'js' };
    await runSync('ts', pkg.getBackend().threads, () => pkg.convTranspose2d(input, weight, o).data);
  }
  if (tfjs) {
    const why = tfjs.unsupported(sh);
    if (why) cells.tfjs = { skipped: true, note: why };
    else {
      let p = null;
      try {
        p = tfjs.prepare(sh, data);
        await runSync('tfjs', 1, () => p.run(), { skipOnMismatch: true, view: (v) => p.toNCHW(v) }); // run() gives NHWC
      } catch (e) {
        cells.tfjs = { error: e.message.split('\n')[0] };
      } finally {
        if (p) p.dispose();
      }
    }
  }
  if (ort) {
    for (const threads of [1, 2]) {
      const key = `ortT${threads}`;
      let p = null;
      try {
        p = await ort.prepare(sh, data, threads);
        const a = C.nowMs();
        const y = await p.run();
        const est = C.nowMs() - a;
        if (!ref) { ref = Float64Array.from(y); refName = key; }
        const chk = check(key, y);
        if (chk.mismatch) shapeNotes.push(`${key}: err ${fmtErr(chk.err)} vs ${refName} exceeds ${ERR_TOL}`);
        const t = await C.timeCalls(() => p.run(), est, pol, outBytes);
        cells[key] = cell(t.ms, threads, { ...t, err: chk.err, mismatch: chk.mismatch });
      } catch (e) {
        cells[key] = { error: e.message.split('\n')[0] };
        shapeNotes.push(`${key} failed: ${cells[key].error}`);
      } finally {
        if (p) await p.dispose();
      }
    }
  }

  const otherLoad = C.foreignLoad(snap0, C.cpuSnapshot(), os.cpus().length);
  if (otherLoad > BUSY) shapeNotes.push(`other processes kept ${otherLoad.toFixed(2)} CPUs busy during this shape: its times are unreliable`);

  if (onednn) {
    // A child Python process (its own data and float64 reference), after the load check: its CPU time is not another process's.
    try {
      const m = onednn.measure(s, pol);
      const mismatch = !(m.err <= ERR_TOL);
      if (mismatch) shapeNotes.push(`oneDNN: err ${fmtErr(m.err)} vs PyTorch float64 exceeds ${ERR_TOL}`);
      for (const threads of [1, 2]) {
        const t = m[`T${threads}`];
        cells[`onednnT${threads}`] = cell(t.ms, threads, { reps: t.reps, err: m.err, mismatch });
      }
    } catch (e) {
      cells.onednnT2 = { error: e.message.split('\n')[0] };
      shapeNotes.push(`oneDNN failed: ${cells.onednnT2.error}`);
    }
  }

  // Ratios (speed: other's time / ours).
  const ms = (k) => (cells[k] && cells[k].ms > 0 ? cells[k].ms : NaN);
  const a = ANCHORS[sh.id];
  const bp2 = bestPeer(sh.id, 2);
  const bp1 = bestPeer(sh.id, 1);
  const ratios = {
    nativeVsOrtT2: ms('ortT2') / ms('nativeT2'),
    nativeVsOrtT1: ms('ortT1') / ms('nativeT1'),
    nativeModuleVsOrtT2: ms('ortT2') / ms('nativeT2module'),
    bestPeerVsOrtT2Anchors: a && bp2 ? a.ortT2 / bp2.ms : NaN,
    bestPeerVsOrtT1Anchors: a && bp1 ? a.ortT1 / bp1.ms : NaN,
    tsVsTfjs: ms('tfjs') / ms('ts'),
    nativeVsOnednnHereT2: ms('onednnT2') / ms('nativeT2'),
    nativeVsOnednnHereT1: ms('onednnT1') / ms('nativeT1'),
  };
  ratios.nativeVsBestPeerT2 = ratios.nativeVsOrtT2 / ratios.bestPeerVsOrtT2Anchors;
  ratios.nativeOutVsBestPeerT2 = ms('ortT2') / ms('nativeT2out') / ratios.bestPeerVsOrtT2Anchors;  // reused out
  ratios.nativeVsBestPeerT1 = ratios.nativeVsOrtT1 / ratios.bestPeerVsOrtT1Anchors;
  ratios.nativeOutVsFreshT2 = ms('nativeT2') / ms('nativeT2out');
  const bestPeerT2ScaledMs = bp2 && a ? (bp2.ms / a.ortT2) * ms('ortT2') : NaN;

  // Per-shape block.
  const rows = [
    ['native T1', 'nativeT1'], ['native T2', 'nativeT2'], ['native T2 out', 'nativeT2out'], ['native T2 mod', 'nativeT2module'], ['TS', 'ts'],
    ['ORT T1', 'ortT1'], ['ORT T2', 'ortT2'], ['tfjs-cpu', 'tfjs'], ['oneDNN T1', 'onednnT1'], ['oneDNN T2', 'onednnT2'],
  ];
  log(`   ${pad('impl', 14)}${pad(isMicro(sh.id) ? 'µs' : 'ms', 10, true)}${pad('GFLOP/s', 9, true)}${pad('%peak', 7, true)}${pad('reps', 6, true)}  err vs ${refName || '–'}`);
  for (const [label, key] of rows) {
    const c = cells[key];
    if (!c) continue;
    if (c.skipped || c.error) {
      log(`   ${pad(label, 14)}${pad(c.skipped ? 'skipped' : 'error', 10, true)}  ${c.note || c.error}${c.err !== undefined ? ` (err ${fmtErr(c.err)})` : ''}`);
      continue;
    }
    const t = isMicro(sh.id) ? (c.ms * 1000).toPrecision(4) : c.ms < 10 ? c.ms.toFixed(3) : c.ms.toFixed(2);
    log(`   ${pad(label, 14)}${pad(t, 10, true)}${pad(fmtG(c.gflops), 9, true)}${pad(fmtPct(c.pctPeak), 7, true)}${pad(c.reps, 6, true)}  ${fmtErr(c.err)}${c.mismatch ? '  MISMATCH' : ''}`);
  }
  const bpName = bp2 ? bp2.name : '?';
  log(`   native/ORT T2 ${fmtX(ratios.nativeVsOrtT2)} (module ${fmtX(ratios.nativeModuleVsOrtT2)}) | bestPeer(${bpName})/ORT T2 (anchors) ${fmtX(ratios.bestPeerVsOrtT2Anchors)}` +
    ` | native/bestPeer T2 ${fmtX(ratios.nativeVsBestPeerT2)} | native/oneDNN-here T2 ${fmtX(ratios.nativeVsOnednnHereT2)} | TS/tfjs ${fmtX(ratios.tsVsTfjs)}`);
  for (const n of shapeNotes) log(`   note: ${n}`);

  return {
    id: sh.id, desc: sh.desc, gflop: sh.gflop, inputShape: sh.inputShape, weightShape: sh.weightShape, outputShape: sh.outputShape,
    reference: refName, otherLoadCpus: +otherLoad.toFixed(2), cells, ratios, bestPeerT2: bp2, bestPeerT1: bp1, bestPeerT2ScaledMs, anchors: a || null, notes: shapeNotes,
  };
}

/** Float64: native T1/T2 against the float64 peak on the compute-bound shapes. */
async function benchFp64(shapes, { pkg, pol, peak, log }) {
  const out = [];
  const picked = shapes.filter((s) => FP64_SHAPES.includes(s.id));
  if (!picked.length) return out;
  log('');
  log('── float64 (native; compute-bound shapes)');
  for (const s of picked) {
    const sh = C.describe(s);
    const d = C.makeData(sh);
    const x = { data: Float64Array.from(d.x), shape: sh.inputShape };
    const w = { data: Float64Array.from(d.w), shape: sh.weightShape };
    const o = {
      bias: Float64Array.from(d.b), stride: [sh.sH, sh.sW], padding: [sh.pH, sh.pW], outputPadding: [sh.opH, sh.opW],
      groups: sh.groups, dilation: [sh.dH, sh.dW], backend: 'native',
    };
    const row = { id: sh.id, gflop: sh.gflop };
    for (const threads of [1, 2]) {
      try {
        const ot = { ...o, threads };
        const fn = () => pkg.convTranspose2d(x, w, ot).data;
        const a = C.nowMs();
        fn();
        const est = C.nowMs() - a;
        const t = await C.timeCalls(fn, est, pol, sh.outputLength * 8);
        const gflops = sh.flop / (t.ms * 1e6);
        row[`T${threads}`] = { ms: t.ms, reps: t.reps, gflops, pctPeak: (100 * gflops) / peak.fp64[threads] };
      } catch (e) {
        row[`T${threads}`] = { error: e.message.split('\n')[0] };
      }
    }
    out.push(row);
    const f = (c) => (c && c.ms ? `${c.ms.toPrecision(3)} ms (${fmtG(c.gflops)}, ${fmtPct(c.pctPeak)})` : c && c.error ? `ERR ${c.error}` : '–');
    log(`   ${pad(sh.id, 4)} ${pad(sh.gflop.toPrecision(3), 6, true)} GFLOP   T1 ${pad(f(row.T1), 24)}  T2 ${f(row.T2)}`);
  }
  return out;
}

/** Extra peak memory of one native call (B3, G) in a child process: VmHWM after the call minus RSS before. */
function benchMemory(shapes, log) {
  const out = [];
  const picked = shapes.filter((s) => MEM_SHAPES.includes(s.id));
  if (!picked.length || process.platform !== 'linux') return out;
  log('');
  log('── memory of one native call, T2 (child process; VmHWM - VmRSS before; output buffer excluded)');
  for (const s of picked) {
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(HERE, 'memory.js'), JSON.stringify(s)], { encoding: 'utf8', timeout: 120000 });
    const m = /@@MEM@@(.+)/.exec(r.stdout || '');
    if (!m) {
      const why = `${r.stderr || ''}`.trim().split('\n').slice(-1)[0] || `exit ${r.status}`;
      log(`   ${s.id}: not measured (${why})`);
      out.push({ id: s.id, error: why });
      continue;
    }
    const v = JSON.parse(m[1]);
    out.push({ id: s.id, ...v });
    const mb = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    log(`   ${pad(s.id, 4)} output ${mb(v.outputBytes)}; extra beyond output: fresh 1st call ${mb(v.fresh1Extra)}, fresh 2nd ${mb(v.fresh2Extra)},` +
      ` out-mode ${mb(v.outExtra)}${v.hwmResettable ? '' : ' (VmHWM not resettable: upper bounds)'}`);
  }
  return out;
}

function summarize(results) {
  const col = (f) => results.map(f);
  const g = (xs) => ({ value: C.geomean(xs), n: xs.filter((x) => Number.isFinite(x) && x > 0).length });
  return {
    nativeT2VsOrtT2: g(col((r) => r.ratios.nativeVsOrtT2)),
    nativeT1VsOrtT1: g(col((r) => r.ratios.nativeVsOrtT1)),
    nativeModuleT2VsOrtT2: g(col((r) => r.ratios.nativeModuleVsOrtT2)),
    nativeT2VsBestPeerT2Scaled: g(col((r) => r.ratios.nativeVsBestPeerT2)),
    nativeT2OutVsBestPeerT2Scaled: g(col((r) => r.ratios.nativeOutVsBestPeerT2)),
    nativeT1VsBestPeerT1Scaled: g(col((r) => r.ratios.nativeVsBestPeerT1)),
    bestPeerT2VsOrtT2Anchors: g(col((r) => r.ratios.bestPeerVsOrtT2Anchors)),
    tsVsTfjs: g(col((r) => r.ratios.tsVsTfjs)),
    nativeOutVsFreshT2: g(col((r) => r.ratios.nativeOutVsFreshT2)),
    nativeT2VsOnednnHereT2: g(col((r) => r.ratios.nativeVsOnednnHereT2)),
    nativeT1VsOnednnHereT1: g(col((r) => r.ratios.nativeVsOnednnHereT1)),
  };
}

function printSummary(results, summary, fp64, memory, peak, log) {
  log('');
  log('## Summary (cells: ms (GFLOP/s, % fp32 peak); H and Z in µs; ratios are speed ratios, > 1 = ours faster;');
  log('## busy = CPUs used by other processes while the shape ran; ! = err above tolerance)');
  log('');
  const head = ['shape', 'GFLOP', 'native T1', 'native T2', 'native T2 out', 'native T2 module', 'TS', 'ORT T1', 'ORT T2', 'tfjs-cpu',
    'oneDNN T2 (here)', 'native/ORT T2', 'module/ORT T2', 'bestPeer/ORT T2 (anchors)', 'native/bestPeer T2', 'out/bestPeer T2',
    'native/oneDNN T2 (here)', 'TS/tfjs', 'busy'];
  const rows = results.map((r) => {
    const c = r.cells;
    return [
      r.id, r.gflop >= 0.001 ? r.gflop.toFixed(3) : r.gflop.toExponential(0),
      cellText(c.nativeT1, r.id), cellText(c.nativeT2, r.id), cellText(c.nativeT2out, r.id), cellText(c.nativeT2module, r.id),
      cellText(c.ts, r.id, false), cellText(c.ortT1, r.id), cellText(c.ortT2, r.id), cellText(c.tfjs, r.id, false), cellText(c.onednnT2, r.id),
      fmtX(r.ratios.nativeVsOrtT2), fmtX(r.ratios.nativeModuleVsOrtT2), `${fmtX(r.ratios.bestPeerVsOrtT2Anchors)}${r.bestPeerT2 ? ` ${r.bestPeerT2.name}` : ''}`,
      fmtX(r.ratios.nativeVsBestPeerT2), fmtX(r.ratios.nativeOutVsBestPeerT2), fmtX(r.ratios.nativeVsOnednnHereT2), fmtX(r.ratios.tsVsTfjs),
      Number.isFinite(r.otherLoadCpus) ? r.otherLoadCpus.toFixed(2) : '–',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cols) => `| ${cols.map((v, i) => pad(v, widths[i], i > 0)).join(' | ')} |`;
  log(line(head));
  log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of rows) log(line(row));
  log('');
  const gm = (k, label) => {
    const v = summary[k];
    log(`geomean ${pad(label, 46)} ${fmtX(v.value)}  (${v.n} shapes)`);
  };
  gm('nativeT2VsOrtT2', 'native T2 vs ORT T2 (speedup)');
  gm('nativeModuleT2VsOrtT2', 'native T2 module (packed once) vs ORT T2');
  gm('bestPeerT2VsOrtT2Anchors', 'best peer T2 vs ORT T2 (anchors.md)');
  gm('nativeT2VsBestPeerT2Scaled', 'native T2 vs best peer T2 (scaled by ORT now)');
  gm('nativeT2OutVsBestPeerT2Scaled', 'native T2 out vs best peer T2 (scaled)');
  gm('nativeT1VsOrtT1', 'native T1 vs ORT T1');
  gm('nativeT1VsBestPeerT1Scaled', 'native T1 vs best peer T1 (scaled by ORT now)');
  gm('nativeOutVsFreshT2', 'native T2 out vs fresh');
  gm('nativeT2VsOnednnHereT2', 'native T2 vs oneDNN T2 measured here');
  gm('nativeT1VsOnednnHereT1', 'native T1 vs oneDNN T1 measured here');
  gm('tsVsTfjs', 'TS vs tfjs-cpu (speedup)');
  if (fp64.length) {
    log('');
    log(`float64 native (ms (GFLOP/s, % fp64 peak ${peak.fp64[1]}/${peak.fp64[2]})):`);
    for (const r of fp64) {
      const f = (c) => (c && c.ms ? `${c.ms.toPrecision(3)} (${fmtG(c.gflops)}, ${fmtPct(c.pctPeak)})` : '–');
      log(`  ${pad(r.id, 3)} T1 ${pad(f(r.T1), 22)} T2 ${f(r.T2)}`);
    }
  }
  void memory;
}

main().catch((e) => {
  console.error(`bench failed: ${e && e.message && /^(unknown|--shapes)/.test(e.message) ? e.message : e && e.stack ? e.stack : e}`);
  process.exit(1);
});
