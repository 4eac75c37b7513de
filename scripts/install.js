#!/usr/bin/env node
'use strict';
// npm "install" hook: use a prebuild or an existing build if one loads, else compile with cmake-js,
// else warn and leave the pure-TypeScript implementation to serve.
//   CONV_TRANSPOSE_NATIVE=skip      never build (pure TypeScript)
//   CONV_TRANSPOSE_NATIVE=build     ignore prebuilds and existing builds, always compile
//   CONV_TRANSPOSE_NATIVE=required  any failure fails the install (CI)
//   npm_config_build_from_source=true  same as build
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const mode = process.env.CONV_TRANSPOSE_NATIVE || '';
const fromSource = mode === 'build' || process.env.npm_config_build_from_source === 'true';

// In a child process: a binary that crashes while loading must not take the install down with it.
function nativeLoads() {
  const probe = 'const b = require("node-gyp-build")(process.argv[1]); if (typeof b.convTranspose2d !== "function") process.exit(3);';
  const r = spawnSync(process.execPath, ['-e', probe, root], { stdio: 'ignore' });
  return r.status === 0;
}

function fallback(why) {
  const msg = `[conv-transpose] native addon unavailable (${why}); the pure TypeScript implementation will be used.`;
  if (mode === 'required') {
    console.error(`${msg}\n[conv-transpose] CONV_TRANSPOSE_NATIVE=required: failing the install.`);
    process.exit(1);
  }
  console.warn(msg);
  process.exit(0);
}

if (mode === 'skip') fallback('CONV_TRANSPOSE_NATIVE=skip');
if (!fromSource && nativeLoads()) process.exit(0);

let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js');
} catch {
  fallback('cmake-js is not installed');
}
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) fallback(`cmake-js exited with ${r.status === null ? r.signal : r.status}`);
if (!nativeLoads()) fallback('the built addon does not load');
