// Every rejection PyTorch makes in errors.json is a coded ConvTransposeError here (same code on every backend),
// and every surprising acceptance runs and gives PyTorch's output shape.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConvTranspose2d,
  ConvTransposeError,
  ErrorCodes,
  convTranspose2d,
  convTranspose2dAsync,
  outputShape,
} from '../lib/index';
import type { ConvTranspose2dOptions, Tensor } from '../lib/types';
import { backends, caught, expectAsyncCode, expectCode, goldenDir, prod } from './helpers';

interface ModuleArgs {
  in_channels: number;
  out_channels: number;
  kernel_size: number | number[];
  stride: number | number[];
  padding: number | number[];
  output_padding: number | number[];
  groups: number;
  bias: boolean;
  dilation: number | number[];
  padding_mode: string;
}

interface Entry {
  name: string;
  kind: string;
  api: string;
  input_shape: number[] | null;
  input_dtype: string | null;
  weight_shape: number[] | null;
  weight_dtype: string | null;
  bias_shape: number[] | null;
  bias_dtype: string | null;
  stride: unknown;
  padding: unknown;
  output_padding: unknown;
  dilation: unknown;
  groups: number | null;
  output_size: number[] | null;
  module_args?: ModuleArgs;
  message?: string;
  output_shape?: number[];
}

const errorsPath = path.join(goldenDir, 'errors.json');
if (!fs.existsSync(errorsPath)) throw new Error(`errors.json missing: ${errorsPath}`);
const doc = JSON.parse(fs.readFileSync(errorsPath, 'utf8')) as { errors: Entry[]; accepted: Entry[] };

const FUNCTIONAL = 'torch.nn.functional.conv_transpose2d';
const INIT = 'torch.nn.ConvTranspose2d.__init__';
const FORWARD = 'torch.nn.ConvTranspose2d.forward';

const kindToCode: Record<string, string> = {
  output_padding: ErrorCodes.OUTPUT_PADDING,
  groups: ErrorCodes.GROUPS,
  channels: ErrorCodes.CHANNELS,
  weight_rank: ErrorCodes.WEIGHT_RANK,
  bad_rank: ErrorCodes.INPUT_RANK,
  stride: ErrorCodes.STRIDE,
  param_length: ErrorCodes.PARAM_LENGTH,
  padding: ErrorCodes.PADDING,
  dilation: ErrorCodes.DILATION,
  nonpositive_output: ErrorCodes.NONPOSITIVE_OUTPUT,
  output_size: ErrorCodes.OUTPUT_SIZE,
  empty_input: ErrorCodes.EMPTY_INPUT,
  empty_weight: ErrorCodes.EMPTY_WEIGHT,
  bias: ErrorCodes.BIAS,
  dtype: ErrorCodes.DTYPE,
};

/** Checked against errors.ts as well, so a renamed code fails here rather than silently matching undefined. */
const expectedCodeStrings: Record<string, string> = {
  output_padding: 'ERR_CONV_TRANSPOSE_OUTPUT_PADDING',
  groups: 'ERR_CONV_TRANSPOSE_GROUPS',
  channels: 'ERR_CONV_TRANSPOSE_CHANNELS',
  weight_rank: 'ERR_CONV_TRANSPOSE_WEIGHT_RANK',
  bad_rank: 'ERR_CONV_TRANSPOSE_INPUT_RANK',
  stride: 'ERR_CONV_TRANSPOSE_STRIDE',
  param_length: 'ERR_CONV_TRANSPOSE_PARAM_LENGTH',
  padding: 'ERR_CONV_TRANSPOSE_PADDING',
  dilation: 'ERR_CONV_TRANSPOSE_DILATION',
  nonpositive_output: 'ERR_CONV_TRANSPOSE_NONPOSITIVE_OUTPUT',
  output_size: 'ERR_CONV_TRANSPOSE_OUTPUT_SIZE',
  empty_input: 'ERR_CONV_TRANSPOSE_EMPTY_INPUT',
  empty_weight: 'ERR_CONV_TRANSPOSE_EMPTY_WEIGHT',
  bias: 'ERR_CONV_TRANSPOSE_BIAS',
  dtype: 'ERR_CONV_TRANSPOSE_DTYPE',
};

