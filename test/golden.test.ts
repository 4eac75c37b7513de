// Every public golden case (PyTorch 1.13 outputs) on every backend under test, sync, async and via the module.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConvTranspose2d, convTranspose2d, convTranspose2dAsync, outputShape, readNpyFile } from '../lib/index';
import type { ConvTranspose2dOptions, Tensor } from '../lib/types';
import { backends, expectClose, goldenDir, relErr, type DT } from './helpers';

interface GoldenCase {
  name: string;
  dtype: DT;
  input_shape: number[];
  weight_shape: number[];
  bias_shape: number[] | null;
  expected_shape: number[];
  in_channels: number;
  out_channels: number;
  kernel_size: [number, number];
  stride: [number, number];
  padding: [number, number];
  output_padding: [number, number];
  dilation: [number, number];
  groups: number;
  has_bias: boolean;
  output_size: number[] | null;
  files: { input: string; weight: string; bias?: string; expected: string };
}

const manifestPath = path.join(goldenDir, 'cases.json');
if (!fs.existsSync(manifestPath)) {
  throw new Error(`golden manifest missing: ${manifestPath} (expected ../shared/golden/public next to the repo)`);
}
const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { count: number; cases: GoldenCase[] };
const cases = manifest.cases;

interface Loaded {
  c: GoldenCase;
  input: Tensor;
  weight: Tensor;
  bias: Tensor | null;
  expected: Tensor;
}

const cache = new Map<string, Loaded>();
function load(c: GoldenCase): Loaded {
  let l = cache.get(c.name);
  if (!l) {
    const dir = path.join(goldenDir, c.name);
    l = {
      c,
      input: readNpyFile(path.join(dir, c.files.input)),
      weight: readNpyFile(path.join(dir, c.files.weight)),
      bias: c.has_bias ? readNpyFile(path.join(dir, c.files.bias ?? 'bias.npy')) : null,
      expected: readNpyFile(path.join(dir, c.files.expected)),
    };
    cache.set(c.name, l);
  }
  return l;
}

function optionsFor(l: Loaded, backend: 'js' | 'native'): ConvTranspose2dOptions {
  const c = l.c;
  const o: ConvTranspose2dOptions = {
    stride: c.stride,
    padding: c.padding,
    dilation: c.dilation,
    groups: c.groups,
    backend,
  };
  if (l.bias) o.bias = l.bias;
  // output_size cases: pass outputSize and NOT output_padding (the manifest's output_padding is the derived one)
  if (c.output_size) o.outputSize = c.output_size;
  else o.outputPadding = c.output_padding;
  return o;
}

const worst: Record<string, { rel: number; name: string; f32: number; f64: number }> = {};
function record(key: string, name: string, dtype: DT, rel: number): void {
  const w = (worst[key] ??= { rel: 0, name: '', f32: 0, f64: 0 });
  if (rel > w.rel) {
    w.rel = rel;
    w.name = name;
  }
  if (dtype === 'float32') w.f32 = Math.max(w.f32, rel);
  else w.f64 = Math.max(w.f64, rel);
}

afterAll(() => {
  for (const [k, w] of Object.entries(worst)) {
    console.log(
      `[golden] ${k}: worst relative error ${w.rel.toExponential(3)} (${w.name}); float32 ${w.f32.toExponential(3)}, float64 ${w.f64.toExponential(3)}`,
    );
  }
});

describe('golden manifest', () => {
  it('has all 60 public cases, each with its files', () => {
    expect(manifest.count).toBe(60);
    expect(cases).toHaveLength(60);
    for (const c of cases) {
      const dir = path.join(goldenDir, c.name);
      expect(fs.existsSync(path.join(dir, c.files.input)), c.name).toBe(true);
      expect(fs.existsSync(path.join(dir, c.files.expected)), c.name).toBe(true);
    }
  });

  it.each(cases.map((c) => ({ name: c.name, c })))('outputShape matches expected_shape: $name', ({ c }) => {
    const o: ConvTranspose2dOptions = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
    if (c.output_size) o.outputSize = c.output_size;
    else o.outputPadding = c.output_padding;
    expect(outputShape(c.input_shape, c.weight_shape, o)).toEqual(c.expected_shape);
  });
});

describe.each(backends)('golden cases, backend $backend', ({ backend }) => {
  it.each(cases.map((c) => ({ name: c.name, c })))('sync: $name', ({ c }) => {
    const l = load(c);
    const got = convTranspose2d(l.input, l.weight, optionsFor(l, backend));
    expect([...got.shape]).toEqual(c.expected_shape);
    const rel = expectClose(got, l.expected, c.dtype, `${backend} ${c.name}`);
    record(`${backend} sync`, c.name, c.dtype, rel);
  });

  it.each(cases.map((c) => ({ name: c.name, c })))('async: $name', async ({ c }) => {
    const l = load(c);
    const got = await convTranspose2dAsync(l.input, l.weight, optionsFor(l, backend));
    expect([...got.shape]).toEqual(c.expected_shape);
    const rel = expectClose(got, l.expected, c.dtype, `${backend} async ${c.name}`);
    record(`${backend} async`, c.name, c.dtype, rel);
  });
});

describe('golden output_size cases through the ConvTranspose2d module', () => {
  const osCases = cases.filter((c) => c.output_size);
  it('there are output_size cases', () => {
    expect(osCases.length).toBeGreaterThanOrEqual(5);
  });
  it.each(osCases.map((c) => ({ name: c.name, c })))('module forward(input, outputSize): $name', async ({ c }) => {
    const l = load(c);
    const m = new ConvTranspose2d(c.in_channels, c.out_channels, c.kernel_size, {
      stride: c.stride,
      padding: c.padding,
      dilation: c.dilation,
      groups: c.groups,
      bias: c.has_bias,
      dtype: c.dtype,
      seed: 1,
    });
    expect([...m.weight.shape]).toEqual(c.weight_shape);
    m.weight.data.set(l.weight.data);
    if (l.bias) m.bias!.data.set(l.bias.data);
    const got = m.forward(l.input, c.output_size!);
    expectClose(got, l.expected, c.dtype, `module ${c.name}`);
    // and the same result as the functional call (auto backend) with the derived output padding
    const fn = convTranspose2d(l.input, l.weight, {
      bias: l.bias, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, outputPadding: c.output_padding,
    });
    expect(relErr(got.data, fn.data)).toBeLessThanOrEqual(c.dtype === 'float32' ? 1e-5 : 1e-12);
    const gotAsync = await m.forwardAsync(l.input, c.output_size!);
    expectClose(gotAsync, l.expected, c.dtype, `module async ${c.name}`);
  });
});
