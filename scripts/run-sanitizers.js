#!/usr/bin/env node
'use strict';
// Builds the core's test executable with AddressSanitizer + UndefinedBehaviorSanitizer (CMake option
// CONVT_SANITIZE) into build/asan and runs it (its checks, the random sweep over every ISA and plan mode,
// thread invariance, concurrent callers). Any sanitizer report aborts the run, and the exit code is non-zero.
//   node scripts/run-sanitizers.js [--cxx g++|clang++] [-- args for convt_core_test]
// The compiler defaults to $CXX, else clang++ when installed, else g++.
const path = require('path');
const fs = require('fs');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const buildDir = path.join(root, 'build', 'asan');

function has(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status === null ? 1 : r.status;
}

function main() {
  const argv = process.argv.slice(2);
  const dashdash = argv.indexOf('--');
  const own = dashdash < 0 ? argv : argv.slice(0, dashdash);
  const testArgs = dashdash < 0 ? [] : argv.slice(dashdash + 1);
  const ci = own.indexOf('--cxx');
  const cxx = ci >= 0 ? own[ci + 1] : process.env.CXX || (has('clang++') ? 'clang++' : 'g++');
  if (process.platform === 'win32') {
    console.error('[sanitize] needs gcc or clang on Linux or macOS');
    return 1;
  }

  // a cache made with another compiler cannot be reused
  const cache = path.join(buildDir, 'CMakeCache.txt');
  if (fs.existsSync(cache) && !fs.readFileSync(cache, 'utf8').includes(`CONVT_SANITIZE_CXX:STRING=${cxx}\n`)) {
    fs.rmSync(buildDir, { recursive: true, force: true });
  }
  const generator = has('ninja') ? ['-G', 'Ninja'] : [];
  if (!fs.existsSync(cache)) {
    const rc = run('cmake', [
      '-S', root, '-B', buildDir, ...generator, '-DCMAKE_BUILD_TYPE=Release', `-DCMAKE_CXX_COMPILER=${cxx}`,
      `-DCONVT_SANITIZE_CXX:STRING=${cxx}`, '-DCONVT_BUILD_TESTS=ON', '-DCONVT_SANITIZE=ON',
    ]);
    if (rc !== 0) return fail(`cmake configure failed (exit ${rc})`);
  }
  const t0 = Date.now();
  let rc = run('cmake', ['--build', buildDir, '--target', 'convt_core_test', '--parallel', '2']);
  if (rc !== 0) return fail(`build failed (exit ${rc})`);
  console.log(`[sanitize] built with ${cxx} -fsanitize=address,undefined in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const exe = path.join(buildDir, 'convt_core_test');
  const env = {
    ...process.env,
    // leaks are errors too; abort (not just exit) so that nothing can swallow a report
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  };
  const t1 = Date.now();
  const r = spawnSync(exe, testArgs, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  process.stdout.write(r.stdout || '');
  process.stderr.write(r.stderr || '');
  const all = `${r.stdout || ''}\n${r.stderr || ''}`;
  const reports = all.match(/runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: \w+Sanitizer/g) || [];
  rc = r.status === null ? 128 : r.status;
  const secs = ((Date.now() - t1) / 1000).toFixed(1);
  if (rc !== 0 || reports.length > 0) {
    return fail(`convt_core_test under sanitizers: exit ${r.status}${r.signal ? ` (signal ${r.signal})` : ''}, ${reports.length} sanitizer report line(s), ${secs} s`);
  }
  console.log(`[sanitize] convt_core_test under ASan+UBSan: clean (0 reports, exit 0) in ${secs} s`);
  return 0;
}

function fail(msg) {
  console.error(`[sanitize] FAILED: ${msg}`);
  return 1;
}

process.exit(main());
