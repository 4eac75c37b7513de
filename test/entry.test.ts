// The built package entries under real Node module loading (child processes; vitest transforms test files):
// CommonJS dist/index.js, the ESM wrapper dist/index.mjs, and the package.json "exports" map.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nativeTested, repoRoot } from './helpers';

const cjsPath = path.join(repoRoot, 'dist', 'index.js');
const esmPath = path.join(repoRoot, 'dist', 'index.mjs');

const DESIGN_NAMES = [
  'convTranspose2d', 'convTranspose2dAsync', 'outputShape', 'ConvTranspose2d', 'getBackend', 'setNumThreads', 'ConvTransposeError',
];
const ALL_NAMES = [...DESIGN_NAMES, 'ErrorCodes', 'readNpy', 'writeNpy', 'readNpyFile', 'writeNpyFile'];

/** The body run in both module systems: `m` is the loaded module namespace / exports object. */
const PROBE = `
  const names = Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort();
  const types = Object.fromEntries(names.map((k) => [k, typeof m[k]]));
  const x = { data: Float32Array.from({ length: 2 * 3 * 4 * 4 }, (_, i) => Math.sin(i)), shape: [2, 3, 4, 4] };
  const w = { data: Float32Array.from({ length: 3 * 2 * 3 * 3 }, (_, i) => Math.cos(i) / 4), shape: [3, 2, 3, 3] };
  const y = m.convTranspose2d(x, w, { stride: 2, padding: 1, outputPadding: 1, bias: new Float32Array([0.5, -0.25]) });
  let err = null;
  try { m.convTranspose2d(x, w, { stride: 0 }); } catch (e) { err = { isClass: e instanceof m.ConvTransposeError, isError: e instanceof Error, code: e.code }; }
  const mod = new m.ConvTranspose2d(3, 2, 3, { seed: 1 });
  const out = {
    names, types, shape: Array.from(y.shape), data: Array.from(y.data), err,
    backend: m.getBackend().name, moduleWeight: Array.from(mod.weight.data.slice(0, 4)),
    outputShape: m.outputShape([2, 3, 4, 4], [3, 2, 3, 3], { stride: 2, padding: 1, outputPadding: 1 }),
  };
`;

function runNode(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Probe {
  names: string[];
  types: Record<string, string>;
  shape: number[];
  data: number[];
  err: { isClass: boolean; isError: boolean; code: string } | null;
  backend: string;
  moduleWeight: number[];
  outputShape: number[];
}

function probeCjs(spec: string): Probe {
  const r = runNode(['-e', `const m = require(${JSON.stringify(spec)}); ${PROBE}; process.stdout.write(JSON.stringify(out));`]);
  expect(r.status, `CommonJS load of ${spec} failed:\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as Probe;
}

function probeEsm(spec: string): Probe {
  const r = runNode([
    '--input-type=module', '-e',
    `import * as m from ${JSON.stringify(spec)}; ${PROBE}; process.stdout.write(JSON.stringify(out));`,
  ]);
  expect(r.status, `ESM import of ${spec} failed:\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as Probe;
}

describe('built entries', () => {
  it('dist/index.js and dist/index.mjs exist (npm test builds them)', () => {
    expect(fs.existsSync(cjsPath), cjsPath).toBe(true);
    expect(fs.existsSync(esmPath), esmPath).toBe(true);
  });

  it('CommonJS and ESM export the same names, at least DESIGN §2, and compute identical results', () => {
    const cjs = probeCjs(cjsPath);
    const esm = probeEsm(pathToFileURL(esmPath).href);
    for (const n of ALL_NAMES) {
      expect(cjs.names, `CommonJS misses ${n}`).toContain(n);
      expect(esm.names, `ESM misses ${n}`).toContain(n);
    }
    expect(esm.names).toEqual(cjs.names);
    expect(esm.types).toEqual(cjs.types);
    for (const n of ['convTranspose2d', 'convTranspose2dAsync', 'outputShape', 'ConvTranspose2d', 'getBackend', 'setNumThreads', 'ConvTransposeError', 'readNpy', 'writeNpy', 'readNpyFile', 'writeNpyFile']) {
      expect(cjs.types[n], n).toBe('function');
    }
    expect(cjs.types.ErrorCodes).toBe('object');
    expect(cjs.shape).toEqual([2, 2, 8, 8]);
    expect(esm.shape).toEqual(cjs.shape);
    expect(esm.data).toEqual(cjs.data);
    expect(esm.outputShape).toEqual([2, 2, 8, 8]);
    expect(cjs.outputShape).toEqual([2, 2, 8, 8]);
    expect(esm.moduleWeight).toEqual(cjs.moduleWeight);
    expect(esm.backend).toBe(cjs.backend);
    for (const p of [cjs, esm]) expect(p.err).toEqual({ isClass: true, isError: true, code: 'ERR_CONV_TRANSPOSE_STRIDE' });
  });

  it('the package name resolves through the exports map: require -> CJS, import -> ESM', () => {
    const cjs = probeCjs('conv-transpose');
    const esm = probeEsm('conv-transpose');
    expect(cjs.names).toEqual(esm.names);
    expect(esm.data).toEqual(cjs.data);
    // which file each condition picked
    const r1 = runNode(['-p', `require.resolve('conv-transpose')`]);
    expect(r1.status, r1.stderr).toBe(0);
    expect(r1.stdout.trim()).toBe(cjsPath);
    const r2 = runNode(['--input-type=module', '-e', `process.stdout.write(import.meta.resolve('conv-transpose'))`]);
    expect(r2.status, r2.stderr).toBe(0);
    expect(r2.stdout.trim()).toBe(pathToFileURL(esmPath).href);
  });

  it('ESM and CommonJS in one process share one implementation (no dual-package hazard)', () => {
    const r = runNode([
      '--input-type=module', '-e',
      `import * as esm from ${JSON.stringify(pathToFileURL(esmPath).href)};
       import { createRequire } from 'node:module';
       const cjs = createRequire(import.meta.url)(${JSON.stringify(cjsPath)});
       let e; try { cjs.convTranspose2d(null, null); } catch (x) { e = x; }
       process.stdout.write(JSON.stringify({
         sameClass: esm.ConvTransposeError === cjs.ConvTransposeError,
         sameFn: esm.convTranspose2d === cjs.convTranspose2d,
         crossInstanceof: e instanceof esm.ConvTransposeError,
       }));`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ sameClass: true, sameFn: true, crossInstanceof: true });
  });

  it('the ESM entry also offers a default export or none, but never breaks named imports', () => {
    const r = runNode([
      '--input-type=module', '-e',
      `import { convTranspose2d, ConvTranspose2d, getBackend } from ${JSON.stringify(pathToFileURL(esmPath).href)};
       process.stdout.write(String(typeof convTranspose2d + typeof ConvTranspose2d + typeof getBackend));`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('functionfunctionfunction');
  });

  it('every file the package.json exports map points at exists (types included)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
      main: string; types: string; exports: Record<string, unknown>;
    };
    const targets: string[] = [pkg.main, pkg.types];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') targets.push(v);
      else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
    };
    walk(pkg.exports);
    for (const t of targets) expect(fs.existsSync(path.join(repoRoot, t)), `${t} missing`).toBe(true);
  });

  it('loading the CommonJS entry prints nothing (stderr too when the native backend loads)', () => {
    const r = runNode(['-e', `require(${JSON.stringify(cjsPath)})`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    if (nativeTested) expect(r.stderr).toBe('');
  });
});
