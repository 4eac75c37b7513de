#!/usr/bin/env node
'use strict';
// prebuildify spawns `<node-gyp> rebuild --target=<ver> --devdir=<dir> --arch=<arch> --release|--debug`.
// cmake-js reads --target as a CMake build target, so translate instead of passing the flags through.
const { spawnSync } = require('child_process');

const args = process.argv.slice(2);
const arch = (args.find((a) => a.startsWith('--arch=')) || '').slice('--arch='.length);
const cmakeJsArgs = ['rebuild'];
if (args.includes('--debug')) cmakeJsArgs.push('--debug');
if (arch) cmakeJsArgs.push('--arch', arch);
const r = spawnSync(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), ...cmakeJsArgs], { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
