// The package as a user gets it: `npm pack`, a prebuild made by `npm run prebuildify`, and installs into empty
// folders with no compiler and no cmake on the PATH. Slow (it compiles the addon once more), so one file.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'conv-transpose-pack-'));
const platformDir = `${process.platform}-${process.arch}`;

// The environment of a user's install: no CI flags of ours, and a PATH with node and a shell but no compiler or cmake.
function userEnv(): NodeJS.ProcessEnv {
  const bin = path.join(work, 'bin');
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(bin);
    for (const tool of ['node', 'sh', 'bash', 'env', 'uname', 'rm', 'mkdir', 'cat', 'ls', 'tar', 'gzip']) {
      const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      if (found) fs.symlinkSync(found, path.join(bin, tool));
    }
    const npmCli = fs.realpathSync(spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim());
    fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli}" "$@"\n`, { mode: 0o755 });
  }
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['HOME', 'USER', 'TMPDIR', 'LANG', 'npm_config_cache']) if (process.env[k]) env[k] = process.env[k];
  env.PATH = bin;
  env.CXX = 'false';
  env.CC = 'false';
  return env;
}

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function packInto(dir: string, from: string, ignoreScripts: boolean): string {
  const args = ['pack', '--pack-destination', dir, '--json', ...(ignoreScripts ? ['--ignore-scripts'] : [])];
  const out = JSON.parse(sh('npm', args, from)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return path.join(dir, out[0]!.filename);
}

function installInto(name: string, tarball: string): { dir: string; status: number | null; output: string } {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true }));
  const r = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], {
    cwd: dir, env: userEnv(), encoding: 'utf8',
  });
  return { dir, status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

function probe(dir: string): { name: string; loadError?: string; sum: number } {
  const script =
    "const ct = require('conv-transpose'); const b = ct.getBackend();" +
    'const y = ct.convTranspose2d({ data: new Float32Array([1, 2, 3, 4]), shape: [1, 1, 2, 2] },' +
    '  { data: new Float32Array([1, 1, 1, 1]), shape: [1, 1, 2, 2] }, { stride: 2 });' +
    'console.log(JSON.stringify({ name: b.name, loadError: b.loadError, sum: y.data.reduce((a, v) => a + v, 0) }));';
  return JSON.parse(sh(process.execPath, ['-e', script], dir, userEnv())) as { name: string; loadError?: string; sum: number };
}

let sourceTarball = '';
let prebuiltTarball = '';

beforeAll(() => {
  if (process.platform === 'win32') return;
  // 1. the package as published from this checkout (dist/ was built by `npm test`)
  sourceTarball = packInto(work, root, true);
  // 2. the same package with a prebuild: unpack, run `npm run prebuildify` there, pack again
  const staged = path.join(work, 'staged');
  fs.mkdirSync(staged);
  sh('tar', ['-xzf', sourceTarball, '-C', staged], work);
  const pkg = path.join(staged, 'package');
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
  sh('npm', ['run', 'prebuildify'], pkg);
  fs.unlinkSync(path.join(pkg, 'node_modules'));
  fs.rmSync(path.join(pkg, 'build'), { recursive: true, force: true });
  const prebuiltDir = path.join(work, 'prebuilt');
  fs.mkdirSync(prebuiltDir);
  prebuiltTarball = packInto(prebuiltDir, pkg, true);
}, 600_000);

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

// POSIX tools (sh, tar, symlinks) build the user's PATH here; Windows runners exercise the install in CI's prebuild job.
describe.skipIf(process.platform === 'win32')('packed package', () => {
  it('npm run prebuildify produces prebuilds/<platform>-<arch>/conv-transpose.node', () => {
    const listing = sh('tar', ['-tzf', prebuiltTarball], work);
    expect(listing).toContain(`package/prebuilds/${platformDir}/conv-transpose.node`);
    expect(sh('tar', ['-tzf', sourceTarball], work)).not.toContain('package/prebuilds/');
  });

  it('installs from the prebuild with no compiler or cmake on the PATH, and runs native', () => {
    const { dir, status, output } = installInto('with-prebuild', prebuiltTarball);
    expect(status, output).toBe(0);
    const installed = path.join(dir, 'node_modules', 'conv-transpose');
    expect(fs.existsSync(path.join(installed, 'prebuilds', platformDir, 'conv-transpose.node'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false); // nothing was compiled
    const r = probe(dir);
    expect(r).toEqual({ name: 'native', sum: 40 }); // each input pixel reaches 4 outputs through the 2x2 ones kernel
  }, 300_000);

  it('installs with neither prebuild nor compiler, and the TypeScript path answers', () => {
    const { dir, status, output } = installInto('no-prebuild', sourceTarball);
    expect(status, output).toBe(0);
    expect(output).toContain('the pure TypeScript implementation will be used');
    const r = probe(dir);
    expect(r.name).toBe('js');
    expect(r.loadError).toBeTruthy();
    expect(r.sum).toBe(40);
  }, 300_000);
});
