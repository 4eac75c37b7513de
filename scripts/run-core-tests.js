#!/usr/bin/env node
'use strict';
// Builds the plain-C++ core's test executable (no Node in it) with CMake and runs it.
//   node scripts/run-core-tests.js [args for convt_core_test, e.g. --bench or --fma-peak]
// Also used by the bench (ensureCoreTestBinary) to measure the machine's FMA peak.
const path = require('path');
const fs = require('fs');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const buildDir = path.join(root, 'build', 'core-test');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status === null ? 1 : r.status;
}

/** Configures and builds build/core-test/convt_core_test; returns its path. Throws if it cannot. */
function ensureCoreTestBinary() {
  const generator = spawnSync('ninja', ['--version'], { stdio: 'ignore' }).status === 0 ? ['-G', 'Ninja'] : [];
  if (!fs.existsSync(path.join(buildDir, 'CMakeCache.txt'))) {
    const rc = run('cmake', ['-S', root, '-B', buildDir, ...generator, '-DCMAKE_BUILD_TYPE=Release', '-DCONVT_BUILD_TESTS=ON']);
    if (rc !== 0) throw new Error(`cmake configure failed (exit ${rc})`);
  }
  // --config matters for multi-config generators (Visual Studio, Xcode), which also add a Release/ folder
  const rc = run('cmake', ['--build', buildDir, '--config', 'Release', '--target', 'convt_core_test', '--parallel', '2']);
  if (rc !== 0) throw new Error(`cmake build failed (exit ${rc})`);
  const name = process.platform === 'win32' ? 'convt_core_test.exe' : 'convt_core_test';
  const exe = [path.join(buildDir, name), path.join(buildDir, 'Release', name)].find((p) => fs.existsSync(p));
  if (!exe) throw new Error(`${name} was not produced in ${buildDir}`);
  return exe;
}

module.exports = { ensureCoreTestBinary };

if (require.main === module) {
  let exe;
  try {
    exe = ensureCoreTestBinary();
  } catch (e) {
    console.error(`[core-test] ${e.message}`);
    process.exit(1);
  }
  process.exit(run(exe, process.argv.slice(2)));
}
