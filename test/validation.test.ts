// Validation beyond errors.json: what PyTorch's type system would reject, JS-specific misuse, and edge cases
// that must work. Every rejection is a ConvTransposeError with the parameter's own code, on every backend.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  ConvTransposeError, ErrorCodes, convTranspose2d, convTranspose2dAsync, getBackend, outputShape, setNumThreads,
} from '../lib/index';
import type { ConvTranspose2dOptions, Tensor } from '../lib/types';
import {
  Rng, backends, caught, repoRoot, expectAsyncCode, expectCode, expectSameBytes, nativeTested, randTensor, refConvTranspose2d, relErr,
} from './helpers';

const rng = new Rng(2468);
const x32 = randTensor(rng, 'float32', [1, 4, 5, 5]);
const w32 = randTensor(rng, 'float32', [4, 3, 3, 3]);
const x64 = randTensor(rng, 'float64', [1, 4, 5, 5]);
const w64 = randTensor(rng, 'float64', [4, 3, 3, 3]);

const badNumbers: { label: string; v: number }[] = [
  { label: '1.5', v: 1.5 },
  { label: 'NaN', v: NaN },
  { label: 'Infinity', v: Infinity },
  { label: '-Infinity', v: -Infinity },
  { label: '-1', v: -1 },
  { label: '2^53', v: 2 ** 53 },
  { label: '1e300', v: 1e300 },
];

type PairParam = 'stride' | 'padding' | 'dilation' | 'outputPadding';
const pairCodes: Record<PairParam, string> = {
  stride: ErrorCodes.STRIDE,
  padding: ErrorCodes.PADDING,
  dilation: ErrorCodes.DILATION,
  outputPadding: ErrorCodes.OUTPUT_PADDING,
};

