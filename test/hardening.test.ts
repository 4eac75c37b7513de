// Hardening (issue 5.1): the bad-input matrix a server with user-controlled shapes can throw at the library, on every
// backend, synchronously and asynchronously. Complements validation.test.ts (which covers each parameter's own
// rejections): here every case runs through convTranspose2d AND convTranspose2dAsync (same code, a rejection rather
// than a throw), plus the cases validation.test.ts does not reach: BigInt / string / null data anywhere, shapes that
// are not arrays or whose products overflow, detached inputs, views at every alignment, N = 0 on the async path,
// results too large to allocate, parameters at or above 2^31, shapes that change while they are read, the module.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConvTranspose2d, ConvTransposeError, ErrorCodes, convTranspose2d, convTranspose2dAsync, outputShape, setNumThreads,
} from '../lib/index';
import type { ConvTranspose2dOptions, Tensor } from '../lib/types';
import {
  Rng, backends, caught, expectAsyncCode, expectCode, expectSameBytes, nativeTested, randTensor, refConvTranspose2d, relErr,
  repoRoot, tolFor,
} from './helpers';

const distIndex = path.join(repoRoot, 'dist', 'index.js');
const rng = new Rng(5150);
const x32 = randTensor(rng, 'float32', [2, 4, 5, 5]);
const w32 = randTensor(rng, 'float32', [4, 3, 3, 3]);
const b32 = randTensor(rng, 'float32', [3]);
const x64 = randTensor(rng, 'float64', [2, 4, 5, 5]);
const w64 = randTensor(rng, 'float64', [4, 3, 3, 3]);
const OUT_SHAPE = [2, 3, 7, 7];
const OUT_LEN = 2 * 3 * 49;

