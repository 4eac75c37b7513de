// The TypeScript backend on worker threads (lib/js-threads.ts): large calls are cut into parts computed at once
// by the calling thread and workers. The bytes must not depend on the thread count, and the workers must never
// keep a process alive.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { convTranspose2d, convTranspose2dAsync } from '../lib/index';
import { PARALLEL_MIN_FLOPS, threadStats } from '../lib/js-threads';
import type { ConvTranspose2dOptions } from '../lib/types';
import { Rng, expectSameBytes, randTensor, relErr, refConvTranspose2d, repoRoot, type DT } from './helpers';

interface Case {
  name: string;
  x: number[];
  w: number[];
  o: ConvTranspose2dOptions;
}

// Each above PARALLEL_MIN_FLOPS, each cut a different way.
const cases: Case[] = [
  { name: 'over images', x: [6, 32, 16, 16], w: [32, 16, 4, 4], o: { stride: 2, padding: 1 } },
  { name: 'over output channels', x: [1, 64, 20, 20], w: [64, 50, 3, 3], o: { padding: 1 } },
  { name: 'over output channels of several images (weights larger than the input)', x: [8, 128, 2, 2], w: [128, 128, 4, 4], o: {} },
  { name: 'over groups', x: [1, 64, 32, 32], w: [64, 16, 4, 4], o: { stride: 2, padding: 1, groups: 4 } },
  { name: 'over output rows (one image, one channel)', x: [1, 16, 48, 48], w: [16, 1, 9, 9], o: { stride: 2, padding: 4, outputPadding: 1 } },
  { name: 'over output rows, stride above the kernel (bias-only rows)', x: [1, 32, 120, 100], w: [32, 2, 1, 3], o: { stride: [3, 1], padding: [0, 1] } },
  { name: 'over output rows with dilation and padding', x: [1, 48, 80, 80], w: [48, 1, 3, 3], o: { stride: 2, padding: 3, dilation: 3, outputPadding: 1 } },
  { name: 'over images (2 threads) or channels (3), with dilation and output padding', x: [2, 48, 24, 24], w: [48, 20, 3, 3], o: { stride: 2, dilation: 2, outputPadding: 1 } },
];

function flops(c: Case): number {
  const [N, Cin, H, W] = c.x as [number, number, number, number];
  const [, coutPg, kH, kW] = c.w as [number, number, number, number];
  return 2 * N * Cin * H * W * coutPg * kH * kW;
}

describe('TypeScript backend on worker threads', () => {
  for (const dtype of ['float32', 'float64'] as DT[]) {
    it.each(cases)(`$name (${dtype}): 1, 2 and 3 threads give the same bytes`, (c) => {
      expect(flops(c)).toBeGreaterThanOrEqual(PARALLEL_MIN_FLOPS);
      const rng = new Rng(7);
      const x = randTensor(rng, dtype, c.x);
      const w = randTensor(rng, dtype, c.w, 0.1);
      const Cout = (c.w[1] as number) * (c.o.groups ?? 1);
      const bias = randTensor(rng, dtype, [Cout]);
      const one = convTranspose2d(x, w, { ...c.o, bias, backend: 'js', threads: 1 });
      for (const threads of [2, 3]) {
        const before = threadStats.workerParts;
        expectSameBytes(convTranspose2d(x, w, { ...c.o, bias, backend: 'js', threads }), one, `${c.name}, ${threads} threads`);
        expect(threadStats.workerParts - before, 'parts computed by workers').toBe(threads - 1);
      }
      expect(threadStats.takenBack).toBe(0);
      const noBias = convTranspose2d(x, w, { ...c.o, backend: 'js', threads: 2 });
      expectSameBytes(noBias, convTranspose2d(x, w, { ...c.o, backend: 'js', threads: 1 }), `${c.name}, no bias`);
    });
  }

  it('a threaded result matches the float64 reference', () => {
    const c = cases[1] as Case;
    const rng = new Rng(8);
    const x = randTensor(rng, 'float64', c.x);
    const w = randTensor(rng, 'float64', c.w, 0.1);
    const y = convTranspose2d(x, w, { ...c.o, backend: 'js', threads: 2 });
    const ref = refConvTranspose2d(x, w, null, { sH: 1, sW: 1, pH: 1, pW: 1, dH: 1, dW: 1, opH: 0, opW: 0, groups: 1 });
    expect(relErr(y.data, ref.data)).toBeLessThan(1e-12);
  });

  it('async calls on the TypeScript backend use the threads too and agree with sync', async () => {
    const c = cases[0] as Case;
    const rng = new Rng(9);
    const x = randTensor(rng, 'float32', c.x);
    const w = randTensor(rng, 'float32', c.w, 0.1);
    const [a, b] = await Promise.all([
      convTranspose2dAsync(x, w, { ...c.o, backend: 'js', threads: 2 }),
      convTranspose2dAsync(x, w, { ...c.o, backend: 'js', threads: 2 }),
    ]);
    const s = convTranspose2d(x, w, { ...c.o, backend: 'js', threads: 1 });
    expectSameBytes(a, s, 'first async');
    expectSameBytes(b, s, 'second async');
  });

  it('a process that used the worker threads exits by itself (child process)', () => {
    const script = `
      const { convTranspose2d } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))});
      const x = { data: new Float32Array(6 * 32 * 256).fill(0.5), shape: [6, 32, 16, 16] };
      const w = { data: new Float32Array(32 * 16 * 16).fill(0.25), shape: [32, 16, 4, 4] };
      const y = convTranspose2d(x, w, { stride: 2, padding: 1, backend: 'js', threads: 2 });
      process.stdout.write(String(y.data[100]));
    `;
    // a worker keeping the process alive would run into the timeout: killed, status null
    const r = spawnSync(process.execPath, ['-e', script], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(Number(r.stdout)).toBeGreaterThan(0);
  });
});