describe.each(backends)('validation, backend $backend', ({ backend }) => {
  // explicit argument count: a default parameter would replace an `undefined` tensor under test
  const call = (o: ConvTranspose2dOptions, ...t: [Tensor?, Tensor?]): Tensor =>
    convTranspose2d(t.length >= 1 ? (t[0] as Tensor) : x32, t.length >= 2 ? (t[1] as Tensor) : w32, { ...o, backend });

  describe('numeric parameters: non-integer, NaN, Infinity, negative, unsafe integers', () => {
    for (const param of ['stride', 'padding', 'dilation', 'outputPadding'] as PairParam[]) {
      it.each(badNumbers)(`${param} = $label (scalar, [h, w] and [v, 1] forms)`, ({ v }) => {
        // -1 is valid for nothing; for outputPadding use a large stride so only the bad value is at fault
        const base: ConvTranspose2dOptions = param === 'outputPadding' ? { stride: 3 } : {};
        expectCode(() => call({ ...base, [param]: v }), pairCodes[param], `${param} ${v}`);
        expectCode(() => call({ ...base, [param]: [v, v] }), pairCodes[param], `${param} [${v}, ${v}]`);
        expectCode(() => call({ ...base, [param]: [v, 1] }), pairCodes[param], `${param} [${v}, 1]`);
        expectCode(() => call({ ...base, [param]: [1, v] }), pairCodes[param], `${param} [1, ${v}]`);
      });
    }
    it.each(badNumbers)('groups = $label', ({ v }) => {
      expectCode(() => call({ groups: v }), ErrorCodes.GROUPS, `groups ${v}`);
    });
    it.each(badNumbers)('outputShape rejects stride = $label with the same code', ({ v }) => {
      expectCode(() => outputShape([1, 4, 5, 5], [4, 3, 3, 3], { stride: v }), ErrorCodes.STRIDE, `outputShape stride ${v}`);
    });
    it('parameters of the wrong type are rejected with the parameter\'s code', () => {
      expectCode(() => call({ stride: '2' as unknown as number }), ErrorCodes.STRIDE, 'stride "2"');
      expectCode(() => call({ padding: 'same' as unknown as number }), ErrorCodes.PADDING, 'padding "same"');
      expectCode(() => call({ padding: 'valid' as unknown as number }), ErrorCodes.PADDING, 'padding "valid"');
      expectCode(() => call({ groups: '1' as unknown as number }), ErrorCodes.GROUPS, 'groups "1"');
      expectCode(() => call({ outputPadding: [0, '0'] as unknown as number[] }), ErrorCodes.OUTPUT_PADDING, 'outputPadding [0,"0"]');
      expectCode(() => call({ stride: [2, 2, 2] }), ErrorCodes.PARAM_LENGTH, 'stride of 3');
      expectCode(() => call({ dilation: [] }), ErrorCodes.PARAM_LENGTH, 'dilation of 0');
    });
    it('outputSize entries must be integers', () => {
      const o = { stride: 2, padding: 1 };
      for (const bad of [[9.5, 9], [NaN, 9], [Infinity, 9], [9, -9], ['9', 9]]) {
        expectCode(() => call({ ...o, outputSize: bad as number[] }), ErrorCodes.OUTPUT_SIZE, `outputSize ${String(bad)}`);
      }
    });
  });

  describe('tensors', () => {
    it('plain-array or integer typed-array data is a dtype error', () => {
      const plain = { data: Array.from(x32.data) as unknown as Float32Array, shape: x32.shape };
      expectCode(() => call({}, plain), ErrorCodes.DTYPE, 'plain array input');
      expectCode(() => call({}, x32, { data: Array.from(w32.data) as unknown as Float32Array, shape: w32.shape }), ErrorCodes.DTYPE, 'plain array weight');
      expectCode(() => call({}, { data: new Int32Array(100) as unknown as Float32Array, shape: [1, 4, 5, 5] }), ErrorCodes.DTYPE, 'Int32Array input');
      expectCode(() => call({}, { data: new Uint8Array(100) as unknown as Float32Array, shape: [1, 4, 5, 5] }), ErrorCodes.DTYPE, 'Uint8Array input');
      expectCode(() => call({}, x32, { data: new Int32Array(108) as unknown as Float32Array, shape: [4, 3, 3, 3] }), ErrorCodes.DTYPE, 'Int32Array weight');
      // a bare plain-array bias is neither a tensor nor a typed array: either code is a fair reading
      const eb = caught(() => call({ bias: [1, 2, 3] as unknown as Float32Array }));
      expect(eb).toBeInstanceOf(ConvTransposeError);
      expect([ErrorCodes.DTYPE, ErrorCodes.INVALID_ARGUMENT]).toContain((eb as ConvTransposeError).code);
      expectCode(() => call({ bias: { data: new Int32Array(3) as unknown as Float32Array, shape: [3] } }), ErrorCodes.DTYPE, 'Int32Array bias tensor');
      expectCode(() => call({}, { data: new BigInt64Array(100) as unknown as Float32Array, shape: [1, 4, 5, 5] }), ErrorCodes.DTYPE, 'BigInt64Array input');
    });

    it('a bare Int32Array bias is a dtype error, like Int32Array data anywhere else (errors.json int32_tensors)', () => {
      expectCode(() => call({ bias: new Int32Array(3) as unknown as Float32Array }), ErrorCodes.DTYPE, 'Int32Array bias');
    });

    it('mixed dtypes among input, weight, bias and out are a dtype error', () => {
      expectCode(() => call({}, x32, w64), ErrorCodes.DTYPE, 'f32 input, f64 weight');
      expectCode(() => call({}, x64, w32), ErrorCodes.DTYPE, 'f64 input, f32 weight');
      expectCode(() => call({ bias: new Float64Array(3) }), ErrorCodes.DTYPE, 'f64 bias');
      expectCode(() => call({ bias: { data: new Float64Array(3), shape: [3] } }), ErrorCodes.DTYPE, 'f64 bias tensor');
    });

    it('out of another dtype than the input is a dtype error (brief: DTYPE; errors.ts documents both DTYPE and OUT)', () => {
      expectCode(() => call({ out: { data: new Float64Array(3 * 49), shape: [1, 3, 7, 7] } }), ErrorCodes.DTYPE, 'f64 out');
      expectCode(() => call({ out: { data: new Float32Array(3 * 49), shape: [1, 3, 7, 7] } }, x64, w64), ErrorCodes.DTYPE, 'f32 out for f64');
    });

    it('data length different from the product of the shape', () => {
      expectCode(() => call({}, { data: new Float32Array(99), shape: [1, 4, 5, 5] }), ErrorCodes.DATA_LENGTH, 'input short');
      expectCode(() => call({}, { data: new Float32Array(101), shape: [1, 4, 5, 5] }), ErrorCodes.DATA_LENGTH, 'input long');
      expectCode(() => call({}, x32, { data: new Float32Array(107), shape: [4, 3, 3, 3] }), ErrorCodes.DATA_LENGTH, 'weight short');
      expectCode(() => call({ bias: { data: new Float32Array(4), shape: [3] } }), ErrorCodes.DATA_LENGTH, 'bias tensor length vs shape');
      expectCode(() => call({}, { data: new Float32Array(0), shape: [1, 4, 5, 5] }), ErrorCodes.DATA_LENGTH, 'input empty');
    });

    it('shapes with non-integer, negative or non-numeric entries are invalid arguments', () => {
      const bad: unknown[][] = [[1, 4, 5, 5.5], [1, 4, -5, -5], [1, 4, NaN, 5], [1, 4, '5', 5], [1, 4, Infinity, 5]];
      for (const shape of bad) {
        expectCode(() => call({}, { data: new Float32Array(100), shape: shape as number[] }), ErrorCodes.INVALID_ARGUMENT, `input shape ${String(shape)}`);
        expectCode(() => call({}, x32, { data: new Float32Array(108), shape: [4, 3, ...shape.slice(2)] as number[] }), ErrorCodes.INVALID_ARGUMENT, `weight shape ${String(shape)}`);
      }
      expectCode(() => call({}, { data: new Float32Array(100), shape: 'abc' as unknown as number[] }), ErrorCodes.INVALID_ARGUMENT, 'string shape');
      expectCode(() => call({}, { data: new Float32Array(100) } as unknown as Tensor), ErrorCodes.INVALID_ARGUMENT, 'missing shape');
    });

    it('null, undefined, strings and numbers as tensors are invalid arguments', () => {
      for (const bad of [null, undefined, 'tensor', 42, [1, 2, 3], {}]) {
        expectCode(() => call({}, bad as unknown as Tensor), ErrorCodes.INVALID_ARGUMENT, `input ${JSON.stringify(bad)}`);
        expectCode(() => call({}, x32, bad as unknown as Tensor), ErrorCodes.INVALID_ARGUMENT, `weight ${JSON.stringify(bad)}`);
      }
      expectCode(() => call({ bias: 'b' as unknown as Float32Array }), ErrorCodes.INVALID_ARGUMENT, 'bias string');
      expectCode(() => call({ bias: 3 as unknown as Float32Array }), ErrorCodes.INVALID_ARGUMENT, 'bias number');
    });

    it('options that are not an object are invalid arguments', () => {
      expectCode(() => convTranspose2d(x32, w32, 'stride=2' as unknown as ConvTranspose2dOptions), ErrorCodes.INVALID_ARGUMENT, 'string options');
      expectCode(() => convTranspose2d(x32, w32, 5 as unknown as ConvTranspose2dOptions), ErrorCodes.INVALID_ARGUMENT, 'number options');
    });
  });

  describe('out', () => {
    it('of the wrong length or shape', () => {
      expectCode(() => call({ out: { data: new Float32Array(3 * 49 - 1), shape: [1, 3, 7, 7] } }), ErrorCodes.OUT, 'short out');
      expectCode(() => call({ out: { data: new Float32Array(3 * 49 + 1), shape: [1, 3, 7, 7] } }), ErrorCodes.OUT, 'long out');
      expectCode(() => call({ out: { data: new Float32Array(3 * 49), shape: [1, 7, 3, 7] } }), ErrorCodes.OUT, 'permuted shape');
      expectCode(() => call({ out: { data: new Float32Array(3 * 49), shape: [3, 7, 7] } }), ErrorCodes.OUT, 'unbatched shape for batched input');
    });
    it('sharing memory with the input, weight or bias', () => {
      // input buffer big enough to double as out
      const buf = new Float32Array(100 + 3 * 49);
      buf.set(x32.data);
      const x = { data: buf.subarray(0, 100), shape: [1, 4, 5, 5] };
      expectCode(() => call({ out: { data: buf.subarray(50, 50 + 147), shape: [1, 3, 7, 7] } }, x), ErrorCodes.OUT, 'overlaps input');
      const x2 = { data: new Float32Array(147 + 100), shape: [1, 4, 5, 5] };
      expectCode(() => call({ out: { data: x2.data.subarray(0, 147), shape: [1, 3, 7, 7] } }, { data: x2.data.subarray(100, 200), shape: [1, 4, 5, 5] }), ErrorCodes.OUT, 'overlaps input tail');
      const wbuf = new Float32Array(108 + 147);
      wbuf.set(w32.data);
      expectCode(() => call({ out: { data: wbuf.subarray(0, 147), shape: [1, 3, 7, 7] } }, x32, { data: wbuf.subarray(0, 108), shape: [4, 3, 3, 3] }), ErrorCodes.OUT, 'overlaps weight');
      const bbuf = new Float32Array(150);
      expectCode(() => call({ bias: bbuf.subarray(0, 3), out: { data: bbuf.subarray(2, 149), shape: [1, 3, 7, 7] } }), ErrorCodes.OUT, 'overlaps bias');
      expectCode(() => call({ out: x32 }, { data: x32.data, shape: x32.shape }), ErrorCodes.OUT, 'out is the input');
    });
    it('a detached out is rejected', () => {
      const data = new Float32Array(147);
      structuredClone(data.buffer, { transfer: [data.buffer] });
      const e = caught(() => call({ out: { data, shape: [1, 3, 7, 7] } }));
      expect(e).toBeInstanceOf(ConvTransposeError);
      expect([ErrorCodes.OUT, ErrorCodes.DATA_LENGTH]).toContain((e as ConvTransposeError).code);
    });
  });

  describe('sizes', () => {
    it('a result too large for a typed array is rejected before allocating', () => {
      const x = { data: new Float32Array(4), shape: [1, 1, 2, 2] };
      const w = { data: new Float32Array(4), shape: [1, 1, 2, 2] };
      const e = expectCode(() => call({ stride: 2 ** 30 }, x, w), ErrorCodes.TOO_LARGE, 'stride 2^30');
      expect(e.message.length).toBeGreaterThan(0);
      expectCode(() => call({ dilation: [2 ** 30, 2 ** 30] }, x, w), ErrorCodes.TOO_LARGE, 'dilation 2^30');
      expectCode(() => call({ stride: [2 ** 31, 1] , dilation: [1, 2 ** 20] }, x, w), ErrorCodes.TOO_LARGE, 'mixed');
      // every extent modest, only the total too large: 65536 channels x 513 x 513 > 2^32
      expectCode(() => call({ stride: 512 }, x, { data: new Float32Array(65536), shape: [1, 65536, 1, 1] }), ErrorCodes.TOO_LARGE, 'Cout x Hout x Wout');
      expect(outputShape([1, 1, 2, 2], [1, 65536, 1, 1], { stride: 512 })).toEqual([1, 65536, 513, 513]);
      // products that overflow 2^53 in the naive formula
      expectCode(() => call({ stride: 2 ** 40 }, x, w), ErrorCodes.TOO_LARGE, 'stride 2^40');
    });
    it('the async variant rejects too-large results too', async () => {
      const x = { data: new Float32Array(4), shape: [1, 1, 2, 2] };
      const w = { data: new Float32Array(4), shape: [1, 1, 2, 2] };
      await expectAsyncCode(() => convTranspose2dAsync(x, w, { stride: 2 ** 30, backend }), ErrorCodes.TOO_LARGE, 'async stride 2^30');
    });
  });

  describe('threads and backend options', () => {
    it('threads must be a positive integer', () => {
      for (const t of [0, -1, 1.5, NaN, Infinity, '2']) {
        expectCode(() => call({ threads: t as number }), ErrorCodes.THREADS, `threads ${String(t)}`);
      }
    });
    it('threads 1 and threads 64 both work', () => {
      const a = call({ threads: 1 });
      const b = call({ threads: 64 });
      expect(relErr(a.data, b.data)).toBe(0);
    });
  });

  describe('things that must work', () => {
    it('N = 0 gives an empty result of the right shape', () => {
      for (const dtype of ['float32', 'float64'] as const) {
        const Arr = dtype === 'float32' ? Float32Array : Float64Array;
        const w = dtype === 'float32' ? w32 : w64;
        const y = call({ stride: 2, padding: 1, outputPadding: 1, bias: new Arr(3) }, { data: new Arr(0), shape: [0, 4, 5, 5] }, w);
        expect([...y.shape]).toEqual([0, 3, 10, 10]);
        expect(y.data).toBeInstanceOf(Arr);
        expect(y.data.length).toBe(0);
      }
      // N = 0 with a zero spatial size too (PyTorch accepts it)
      const y0 = call({}, { data: new Float32Array(0), shape: [0, 4, 0, 5] });
      expect([...y0.shape]).toEqual([0, 3, 2, 7]);
    });

    it('bias as a bare typed array equals bias as a tensor', () => {
      const b = randTensor(new Rng(1), 'float32', [3]);
      const a = call({ stride: 2, bias: b.data });
      const t = call({ stride: 2, bias: b });
      expectSameBytes(a, t, 'bias forms');
      const none = call({ stride: 2 });
      const nul = call({ stride: 2, bias: null });
      expectSameBytes(none, nul, 'no bias vs null');
      expect(relErr(a.data, none.data)).toBeGreaterThan(0);
    });

    it('a 1-element list broadcasts to both dimensions, like a scalar', () => {
      const o: ConvTranspose2dOptions = { stride: [2], padding: [1], dilation: [2], outputPadding: [1] };
      const a = call(o);
      const b = call({ stride: 2, padding: 1, dilation: 2, outputPadding: 1 });
      const c = call({ stride: [2, 2], padding: [1, 1], dilation: [2, 2], outputPadding: [1, 1] });
      expectSameBytes(a, b, '[v] vs v');
      expectSameBytes(a, c, '[v] vs [v, v]');
    });

    it('outputShape agrees with the result shape, batched and unbatched', () => {
      const o: ConvTranspose2dOptions = { stride: [3, 2], padding: [1, 2], dilation: [1, 2], outputPadding: [2, 1], groups: 2 };
      const x = randTensor(new Rng(3), 'float32', [2, 4, 3, 6]);
      const w = randTensor(new Rng(4), 'float32', [4, 5, 2, 3]);
      const y = call(o, x, w);
      expect(outputShape(x.shape, w.shape, o)).toEqual([...y.shape]);
      const xu = { data: x.data.subarray(0, 72), shape: [4, 3, 6] };
      const yu = call(o, xu, w);
      expect(outputShape(xu.shape, w.shape, o)).toEqual([...yu.shape]);
      expect(yu.shape.length).toBe(3);
      const ref = refConvTranspose2d(x, w, null, { sH: 3, sW: 2, pH: 1, pW: 2, dH: 1, dW: 2, opH: 2, opW: 1, groups: 2 });
      expect([...y.shape]).toEqual(ref.shape);
      expect(relErr(y.data, ref.data)).toBeLessThanOrEqual(1e-5);
    });

    it('outputSize overrides outputPadding', () => {
      const y = call({ stride: 2, padding: 1, outputPadding: 1, outputSize: [9, 9] });
      expect([...y.shape]).toEqual([1, 3, 9, 9]);
      const y2 = call({ stride: 2, padding: 1, outputPadding: 0, outputSize: [10, 9] });
      expect([...y2.shape]).toEqual([1, 3, 10, 9]);
      const ref = call({ stride: 2, padding: 1, outputPadding: [1, 0] });
      expectSameBytes(y2, ref, 'outputSize vs derived outputPadding');
    });

    it('async: inputs may be mutated right after the call returns (documented: copied before returning)', async () => {
      const x = randTensor(new Rng(21), 'float64', [2, 4, 5, 5]);
      const w = randTensor(new Rng(22), 'float64', [4, 3, 3, 3]);
      const b = randTensor(new Rng(23), 'float64', [3]);
      const sync = call({ stride: 2, bias: b }, x, w);
      const p = convTranspose2dAsync(x, w, { stride: 2, bias: b, backend });
      x.data.fill(0);
      w.data.fill(0);
      b.data.fill(0);
      expectSameBytes(await p, sync, 'mutated after call');
    });

    it('inputs are not modified', () => {
      const x = randTensor(new Rng(6), 'float64', [2, 4, 5, 5]);
      const w = randTensor(new Rng(7), 'float64', [4, 3, 3, 3]);
      const b = randTensor(new Rng(8), 'float64', [3]);
      const xc = x.data.slice(), wc = w.data.slice(), bc = b.data.slice();
      const shapeBefore = [...x.shape];
      call({ stride: 2, bias: b }, x, w);
      expect(Buffer.from(x.data.buffer).equals(Buffer.from(xc.buffer))).toBe(true);
      expect(Buffer.from(w.data.buffer).equals(Buffer.from(wc.buffer))).toBe(true);
      expect(Buffer.from(b.data.buffer).equals(Buffer.from(bc.buffer))).toBe(true);
      expect([...x.shape]).toEqual(shapeBefore);
    });

    it('typed arrays at an offset into a shared buffer are read correctly', () => {
      const big = new Float64Array(300);
      const r = new Rng(10);
      for (let i = 0; i < big.length; i++) big[i] = r.sym();
      const x = { data: big.subarray(7, 107), shape: [1, 4, 5, 5] };
      const w = { data: big.subarray(150, 258), shape: [4, 3, 3, 3] };
      const y = call({ stride: 2 }, x, w);
      const ref = refConvTranspose2d(x, w, null, { sH: 2, sW: 2, pH: 0, pW: 0, dH: 1, dW: 1, opH: 0, opW: 0, groups: 1 });
      expect(relErr(y.data, ref.data)).toBeLessThanOrEqual(1e-12);
    });

    it('typed arrays over a SharedArrayBuffer work (input, weight, bias and out), sync and async', async () => {
      const shared = <T extends Float32Array | Float64Array>(a: T): T => {
        const C = a.constructor as { new (b: SharedArrayBuffer, o: number, n: number): T; BYTES_PER_ELEMENT: number };
        const sab = new SharedArrayBuffer((a.length + 2) * C.BYTES_PER_ELEMENT);
        const v = new C(sab, C.BYTES_PER_ELEMENT, a.length); // at an offset too
        v.set(a);
        return v;
      };
      for (const [x, w] of [[x32, w32], [x64, w64]] as const) {
        const b = randTensor(new Rng(12), x === x32 ? 'float32' : 'float64', [3]);
        const ref = call({ stride: 2, bias: b }, x, w);
        const xs = { data: shared(x.data), shape: x.shape };
        const ws = { data: shared(w.data), shape: w.shape };
        const y = call({ stride: 2, bias: shared(b.data) }, xs, ws);
        expectSameBytes(y, ref, 'shared inputs');
        const out = { data: shared(ref.data.slice().fill(NaN)), shape: [...ref.shape] };
        const y2 = call({ stride: 2, bias: b, out }, xs, ws);
        expect(y2).toBe(out);
        expectSameBytes(y2, ref, 'shared out');
        const out2 = { data: shared(ref.data.slice().fill(NaN)), shape: [...ref.shape] };
        const y3 = await convTranspose2dAsync(xs, ws, { stride: 2, bias: b, out: out2, backend });
        expectSameBytes(y3, ref, 'shared async');
      }
    });

    it('NaN and Infinity in the data propagate (no validation of values)', () => {
      const x = { data: x32.data.slice(), shape: x32.shape };
      x.data[0] = NaN;
      const y = call({}, x);
      expect(Number.isNaN(y.data[0])).toBe(true);
      const finite = y.data.filter((v) => Number.isFinite(v)).length;
      expect(finite).toBeGreaterThan(0);
    });
  });

  describe('async rejects instead of throwing', () => {
    const cases: { name: string; args: () => [unknown, unknown, ConvTranspose2dOptions?]; code: string }[] = [
      { name: 'stride 0', args: () => [x32, w32, { stride: 0 }], code: ErrorCodes.STRIDE },
      { name: 'NaN padding', args: () => [x32, w32, { padding: NaN }], code: ErrorCodes.PADDING },
      { name: 'null input', args: () => [null, w32, {}], code: ErrorCodes.INVALID_ARGUMENT },
      { name: 'plain-array data', args: () => [{ data: Array.from(x32.data), shape: [1, 4, 5, 5] }, w32, {}], code: ErrorCodes.DTYPE },
      { name: 'dtype mismatch', args: () => [x32, w64, {}], code: ErrorCodes.DTYPE },
      { name: 'data length', args: () => [{ data: new Float32Array(3), shape: [1, 4, 5, 5] }, w32, {}], code: ErrorCodes.DATA_LENGTH },
      { name: 'threads 0', args: () => [x32, w32, { threads: 0 }], code: ErrorCodes.THREADS },
      { name: 'unknown backend', args: () => [x32, w32, { backend: 'gpu' as 'js' }], code: ErrorCodes.BACKEND },
      { name: 'wrong out', args: () => [x32, w32, { out: { data: new Float32Array(3), shape: [3] } }], code: ErrorCodes.OUT },
      { name: 'channels', args: () => [{ data: new Float32Array(75), shape: [1, 3, 5, 5] }, w32, {}], code: ErrorCodes.CHANNELS },
    ];
    it.each(cases)('$name', async ({ name, args, code }) => {
      const [x, w, o] = args();
      await expectAsyncCode(
        () => convTranspose2dAsync(x as Tensor, w as Tensor, o?.backend ? o : { ...o, backend }),
        code,
        name,
      );
    });
  });
});

