// Native vs TypeScript parity, determinism across thread counts, async behaviour, the `out` option, backend
// selection through the environment (child processes), and the binary's exports against binding.d.ts.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConvTranspose2d, convTranspose2d, convTranspose2dAsync, getBackend } from '../lib/index';
import type { ConvTranspose2dOptions, Tensor } from '../lib/types';
import {
  Rng, alloc, backends, describeCfg, expectSameBytes, makeProblem, nativeTested, randTensor, randomCfg,
  refConvTranspose2d, relErr, repoRoot, requireNative, tolFor, type CfgLimits, type Problem,
} from './helpers';

const distIndex = path.join(repoRoot, 'dist', 'index.js');

// ---------------------------------------------------------------------------------------------------------
describe.runIf(nativeTested)('native vs js on a random sweep', () => {
  const small: CfgLimits = { maxCpg: 6, maxCoutPg: 12, maxHW: 10, maxK: 5, maxN: 2, maxGroups: 3 };
  const big: CfgLimits = { maxCpg: 20, maxCoutPg: 40, maxHW: 20, maxK: 4, maxN: 2, maxGroups: 2 };
  let worst = 0;
  let worstCfg = '';
  afterAll(() => console.log(`[parity] native vs js: worst relative difference ${worst.toExponential(3)} (${worstCfg})`));

  it('520 configurations agree within tolerance', () => {
    const rng = new Rng(0xc0ffee);
    const failures: string[] = [];
    for (let i = 0; i < 520; i++) {
      const p = makeProblem(rng, randomCfg(rng, i % 10 === 9 ? big : small), false);
      const js = convTranspose2d(p.input, p.weight, { ...p.options, backend: 'js' });
      let nat: Tensor;
      try {
        // every third call writes into a NaN-filled `out`: no output element may be skipped (zero-tap phases, padding rows)
        if (i % 3 === 0) {
          const out = { data: alloc(p.cfg.dtype, js.data.length).fill(NaN), shape: [...js.shape] };
          nat = convTranspose2d(p.input, p.weight, { ...p.options, backend: 'native', out });
        } else {
          nat = convTranspose2d(p.input, p.weight, { ...p.options, backend: 'native' });
        }
      } catch (e) {
        failures.push(`${describeCfg(p.cfg)}: native threw ${(e as Error).message}`);
        continue;
      }
      if (JSON.stringify([...nat.shape]) !== JSON.stringify([...js.shape])) {
        failures.push(`${describeCfg(p.cfg)}: shapes [${nat.shape}] vs [${js.shape}]`);
        continue;
      }
      if (nat.data.constructor !== js.data.constructor) {
        failures.push(`${describeCfg(p.cfg)}: dtypes ${nat.data.constructor.name} vs ${js.data.constructor.name}`);
        continue;
      }
      const r = relErr(nat.data, js.data);
      if (r > worst) {
        worst = r;
        worstCfg = describeCfg(p.cfg);
      }
      if (!(r <= tolFor(p.cfg.dtype))) failures.push(`${describeCfg(p.cfg)}: relative difference ${r}`);
    }
    expect(failures.slice(0, 15), `${failures.length} of 520 configurations disagree`).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------
interface MidShape {
  name: string;
  x: number[];
  w: number[];
  o: ConvTranspose2dOptions;
}
const midShapes: MidShape[] = [
  { name: '2x32x17x19 -> 48, k3 s2 p1', x: [2, 32, 17, 19], w: [32, 48, 3, 3], o: { stride: 2, padding: 1 } },
  { name: '2x32x17x19 -> 48, k3 s2 p1 op1, groups 2', x: [2, 32, 17, 19], w: [32, 24, 3, 3], o: { stride: 2, padding: 1, outputPadding: 1, groups: 2 } },
  { name: 'depthwise 2x32x17x19, k3 s2 p1', x: [2, 32, 17, 19], w: [32, 1, 3, 3], o: { stride: 2, padding: 1, groups: 32 } },
  { name: 'depthwise x2 1x24x21x13, k5 s1 p2 d2', x: [1, 24, 21, 13], w: [24, 2, 5, 5], o: { padding: 2, dilation: 2, groups: 24 } },
  { name: 'unbatched 40x15x9 -> 33, k4 s[3,2] p1 d[1,2]', x: [40, 15, 9], w: [40, 33, 4, 4], o: { stride: [3, 2], padding: 1, dilation: [1, 2] } },
  // big enough to be split across threads on every path (the core stays single-threaded below ~3 MFLOP)
  { name: 'depthwise 2x64x40x44, k5 s2 p2 (parallel depthwise path)', x: [2, 64, 40, 44], w: [64, 1, 5, 5], o: { stride: 2, padding: 2, groups: 64 } },
  { name: 'batch 8x64x5x5 -> 64, k3 s2 (small phases: batch-inner ordering)', x: [8, 64, 5, 5], w: [64, 64, 3, 3], o: { stride: 2 } },
  { name: '1x8x140x140 -> 8, k3 p1 (phase > 16384 pixels)', x: [1, 8, 140, 140], w: [8, 8, 3, 3], o: { padding: 1 } },
  { name: '1x512x6x6 -> 16, k4 s2 p1 (long reduction)', x: [1, 512, 6, 6], w: [512, 16, 4, 4], o: { stride: 2, padding: 1 } },
];

describe.runIf(nativeTested)('native determinism', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    it.each(midShapes.map((s) => ({ ...s, label: s.name })))(`${dtype}: threads 1, 2, 3, 8 give identical bytes: $label`, (s) => {
      const rng = new Rng(123);
      const x = randTensor(rng, dtype, s.x);
      const w = randTensor(rng, dtype, s.w, 0.2);
      const Cout = (s.o.groups ?? 1) * s.w[1]!;
      const bias = randTensor(rng, dtype, [Cout]);
      const base = convTranspose2d(x, w, { ...s.o, bias, backend: 'native', threads: 1 });
      for (const threads of [2, 3, 8]) {
        const y = convTranspose2d(x, w, { ...s.o, bias, backend: 'native', threads });
        expectSameBytes(y, base, `threads ${threads}`);
      }
      // same call again: same bytes
      expectSameBytes(convTranspose2d(x, w, { ...s.o, bias, backend: 'native', threads: 2 }), base, 'repeat');
      // and it is correct
      const js = convTranspose2d(x, w, { ...s.o, bias, backend: 'js' });
      expect(relErr(base.data, js.data)).toBeLessThanOrEqual(tolFor(dtype));
    });
  }

  it('async equals sync byte for byte', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      for (const s of midShapes) {
        const rng = new Rng(5);
        const x = randTensor(rng, dtype, s.x);
        const w = randTensor(rng, dtype, s.w, 0.2);
        const sync = convTranspose2d(x, w, { ...s.o, backend: 'native' });
        const asy = await convTranspose2dAsync(x, w, { ...s.o, backend: 'native' });
        expectSameBytes(asy, sync, `${dtype} ${s.name}`);
        const asy3 = await convTranspose2dAsync(x, w, { ...s.o, backend: 'native', threads: 3 });
        expectSameBytes(asy3, sync, `${dtype} ${s.name} threads 3`);
      }
    }
  });

  it('200 concurrent async calls with distinct inputs equal their sync results', async () => {
    const rng = new Rng(2024);
    const problems: Problem[] = [];
    for (let i = 0; i < 200; i++) {
      const cfg = randomCfg(rng, { maxCpg: 6, maxCoutPg: 10, maxHW: 12, maxK: 4, maxN: 2, maxGroups: 2 });
      problems.push(makeProblem(rng, cfg, false));
    }
    const syncs = problems.map((p) => convTranspose2d(p.input, p.weight, { ...p.options, backend: 'native' }));
    const asyncs = await Promise.all(
      problems.map((p, i) => convTranspose2dAsync(p.input, p.weight, { ...p.options, backend: 'native', threads: 1 + (i % 3) })),
    );
    for (let i = 0; i < problems.length; i++) expectSameBytes(asyncs[i]!, syncs[i]!, describeCfg(problems[i]!.cfg));
  });

  it('async inputs may be mutated right after the call (inputs are copied, binding.d.ts)', async () => {
    const rng = new Rng(31);
    const x = randTensor(rng, 'float32', [2, 16, 20, 20]);
    const w = randTensor(rng, 'float32', [16, 16, 3, 3], 0.2);
    const bias = randTensor(rng, 'float32', [16]);
    const o = { stride: 2, padding: 1, bias, backend: 'native' as const };
    const sync = convTranspose2d(x, w, o);
    const p = convTranspose2dAsync(x, w, o);
    x.data.fill(0);
    w.data.fill(0);
    (bias.data as Float32Array).fill(0);
    expectSameBytes(await p, sync, 'mutated after call');
  });
});

