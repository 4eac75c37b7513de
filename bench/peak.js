'use strict';
// The machine's FMA peak (GFLOP/s), measured by the core test binary (`convt_core_test --fma-peak`, built
// through scripts/run-core-tests.js); anchors.md's figures only where nothing was measured.

const path = require('path');
const { spawnSync } = require('child_process');
const { PEAK } = require('./anchors');

const root = path.resolve(__dirname, '..');
const PLAUSIBLE = 0.75; // below this fraction of anchors.md's peak, the run notes that the host is slower

/** Builds (if needed) the core test binary in a child process, so its CMake output can be kept quiet. */
function buildCoreTest() {
  const script = path.join(root, 'scripts', 'run-core-tests.js');
  const code = `const p = require(${JSON.stringify(script)}).ensureCoreTestBinary(); console.log('\\n@@EXE@@' + p);`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8', timeout: 300000 });
  const out = `${r.stdout || ''}${r.stderr || ''}`;
  const m = /@@EXE@@(.+)/.exec(r.stdout || '');
  if (r.status === 0 && m) return { exe: m[1].trim() };
  const tail = out.trim().split('\n').slice(-3).join(' | ');
  return { error: r.error ? r.error.message : `build failed (exit ${r.status}): ${tail}` };
}

/** Parses `fma_peak_gflops threads=<n> fp32=<x> fp64=<y>` lines into { fp32: {n: x}, fp64: {n: y} }. */
function parsePeak(text) {
  const res = { fp32: {}, fp64: {} };
  let any = false;
  for (const line of text.split('\n')) {
    const m = /fma_peak_gflops\s+threads=(\d+)\s+fp32=([\d.eE+-]+)\s+fp64=([\d.eE+-]+)/.exec(line);
    if (!m) continue;
    any = true;
    res.fp32[+m[1]] = +m[2];
    res.fp64[+m[1]] = +m[3];
  }
  return any ? res : null;
}

// Memory the bench's first timed calls may take fresh from the OS (results before the pool fills, per-thread scratch).
const TOUCH_MIB = 1024;

/**
 * Writes TOUCH_MIB MiB once (huge pages) and frees it, in a child process: a VM's host backs guest memory lazily, so
 * a page's first write since boot costs 1.3-2.3 ms per MiB here, later reuse ~0.07. Without this, whichever cell runs
 * first on a fresh VM (native T1) pays the host's part. Returns a note for the report.
 */
function touchGuestMemory(exe) {
  const r = spawnSync(exe, ['--touch-memory', String(TOUCH_MIB)], { cwd: root, encoding: 'utf8', timeout: 120000 });
  const m = /touched_memory mib=(\d+) ms=([\d.]+)/.exec(r.stdout || '');
  return m ? `touched ${m[1]} MiB of fresh memory before timing (${m[2]} ms)` : `could not touch memory before timing (exit ${r.status})`;
}

/**
 * Returns { source, fp32: {1, 2}, fp64: {1, 2}, notes: [] }. `isa` (getBackend().isa) picks the anchors row
 * used as a fallback: AVX-512 unless the kernels run AVX2 or older.
 */
function machinePeak(isa, log) {
  const family = isa && !/avx512/i.test(isa) ? 'avx2' : 'avx512';
  const fallback = PEAK[family];
  const notes = [];
  let measured = null;
  log('measuring the FMA peak (building the core test binary if needed)...');
  const b = buildCoreTest();
  if (b.error) {
    notes.push(`core test binary unavailable (${b.error})`);
  } else {
    const r = spawnSync(b.exe, ['--fma-peak'], { cwd: root, encoding: 'utf8', timeout: 120000 });
    measured = parsePeak(`${r.stdout || ''}`);
    // A 2-thread peak well under twice the 1-thread one means a neighbour held a vCPU meanwhile: measure again and
    // keep the better figure of each.
    for (let again = 0; again < 3 && measured && measured.fp32[2] < 1.8 * measured.fp32[1]; again++) {
      const r2 = spawnSync(b.exe, ['--fma-peak'], { cwd: root, encoding: 'utf8', timeout: 120000 });
      const m2 = parsePeak(`${r2.stdout || ''}`);
      if (!m2) break;
      for (const prec of ['fp32', 'fp64']) for (const t of [1, 2]) measured[prec][t] = Math.max(measured[prec][t] || 0, m2[prec][t] || 0);
      notes.push(`2-thread FMA peak measured again (a vCPU was busy): ${measured.fp32[1]}/${measured.fp32[2]} GFLOP/s`);
    }
    if (!measured) {
      const why = r.error ? r.error.message : `exit ${r.status}, no fma_peak_gflops lines`;
      notes.push(`${path.basename(b.exe)} --fma-peak gave no peak (${why})`);
    }
    notes.push(touchGuestMemory(b.exe));
  }
  const out = { source: measured ? 'measured (convt_core_test --fma-peak)' : `anchors.md (${family})`, fp32: {}, fp64: {}, notes };
  if (measured) out.measured = measured;
  // The peak of this run is the denominator (this VM's speed drifts between hosts and days: anchors.md's
  // figures came from a faster one); anchors.md only fills in what was not measured.
  for (const prec of ['fp32', 'fp64']) {
    for (const t of [1, 2]) {
      const v = measured && measured[prec][t];
      if (v > 0) out[prec][t] = v;
      else {
        out[prec][t] = fallback[prec][t];
        if (measured) notes.push(`${prec} T${t} not measured: anchors.md figure used`);
      }
    }
  }
  if (measured && measured.fp32[1] > 0 && measured.fp32[1] < PLAUSIBLE * fallback.fp32[1]) {
    notes.push(`measured fp32 peak ${measured.fp32[1]}/${measured.fp32[2]} GFLOP/s (T1/T2) is below ${PLAUSIBLE * 100}% of ` +
      `anchors.md's ${fallback.fp32[1]}/${fallback.fp32[2]}: this host is slower (or busy); compare with the peers through ORT`);
  }
  if (!measured) notes.push(`using anchors.md peaks${family === 'avx512' ? '' : ' (AVX2 row)'}; fp64 = half of fp32 (assumed)`);
  return out;
}

module.exports = { machinePeak, parsePeak };