const detached = (n: number, C: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array): Float32Array | Float64Array => {
  const a = new C(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
};
const as = <T>(v: unknown): T => v as T;

interface Case {
  name: string;
  args: () => [unknown, unknown, ConvTranspose2dOptions?];
  code: string;
}

// Every case is built fresh for each run (detaching is one-way).
const matrix: Case[] = [
  // wrong kinds of data
  { name: 'input data a string', args: () => [{ data: 'abc', shape: [2, 4, 5, 5] }, w32], code: ErrorCodes.DTYPE },
  { name: 'input data null', args: () => [{ data: null, shape: [2, 4, 5, 5] }, w32], code: ErrorCodes.DTYPE },
  { name: 'input data a BigUint64Array', args: () => [{ data: new BigUint64Array(200), shape: [2, 4, 5, 5] }, w32], code: ErrorCodes.DTYPE },
  { name: 'input data a DataView', args: () => [{ data: new DataView(new ArrayBuffer(800)), shape: [2, 4, 5, 5] }, w32], code: ErrorCodes.DTYPE },
  { name: 'input data an ArrayBuffer', args: () => [{ data: new ArrayBuffer(800), shape: [2, 4, 5, 5] }, w32], code: ErrorCodes.DTYPE },
  { name: 'weight data a BigInt64Array', args: () => [x32, { data: new BigInt64Array(108), shape: [4, 3, 3, 3] }], code: ErrorCodes.DTYPE },
  { name: 'weight data a plain array', args: () => [x32, { data: Array.from(w32.data), shape: [4, 3, 3, 3] }], code: ErrorCodes.DTYPE },
  { name: 'weight data a string', args: () => [x32, { data: 'w', shape: [4, 3, 3, 3] }], code: ErrorCodes.DTYPE },
  { name: 'bias a BigInt64Array', args: () => [x32, w32, { bias: as(new BigInt64Array(3)) }], code: ErrorCodes.DTYPE },
  { name: 'bias tensor with BigUint64Array data', args: () => [x32, w32, { bias: as({ data: new BigUint64Array(3), shape: [3] }) }], code: ErrorCodes.DTYPE },
  { name: 'bias of the other float dtype', args: () => [x64, w64, { bias: new Float32Array(3) }], code: ErrorCodes.DTYPE },
  { name: 'bias a number', args: () => [x32, w32, { bias: as(3) }], code: ErrorCodes.INVALID_ARGUMENT },
  { name: 'out data a BigInt64Array', args: () => [x32, w32, { out: as({ data: new BigInt64Array(OUT_LEN), shape: OUT_SHAPE }) }], code: ErrorCodes.DTYPE },
  { name: 'out data a plain array', args: () => [x32, w32, { out: as({ data: new Array(OUT_LEN).fill(0), shape: OUT_SHAPE }) }], code: ErrorCodes.DTYPE },
  { name: 'out of the other float dtype', args: () => [x64, w64, { out: { data: new Float32Array(OUT_LEN), shape: OUT_SHAPE } }], code: ErrorCodes.DTYPE },
  { name: 'out a string', args: () => [x32, w32, { out: as('out') }], code: ErrorCodes.OUT },
  { name: 'out a bare Float32Array (not a tensor)', args: () => [x32, w32, { out: as(new Float32Array(OUT_LEN)) }], code: ErrorCodes.OUT },
  { name: 'input and weight of different dtypes', args: () => [x64, w32], code: ErrorCodes.DTYPE },
  // tensors and shapes that are not what they claim
  { name: 'input a typed array (no shape)', args: () => [x32.data, w32], code: ErrorCodes.INVALID_ARGUMENT },
  { name: 'weight undefined', args: () => [x32, undefined], code: ErrorCodes.INVALID_ARGUMENT },
  { name: 'input shape an Int32Array', args: () => [{ data: x32.data, shape: Int32Array.from([2, 4, 5, 5]) }, w32], code: ErrorCodes.INVALID_ARGUMENT },
  { name: 'input shape null', args: () => [{ data: x32.data, shape: null }, w32], code: ErrorCodes.INVALID_ARGUMENT },
  { name: 'input shape with a BigInt entry', args: () => [{ data: x32.data, shape: [2n, 4, 5, 5] }, w32], code: ErrorCodes.INVALID_ARGUMENT },
  { name: 'input shape with 2^53', args: () => [{ data: x32.data, shape: [2, 4, 5, 2 ** 53] }, w32], code: ErrorCodes.INVALID_ARGUMENT },
  { name: 'input shape with -0', args: () => [{ data: new Float32Array(0), shape: [-0, 4, 5, 5] }, w32], code: 'ok' },
  { name: 'input shape product 2^80 (overflows 2^53)', args: () => [{ data: x32.data, shape: [2 ** 20, 4, 2 ** 30, 2 ** 30] }, w32], code: ErrorCodes.DATA_LENGTH },
  { name: 'input shape product 2^32 (over the typed-array limit)', args: () => [{ data: x32.data, shape: [2 ** 16, 4, 2 ** 8, 2 ** 6] }, w32], code: ErrorCodes.DATA_LENGTH },
  { name: 'weight shape product overflows', args: () => [x32, { data: w32.data, shape: [4, 2 ** 40, 2 ** 10, 2 ** 10] }], code: ErrorCodes.TOO_LARGE },
  { name: 'input shape of rank 5', args: () => [{ data: x32.data, shape: [1, 2, 4, 5, 5] }, w32], code: ErrorCodes.INPUT_RANK },
  { name: 'input shape of rank 0', args: () => [{ data: new Float32Array(1), shape: [] }, w32], code: ErrorCodes.INPUT_RANK },
  // detached buffers
  { name: 'input detached', args: () => [{ data: detached(200), shape: [2, 4, 5, 5] }, w32], code: ErrorCodes.DATA_LENGTH },
  { name: 'weight detached', args: () => [x32, { data: detached(108), shape: [4, 3, 3, 3] }], code: ErrorCodes.DATA_LENGTH },
  { name: 'bias detached (bare)', args: () => [x32, w32, { bias: detached(3) }], code: ErrorCodes.BIAS },
  { name: 'bias tensor detached', args: () => [x32, w32, { bias: { data: detached(3), shape: [3] } }], code: ErrorCodes.DATA_LENGTH },
  { name: 'out detached', args: () => [x32, w32, { out: { data: detached(OUT_LEN), shape: OUT_SHAPE } }], code: ErrorCodes.OUT },
  // out aliasing
  { name: 'out aliasing the input', args: () => { const big = new Float32Array(OUT_LEN + 200); big.set(x32.data); return [{ data: big.subarray(0, 200), shape: [2, 4, 5, 5] }, w32, { out: { data: big.subarray(199, 199 + OUT_LEN), shape: OUT_SHAPE } }]; }, code: ErrorCodes.OUT },
  { name: 'out aliasing the bias', args: () => { const big = new Float32Array(OUT_LEN + 3); return [x32, w32, { bias: big.subarray(OUT_LEN, OUT_LEN + 3), out: { data: big.subarray(2, 2 + OUT_LEN), shape: OUT_SHAPE } }]; }, code: ErrorCodes.OUT },
  { name: 'out of the wrong size', args: () => [x32, w32, { out: { data: new Float32Array(OUT_LEN - 1), shape: OUT_SHAPE } }], code: ErrorCodes.OUT },
  // parameters
  { name: 'stride a BigInt', args: () => [x32, w32, { stride: as(2n) }], code: ErrorCodes.STRIDE },
  { name: 'groups a BigInt', args: () => [x32, w32, { groups: as(1n) }], code: ErrorCodes.GROUPS },
  { name: 'padding null inside a pair', args: () => [x32, w32, { padding: as([null, 1]) }], code: ErrorCodes.PADDING },
  { name: 'dilation an object', args: () => [x32, w32, { dilation: as({ h: 1, w: 1 }) }], code: ErrorCodes.DILATION },
  { name: 'stride 2^31 on a 5x5 input (result too large)', args: () => [x32, w32, { stride: 2 ** 31 }], code: ErrorCodes.TOO_LARGE },
  { name: 'dilation 2^52 (extent overflows 2^53)', args: () => [x32, w32, { dilation: 2 ** 52 }], code: ErrorCodes.TOO_LARGE },
  { name: 'threads a string', args: () => [x32, w32, { threads: as('2') }], code: ErrorCodes.THREADS },
  { name: 'threads null', args: () => [x32, w32, { threads: as(null) }], code: ErrorCodes.THREADS },
  { name: 'threads 2^53', args: () => [x32, w32, { threads: 2 ** 53 }], code: ErrorCodes.THREADS },
  { name: 'outputSize a Float32Array', args: () => [x32, w32, { outputSize: as(Float32Array.from([7, 7])) }], code: ErrorCodes.OUTPUT_SIZE },
  { name: 'outputSize of length 3 for batched input', args: () => [x32, w32, { outputSize: [3, 7, 7] }], code: ErrorCodes.OUTPUT_SIZE },
];

describe.each(backends)('bad-input matrix, backend $backend (sync throws, async rejects, same code)', ({ backend }) => {
  it.each(matrix)('$name → $code', async ({ name, args, code }) => {
    const run = (async: boolean): unknown => {
      const [x, w, o] = args();
      const opts = { ...(o ?? {}), backend } as ConvTranspose2dOptions;
      return async ? convTranspose2dAsync(x as Tensor, w as Tensor, opts) : convTranspose2d(x as Tensor, w as Tensor, opts);
    };
    if (code === 'ok') {
      expect(caught(() => run(false)), name).toBeUndefined();
      await expect(run(true) as Promise<Tensor>).resolves.toBeDefined();
      return;
    }
    expectCode(() => run(false), code, `${name} (sync)`);
    await expectAsyncCode(() => run(true) as Promise<unknown>, code, `${name} (async)`);
  });
});

describe('outputShape and setNumThreads with garbage', () => {
  it('outputShape rejects non-array shapes and bad entries with coded errors', () => {
    const bad: [unknown, unknown, string][] = [
      [null, [4, 3, 3, 3], ErrorCodes.INVALID_ARGUMENT],
      ['1,4,5,5', [4, 3, 3, 3], ErrorCodes.INVALID_ARGUMENT],
      [Int32Array.from([1, 4, 5, 5]), [4, 3, 3, 3], ErrorCodes.INVALID_ARGUMENT],
      [[1, 4, 5, 5], undefined, ErrorCodes.INVALID_ARGUMENT],
      [[1, 4, NaN, 5], [4, 3, 3, 3], ErrorCodes.INVALID_ARGUMENT],
      [[1, 4, 5, 5], [4, 3, 3, 2 ** 53], ErrorCodes.INVALID_ARGUMENT],
      [[1, 4, 5, 5], [4, 3, 3], ErrorCodes.WEIGHT_RANK],
      [[1, 4, 2 ** 52, 5], [4, 3, 3, 3], ErrorCodes.TOO_LARGE], // (H-1)*stride overflows 2^53 with stride 2
    ];
    for (const [i, w, code] of bad) {
      expectCode(() => outputShape(i as number[], w as number[], { stride: 2 }), code, `outputShape(${String(i)}, ${String(w)})`);
    }
    expectCode(() => outputShape([1, 4, 5, 5], [4, 3, 3, 3], as('stride')), ErrorCodes.INVALID_ARGUMENT, 'string options');
  });
  it('setNumThreads rejects strings, null, BigInt and 1025 and keeps the old value', () => {
    for (const t of ['2', null, 2n, 1025, {}, 2 ** 53]) expectCode(() => setNumThreads(as(t)), ErrorCodes.THREADS, `setNumThreads(${String(t)})`);
  });
});

describe.each(backends)('edge cases that must compute, backend $backend', ({ backend }) => {
  it('N = 0: sync and async give an empty result, with or without out, bias, and a detached (empty) input', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const C = dtype === 'float32' ? Float32Array : Float64Array;
      const w = dtype === 'float32' ? w32 : w64;
      const forms: [string, () => Tensor, ConvTranspose2dOptions][] = [
        ['plain', () => ({ data: new C(0), shape: [0, 4, 5, 5] }), { stride: 2 }],
        ['zero height', () => ({ data: new C(0), shape: [0, 4, 0, 5] }), {}],
        ['with bias and out', () => ({ data: new C(0), shape: [0, 4, 5, 5] }), { bias: new C(3), out: { data: new C(0), shape: [0, 3, 7, 7] } }],
        ['detached empty input', () => ({ data: detached(0, C), shape: [0, 4, 5, 5] }), {}],
        ['detached non-empty buffer, empty view', () => ({ data: detached(16, C), shape: [0, 4, 5, 5] }), {}],
      ];
      for (const [name, mk, o] of forms) {
        const sync = convTranspose2d(mk(), w, { ...o, backend });
        expect(sync.data.length, `${dtype} ${name} sync`).toBe(0);
        expect(sync.data, `${dtype} ${name} sync dtype`).toBeInstanceOf(C);
        const asy = await convTranspose2dAsync(mk(), w, { ...o, backend });
        expect([...asy.shape], `${dtype} ${name} async shape`).toEqual([...sync.shape]);
        expect(asy.data.length, `${dtype} ${name} async`).toBe(0);
      }
    }
  });

  it('views at every element offset of a 64-byte-aligned buffer (unaligned for SIMD) give identical bytes, sync and async', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const C = dtype === 'float32' ? Float32Array : Float64Array;
      const perLine = 64 / C.BYTES_PER_ELEMENT;
      const x = randTensor(new Rng(1), dtype, [2, 5, 9, 11]);
      const w = randTensor(new Rng(2), dtype, [5, 17, 3, 3], 0.3);
      const b = randTensor(new Rng(3), dtype, [17]);
      const o: ConvTranspose2dOptions = { stride: 2, padding: 1, bias: b, backend };
      const ref = convTranspose2d(x, w, o);
      const at = (src: ArrayLike<number>, off: number): Float32Array | Float64Array => {
        const v = new C(new ArrayBuffer((src.length + perLine) * C.BYTES_PER_ELEMENT), off * C.BYTES_PER_ELEMENT, src.length);
        v.set(src);
        return v;
      };
      for (let off = 0; off < perLine; off++) {
        const xs = { data: at(x.data, off), shape: x.shape };
        const ws = { data: at(w.data, (off + 3) % perLine), shape: w.shape };
        const bs = at(b.data, (off + 5) % perLine);
        const out = { data: at(new C(ref.data.length).fill(NaN), (off + 1) % perLine), shape: [...ref.shape] };
        const y = convTranspose2d(xs, ws, { ...o, bias: bs, out });
        expect(y).toBe(out);
        expectSameBytes(y, ref, `${dtype} offset ${off} sync`);
        const ya = await convTranspose2dAsync(xs, ws, { ...o, bias: bs });
        expectSameBytes(ya, ref, `${dtype} offset ${off} async`);
      }
    }
  });

  it('a result too large for a typed array is rejected before anything is allocated (sync, async, outputShape-sized)', async () => {
    const x = { data: new Float32Array(4), shape: [1, 1, 2, 2] };
    const w = { data: new Float32Array(65536), shape: [1, 65536, 1, 1] };
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) {
      expectCode(() => convTranspose2d(x, w, { stride: 512, backend }), ErrorCodes.TOO_LARGE, 'sync');
      await expectAsyncCode(() => convTranspose2dAsync(x, w, { stride: 512, backend }), ErrorCodes.TOO_LARGE, 'async');
    }
    const ms = performance.now() - t0;
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown, `array buffers grew by ${grown} bytes`).toBeLessThan(16 * 1024 * 1024); // a 2^32-element result is 16 GiB
    expect(ms, `400 rejections took ${ms.toFixed(0)} ms`).toBeLessThan(5000);
  });

  it('bias may alias the input (both are only read)', () => {
    const buf = new Float32Array(200 + 3);
    buf.set(x32.data);
    buf.set(b32.data as Float32Array, 200);
    const x = { data: buf.subarray(0, 200), shape: [2, 4, 5, 5] };
    const y = convTranspose2d(x, w32, { bias: buf.subarray(197, 200), backend });
    const ref = refConvTranspose2d(x, w32, buf.subarray(197, 200), { sH: 1, sW: 1, pH: 0, pW: 0, dH: 1, dW: 1, opH: 0, opW: 0, groups: 1 });
    expect(relErr(y.data, ref.data)).toBeLessThanOrEqual(tolFor('float32'));
  });

  it('a shape whose entries change between reads (hostile getter) gives a coded error or the result of one consistent shape', () => {
    const hostile = (): number[] => {
      const s = [2, 4, 5, 5];
      let reads = 0;
      Object.defineProperty(s, 3, { get: () => (reads++ < 2 ? 5 : 9), enumerable: true });
      return s;
    };
    const e = caught(() => convTranspose2d({ data: x32.data, shape: hostile() }, w32, { backend }));
    if (e !== undefined) {
      expect(e, `not a ConvTransposeError: ${String(e)}`).toBeInstanceOf(ConvTransposeError);
      return;
    }
    const y = convTranspose2d({ data: x32.data, shape: hostile() }, w32, { backend });
    const ref = convTranspose2d(x32, w32, { backend: 'js' });
    expect([...y.shape]).toEqual([...ref.shape]);
    expect(relErr(y.data, ref.data), 'the data must be read with the shape that was validated').toBeLessThanOrEqual(tolFor('float32'));
  });
});