describe('backend selection', () => {
  it('an unknown backend name is a backend error', () => {
    for (const b of ['gpu', 'NATIVE', '', 'wasm']) {
      expectCode(() => convTranspose2d(x32, w32, { backend: b as 'js' }), ErrorCodes.BACKEND, `backend "${b}"`);
    }
  });
  it('backend "auto" and an absent backend work', () => {
    const a = convTranspose2d(x32, w32, { backend: 'auto' });
    const b = convTranspose2d(x32, w32);
    expectSameBytes(a, b, 'auto vs default');
  });
  // A child whose loader finds no binary: PREBUILDS_ONLY=1 makes node-gyp-build ignore build/, and the repo has no prebuilds/.
  it('forcing native when it did not load is a backend error that says why and how to fix it', () => {
    const script =
      "const ct = require('./dist/index.js'); const out = { loadError: ct.getBackend().loadError };" +
      "try { ct.convTranspose2d({ data: new Float32Array(1), shape: [1, 1, 1, 1] }, { data: new Float32Array(1), shape: [1, 1, 1, 1] }, { backend: 'native' }); }" +
      ' catch (e) { out.code = e.code; out.message = e.message; }' +
      ' console.log(JSON.stringify(out));';
    const env = { ...process.env, PREBUILDS_ONLY: '1' };
    delete env.CONV_TRANSPOSE_NATIVE;
    delete env.CONV_TRANSPOSE_BACKEND;
    const r = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: repoRoot, env, encoding: 'utf8' })) as {
      loadError?: string; code?: string; message?: string;
    };
    expect(r.loadError, 'getBackend().loadError explains the failure').toMatch(/No native build was found/);
    expect(r.code).toBe(ErrorCodes.BACKEND);
    expect(r.message).toContain(r.loadError);
    expect(r.message).toMatch(/npm rebuild conv-transpose/);
    expect(r.message).toMatch(/backend: 'js'/);
  });
});

describe('setNumThreads', () => {
  it('rejects non-positive and non-integer counts', () => {
    for (const t of [0, -2, 2.5, NaN, Infinity]) expectCode(() => setNumThreads(t), ErrorCodes.THREADS, `setNumThreads(${t})`);
  });
  it('is reflected by getBackend().threads and does not change results', () => {
    const before = getBackend().threads;
    const ref = convTranspose2d(x32, w32, { stride: 2 });
    try {
      setNumThreads(3);
      expect(getBackend().threads).toBe(3);
      expectSameBytes(convTranspose2d(x32, w32, { stride: 2 }), ref, 'threads 3');
      setNumThreads(1);
      expect(getBackend().threads).toBe(1);
      expectSameBytes(convTranspose2d(x32, w32, { stride: 2 }), ref, 'threads 1');
    } finally {
      setNumThreads(before);
    }
    expect(getBackend().threads).toBe(before);
  });
});
