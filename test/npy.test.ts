// .npy reading and writing (numpy format 1.0, little-endian, C order, '<f4' / '<f8').
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConvTransposeError, ErrorCodes, readNpy, readNpyFile, writeNpy, writeNpyFile } from '../lib/index';
import type { Tensor } from '../lib/types';
import { Rng, expectCode, expectSameBytes, goldenDir, prod, randTensor } from './helpers';

interface GoldenCase {
  name: string;
  dtype: 'float32' | 'float64';
  input_shape: number[];
  weight_shape: number[];
  bias_shape: number[] | null;
  expected_shape: number[];
  has_bias: boolean;
}
const manifest = JSON.parse(fs.readFileSync(path.join(goldenDir, 'cases.json'), 'utf8')) as { cases: GoldenCase[] };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'conv-transpose-npy-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Builds an .npy file by hand: header dict text, padded to make 10+len a multiple of `align` (1 = no padding). */
function npyBytes(opts: { descr?: string; fortran?: string; shape?: string; data?: Uint8Array; align?: number; header?: string; major?: number; minor?: number }): Uint8Array {
  const header = opts.header ??
    `{'descr': '${opts.descr ?? '<f4'}', 'fortran_order': ${opts.fortran ?? 'False'}, 'shape': ${opts.shape ?? '(2,)'}, }`;
  const align = opts.align ?? 64;
  let h = header;
  const total = 10 + h.length + 1;
  const pad = align > 1 ? (align - (total % align)) % align : 0;
  h = h + ' '.repeat(pad) + '\n';
  const data = opts.data ?? new Uint8Array(new Float32Array([1.5, -2]).buffer);
  const out = new Uint8Array(10 + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, opts.major ?? 1, opts.minor ?? 0], 0);
  out[8] = h.length & 0xff;
  out[9] = h.length >> 8;
  for (let i = 0; i < h.length; i++) out[10 + i] = h.charCodeAt(i);
  out.set(data, 10 + h.length);
  return out;
}

function headerOf(bytes: Uint8Array): { hlen: number; text: string } {
  const hlen = bytes[8]! | (bytes[9]! << 8);
  return { hlen, text: Buffer.from(bytes.buffer, bytes.byteOffset + 10, hlen).toString('latin1') };
}