describe('the ConvTranspose2d module with garbage', () => {
  it('constructor arguments of the wrong type are coded errors', () => {
    const cases: [unknown[], string][] = [
      [[2n, 3, 3], ErrorCodes.CHANNELS],
      [['4', 3, 3], ErrorCodes.CHANNELS],
      [[4, null, 3], ErrorCodes.CHANNELS],
      [[4, 3, 2n], ErrorCodes.EMPTY_WEIGHT],
      [[4, 3, '3'], ErrorCodes.EMPTY_WEIGHT],
      [[4, 3, [3, 3, 3]], ErrorCodes.PARAM_LENGTH],
      [[4, 3, 3, 'opts'], ErrorCodes.INVALID_ARGUMENT],
      [[4, 3, 3, { dtype: 'int32' }], ErrorCodes.DTYPE],
      [[4, 3, 3, { stride: NaN }], ErrorCodes.STRIDE],
      [[4, 3, 3, { seed: 1n }], ErrorCodes.INVALID_ARGUMENT],
      [[2 ** 20, 2 ** 20, 2 ** 20], ErrorCodes.TOO_LARGE], // weight of 2^60 elements: rejected before allocating
    ];
    for (const [args, code] of cases) {
      expectCode(() => new (ConvTranspose2d as unknown as new (...a: unknown[]) => unknown)(...args), code, `new ConvTranspose2d(${args.map(String).join(', ')})`);
    }
  });
  it('forwardAsync rejects (never throws) on garbage input, like forward throws', async () => {
    const m = new ConvTranspose2d(4, 3, 3, { seed: 1 });
    for (const [input, code] of [
      [null, ErrorCodes.INVALID_ARGUMENT],
      [{ data: new Float64Array(200), shape: [2, 4, 5, 5] }, ErrorCodes.DTYPE],
      [{ data: detached(200), shape: [2, 4, 5, 5] }, ErrorCodes.DATA_LENGTH],
      [{ data: new Float32Array(150), shape: [2, 3, 5, 5] }, ErrorCodes.CHANNELS],
    ] as [unknown, string][]) {
      expectCode(() => m.forward(input as Tensor), code, 'forward');
      await expectAsyncCode(() => m.forwardAsync(input as Tensor), code, 'forwardAsync');
    }
    await expectAsyncCode(() => m.forwardAsync(x32, [99, 99]), ErrorCodes.OUTPUT_SIZE, 'forwardAsync outputSize');
  });
});

