// Short soak (issue 5.5): scripts/soak.js in a child process (with --expose-gc), 20,000 sync + 2,000 async calls over
// varied shapes on each backend; memory after the warm-up must not keep growing. The long run is `npm run soak`.
// The native binding keeps a bounded pool of recycled result blocks (CONV_TRANSPOSE_POOL_MB, 256 MiB by default);
// it is capped at 32 MiB here so that the bound on RSS is tight.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backends, repoRoot } from './helpers';

interface Sample { calls: number; rss: number; external: number; arrayBuffers: number; heapUsed: number }
interface SoakResult {
  backend: string;
  calls: number;
  errors: Record<string, number>;
  samples: Sample[];
  growth: { rss: number; external: number; arrayBuffers: number; heapUsed: number; fromCalls: number };
}

const MiB = 1024 * 1024;

describe.each(backends)('short soak, backend $backend', ({ backend }) => {
  it('20,000 sync + 2,000 async calls: no growth beyond a bound after the warm-up, only coded errors', () => {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'soak.js'), '--sync', '20000', '--async', '2000', '--rows', '10', '--backend', backend, '--json'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 180_000,
      env: { ...process.env, CONV_TRANSPOSE_POOL_MB: '32' },
    });
    expect(r.signal, `child killed by ${r.signal}: ${r.stderr}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as SoakResult;
    const fmt = (b: number): string => (b / MiB).toFixed(1);
    console.log(
      `[soak] ${backend}: ${res.calls} calls; RSS MiB ${res.samples.map((s) => fmt(s.rss)).join(' → ')}; ` +
        `growth after ${res.growth.fromCalls} calls: RSS ${fmt(res.growth.rss)}, external ${fmt(res.growth.external)}, arrayBuffers ${fmt(res.growth.arrayBuffers)} MiB`,
    );
    expect(res.calls).toBe(22_000);
    expect(res.backend).toBe(backend);
    expect(Object.keys(res.errors)).toEqual(['ERR_CONV_TRANSPOSE_STRIDE']); // the deliberate invalid calls, nothing else
    expect(res.growth.rss, 'RSS growth after the warm-up').toBeLessThan(64 * MiB);
    expect(res.growth.external, 'external memory growth after the warm-up').toBeLessThan(48 * MiB);
    expect(res.growth.arrayBuffers, 'ArrayBuffer memory growth after the warm-up').toBeLessThan(32 * MiB);
    const peak = Math.max(...res.samples.map((s) => s.rss));
    expect(peak - res.samples[0]!.rss, 'peak RSS above the start').toBeLessThan(256 * MiB);
  });
});