describe('readNpyFile on the golden files', () => {
  it.each(manifest.cases.map((c) => ({ name: c.name, c })))('$name', ({ c }) => {
    const dir = path.join(goldenDir, c.name);
    const Arr = c.dtype === 'float32' ? Float32Array : Float64Array;
    const x = readNpyFile(path.join(dir, 'input.npy'));
    expect([...x.shape]).toEqual(c.input_shape);
    expect(x.data).toBeInstanceOf(Arr);
    expect(x.data.length).toBe(prod(c.input_shape));
    const w = readNpyFile(path.join(dir, 'weight.npy'));
    expect([...w.shape]).toEqual(c.weight_shape);
    expect(w.data).toBeInstanceOf(Arr);
    if (c.has_bias) {
      const b = readNpyFile(path.join(dir, 'bias.npy'));
      expect([...b.shape]).toEqual(c.bias_shape);
      expect(b.data).toBeInstanceOf(Arr);
    } else {
      expect(fs.existsSync(path.join(dir, 'bias.npy'))).toBe(false);
    }
    const e = readNpyFile(path.join(dir, 'expected.npy'));
    expect([...e.shape]).toEqual(c.expected_shape);
    expect(e.data).toBeInstanceOf(Float64Array); // expected is always '<f8'
    // readNpy on the bytes gives the same thing as readNpyFile
    const raw = fs.readFileSync(path.join(dir, 'weight.npy'));
    const w2 = readNpy(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
    expectSameBytes(w2, w, 'readNpy vs readNpyFile');
    // the values are the file's little-endian payload
    const hlen = raw.readUInt16LE(8);
    const dv = new DataView(raw.buffer, raw.byteOffset + 10 + hlen);
    const size = c.dtype === 'float32' ? 4 : 8;
    for (let i = 0; i < Math.min(w.data.length, 8); i++) {
      expect(w.data[i]).toBe(size === 4 ? dv.getFloat32(i * size, true) : dv.getFloat64(i * size, true));
    }
  });

  it('a Node Buffer (a Uint8Array subclass) is accepted too', () => {
    const c = manifest.cases[0]!;
    const buf = fs.readFileSync(path.join(goldenDir, c.name, 'input.npy'));
    const t = readNpy(buf);
    expect([...t.shape]).toEqual(c.input_shape);
  });
});

describe('writeNpy / readNpy round trip', () => {
  const shapes: number[][] = [[3], [2, 3], [1, 2, 3, 4], [0, 3], [0, 4, 5, 5], [5, 0], [1], [7, 1, 1], [2, 3, 4, 5, 6]];
  for (const dtype of ['float32', 'float64'] as const) {
    it.each(shapes.map((s) => ({ s: JSON.stringify(s), shape: s })))(`${dtype} shape $s`, ({ shape }) => {
      const t = randTensor(new Rng(shape.length * 31 + shape[0]!), dtype, shape);
      const bytes = writeNpy(t);
      expect(bytes).toBeInstanceOf(Uint8Array);
      // format 1.0, magic, header padded so that the data starts at a multiple of 64, ending in '\n'
      expect([...bytes.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
      const { hlen, text } = headerOf(bytes);
      expect((10 + hlen) % 64).toBe(0);
      expect(text.endsWith('\n')).toBe(true);
      expect(text).toMatch(new RegExp(`'descr':\\s*'${dtype === 'float32' ? '<f4' : '<f8'}'`));
      expect(text).toMatch(/'fortran_order':\s*False/);
      // numpy's own tuple syntax: (3,) for 1-D, (2, 3) otherwise
      const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
      expect(text).toContain(`'shape': ${tuple}`);
      expect(bytes.length).toBe(10 + hlen + prod(shape) * (dtype === 'float32' ? 4 : 8));
      const back = readNpy(bytes);
      expectSameBytes(back, t, 'round trip');
      expect([...back.shape]).toEqual(shape);
    });
  }

  it('0-d (scalar) tensors round-trip with shape ()', () => {
    const t: Tensor = { data: new Float64Array([Math.PI]), shape: [] };
    const bytes = writeNpy(t);
    expect(headerOf(bytes).text).toContain("'shape': ()");
    const back = readNpy(bytes);
    expect([...back.shape]).toEqual([]);
    expect(Array.from(back.data)).toEqual([Math.PI]);
  });

  it('special values survive (NaN payloads aside): -0, Infinity, subnormals, extremes', () => {
    const vals = [-0, Infinity, -Infinity, 5e-324, Number.MAX_VALUE, -Number.MIN_VALUE, 1 / 3];
    const t: Tensor = { data: Float64Array.from(vals), shape: [vals.length] };
    const back = readNpy(writeNpy(t));
    expect(Object.is(back.data[0], -0)).toBe(true);
    expect(Array.from(back.data)).toEqual(vals);
    const nan = readNpy(writeNpy({ data: new Float32Array([NaN, 1]), shape: [2] }));
    expect(Number.isNaN(nan.data[0])).toBe(true);
  });

  it('a tensor whose data is a view at an offset writes only its window', () => {
    const big = new Float32Array([9, 9, 1, 2, 3, 4, 9, 9]);
    const view = big.subarray(2, 6);
    const back = readNpy(writeNpy({ data: view, shape: [2, 2] }));
    expect(Array.from(back.data)).toEqual([1, 2, 3, 4]);
  });

  it('writeNpyFile / readNpyFile round trip through the file system', () => {
    const t = randTensor(new Rng(5), 'float64', [2, 3, 4]);
    const p = path.join(tmp, 'rt.npy');
    writeNpyFile(p, t);
    const raw = fs.readFileSync(p);
    expect(Buffer.from(writeNpy(t)).equals(raw)).toBe(true);
    expectSameBytes(readNpyFile(p), t, 'file round trip');
  });

  it('writeNpy rejects data whose length disagrees with the shape, and non-float data', () => {
    const e = expectCode(() => writeNpy({ data: new Float32Array(5), shape: [2, 3] }), ErrorCodes.DATA_LENGTH, 'length');
    expect(e).toBeInstanceOf(ConvTransposeError);
    expectCode(() => writeNpy({ data: new Int32Array(6) as unknown as Float32Array, shape: [2, 3] }), ErrorCodes.DTYPE, 'int32');
  });
});

describe('readNpy accepts valid variants', () => {
  it('headers that are not padded to 64 (odd lengths, unaligned data offset)', () => {
    for (const align of [1, 2, 3, 7, 16]) {
      const bytes = npyBytes({ align, data: new Uint8Array(new Float64Array([1.25, -3.5, 7]).buffer), descr: '<f8', shape: '(3,)' });
      const t = readNpy(bytes);
      expect([...t.shape]).toEqual([3]);
      expect(Array.from(t.data)).toEqual([1.25, -3.5, 7]);
    }
  });
  it('a buffer view at an odd byte offset', () => {
    const inner = npyBytes({ data: new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer), shape: '(2, 2)' });
    const outer = new Uint8Array(inner.length + 3);
    outer.set(inner, 1);
    const t = readNpy(outer.subarray(1, 1 + inner.length));
    expect([...t.shape]).toEqual([2, 2]);
    expect(Array.from(t.data)).toEqual([1, 2, 3, 4]);
  });
  it('keys in another order and without the trailing comma', () => {
    const t = readNpy(npyBytes({ header: "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}" }));
    expect(Array.from(t.data)).toEqual([1.5, -2]);
  });
  it('the result does not alias the caller\'s bytes', () => {
    const bytes = npyBytes({});
    const t = readNpy(bytes);
    bytes.fill(0);
    expect(Array.from(t.data)).toEqual([1.5, -2]);
  });
});

describe('readNpy rejects malformed files with ERR_CONV_TRANSPOSE_NPY', () => {
  const good = npyBytes({});
  const cases: { name: string; bytes: Uint8Array }[] = [
    { name: 'empty file', bytes: new Uint8Array(0) },
    { name: 'shorter than the preamble', bytes: good.subarray(0, 7) },
    { name: 'bad magic', bytes: (() => { const b = good.slice(); b[1] = 0x58; return b; })() },
    { name: 'bad first magic byte', bytes: (() => { const b = good.slice(); b[0] = 0x94; return b; })() },
    { name: 'fortran order', bytes: npyBytes({ fortran: 'True' }) },
    { name: 'big-endian >f4', bytes: npyBytes({ descr: '>f4' }) },
    { name: 'big-endian >f8', bytes: npyBytes({ descr: '>f8', data: new Uint8Array(16) }) },
    { name: 'int32 <i4', bytes: npyBytes({ descr: '<i4' }) },
    { name: 'float16 <f2', bytes: npyBytes({ descr: '<f2', data: new Uint8Array(4) }) },
    { name: 'object dtype |O', bytes: npyBytes({ descr: '|O' }) },
    { name: 'truncated data', bytes: good.subarray(0, good.length - 1) },
    { name: 'header length beyond the file', bytes: good.subarray(0, 40) },
    { name: 'missing shape', bytes: npyBytes({ header: "{'descr': '<f4', 'fortran_order': False, }" }) },
    { name: 'missing descr', bytes: npyBytes({ header: "{'fortran_order': False, 'shape': (2,), }" }) },
    { name: 'negative dimension', bytes: npyBytes({ shape: '(-2,)' }) },
    { name: 'non-integer dimension', bytes: npyBytes({ shape: '(2.5,)' }) },
    { name: 'unknown major version', bytes: npyBytes({ major: 9 }) },
  ];
  it.each(cases)('$name', ({ name, bytes }) => {
    expectCode(() => readNpy(bytes), ErrorCodes.NPY, name);
  });

  it('readNpyFile on a malformed file throws the same code', () => {
    const p = path.join(tmp, 'bad.npy');
    fs.writeFileSync(p, npyBytes({ descr: '<i4' }));
    expectCode(() => readNpyFile(p), ErrorCodes.NPY, 'file');
  });
});
