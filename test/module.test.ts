// ConvTranspose2d (the torch.nn.ConvTranspose2d mirror): initialisation, determinism, shapes, forward.
import { describe, expect, it } from 'vitest';
import { ConvTranspose2d, ErrorCodes, convTranspose2d } from '../lib/index';
import { Rng, expectCode, expectSameBytes, randTensor, refConvTranspose2d, relErr, tolFor } from './helpers';

function stats(a: ArrayLike<number>): { min: number; max: number; mean: number; variance: number } {
  let min = Infinity, max = -Infinity, sum = 0, sq = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sq += v * v;
  }
  const mean = sum / a.length;
  return { min, max, mean, variance: sq / a.length - mean * mean };
}

describe('ConvTranspose2d initialisation (PyTorch: kaiming_uniform(a=sqrt(5)) and its bias bound)', () => {
  // fan_in of a transposed conv weight (Cin, Cout/G, kH, kW) is weight.size(1) * kH * kW
  const layers = [
    { inC: 16, outC: 256, k: 3 as number | [number, number], groups: 1 },
    { inC: 64, outC: 32, k: [4, 2] as [number, number], groups: 4 },
    { inC: 12, outC: 12, k: 5, groups: 12 },
  ];
  for (const dtype of ['float32', 'float64'] as const) {
    it.each(layers)(`${dtype}: bounds, spread and mean for in=$inC out=$outC k=$k groups=$groups`, ({ inC, outC, k, groups }) => {
      const m = new ConvTranspose2d(inC, outC, k, { groups, dtype, seed: 42 });
      const [kH, kW] = typeof k === 'number' ? [k, k] : k;
      const fanIn = (outC / groups) * kH * kW;
      const bound = 1 / Math.sqrt(fanIn);
      expect([...m.weight.shape]).toEqual([inC, outC / groups, kH, kW]);
      expect(m.weight.data).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array);
      expect(m.bias).not.toBeNull();
      expect([...m.bias!.shape]).toEqual([outC]);
      expect(m.bias!.data).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array);
      const slack = dtype === 'float32' ? 1e-7 : 0; // rounding of the bound to float32
      const w = stats(m.weight.data);
      expect(w.min).toBeGreaterThanOrEqual(-bound - slack);
      expect(w.max).toBeLessThanOrEqual(bound + slack);
      expect(w.min).toBeLessThan(-0.8 * bound);
      expect(w.max).toBeGreaterThan(0.8 * bound);
      // mean within 5 standard errors of 0; uniform on [-b, b] has variance b^2/3 (relative s.e. 0.894/sqrt(n))
      const n = m.weight.data.length;
      expect(Math.abs(w.mean)).toBeLessThan((5 * bound) / Math.sqrt(3 * n));
      const band = (5 * 0.894) / Math.sqrt(n);
      expect(w.variance / ((bound * bound) / 3)).toBeGreaterThan(1 - band);
      expect(w.variance / ((bound * bound) / 3)).toBeLessThan(1 + band);
      const b = stats(m.bias!.data);
      expect(b.min).toBeGreaterThanOrEqual(-bound - slack);
      expect(b.max).toBeLessThanOrEqual(bound + slack);
      if (outC >= 200) {
        expect(b.min).toBeLessThan(-0.8 * bound);
        expect(b.max).toBeGreaterThan(0.8 * bound);
        expect(Math.abs(b.mean)).toBeLessThan((5 * bound) / Math.sqrt(3 * outC));
      }
      // no two weights equal is too strong for float32; but most values must be distinct
      expect(new Set(m.weight.data).size).toBeGreaterThan(0.9 * m.weight.data.length);
    });
  }

  it('defaults: float32, bias present, stride 1 etc. (output shape of a plain layer)', () => {
    const m = new ConvTranspose2d(3, 5, 3, { seed: 1 });
    expect(m.weight.data).toBeInstanceOf(Float32Array);
    expect([...m.weight.shape]).toEqual([3, 5, 3, 3]);
    expect(m.bias).not.toBeNull();
    const y = m.forward({ data: new Float32Array(2 * 3 * 4 * 4), shape: [2, 3, 4, 4] });
    expect([...y.shape]).toEqual([2, 5, 6, 6]);
  });

  it('same seed gives identical parameters, different seeds different ones', () => {
    const a = new ConvTranspose2d(8, 6, [3, 2], { seed: 1234 });
    const b = new ConvTranspose2d(8, 6, [3, 2], { seed: 1234 });
    const c = new ConvTranspose2d(8, 6, [3, 2], { seed: 1235 });
    expectSameBytes(a.weight, b.weight, 'same seed weight');
    expectSameBytes(a.bias!, b.bias!, 'same seed bias');
    expect(Buffer.from(a.weight.data.buffer).equals(Buffer.from(c.weight.data.buffer))).toBe(false);
    expect(Buffer.from(a.bias!.data.buffer).equals(Buffer.from(c.bias!.data.buffer))).toBe(false);
    // weight and bias are not the same stream
    expect(a.bias!.data[0]).not.toBe(a.weight.data[0]);
    const d64 = new ConvTranspose2d(8, 6, [3, 2], { seed: 1234, dtype: 'float64' });
    const e64 = new ConvTranspose2d(8, 6, [3, 2], { seed: 1234, dtype: 'float64' });
    expectSameBytes(d64.weight, e64.weight, 'same seed float64');
  });

  it('modules built without a seed are initialised differently (like torch, not a fixed default seed)', () => {
    const a = new ConvTranspose2d(8, 6, 3);
    const b = new ConvTranspose2d(8, 6, 3);
    expect(Buffer.from(a.weight.data.buffer).equals(Buffer.from(b.weight.data.buffer))).toBe(false);
  });

  it('dtype float64 gives Float64Array parameters', () => {
    const m = new ConvTranspose2d(4, 4, 3, { dtype: 'float64', seed: 3 });
    expect(m.weight.data).toBeInstanceOf(Float64Array);
    expect(m.bias!.data).toBeInstanceOf(Float64Array);
    // genuine float64 values, not upcast float32
    let notF32 = 0;
    for (const v of m.weight.data) if (Math.fround(v) !== v) notF32++;
    expect(notF32).toBeGreaterThan(m.weight.data.length / 2);
  });

  it('bias: false gives a null bias and no bias in forward', () => {
    const m = new ConvTranspose2d(2, 3, 2, { bias: false, seed: 5 });
    expect(m.bias).toBeNull();
    const y = m.forward({ data: new Float32Array(2 * 3 * 3), shape: [2, 3, 3] });
    expect([...y.shape]).toEqual([3, 4, 4]);
    for (const v of y.data) expect(v).toBe(0);
  });

  it('weight shape is [in, out/groups, kH, kW]', () => {
    expect([...new ConvTranspose2d(6, 9, [2, 5], { groups: 3, seed: 1 }).weight.shape]).toEqual([6, 3, 2, 5]);
    expect([...new ConvTranspose2d(4, 8, 1, { groups: 4, seed: 1 }).weight.shape]).toEqual([4, 2, 1, 1]);
    expect([...new ConvTranspose2d(1, 1, [7, 1], { seed: 1 }).weight.shape]).toEqual([1, 1, 7, 1]);
  });
});