function zeros(shape: number[], dtype: string | null): Tensor {
  const n = prod(shape);
  let data: Float32Array | Float64Array;
  if (dtype === 'float32') data = new Float32Array(n);
  else if (dtype === 'float64') data = new Float64Array(n);
  else if (dtype === 'int32') data = new Int32Array(n) as unknown as Float32Array; // must be rejected
  else throw new Error(`unknown dtype ${dtype}`);
  return { data, shape };
}

function functionalArgs(e: Entry, backend?: 'js' | 'native'): [Tensor, Tensor, ConvTranspose2dOptions] {
  const input = zeros(e.input_shape!, e.input_dtype);
  const weight = zeros(e.weight_shape!, e.weight_dtype);
  // parameters exactly as stored (lists of any length, the string "same")
  const o = {
    stride: e.stride,
    padding: e.padding,
    outputPadding: e.output_padding,
    dilation: e.dilation,
    groups: e.groups,
  } as unknown as ConvTranspose2dOptions;
  if (e.bias_shape) o.bias = zeros(e.bias_shape, e.bias_dtype);
  if (e.output_size) o.outputSize = e.output_size;
  if (backend) o.backend = backend;
  return [input, weight, o];
}

function makeModule(a: ModuleArgs, dtype: string | null): ConvTranspose2d {
  return new ConvTranspose2d(a.in_channels, a.out_channels, a.kernel_size as [number, number], {
    stride: a.stride as [number, number],
    padding: a.padding as [number, number],
    outputPadding: a.output_padding as [number, number],
    groups: a.groups,
    bias: a.bias,
    dilation: a.dilation as [number, number],
    paddingMode: a.padding_mode as 'zeros',
    dtype: (dtype ?? 'float32') as 'float32' | 'float64',
    seed: 7,
  });
}

// ----- message checks: the message names the parameter (loose regex per kind) and, where PyTorch's meaning
// involves specific numbers, those numbers (DESIGN §3: "name the parameter and the values").
const paramNames: Record<string, RegExp> = {
  stride: /stride/i,
  padding: /padding/i,
  output_padding: /output[ _-]?padding/i,
  dilation: /dilation/i,
};

function nameRegex(e: Entry): RegExp {
  switch (e.kind) {
    case 'output_padding':
      return /output[ _-]?padding/i;
    case 'groups':
      return /group/i;
    case 'channels':
      return /channel/i;
    case 'weight_rank':
      return /weight/i;
    case 'bad_rank':
      return /input/i;
    case 'stride':
      return /stride/i;
    case 'padding':
      return /padding/i;
    case 'dilation':
      return /dilation/i;
    case 'nonpositive_output':
      return /output/i;
    case 'output_size':
      return /output[ _-]?size/i;
    case 'empty_input':
      return /input/i;
    case 'empty_weight':
      return /weight|kernel/i;
    case 'bias':
      return /bias/i;
    case 'dtype':
      return /dtype|float|int|type/i;
    case 'param_length': {
      for (const p of ['output_padding', 'stride', 'padding', 'dilation'] as const) {
        const v = (e as unknown as Record<string, unknown>)[p];
        if (Array.isArray(v) && v.length !== 1 && v.length !== 2) return paramNames[p]!;
      }
      throw new Error(`no over-long parameter in ${e.name}`);
    }
    default:
      throw new Error(`unknown kind ${e.kind}`);
  }
}

function hasNumber(msg: string, n: number): boolean {
  const lit = String(n).replace('-', '\\-');
  return new RegExp(`(?<![\\d.])${lit}(?!\\d|\\.\\d)`).test(msg);
}