describe.runIf(nativeTested)('native async runs off the JS thread', () => {
  it('the event loop keeps turning while a long async call computes', async () => {
    const rng = new Rng(3);
    const x = randTensor(rng, 'float32', [4, 128, 32, 32]);
    const w = randTensor(rng, 'float32', [128, 128, 4, 4], 0.05);
    let ticks = 0;
    let done = false;
    const t0 = performance.now();
    const p = convTranspose2dAsync(x, w, { stride: 2, padding: 1, backend: 'native' }).then((y) => {
      done = true;
      return y;
    });
    const spin = (): void => {
      if (!done) {
        ticks++;
        setImmediate(spin);
      }
    };
    setImmediate(spin);
    const y = await p;
    const ms = performance.now() - t0;
    expect([...y.shape]).toEqual([4, 128, 64, 64]);
    // at least one turn per ~2 ms of compute (a blocked loop would give ~0)
    expect(ticks, `${ticks} event-loop turns during ${ms.toFixed(1)} ms`).toBeGreaterThanOrEqual(Math.min(20, Math.floor(ms / 2)));
  });

  it('worker threads: the addon works in several workers at once, and terminating a busy worker does not abort (child process)', () => {
    const script = `
      const { Worker } = require('node:worker_threads');
      const m = require(${JSON.stringify(distIndex)});
      const code = \`
        const { parentPort, workerData } = require('node:worker_threads');
        const m = require(\${JSON.stringify(${JSON.stringify(distIndex)})});
        const n = 2 * 16 * 12 * 12;
        const x = { data: Float32Array.from({ length: n }, (_, i) => Math.sin(i + workerData)), shape: [2, 16, 12, 12] };
        const w = { data: Float32Array.from({ length: 16 * 8 * 9 }, (_, i) => Math.cos(i) / 8), shape: [16, 8, 3, 3] };
        (async () => {
          const a = m.convTranspose2d(x, w, { stride: 2, backend: 'native' });
          const b = await m.convTranspose2dAsync(x, w, { stride: 2, backend: 'native' });
          const same = Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer));
          parentPort.postMessage({ same, backend: m.getBackend().name, first: a.data[0] });
          if (workerData === 99) {
            // keep a big async call running so that the parent terminates us mid-flight
            const X = { data: new Float32Array(4 * 128 * 32 * 32).fill(0.5), shape: [4, 128, 32, 32] };
            const W = { data: new Float32Array(128 * 128 * 16).fill(0.01), shape: [128, 128, 4, 4] };
            for (;;) await m.convTranspose2dAsync(X, W, { stride: 2, padding: 1, backend: 'native' });
          }
        })();
      \`;
      const results = [];
      const run = (id) => new Promise((resolve, reject) => {
        const wk = new Worker(code, { eval: true, workerData: id });
        wk.once('message', (msg) => { results.push(msg); if (id === 99) setTimeout(() => wk.terminate().then(resolve, reject), 30); else resolve(); });
        wk.once('error', reject);
      });
      Promise.all([run(1), run(2), run(3), run(99)]).then(async () => {
        // the main thread still computes correctly afterwards
        const y = await m.convTranspose2dAsync({ data: new Float32Array([1]), shape: [1, 1, 1, 1] }, { data: new Float32Array([2]), shape: [1, 1, 1, 1] }, { backend: 'native' });
        process.stdout.write(JSON.stringify({ results, main: y.data[0] }));
      }, (e) => { console.error(e); process.exit(3); });
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, `child killed by ${r.signal}: ${r.stderr}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { results: { same: boolean; backend: string }[]; main: number };
    expect(out.results).toHaveLength(4);
    for (const res of out.results) {
      expect(res.same).toBe(true);
      expect(res.backend).toBe('native');
    }
    expect(out.main).toBe(2);
  });

  it('process.exit() while async calls compute exits promptly and cleanly (TOOLCHAIN T11; child process)', () => {
    const script = (queue: boolean): string => `
      const m = require(${JSON.stringify(distIndex)});
      const X = { data: new Float32Array(8 * 256 * 32 * 32).fill(0.5), shape: [8, 256, 32, 32] };
      const W = { data: new Float32Array(256 * 256 * 16).fill(0.01), shape: [256, 256, 4, 4] };
      const t0 = Date.now();
      if (process.argv[1] === 'time') { m.convTranspose2d(X, W, { stride: 2, padding: 1, backend: 'native' }); process.stdout.write(String(Date.now() - t0)); process.exit(0); }
      ${queue ? "for (let i = 0; i < 4; i++) m.convTranspose2dAsync(X, W, { stride: 2, padding: 1, backend: 'native' });" : ''}
      setTimeout(() => process.exit(0), 20);
    `;
    const run = (queue: boolean, arg = ''): { ms: number; r: ReturnType<typeof spawnSync> } => {
      const t0 = Date.now();
      const r = spawnSync(process.execPath, ['-e', script(queue), arg], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
      return { ms: Date.now() - t0, r };
    };
    const oneCall = Number(run(false, 'time').r.stdout);
    const baseline = run(false).ms;
    const { ms, r } = run(true);
    expect(r.signal, `child killed by ${r.signal}: ${r.stderr}`).toBeNull();
    expect(r.status, String(r.stderr)).toBe(0);
    // Only meaningful when the queued work is long compared with start-up; then exit must not wait for it.
    if (oneCall > 300) {
      expect(ms - baseline, `exit waited for the running kernels: ${ms} ms vs ${baseline} ms without them (one call: ${oneCall} ms)`)
        .toBeLessThan(Math.max(250, oneCall / 2));
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
describe.each(backends)('`out` option, backend $backend', ({ backend }) => {
  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: returns out, fully overwritten even when pre-filled with NaN`, async () => {
      const rng = new Rng(8);
      const x = randTensor(rng, dtype, [2, 3, 5, 4]);
      const w = randTensor(rng, dtype, [3, 2, 3, 3]);
      const o: ConvTranspose2dOptions = { stride: [2, 3], padding: [2, 0], outputPadding: [1, 0], groups: 1, backend };
      const ref = convTranspose2d(x, w, o);
      const data = alloc(dtype, ref.data.length).fill(NaN);
      const out: Tensor = { data, shape: [...ref.shape] };
      const res = convTranspose2d(x, w, { ...o, out });
      expect(res).toBe(out);
      expect(res.data).toBe(data);
      expect([...res.shape]).toEqual([...ref.shape]);
      expectSameBytes(res, ref, 'out vs fresh');
      // stride 3 with k3 in W: no tap gaps, but stride 2 p2 in H leaves none either; use a gap-leaving one too
      const o2: ConvTranspose2dOptions = { stride: 4, backend }; // k3 s4: every 4th row/col gets no tap (zeros)
      const ref2 = convTranspose2d(x, w, o2);
      const out2: Tensor = { data: alloc(dtype, ref2.data.length).fill(NaN), shape: [...ref2.shape] };
      const res2 = convTranspose2d(x, w, { ...o2, out: out2 });
      expect(res2).toBe(out2);
      expectSameBytes(res2, ref2, 'gaps are written');
      for (const v of res2.data) expect(Number.isNaN(v)).toBe(false);
      // async with out
      const out3: Tensor = { data: alloc(dtype, ref.data.length).fill(NaN), shape: [...ref.shape] };
      const res3 = await convTranspose2dAsync(x, w, { ...o, out: out3 });
      expect(res3).toBe(out3);
      expectSameBytes(res3, ref, 'async out');
    });
  }

  it('out as a view at an offset into a bigger buffer writes only its window', () => {
    const rng = new Rng(9);
    const x = randTensor(rng, 'float32', [1, 2, 4, 4]);
    const w = randTensor(rng, 'float32', [2, 3, 3, 3]);
    const ref = convTranspose2d(x, w, { backend });
    const n = ref.data.length;
    const big = new Float32Array(n + 16).fill(-7);
    const view = new Float32Array(big.buffer, 8 * 4, n);
    const res = convTranspose2d(x, w, { backend, out: { data: view, shape: [...ref.shape] } });
    expect(res.data).toBe(view);
    expectSameBytes(res, ref, 'window');
    for (let i = 0; i < 8; i++) expect(big[i]).toBe(-7);
    for (let i = 8 + n; i < n + 16; i++) expect(big[i]).toBe(-7);
  });
});

// ---------------------------------------------------------------------------------------------------------
describe('getBackend', () => {
  it('reports a consistent shape', () => {
    const b = getBackend();
    expect(['native', 'js']).toContain(b.name);
    expect(Number.isInteger(b.threads) && b.threads >= 1).toBe(true);
    if (b.name === 'js') expect(typeof b.loadError === 'string' || b.loadError === undefined).toBe(true);
  });
  it.runIf(nativeTested)('is native with an isa when native is tested', () => {
    const b = getBackend();
    expect(b.name, `native backend not loaded: ${b.loadError ?? ''}`).toBe('native');
    expect(typeof b.isa).toBe('string');
    expect(['avx512', 'avx2', 'sse2', 'neon', 'scalar']).toContain(b.isa);
  });
  it.runIf(requireNative)('CONV_TRANSPOSE_NATIVE=required: the native backend loaded', () => {
    expect(getBackend().name).toBe('native');
  });
});

// ---------------------------------------------------------------------------------------------------------
function childScript(): { script: string; x: Tensor; w: Tensor; b: Float64Array } {
  const rng = new Rng(77);
  const x = randTensor(rng, 'float64', [2, 3, 4, 5]);
  const w = randTensor(rng, 'float64', [3, 2, 3, 2]);
  const b = randTensor(rng, 'float64', [2]).data as Float64Array; // Cout = groups * weight.shape[1] = 2
  const script = `
    const m = require(${JSON.stringify(distIndex)});
    const x = { data: Float64Array.from(${JSON.stringify(Array.from(x.data))}), shape: [2, 3, 4, 5] };
    const w = { data: Float64Array.from(${JSON.stringify(Array.from(w.data))}), shape: [3, 2, 3, 2] };
    const bias = Float64Array.from(${JSON.stringify(Array.from(b))});
    const y = m.convTranspose2d(x, w, { stride: [2, 1], padding: [1, 0], outputPadding: [1, 0], dilation: [1, 2], groups: 1, bias });
    const be = m.getBackend();
    process.stdout.write(JSON.stringify({ backend: be, shape: Array.from(y.shape), data: Array.from(y.data) }));
  `;
  return { script, x, w, b };
}

function runChild(env: Record<string, string>): { backend: { name: string; isa?: string }; shape: number[]; data: number[] } {
  const { script } = childScript();
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.status, `child failed: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
}

describe('backend forced through CONV_TRANSPOSE_BACKEND (child processes on dist/index.js)', () => {
  it('dist/index.js exists (npm test builds it before vitest)', () => {
    expect(fs.existsSync(distIndex), `${distIndex} missing: run npm run build:ts`).toBe(true);
  });

  it('CONV_TRANSPOSE_BACKEND=js gives the js backend and a correct result', () => {
    const { x, w, b } = childScript();
    const res = runChild({ CONV_TRANSPOSE_BACKEND: 'js' });
    expect(res.backend.name).toBe('js');
    const ref = refConvTranspose2d(x, w, b, { sH: 2, sW: 1, pH: 1, pW: 0, dH: 1, dW: 2, opH: 1, opW: 0, groups: 1 });
    expect(res.shape).toEqual(ref.shape);
    expect(relErr(res.data, ref.data)).toBeLessThanOrEqual(1e-12);
  });

  it.runIf(nativeTested)('CONV_TRANSPOSE_BACKEND=native gives the native backend and a correct result', () => {
    const { x, w, b } = childScript();
    const res = runChild({ CONV_TRANSPOSE_BACKEND: 'native' });
    expect(res.backend.name).toBe('native');
    expect(typeof res.backend.isa).toBe('string');
    const ref = refConvTranspose2d(x, w, b, { sH: 2, sW: 1, pH: 1, pW: 0, dH: 1, dW: 2, opH: 1, opW: 0, groups: 1 });
    expect(res.shape).toEqual(ref.shape);
    expect(relErr(res.data, ref.data)).toBeLessThanOrEqual(1e-12);
  });
});

// ---------------------------------------------------------------------------------------------------------
interface Binding {
  PROBLEM_LENGTH: number;
  POOLED_RESULT_MIN_BYTES: number;
  convTranspose2d: (...a: unknown[]) => Float32Array | Float64Array;
  convTranspose2dAsync: (...a: unknown[]) => Promise<Float32Array | Float64Array>;
  info: () => { isa: string; isaAvailable: string[]; hardwareConcurrency: number; napiVersion: number };
  setIsa: (isa: string) => void;
  createWeightCache: () => object;
}

function loadBinding(): Binding {
  const req = createRequire(__filename);
  return (req('node-gyp-build') as (dir: string) => Binding)(repoRoot);
}

describe.runIf(nativeTested)('the binary against binding.d.ts', () => {
  it('exports exactly the names binding.d.ts declares, with the declared types', () => {
    const b = loadBinding();
    const dts = fs.readFileSync(path.join(repoRoot, 'binding.d.ts'), 'utf8');
    const declared = new Map<string, string>();
    for (const m of dts.matchAll(/^export\s+(function|const)\s+([A-Za-z_$][\w$]*)/gm)) declared.set(m[2]!, m[1]!);
    expect([...declared.keys()].sort()).toEqual([
      'POOLED_RESULT_MIN_BYTES', 'PROBLEM_LENGTH', 'convTranspose2d', 'convTranspose2dAsync', 'createWeightCache', 'info', 'setIsa',
    ]);
    const actual = Object.keys(b).filter((k) => k !== 'default' && k !== 'path');
    expect(actual.sort()).toEqual([...declared.keys()].sort());
    for (const [name, kind] of declared) {
      expect(typeof (b as unknown as Record<string, unknown>)[name], name).toBe(kind === 'function' ? 'function' : 'number');
    }
    expect(b.PROBLEM_LENGTH).toBe(16);
    expect(b.POOLED_RESULT_MIN_BYTES).toBe(64 * 1024);
  });

  it('info() has the declared fields', () => {
    const b = loadBinding();
    const info = b.info();
    expect(Object.keys(info).sort()).toEqual(['hardwareConcurrency', 'isa', 'isaAvailable', 'napiVersion']);
    expect(['avx512', 'avx2', 'sse2', 'neon', 'scalar']).toContain(info.isa);
    expect(Array.isArray(info.isaAvailable)).toBe(true);
    expect(info.isaAvailable.length).toBeGreaterThanOrEqual(1);
    for (const i of info.isaAvailable) expect(typeof i).toBe('string');
    expect(info.isaAvailable).toContain(info.isa);
    expect(Number.isInteger(info.hardwareConcurrency) && info.hardwareConcurrency >= 1).toBe(true);
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { binary: { napi_versions: number[] } };
    expect(pkg.binary.napi_versions).toContain(info.napiVersion);
    expect(getBackend().isa).toBe(info.isa);
  });

  it('setIsa rejects unknown instruction sets and accepts the available ones', () => {
    const b = loadBinding();
    const info = b.info();
    expect(() => b.setIsa('definitely-not-an-isa')).toThrow();
    expect(b.info().isa).toBe(info.isa);
    b.setIsa(info.isa);
    expect(b.info().isa).toBe(info.isa);
  });

  it('every available isa computes the same as the js backend', () => {
    const b = loadBinding();
    const original = b.info().isa;
    try {
      for (const isa of b.info().isaAvailable) {
        b.setIsa(isa);
        expect(b.info().isa).toBe(isa);
        const rng = new Rng(1000 + isa.length);
        const failures: string[] = [];
        for (let i = 0; i < 60; i++) {
          const p = makeProblem(rng, randomCfg(rng, { maxCpg: 9, maxCoutPg: 20, maxHW: 11, maxK: 4, maxN: 2, maxGroups: 3 }), false);
          const js = convTranspose2d(p.input, p.weight, { ...p.options, backend: 'js' });
          const nat = convTranspose2d(p.input, p.weight, { ...p.options, backend: 'native' });
          const r = relErr(nat.data, js.data);
          if (!(r <= tolFor(p.cfg.dtype))) failures.push(`${isa}: ${describeCfg(p.cfg)}: ${r}`);
        }
        expect(failures.slice(0, 10)).toEqual([]);
      }
    } finally {
      b.setIsa(original);
    }
  });

  it('every available isa is deterministic across thread counts and agrees with js on the mid-size shapes', () => {
    const b = loadBinding();
    const original = b.info().isa;
    try {
      for (const isa of b.info().isaAvailable) {
        b.setIsa(isa);
        for (const dtype of ['float32', 'float64'] as const) {
          for (const s of midShapes) {
            const rng = new Rng(17);
            const x = randTensor(rng, dtype, s.x);
            const w = randTensor(rng, dtype, s.w, 0.2);
            const y1 = convTranspose2d(x, w, { ...s.o, backend: 'native', threads: 1 });
            const y3 = convTranspose2d(x, w, { ...s.o, backend: 'native', threads: 3 });
            expectSameBytes(y3, y1, `${isa} ${dtype} ${s.name}`);
            const js = convTranspose2d(x, w, { ...s.o, backend: 'js' });
            expect(relErr(y1.data, js.data), `${isa} ${dtype} ${s.name}`).toBeLessThanOrEqual(tolFor(dtype));
          }
        }
      }
    } finally {
      b.setIsa(original);
    }
  });

  it('inconsistent raw binding calls throw coded errors instead of crashing (child process)', () => {
    const script = `
      const b = require('node-gyp-build')(${JSON.stringify(repoRoot)});
      const res = {};
      const P = (a) => Float64Array.from(a);
      // N, Cin, H, W, Cout, kH, kW, sH, sW, pH, pW, dH, dW, groups, Hout, Wout
      const good = [1, 2, 4, 4, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1, 6, 6];
      const x = new Float32Array(32), w = new Float32Array(54), bias = new Float32Array(3);
      for (let i = 0; i < 32; i++) x[i] = i / 7; for (let i = 0; i < 54; i++) w[i] = (i % 5) - 2;
      const t = (name, f) => { try { f(); res[name] = 'no-throw'; } catch (e) { res[name] = { code: e && e.code, message: String(e && e.message) }; } };
      let ok;
      t('good', () => { ok = b.convTranspose2d(P(good), x, w, bias, null, 1); });
      res.good = ok instanceof Float32Array && ok.length === 108 ? 'ok' : res.good;
      t('short_x', () => b.convTranspose2d(P(good), new Float32Array(5), w, null, null, 1));
      t('short_w', () => b.convTranspose2d(P(good), x, new Float32Array(5), null, null, 1));
      t('short_bias', () => b.convTranspose2d(P(good), x, w, new Float32Array(1), null, 1));
      t('short_out', () => b.convTranspose2d(P(good), x, w, null, new Float32Array(10), 1));
      t('mixed_dtype', () => b.convTranspose2d(P(good), x, new Float64Array(54), null, null, 1));
      t('problem_length', () => b.convTranspose2d(P([1, 2, 3]), x, w, null, null, 1));
      t('problem_not_typed', () => b.convTranspose2d(good, x, w, null, null, 1));
      t('hout_inconsistent', () => { const p = good.slice(); p[14] = 1000; b.convTranspose2d(P(p), x, w, null, new Float32Array(3 * 1000 * 6), 1); });
      t('groups_zero', () => { const p = good.slice(); p[13] = 0; b.convTranspose2d(P(p), x, w, null, null, 1); });
      t('huge_batch', () => { const p = good.slice(); p[0] = 2 ** 40; b.convTranspose2d(P(p), x, w, null, null, 1); });
      t('negative_dims', () => { const p = good.slice(); p[2] = -4; b.convTranspose2d(P(p), x, w, null, null, 1); });
      t('x_not_typed', () => b.convTranspose2d(P(good), [1, 2, 3], w, null, null, 1));
      t('int32_x', () => b.convTranspose2d(P(good), new Int32Array(32), w, null, null, 1));
      t('async_short_x', () => b.convTranspose2dAsync(P(good), new Float32Array(5), w, null, null, 1).catch(() => {}));
      t('cache_not_a_cache', () => b.convTranspose2d(P(good), x, w, null, null, 1, {}));
      t('cache_wrapped_elsewhere', () => b.convTranspose2d(P(good), x, w, null, null, 1, new (require('events'))()));
      t('too_many_args', () => b.convTranspose2d(P(good), x, w, null, null, 1, null, 1));
      t('cache_short_w', () => b.convTranspose2d(P(good), x, new Float32Array(5), null, null, 1, b.createWeightCache()));
      (async () => {
        // inputs detached right after an async call: the binding copied them
        const x2 = new Float32Array(x), w2 = new Float32Array(w);
        const p = b.convTranspose2dAsync(P(good), x2, w2, bias, null, 1);
        structuredClone(x2.buffer, { transfer: [x2.buffer] });
        structuredClone(w2.buffer, { transfer: [w2.buffer] });
        const y = await p;
        res.detach_inputs = Buffer.from(y.buffer, y.byteOffset, y.byteLength).equals(Buffer.from(ok.buffer, ok.byteOffset, ok.byteLength)) ? 'ok' : 'differs';
        // out detached while pending: the promise rejects (or resolves), but nothing crashes
        const out = new Float32Array(108);
        const p2 = b.convTranspose2dAsync(P(good), x, w, bias, out, 1);
        structuredClone(out.buffer, { transfer: [out.buffer] });
        try { await p2; res.detach_out = 'resolved'; } catch (e) { res.detach_out = 'rejected'; }
        process.stdout.write(JSON.stringify(res));
      })();
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, `child crashed: ${r.stderr}`).toBeNull();
    expect(r.status, `child failed: ${r.stderr}`).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, string | { code?: string; message: string }>;
    expect(res.good).toBe('ok');
    for (const k of [
      'short_x', 'short_w', 'short_bias', 'short_out', 'mixed_dtype', 'problem_length', 'problem_not_typed', 'hout_inconsistent',
      'groups_zero', 'huge_batch', 'negative_dims', 'x_not_typed', 'int32_x', 'cache_not_a_cache', 'cache_wrapped_elsewhere',
      'too_many_args', 'cache_short_w',
    ]) {
      const v = res[k];
      expect(v, `${k}: did not throw`).not.toBe('no-throw');
      expect(typeof v === 'object' && /^ERR_CONV_TRANSPOSE_/.test(v.code ?? ''), `${k}: ${JSON.stringify(v)}`).toBe(true);
    }
    expect(res.detach_inputs).toBe('ok');
    expect(['rejected', 'resolved']).toContain(res.detach_out);
  });
});


// ---------------------------------------------------------------------------------------------------------
describe.runIf(nativeTested)('the weight cache (packed weights kept between calls)', () => {
  // N, Cin, H, W, Cout, kH, kW, sH, sW, pH, pW, dH, dW, groups, Hout, Wout
  const problem = (N: number, H: number, W: number, Cin = 6, Cout = 10, k = 4) =>
    Float64Array.from([N, Cin, H, W, Cout, k, k, 2, 2, 1, 1, 1, 1, 1, 2 * H - 4 + k, 2 * W - 4 + k]);
  const rand = (rng: Rng, n: number, dtype: 'float32' | 'float64' = 'float32') => {
    const a = alloc(dtype, n);
    for (let i = 0; i < n; i++) a[i] = rng.sym();
    return a;
  };
  const same = (a: Float32Array | Float64Array, b: Float32Array | Float64Array, what: string) =>
    expectSameBytes({ data: a, shape: [a.length] }, { data: b, shape: [b.length] }, what);
  type Raw = (p: Float64Array, x: Float32Array | Float64Array, w: Float32Array | Float64Array, b: null, o: null, t: number, c?: object) => Float32Array;

  it('gives the bytes of an uncached call, for other batch and spatial sizes, and sees weights changed in place', () => {
    const b = loadBinding();
    const run = b.convTranspose2d as unknown as Raw;
    const cache = b.createWeightCache();
    const rng = new Rng(31);
    const w = rand(rng, 6 * 10 * 16);
    for (const [N, H, W] of [[2, 5, 5], [1, 9, 3], [3, 5, 5], [2, 5, 5]] as const) {
      const x = rand(rng, N * 6 * H * W);
      same(run(problem(N, H, W), x, w, null, null, 2, cache), run(problem(N, H, W), x, w, null, null, 2), `${N}x${H}x${W}`);
    }
    const x = rand(rng, 2 * 6 * 25);
    w[17] += 0.5; // in place, after the cache holds the old values
    same(run(problem(2, 5, 5), x, w, null, null, 2, cache), run(problem(2, 5, 5), x, w, null, null, 2), 'weight changed in place');
    const w2 = rand(rng, 6 * 10 * 16);
    same(run(problem(2, 5, 5), x, w2, null, null, 1, cache), run(problem(2, 5, 5), x, w2, null, null, 1), 'another array');
    // another geometry (channels and kernel) and another dtype through the same cache
    const w3 = rand(rng, 6 * 4 * 9);
    same(run(problem(2, 5, 5, 6, 4, 3), x, w3, null, null, 1, cache), run(problem(2, 5, 5, 6, 4, 3), x, w3, null, null, 1), 'other geometry');
    const x64 = Float64Array.from(x);
    const w64 = Float64Array.from(w);
    same(run(problem(2, 5, 5), x64, w64, null, null, 1, cache), run(problem(2, 5, 5), x64, w64, null, null, 1), 'float64');
  });

  it('an async call uses the weights as they were when it was made', async () => {
    const b = loadBinding();
    const runAsync = b.convTranspose2dAsync as unknown as (...a: Parameters<Raw>) => Promise<Float32Array>;
    const run = b.convTranspose2d as unknown as Raw;
    const cache = b.createWeightCache();
    const rng = new Rng(32);
    const w = rand(rng, 6 * 10 * 16);
    const x = rand(rng, 2 * 6 * 25);
    const expected = run(problem(2, 5, 5), x, w, null, null, 1);
    const pending = runAsync(problem(2, 5, 5), x, w, null, null, 2, cache);
    w.fill(0); // the call packed (or compared) w before returning
    same(await pending, expected, 'async with the cache');
    same(run(problem(2, 5, 5), x, w, null, null, 1, cache), run(problem(2, 5, 5), x, w, null, null, 1), 'zeroed weights');
  });

  it('a module keeps giving the functional result while its weights are replaced or written in place', async () => {
    const m = new ConvTranspose2d(8, 12, 4, { stride: 2, padding: 1, seed: 5 });
    const rng = new Rng(33);
    const x = randTensor(rng, 'float32', [3, 8, 6, 6]);
    const functional = () => convTranspose2d(x, m.weight, { bias: m.bias, stride: 2, padding: 1, backend: 'native' });
    expectSameBytes(m.forward(x), functional(), 'first forward');
    expectSameBytes(m.forward(x), functional(), 'second forward (packed weights reused)');
    m.weight.data[3] = 2;
    expectSameBytes(await m.forwardAsync(x), functional(), 'async after an in-place write');
    m.weight = randTensor(rng, 'float32', [8, 12, 4, 4]);
    expectSameBytes(m.forward(x), functional(), 'after assigning a new weight');
  });
});