describe('ConvTranspose2d forward', () => {
  const configs = [
    { inC: 4, outC: 6, k: 3, o: { stride: 2, padding: 1, outputPadding: 1 }, x: [2, 4, 5, 6] },
    { inC: 6, outC: 4, k: [3, 2] as [number, number], o: { stride: [1, 2] as [number, number], groups: 2, dilation: [2, 1] as [number, number] }, x: [1, 6, 4, 3] },
    { inC: 5, outC: 5, k: 4, o: { groups: 5, stride: 2, padding: 1, bias: false }, x: [5, 7, 7] },
    { inC: 3, outC: 2, k: 1, o: { stride: 3, outputPadding: 2 }, x: [3, 3, 2, 2] },
  ];
  for (const dtype of ['float32', 'float64'] as const) {
    it.each(configs.map((c, i) => ({ ...c, i })))(`${dtype}: equals the functional call and the reference (#$i)`, async (c) => {
      const m = new ConvTranspose2d(c.inC, c.outC, c.k, { ...c.o, dtype, seed: 9 + c.i });
      const rng = new Rng(c.i);
      const x = randTensor(rng, dtype, c.x);
      const y = m.forward(x);
      const { bias: _bias, ...fo } = c.o as { bias?: boolean } & Record<string, unknown>;
      const f = convTranspose2d(x, m.weight, { ...fo, bias: m.bias });
      expectSameBytes(y, f, 'forward vs functional');
      const s = (v: unknown, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : (v as [number, number]));
      const [sH, sW] = s(fo.stride, 1), [pH, pW] = s(fo.padding, 0), [dH, dW] = s(fo.dilation, 1), [opH, opW] = s(fo.outputPadding, 0);
      const ref = refConvTranspose2d(x, m.weight, m.bias ? m.bias.data : null, { sH, sW, pH, pW, dH, dW, opH, opW, groups: (fo.groups as number) ?? 1 });
      expect([...y.shape]).toEqual(ref.shape);
      expect(relErr(y.data, ref.data)).toBeLessThanOrEqual(tolFor(dtype));
      const ya = await m.forwardAsync(x);
      expectSameBytes(ya, y, 'forwardAsync vs forward');
    });
  }

  it('forward(input, outputSize) picks the output padding (module rule) and equals the functional call', () => {
    const m = new ConvTranspose2d(3, 2, 3, { stride: 3, padding: 1, seed: 2 });
    const x = randTensor(new Rng(1), 'float32', [1, 3, 4, 4]);
    // min = 3*3 - 2 + 2 + 1 = 10; valid 10..12
    for (const hw of [[10, 10], [11, 12], [12, 10]]) {
      const y = m.forward(x, hw);
      expect([...y.shape]).toEqual([1, 2, hw[0], hw[1]]);
      const f = convTranspose2d(x, m.weight, { bias: m.bias, stride: 3, padding: 1, outputPadding: [hw[0]! - 10, hw[1]! - 10] });
      expectSameBytes(y, f, `outputSize ${hw}`);
    }
    expectCode(() => m.forward(x, [13, 10]), ErrorCodes.OUTPUT_SIZE, 'outputSize above range');
    expectCode(() => m.forward(x, [9, 10]), ErrorCodes.OUTPUT_SIZE, 'outputSize below range');
  });

  it('the module outputPadding option is used when no outputSize is given', () => {
    const m = new ConvTranspose2d(2, 2, 3, { stride: 2, outputPadding: 1, seed: 4 });
    const x = randTensor(new Rng(2), 'float32', [1, 2, 3, 3]);
    expect([...m.forward(x).shape]).toEqual([1, 2, 8, 8]);
    // an explicit outputSize overrides it (PyTorch ignores the module's output_padding then)
    expect([...m.forward(x, [7, 7]).shape]).toEqual([1, 2, 7, 7]);
  });

  it('parameters replaced in place are used by the next forward (no stale packed weights)', () => {
    const m = new ConvTranspose2d(4, 4, 3, { stride: 2, seed: 11 });
    const x = randTensor(new Rng(3), 'float32', [1, 4, 5, 5]);
    m.forward(x); // may pack/cache
    const rng = new Rng(4);
    for (let i = 0; i < m.weight.data.length; i++) m.weight.data[i] = rng.sym();
    for (let i = 0; i < m.bias!.data.length; i++) m.bias!.data[i] = rng.sym();
    const y = m.forward(x);
    const f = convTranspose2d(x, m.weight, { bias: m.bias, stride: 2 });
    expectSameBytes(y, f, 'after in-place update');
  });

  it('assigning new weight and bias tensors is honoured by the next forward', () => {
    const m = new ConvTranspose2d(3, 4, 2, { stride: 2, seed: 12 });
    const x = randTensor(new Rng(5), 'float32', [2, 3, 4, 4]);
    m.forward(x);
    const w = randTensor(new Rng(6), 'float32', [3, 4, 2, 2]);
    const b = randTensor(new Rng(7), 'float32', [4]);
    m.weight = w;
    m.bias = b;
    expectSameBytes(m.forward(x), convTranspose2d(x, w, { bias: b, stride: 2 }), 'after assignment');
    m.bias = null;
    expectSameBytes(m.forward(x), convTranspose2d(x, w, { stride: 2 }), 'bias removed');
  });

  it('forward rejects inputs whose channels differ from inChannels', () => {
    const m = new ConvTranspose2d(4, 4, 3, { seed: 1 });
    expectCode(() => m.forward({ data: new Float32Array(3 * 25), shape: [1, 3, 5, 5] }), ErrorCodes.CHANNELS, 'channels');
    expectCode(() => m.forward({ data: new Float64Array(4 * 25), shape: [1, 4, 5, 5] }), ErrorCodes.DTYPE, 'float64 input to a float32 module');
  });
});