// Children run with a 4 GiB address-space limit and a timeout, so that a regression (a huge allocation, a hang) fails
// the test instead of exhausting the machine.
function runLimited(script: string, timeout = 60_000): ReturnType<typeof spawnSync> & { stdout: string; stderr: string } {
  return spawnSync('sh', ['-c', `ulimit -v 4194304 && exec "${process.execPath}" -e "$0"`, script], {
    cwd: repoRoot, encoding: 'utf8', timeout,
  }) as ReturnType<typeof spawnSync> & { stdout: string; stderr: string };
}

describe.runIf(nativeTested && process.platform === 'linux')('both backends give the same outcome where only the native core has limits (child process)', () => {
  it('strides, paddings and dilations at and above 2^31 with a small result: same result or same code, promptly', () => {
    const script = `
      const m = require(${JSON.stringify(distIndex)});
      const x = { data: Float32Array.from([1, 2]), shape: [1, 1, 1, 2] };
      const w = { data: Float32Array.from([3, 4]), shape: [1, 1, 1, 2] };
      const cases = [
        { stride: [4096, 4096] },                            // 1 x 3 result, 2^24 stride phases
        { stride: [2 ** 31 - 1, 1] },                        // H = 1: the stride never applies
        { stride: [2 ** 31, 1] },
        { stride: [2 ** 40, 1] },
        { dilation: [2 ** 31, 1] },                          // kH = 1: the dilation never applies
        { dilation: [1, 2 ** 31], padding: [0, 2 ** 30] },   // Wout = 2 + 2^31 - 2^31 = 2
        { padding: [0, 2 ** 31], dilation: [1, 2 ** 32 + 2] }, // Wout = 2 + 2^32 + 2 - 2^32 = 4
      ];
      const outcome = (o, backend) => {
        const t0 = Date.now();
        try {
          const y = m.convTranspose2d(x, w, { ...o, backend });
          let sum = 0;
          for (let i = 0; i < y.data.length; i++) sum += y.data[i] * ((i % 7) + 1);
          return { r: '[' + y.shape + '] ' + Array.from(y.data.subarray(0, 4)).join(',') + ' checksum ' + sum, ms: Date.now() - t0 };
        } catch (e) {
          return { r: e instanceof m.ConvTransposeError ? e.code : 'uncoded ' + String(e), ms: Date.now() - t0 };
        }
      };
      const res = cases.map((o) => ({ o: JSON.stringify(o), js: outcome(o, 'js'), native: outcome(o, 'native') }));
      process.stdout.write(JSON.stringify(res));
    `;
    const r = runLimited(script);
    expect(r.signal, `child killed by ${r.signal} (hang or crash): ${r.stderr}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { o: string; js: { r: string; ms: number }; native: { r: string; ms: number } }[];
    const failures = res.filter((c) => c.js.r !== c.native.r || c.native.ms > 1000).map((c) => `${c.o}: js ${c.js.r} (${c.js.ms} ms), native ${c.native.r} (${c.native.ms} ms)`);
    expect(failures).toEqual([]);
  });
});

// A child with a 4 GiB address-space limit: a result that passes validation (under 2^32 elements) but cannot be
// allocated must be a coded error, never a plain RangeError or a crash. (Linux; in a child so the limit is safe.)
describe.runIf(process.platform === 'linux')('allocation failure is a coded error (child process, ulimit -v 4 GiB)', () => {
  it('sync, async and the module constructor, on every backend', () => {
    const script = `
      const m = require(${JSON.stringify(distIndex)});
      const res = {};
      const x = { data: new Float32Array(4).fill(1), shape: [1, 1, 2, 2] };
      const w = { data: new Float32Array(4095).fill(1), shape: [1, 4095, 1, 1] };   // result 4095 x 1024 x 1024: 16 GiB
      const judge = (e) => e instanceof m.ConvTransposeError ? e.code : 'uncoded ' + (e && e.constructor && e.constructor.name) + ': ' + (e && e.message);
      (async () => {
        for (const backend of ${JSON.stringify(backends.map((b) => b.backend))}) {
          try { m.convTranspose2d(x, w, { stride: 1023, backend }); res[backend + ' sync'] = 'no error'; } catch (e) { res[backend + ' sync'] = judge(e); }
          try { await m.convTranspose2dAsync(x, w, { stride: 1023, backend }); res[backend + ' async'] = 'no error'; } catch (e) { res[backend + ' async'] = judge(e); }
        }
        try { new m.ConvTranspose2d(65535, 65535, 1, { dtype: 'float64' }); res.module = 'no error'; } catch (e) { res.module = judge(e); }
        process.stdout.write(JSON.stringify(res));
      })();
    `;
    const r = runLimited(script);
    expect(r.signal, `child killed by ${r.signal}: ${r.stderr}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as Record<string, string>;
    for (const [k, v] of Object.entries(res)) {
      expect([ErrorCodes.TOO_LARGE, ErrorCodes.INTERNAL], `${k}: ${v}`).toContain(v);
    }
  });
});
