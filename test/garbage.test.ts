// The random-garbage run (issue 5.2): 10,000 seeded random cases mixing valid and invalid arguments over every public
// entry point, each run on the TypeScript backend and (when it loads) the native one, in a child process
// (test/fixtures/garbage-child.js on dist/index.js) so that a crash is observed instead of killing the runner.
// The child must exit normally; every call must return a result that agrees with the TypeScript path or throw a
// ConvTransposeError with an ERR_CONV_TRANSPOSE_* code (the same code on both backends).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeTested, repoRoot } from './helpers';

interface GarbageStats {
  cases: number;
  calls: number;
  results: number;
  errors: number;
  byCode: Record<string, number>;
  byEntry: Record<string, number>;
  skippedLarge: number;
  uncoded: string[];
  disagreements: string[];
  disagreementCount: number;
  backends: string[];
  ms: number;
}

const child = path.join(repoRoot, 'test', 'fixtures', 'garbage-child.js');
const COUNT = 10_000;

describe('random garbage (child process on dist/index.js)', () => {
  it(`${COUNT} seeded random calls: every one returns a correct result or throws a coded error, and nothing crashes`, () => {
    expect(fs.existsSync(path.join(repoRoot, 'dist', 'index.js')), 'dist/index.js missing: run npm run build:ts').toBe(true);
    const r = spawnSync(process.execPath, [child, String(COUNT), '20261125'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(r.error, String(r.error)).toBeUndefined();
    expect(r.signal, `child killed by ${r.signal} (a crash or a hang): ${r.stderr.slice(-3000)}`).toBeNull();
    expect(r.status, `child exited with ${r.status}: ${r.stderr.slice(-3000)}`).toBe(0);
    const lastLine = r.stdout.trim().split('\n').pop() ?? '';
    const s = JSON.parse(lastLine) as GarbageStats;
    const codes = Object.entries(s.byCode).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c.replace('ERR_CONV_TRANSPOSE_', '')} ${n}`).join(', ');
    console.log(
      `[garbage] ${s.cases} cases, ${s.calls} calls on ${s.backends.join(' + ')} in ${s.ms} ms: ${s.results} results, ` +
        `${s.errors} coded errors (${codes}); ${s.skippedLarge} valid cases with results over 2^20 elements not run; ` +
        `${s.disagreementCount} disagreements; crashes: 0`,
    );
    expect(s.cases).toBe(COUNT);
    expect(s.calls).toBeGreaterThanOrEqual(COUNT);
    if (nativeTested) expect(s.backends).toEqual(['js', 'native']);
    // the mix must really exercise both sides of the contract
    expect(s.results, 'too few valid calls').toBeGreaterThan(COUNT * 0.25);
    expect(s.errors, 'too few invalid calls').toBeGreaterThan(COUNT * 0.25);
    expect(Object.keys(s.byCode).length, 'too few distinct error codes').toBeGreaterThanOrEqual(15);
    for (const e of ['sync', 'async', 'outputShape', 'module']) expect(s.byEntry[e] ?? 0, `entry ${e}`).toBeGreaterThan(COUNT * 0.05);
    expect(s.uncoded, 'errors that are not coded ConvTransposeErrors').toEqual([]);
    expect(s.disagreements, `${s.disagreementCount} cases where a backend disagrees with the TypeScript path`).toEqual([]);
  });
});