describe('ConvTranspose2d constructor errors', () => {
  it('groups', () => {
    expectCode(() => new ConvTranspose2d(4, 9, 3, { groups: 3 }), ErrorCodes.GROUPS, 'in_channels not divisible');
    expectCode(() => new ConvTranspose2d(4, 7, 3, { groups: 2 }), ErrorCodes.GROUPS, 'out_channels not divisible');
    expectCode(() => new ConvTranspose2d(4, 4, 3, { groups: 0 }), ErrorCodes.GROUPS, 'groups 0');
    expectCode(() => new ConvTranspose2d(4, 4, 3, { groups: -2 }), ErrorCodes.GROUPS, 'groups -2');
    expectCode(() => new ConvTranspose2d(4, 4, 3, { groups: 1.5 }), ErrorCodes.GROUPS, 'groups 1.5');
  });
  it('paddingMode other than zeros', () => {
    for (const mode of ['reflect', 'replicate', 'circular', 'nonsense']) {
      expectCode(() => new ConvTranspose2d(4, 3, 3, { paddingMode: mode as 'zeros' }), ErrorCodes.PADDING, mode);
    }
  });
  // PyTorch checks these at construction or at the first forward; either is fine, the code is what matters.
  function constructOrForward(make: () => ConvTranspose2d, code: string, what: string): void {
    expectCode(() => {
      const m = make();
      const inC = m.weight.shape[0]!;
      m.forward({ data: new Float32Array(inC * 16), shape: [1, inC, 4, 4] });
    }, code, what);
  }
  it('channel counts', () => {
    constructOrForward(() => new ConvTranspose2d(0, 3, 3), ErrorCodes.CHANNELS, 'in 0');
    constructOrForward(() => new ConvTranspose2d(3, 0, 3), ErrorCodes.CHANNELS, 'out 0');
    constructOrForward(() => new ConvTranspose2d(2.5, 3, 3), ErrorCodes.CHANNELS, 'in 2.5');
    constructOrForward(() => new ConvTranspose2d(-1, 3, 3), ErrorCodes.CHANNELS, 'in -1');
  });
  it('kernel size', () => {
    constructOrForward(() => new ConvTranspose2d(2, 3, 0), ErrorCodes.EMPTY_WEIGHT, 'kernel 0');
    constructOrForward(() => new ConvTranspose2d(2, 3, [3, 0]), ErrorCodes.EMPTY_WEIGHT, 'kernel [3,0]');
    constructOrForward(() => new ConvTranspose2d(2, 3, [3, 3, 3] as unknown as [number, number]), ErrorCodes.PARAM_LENGTH, 'kernel of 3 values');
  });
  it('other parameters', () => {
    constructOrForward(() => new ConvTranspose2d(2, 3, 3, { stride: 0 }), ErrorCodes.STRIDE, 'stride');
    constructOrForward(() => new ConvTranspose2d(2, 3, 3, { padding: -1 }), ErrorCodes.PADDING, 'padding');
    constructOrForward(() => new ConvTranspose2d(2, 3, 3, { dilation: 0 }), ErrorCodes.DILATION, 'dilation');
    constructOrForward(() => new ConvTranspose2d(2, 3, 3, { outputPadding: 1 }), ErrorCodes.OUTPUT_PADDING, 'outputPadding 1 with stride 1');
    expectCode(() => new ConvTranspose2d(2, 3, 3, { dtype: 'int32' as 'float32' }), ErrorCodes.DTYPE, 'dtype');
  });
});