function outExtent(inp: number, s: number, p: number, d: number, k: number, op: number): number {
  return (inp - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

/** Numbers the message should contain, per entry; empty when PyTorch's meaning has no specific value. */
function valuesFor(e: Entry): number[] {
  const arr = (v: unknown): number[] => (Array.isArray(v) ? (v as number[]) : []);
  switch (e.kind) {
    case 'output_padding': {
      const op = arr(e.output_padding);
      const s = arr(e.stride);
      const d = arr(e.dilation);
      // the offending dimension's output padding
      const bad = op.filter((v, i) => v < 0 || (v >= s[i]! && v >= d[i]!));
      return bad.slice(0, 1);
    }
    case 'groups':
      if (e.api === FUNCTIONAL) return [e.groups!];
      return [];
    case 'channels': {
      const inC = e.input_shape!.length === 4 ? e.input_shape![1]! : e.input_shape![0]!;
      return [e.weight_shape![0]!, inC];
    }
    case 'stride':
    case 'dilation':
    case 'padding': {
      const v = (e as unknown as Record<string, unknown>)[e.kind];
      if (!Array.isArray(v)) return [];
      const bad = (v as number[]).filter((x) => (e.kind === 'padding' ? x < 0 : x <= 0));
      return bad.slice(0, 1);
    }
    case 'nonpositive_output': {
      const [, , H, W] = e.input_shape!;
      const [, , kH, kW] = e.weight_shape!;
      const s = arr(e.stride), p = arr(e.padding), d = arr(e.dilation), op = arr(e.output_padding);
      const h = outExtent(H!, s[0]!, p[0]!, d[0]!, kH!, op[0]!);
      const w = outExtent(W!, s[1]!, p[1]!, d[1]!, kW!, op[1]!);
      return h < 1 ? [h] : [w];
    }
    case 'output_size':
      if (e.output_size!.length === 2) return [...e.output_size!];
      return [e.output_size!.length];
    case 'bias': {
      const cout = e.groups! * e.weight_shape![1]!;
      return [cout];
    }
    default:
      return [];
  }
}

describe('error code table', () => {
  it('every kind maps to the documented code string', () => {
    for (const [kind, code] of Object.entries(kindToCode)) expect(code, kind).toBe(expectedCodeStrings[kind]);
  });
  it('errors.json is complete and every kind is known', () => {
    expect(doc.errors.length).toBeGreaterThanOrEqual(60);
    for (const e of doc.errors) expect(kindToCode[e.kind], `${e.name}: kind ${e.kind}`).toBeDefined();
  });
});

const functionalEntries = doc.errors.filter((e) => e.api === FUNCTIONAL);
const initEntries = doc.errors.filter((e) => e.api === INIT);
const forwardEntries = doc.errors.filter((e) => e.api === FORWARD);

describe('errors.json api coverage', () => {
  it('has functional, __init__ and forward entries and nothing else', () => {
    expect(functionalEntries.length).toBeGreaterThan(0);
    expect(initEntries.length).toBeGreaterThan(0);
    expect(forwardEntries.length).toBeGreaterThan(0);
    expect(functionalEntries.length + initEntries.length + forwardEntries.length).toBe(doc.errors.length);
  });
});

describe.each(backends)('functional rejections, backend $backend', ({ backend }) => {
  it.each(functionalEntries.map((e) => ({ name: e.name, kind: e.kind, e })))('$kind: $name', ({ e }) => {
    const [x, w, o] = functionalArgs(e, backend);
    expectCode(() => convTranspose2d(x, w, o), kindToCode[e.kind]!, e.name);
  });

  it.each(functionalEntries.map((e) => ({ name: e.name, kind: e.kind, e })))('async rejects: $name', async ({ e }) => {
    const [x, w, o] = functionalArgs(e, backend);
    await expectAsyncCode(() => convTranspose2dAsync(x, w, o), kindToCode[e.kind]!, e.name);
  });

  // forward entries through the functional API too (outputSize is a functional option here)
  it.each(forwardEntries.map((e) => ({ name: e.name, kind: e.kind, e })))('functional outputSize $kind: $name', ({ e }) => {
    const [x, w, o] = functionalArgs(e, backend);
    delete o.outputPadding; // outputSize replaces output padding
    expectCode(() => convTranspose2d(x, w, o), kindToCode[e.kind]!, e.name);
  });
});

describe('module constructor rejections', () => {
  it.each(initEntries.map((e) => ({ name: e.name, kind: e.kind, e })))('$kind: $name', ({ e }) => {
    expectCode(() => makeModule(e.module_args!, 'float32'), kindToCode[e.kind]!, e.name);
  });
});

describe('module forward rejections', () => {
  it.each(forwardEntries.map((e) => ({ name: e.name, kind: e.kind, e })))('$kind: $name', async ({ e }) => {
    const m = makeModule(e.module_args!, e.input_dtype);
    const x = zeros(e.input_shape!, e.input_dtype);
    expectCode(() => m.forward(x, e.output_size!), kindToCode[e.kind]!, e.name);
    await expectAsyncCode(() => m.forwardAsync(x, e.output_size!), kindToCode[e.kind]!, `${e.name} (forwardAsync)`);
  });
});

describe('error messages name the parameter', () => {
  function messageOf(e: Entry): string {
    let err: unknown;
    if (e.api === FUNCTIONAL) {
      const [x, w, o] = functionalArgs(e);
      err = caught(() => convTranspose2d(x, w, o));
    } else if (e.api === INIT) {
      err = caught(() => makeModule(e.module_args!, 'float32'));
    } else {
      const m = makeModule(e.module_args!, e.input_dtype);
      err = caught(() => m.forward(zeros(e.input_shape!, e.input_dtype), e.output_size!));
    }
    expect(err, e.name).toBeInstanceOf(ConvTransposeError);
    return (err as Error).message;
  }

  it.each(doc.errors.map((e) => ({ name: e.name, kind: e.kind, e })))('$kind: $name', ({ e }) => {
    const msg = messageOf(e);
    expect(msg.trim().length, `${e.name}: empty message`).toBeGreaterThan(0);
    expect(msg, `${e.name}: message should name the parameter`).toMatch(nameRegex(e));
    // no internal names / stack garbage in the user-facing message
    expect(msg, e.name).not.toMatch(/undefined|NaN|\[object Object\]/);
  });

  const withValues = doc.errors.filter((e) => valuesFor(e).length > 0);
  it.each(withValues.map((e) => ({ name: e.name, kind: e.kind, e })))('$kind: $name names the values', ({ e }) => {
    const msg = messageOf(e);
    for (const v of valuesFor(e)) expect(hasNumber(msg, v), `${e.name}: message should contain ${v}: "${msg}"`).toBe(true);
  });
});

describe('accepted entries', () => {
  const functionalAccepted = doc.accepted.filter((e) => e.api === FUNCTIONAL);
  const forwardAccepted = doc.accepted.filter((e) => e.api === FORWARD);

  it('cover every api kind in the file', () => {
    expect(functionalAccepted.length + forwardAccepted.length).toBe(doc.accepted.length);
  });

  describe.each(backends)('backend $backend', ({ backend }) => {
    it.each(functionalAccepted.map((e) => ({ name: e.name, e })))('functional: $name', async ({ e }) => {
      const [x, w, o] = functionalArgs(e, backend);
      const y = convTranspose2d(x, w, o);
      expect([...y.shape]).toEqual(e.output_shape);
      expect(y.data.length).toBe(prod(e.output_shape!));
      expect(y.data).toBeInstanceOf(e.input_dtype === 'float64' ? Float64Array : Float32Array);
      const ya = await convTranspose2dAsync(x, w, o);
      expect([...ya.shape]).toEqual(e.output_shape);
      const { backend: _b, bias: _bias, ...shapeOpts } = o;
      expect(outputShape(e.input_shape!, e.weight_shape!, shapeOpts)).toEqual(e.output_shape);
    });

    it.each(forwardAccepted.map((e) => ({ name: e.name, e })))('functional outputSize: $name', ({ e }) => {
      const [x, w, o] = functionalArgs(e, backend);
      delete o.outputPadding;
      const y = convTranspose2d(x, w, o);
      expect([...y.shape]).toEqual(e.output_shape);
    });
  });

  it.each(forwardAccepted.map((e) => ({ name: e.name, e })))('module forward: $name', async ({ e }) => {
    const m = makeModule(e.module_args!, e.input_dtype);
    const x = zeros(e.input_shape!, e.input_dtype);
    const y = m.forward(x, e.output_size!);
    expect([...y.shape]).toEqual(e.output_shape);
    // zero input: every output element is exactly its channel's bias
    const Cout = e.module_args!.out_channels;
    const plane = prod(e.output_shape!.slice(-2));
    for (let i = 0; i < y.data.length; i++) {
      const co = Math.floor(i / plane) % Cout;
      expect(y.data[i]).toBe(m.bias ? m.bias.data[co] : 0);
    }
    const ya = await m.forwardAsync(x, e.output_size!);
    expect([...ya.shape]).toEqual(e.output_shape);
  });
});
