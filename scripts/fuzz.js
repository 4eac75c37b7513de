#!/usr/bin/env node
'use strict';
// Builds the libFuzzer target (native/test/fuzz_core.cc, CMake option CONVT_FUZZ, clang with
// -fsanitize=fuzzer,address,undefined) into build/fuzz and runs it on a copy of native/test/fuzz_corpus,
// so that a CI run never dirties the repository.
//   node scripts/fuzz.js [--seconds 60] [--update-corpus] [--jobs 1] [-- extra libFuzzer flags]
// --update-corpus merges the inputs that found new coverage back into native/test/fuzz_corpus (-merge=1, so
// only a minimal covering set is added). Prints executions and coverage (libFuzzer's cov: and ft:) and exits
// non-zero on a crash, a sanitizer report, a timeout or an out-of-memory; the offending input is kept in
// build/fuzz/artifacts/ and its bytes are printed.
const path = require('path');
const fs = require('fs');
const os = require('os');
const { spawn, spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const buildDir = path.join(root, 'build', 'fuzz');
const corpusDir = path.join(root, 'native', 'test', 'fuzz_corpus');

function parseArgs(argv) {
  const o = { seconds: 60, update: false, extra: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      o.extra = argv.slice(i + 1);
      break;
    } else if (a === '--seconds') o.seconds = Number(argv[++i]);
    else if (a.startsWith('--seconds=')) o.seconds = Number(a.slice(10));
    else if (a === '--update-corpus') o.update = true;
    else {
      console.error(`[fuzz] unknown argument ${a}`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(o.seconds) || o.seconds < 1) {
    console.error('[fuzz] --seconds must be a positive integer');
    process.exit(2);
  }
  return o;
}

function has(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function build() {
  const cxx = process.env.FUZZ_CXX || 'clang++';
  if (!has(cxx)) {
    throw new Error(`${cxx} not found: libFuzzer needs clang (Debian: apt-get install clang libclang-rt-14-dev)`);
  }
  const generator = has('ninja') ? ['-G', 'Ninja'] : [];
  if (!fs.existsSync(path.join(buildDir, 'CMakeCache.txt'))) {
    const r = spawnSync('cmake', ['-S', root, '-B', buildDir, ...generator, '-DCMAKE_BUILD_TYPE=Release',
      `-DCMAKE_CXX_COMPILER=${cxx}`, '-DCONVT_FUZZ=ON'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('cmake configure failed');
  }
  const r = spawnSync('cmake', ['--build', buildDir, '--target', 'convt_fuzz_core', '--parallel', '2'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('build failed');
  return path.join(buildDir, 'convt_fuzz_core');
}

function copyDir(src, dst) {
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dst, f));
}

function runFuzzer(exe, args, cwd) {
  return new Promise((resolve) => {
    const child = spawn(exe, args, {
      cwd,
      env: { ...process.env, ASAN_OPTIONS: 'abort_on_error=1:detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let log = '';
    child.stderr.on('data', (d) => {
      const s = d.toString();
      log += s;
      if (log.length > 4e6) log = log.slice(-2e6);
      // progress lines are many: show the interesting ones
      for (const line of s.split('\n')) {
        if (line && !/^#\d+\s+(NEW|REDUCE|pulse)/.test(line)) process.stderr.write(`${line}\n`);
      }
    });
    child.on('close', (code, signal) => resolve({ code, signal, log }));
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  let exe;
  try {
    exe = build();
  } catch (e) {
    console.error(`[fuzz] ${e.message}`);
    return 1;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'convt-fuzz-'));
  const corpus = path.join(work, 'corpus');
  copyDir(corpusDir, corpus);
  const artifacts = path.join(buildDir, 'artifacts');
  fs.mkdirSync(artifacts, { recursive: true });
  const seeds = fs.readdirSync(corpus).length;
  console.log(`[fuzz] ${exe}: ${o.seconds} s on a copy of ${path.relative(root, corpusDir)} (${seeds} inputs) in ${work}`);
  const t0 = Date.now();
  const res = await runFuzzer(exe, [
    `-max_total_time=${o.seconds}`, '-timeout=20', '-rss_limit_mb=2560', '-max_len=512', '-print_final_stats=1',
    `-artifact_prefix=${artifacts}${path.sep}`, ...o.extra, corpus,
  ], work);
  const secs = (Date.now() - t0) / 1000;

  const execs = /stat::number_of_executed_units:\s*(\d+)/.exec(res.log);
  const lines = res.log.split('\n').filter((l) => /\bcov: \d+/.test(l));
  const last = lines[lines.length - 1] || '';
  const cov = /cov: (\d+)/.exec(last);
  const ft = /ft: (\d+)/.exec(last);
  const corp = /corp: (\d+)/.exec(last);
  const crashed = res.code !== 0 || /ERROR: libFuzzer|runtime error:|ERROR: AddressSanitizer|fuzz_core: /.test(res.log);
  const summary = `executions ${execs ? execs[1] : '?'} in ${secs.toFixed(0)} s, cov: ${cov ? cov[1] : '?'} ft: ${ft ? ft[1] : '?'}, corpus ${corp ? corp[1] : '?'} inputs (from ${seeds})`;

  if (!crashed && o.update) {
    const r = spawnSync(exe, ['-merge=1', corpusDir, corpus], { cwd: work, encoding: 'utf8' });
    const added = fs.readdirSync(corpusDir).length - seeds;
    console.log(`[fuzz] merged into ${path.relative(root, corpusDir)}: ${added} new input(s) (exit ${r.status})`);
  }
  fs.rmSync(work, { recursive: true, force: true });
  if (crashed) {
    const saved = /Test unit written to (\S+)/.exec(res.log);
    console.error(`[fuzz] FAILED (exit ${res.code}${res.signal ? `, signal ${res.signal}` : ''}): ${summary}`);
    if (saved) console.error(`[fuzz] reproduce with: ${path.relative(root, exe)} ${saved[1]}`);
    return 1;
  }
  console.log(`[fuzz] OK: ${summary}, 0 crashes`);
  return 0;
}

main().then((rc) => process.exit(rc), (e) => {
  console.error(e);
  process.exit(1);
});
