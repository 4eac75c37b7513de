// The one place where the arguments of a call are checked and resolved: (input, weight, options) -> a frozen Plan.
// Every PyTorch rule of DESIGN §3 lives here, so both backends see the same errors (they validate nothing themselves).
import { ErrorCodes, fail } from './errors';
import type { ConvTranspose2dOptions, DType, FloatArray, Plan, Size2, Tensor } from './types';

/** The largest element count a result may have: what one typed array can hold here. */
export const MAX_ELEMENTS = 2 ** 32 - 1;
/** The largest dimension or parameter accepted (the native core's int32-safe range; larger ones are absurd here). */
export const MAX_EXTENT = 2 ** 31 - 1;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

type Pair = [number, number];

const PARAM_CODES = {
  stride: ErrorCodes.STRIDE,
  padding: ErrorCodes.PADDING,
  outputPadding: ErrorCodes.OUTPUT_PADDING,
  dilation: ErrorCodes.DILATION,
  kernelSize: ErrorCodes.EMPTY_WEIGHT,
} as const;
type PairParam = keyof typeof PARAM_CODES;

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  const name = (value as object).constructor?.name;
  return name ? `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}` : 'an object';
}

/**
 * Resolves a scalar-or-pair parameter to `[h, w]` as PyTorch does (a 1-element list is broadcast).
 * Throws the parameter's own code for non-integers and wrong kinds, ERR_CONV_TRANSPOSE_PARAM_LENGTH for other lengths.
 * Range checks (positive, non-negative) are the caller's.
 */
export function resolveSize2(name: PairParam, value: Size2 | undefined, fallback: number): Pair {
  if (value === undefined) return [fallback, fallback];
  const code = PARAM_CODES[name];
  let pair: unknown[];
  if (typeof value === 'number') pair = [value, value];
  else if (Array.isArray(value)) {
    const list = (value as readonly unknown[]).slice(); // read the caller's list once
    if (list.length === 1) pair = [list[0], list[0]];
    else if (list.length === 2) pair = list;
    else {
      fail(
        ErrorCodes.PARAM_LENGTH,
        `expected ${name} to be a single integer value or a list of 2 values to match the convolution dimensions, but got ${name}=${show(list)}`,
      );
    }
  } else fail(code, `${name} must be an integer or a list of 2 integers, but got ${show(value)}`);
  for (let i = 0; i < 2; i++) {
    const v = pair[i];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      fail(code, `${name} must contain integers, but got ${name}=${show(pair)}`);
    }
    if (v > MAX_EXTENT) fail(ErrorCodes.TOO_LARGE, `${name}=${show(pair)} exceeds the supported maximum ${MAX_EXTENT}`);
  }
  return pair as Pair;
}

function checkGroups(groups: unknown): number {
  if (typeof groups !== 'number' || !Number.isSafeInteger(groups)) {
    fail(ErrorCodes.GROUPS, `groups must be a positive integer, but got groups=${show(groups)}`);
  }
  if (groups <= 0) fail(ErrorCodes.GROUPS, `non-positive groups is not supported: groups=${groups}`);
  if (groups > MAX_EXTENT) fail(ErrorCodes.TOO_LARGE, `groups=${groups} exceeds the supported maximum ${MAX_EXTENT}`);
  return groups;
}

/**
 * Checks a shape: a list of non-negative integers up to MAX_EXTENT. Returns a private copy, so that later reads
 * cannot see other values than the ones checked (a getter or Proxy on the caller's array).
 */
function checkShape(what: string, shape: unknown): readonly number[] {
  if (!Array.isArray(shape)) fail(ErrorCodes.INVALID_ARGUMENT, `${what}.shape must be an array of integers, but got ${show(shape)}`);
  const copy = (shape as readonly unknown[]).slice();
  for (let i = 0; i < copy.length; i++) {
    const d = copy[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      fail(ErrorCodes.INVALID_ARGUMENT, `${what}.shape must contain non-negative integers, but got ${show(copy)}`);
    }
    if (d > MAX_EXTENT) fail(ErrorCodes.TOO_LARGE, `${what}.shape [${copy.join(', ')}] has a dimension above the supported maximum ${MAX_EXTENT}`);
  }
  return copy as number[];
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i] as number;
  return n;
}

function dtypeOf(what: string, data: unknown): DType {
  // isView is false for a Proxy, which could report a length other than its memory's
  if (ArrayBuffer.isView(data) && data instanceof Float32Array) return 'float32';
  if (ArrayBuffer.isView(data) && data instanceof Float64Array) return 'float64';
  fail(
    ErrorCodes.DTYPE,
    `${what} must be a Float32Array or a Float64Array (float32 or float64), but got ${show(data)}`,
  );
}

export interface CheckedTensor {
  data: FloatArray;
  shape: readonly number[];
  dtype: DType;
}

/** Checks a tensor argument: an object with Float32Array/Float64Array data whose length matches its shape. */
export function checkTensor(what: string, t: unknown): CheckedTensor {
  if (t === null || typeof t !== 'object' || !('data' in t) || !('shape' in t)) {
    fail(ErrorCodes.INVALID_ARGUMENT, `${what} must be a tensor { data, shape }, but got ${show(t)}`);
  }
  const { data, shape } = t as Tensor;
  const dtype = dtypeOf(`${what}.data`, data);
  const s = checkShape(what, shape);
  const n = product(s);
  const length = typedArrayLength(data);
  if (length !== n) {
    fail(
      ErrorCodes.DATA_LENGTH,
      `${what}.data has ${length} elements but ${what}.shape [${s.join(', ')}] needs ${n}` +
        (length === 0 && n > 0 ? ' (is its buffer detached?)' : ''),
    );
  }
  return { data, shape: s, dtype };
}

// The engine's own length of a typed array (a subclass may override the `length` getter).
const typedArrayLengthGetter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Int8Array.prototype) as object, 'length')!.get!;
function typedArrayLength(a: FloatArray): number {
  return typedArrayLengthGetter.call(a) as number;
}

function checkDtype(what: string, dtype: DType, expected: DType): void {
  if (dtype !== expected) {
    fail(ErrorCodes.DTYPE, `expected ${what} of dtype ${expected} (the input's), but got ${dtype}`);
  }
}

/** True when two typed arrays share any byte of memory. */
function overlaps(a: FloatArray, b: FloatArray): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** a*b, or a TOO_LARGE error when the exact result would not fit in a double's integers. */
function mul(a: number, b: number, what: string): number {
  const r = a * b;
  if (Math.abs(r) > MAX_SAFE) fail(ErrorCodes.TOO_LARGE, `${what} overflows: ${a} * ${b} exceeds 2^53-1`);
  return r;
}

/** The op = 0 output extent of one dimension, exact or TOO_LARGE. */
function baseExtent(size: number, s: number, p: number, d: number, k: number, dim: string): number {
  const r = mul(size - 1, s, `the output ${dim}`) - mul(2, p, `the output ${dim}`) + mul(d, k - 1, `the output ${dim}`) + 1;
  if (Math.abs(r) > MAX_SAFE) fail(ErrorCodes.TOO_LARGE, `the output ${dim} overflows 2^53-1`);
  return r;
}

interface Geometry {
  batched: boolean;
  N: number;
  Cin: number;
  H: number;
  W: number;
  weightShape: readonly number[];
  groups: number;
  stride: Pair;
  padding: Pair;
  dilation: Pair;
  outputPadding: Pair;
  Hout: number;
  Wout: number;
}

/** The layer's hyper-parameters, each resolved to integers and range-checked (not yet against shapes). */
export interface LayerParams {
  stride: Pair;
  padding: Pair;
  outputPadding: Pair;
  dilation: Pair;
  groups: number;
}

/**
 * Resolves and range-checks stride, padding, outputPadding, dilation and groups (shared by the functional API and
 * the module constructor). The output-padding-versus-stride rule needs no shapes but PyTorch checks it only
 * when the layer runs, so it lives in resolveGeometry.
 */
export function resolveLayerParams(options: {
  stride?: Size2; padding?: Size2; outputPadding?: Size2; dilation?: Size2; groups?: number;
}): LayerParams {
  const stride = resolveSize2('stride', options.stride, 1);
  const padding = resolveSize2('padding', options.padding, 0);
  const outputPadding = resolveSize2('outputPadding', options.outputPadding, 0);
  const dilation = resolveSize2('dilation', options.dilation, 1);
  const groups = checkGroups(options.groups ?? 1);
  if (stride[0] <= 0 || stride[1] <= 0) fail(ErrorCodes.STRIDE, `non-positive stride is not supported: stride=[${stride.join(', ')}]`);
  if (padding[0] < 0 || padding[1] < 0) fail(ErrorCodes.PADDING, `negative padding is not supported: padding=[${padding.join(', ')}]`);
  if (outputPadding[0] < 0 || outputPadding[1] < 0) {
    fail(ErrorCodes.OUTPUT_PADDING, `negative outputPadding is not supported: outputPadding=[${outputPadding.join(', ')}]`);
  }
  if (dilation[0] <= 0 || dilation[1] <= 0) {
    fail(ErrorCodes.DILATION, `dilation should be greater than zero, but got dilation=[${dilation.join(', ')}]`);
  }
  return { stride, padding, outputPadding, dilation, groups };
}

/** Every shape-and-parameter rule, on shapes alone (outputShape uses it without tensors). */
function resolveGeometry(inputShape: readonly number[], weightShape: readonly number[], options: ConvTranspose2dOptions): Geometry {
  // PyTorch's order: the weight's rank is checked before the input's and the parameters'.
  if (weightShape.length !== 4) {
    fail(
      ErrorCodes.WEIGHT_RANK,
      `weight must be 4-D (Cin, Cout/groups, kH, kW) for conv_transpose2d, but got weight of size [${weightShape.join(', ')}]`,
    );
  }
  if (inputShape.length !== 3 && inputShape.length !== 4) {
    fail(
      ErrorCodes.INPUT_RANK,
      `expected 3-D (unbatched) or 4-D (batched) input to conv_transpose2d, but got input of size [${inputShape.join(', ')}]`,
    );
  }
  const batched = inputShape.length === 4;
  const [N, Cin, H, W] = (batched ? inputShape : [1, ...inputShape]) as [number, number, number, number];
  const shown = () => `[${[N, Cin, H, W].join(', ')}]`; // for messages only: building it costs more than the checks
  const [wCin, wCoutG, kH, kW] = weightShape as [number, number, number, number];

  const { stride, padding, outputPadding: outputPaddingOpt, dilation, groups } = resolveLayerParams(options);
  if (kH === 0 || kW === 0) {
    fail(ErrorCodes.EMPTY_WEIGHT, `kernel size should be greater than zero, but got kernel height ${kH} and width ${kW} (weight of size [${weightShape.join(', ')}])`);
  }
  if (wCoutG === 0) fail(ErrorCodes.EMPTY_WEIGHT, `weight must not be empty, but got weight of size [${weightShape.join(', ')}] (Cout/groups = 0)`);
  if (wCin === 0) fail(ErrorCodes.EMPTY_WEIGHT, `weight must not be empty, but got weight of size [${weightShape.join(', ')}] (Cin = 0)`);
  if (wCin < groups) {
    fail(ErrorCodes.GROUPS, `given groups=${groups}, expected weight to be at least ${groups} at dimension 0, but got weight of size [${weightShape.join(', ')}]`);
  }
  if (wCin % groups !== 0) {
    fail(ErrorCodes.GROUPS, `given groups=${groups}, expected weight to be divisible by ${groups} at dimension 0, but got weight of size [${weightShape.join(', ')}]`);
  }
  if (Cin !== wCin) {
    fail(
      ErrorCodes.CHANNELS,
      `given weight of size [${weightShape.join(', ')}], expected input${shown()} to have ${wCin} channels, but got ${Cin} channels`,
    );
  }
  if (N > 0 && (H === 0 || W === 0)) {
    fail(ErrorCodes.EMPTY_INPUT, `only zero batch inputs may have a zero height or width, but got input of size ${shown()}`);
  }

  const minH = baseExtent(H, stride[0], padding[0], dilation[0], kH, 'height');
  const minW = baseExtent(W, stride[1], padding[1], dilation[1], kW, 'width');
  let outputPadding: Pair;
  if (options.outputSize !== undefined && options.outputSize !== null) {
    outputPadding = outputPaddingFromSize(options.outputSize, batched, [minH, minW], stride, inputShape);
  } else {
    outputPadding = outputPaddingOpt;
    for (let i = 0; i < 2; i++) {
      const op = outputPadding[i]!;
      if (op >= stride[i]! && op >= dilation[i]!) {
        fail(
          ErrorCodes.OUTPUT_PADDING,
          `outputPadding must be smaller than either stride or dilation, but got outputPadding=[${outputPadding.join(', ')}] ` +
            `with stride=[${stride.join(', ')}] and dilation=[${dilation.join(', ')}]`,
        );
      }
    }
  }
  const Hout = minH + outputPadding[0];
  const Wout = minW + outputPadding[1];
  // With N = 0 PyTorch accepts a zero extent (the result is empty anyway) but not a negative one.
  const smallest = N === 0 ? 0 : 1;
  if (Hout < smallest || Wout < smallest) {
    fail(
      ErrorCodes.NONPOSITIVE_OUTPUT,
      `given input size per channel (${H} x ${W}), the calculated output size per channel (${Hout} x ${Wout}) is too small`,
    );
  }
  return { batched, N, Cin, H, W, weightShape, groups, stride, padding, dilation, outputPadding, Hout, Wout };
}

/** outputSize → outputPadding as nn.ConvTranspose2d.forward(output_size=...) does; leading N/C entries are ignored. */
function outputPaddingFromSize(
  outputSize: unknown,
  batched: boolean,
  min: Pair,
  stride: Pair,
  inputShape: readonly number[],
): Pair {
  const rank = batched ? 4 : 3;
  if (!Array.isArray(outputSize)) {
    fail(ErrorCodes.OUTPUT_SIZE, `outputSize must be a list of 2 or ${rank} integers, but got ${show(outputSize)}`);
  }
  const list = Array.from(outputSize as readonly unknown[]); // read the caller's list once
  if (list.length !== 2 && list.length !== rank) {
    fail(ErrorCodes.OUTPUT_SIZE, `for ${rank}-D input, outputSize must have 2 or ${rank} elements, but got ${list.length}: ${show(list)}`);
  }
  const hw = list.slice(-2);
  for (const v of hw) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      fail(ErrorCodes.OUTPUT_SIZE, `outputSize must contain integers, but got outputSize=${show(list)}`);
    }
  }
  const [h, w] = hw as Pair;
  const maxH = min[0] + stride[0] - 1;
  const maxW = min[1] + stride[1] - 1;
  if (h < min[0] || h > maxH || w < min[1] || w > maxW) {
    fail(
      ErrorCodes.OUTPUT_SIZE,
      `requested an outputSize of [${h}, ${w}], but valid sizes range from [${min[0]}, ${min[1]}] to [${maxH}, ${maxW}] ` +
        `(for an input of spatial size [${inputShape.slice(-2).join(', ')}])`,
    );
  }
  return [h - min[0], w - min[1]];
}

function checkOutputLength(shape: readonly number[]): number {
  const n = product(shape);
  if (n > MAX_ELEMENTS) {
    fail(ErrorCodes.TOO_LARGE, `the result of shape [${shape.join(', ')}] has ${n} elements, more than the ${MAX_ELEMENTS} a typed array can hold`);
  }
  return n;
}

/**
 * The output shape of conv_transpose2d for these shapes and options, with every rule checked
 * (as `convTranspose2d` would throw). Unbatched (3-D) input shapes give 3-D output shapes.
 */
export function outputShape(
  inputShape: readonly number[],
  weightShape: readonly number[],
  options: ConvTranspose2dOptions = {},
): number[] {
  const g = resolveGeometry(checkShape('input', inputShape), checkShape('weight', weightShape), checkOptionsObject(options));
  const Cout = g.groups * (weightShape[1] as number);
  return g.batched ? [g.N, Cout, g.Hout, g.Wout] : [Cout, g.Hout, g.Wout];
}

/** A snapshot of the caller's options: each field read exactly once, so a getter cannot change it after the checks. */
function checkOptionsObject(options: unknown): Readonly<ConvTranspose2dOptions> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') fail(ErrorCodes.INVALID_ARGUMENT, `options must be an object, but got ${show(options)}`);
  const o = options as ConvTranspose2dOptions;
  return Object.freeze({
    bias: o.bias,
    stride: o.stride,
    padding: o.padding,
    outputPadding: o.outputPadding,
    groups: o.groups,
    dilation: o.dilation,
    outputSize: o.outputSize,
    out: o.out,
    backend: o.backend,
    threads: o.threads,
  });
}

/** A validated call: the plan, and the tensors' data as the kernels receive it. */
export interface PreparedCall {
  plan: Plan;
  x: FloatArray;
  w: FloatArray;
  bias: FloatArray | null;
  /** The caller's `out.data`, already checked, or null. */
  out: FloatArray | null;
  /** The caller's `out` tensor, returned as the result when given. */
  outTensor: Tensor | null;
  /** The options as read once (backend and threads are the caller's to interpret). */
  options: Readonly<ConvTranspose2dOptions>;
}

/** Checks everything about one call and resolves it to a frozen Plan. Throws ConvTransposeError. */
export function prepareCall(input: unknown, weight: unknown, rawOptions?: unknown): PreparedCall {
  const options = checkOptionsObject(rawOptions);
  // weight first: PyTorch reports a weight of the wrong rank before anything about the input
  const wt = checkTensor('weight', weight);
  const xt = checkTensor('input', input);
  checkDtype('weight', wt.dtype, xt.dtype);
  const g = resolveGeometry(xt.shape, wt.shape, options);
  const coutPerGroup = wt.shape[1] as number;
  const Cout = g.groups * coutPerGroup;

  let bias: FloatArray | null = null;
  const raw: unknown = options.bias;
  if (raw !== undefined && raw !== null) {
    let biasShape: readonly number[];
    if (ArrayBuffer.isView(raw) || Array.isArray(raw)) {
      // a bare array: only the two float typed arrays are accepted (no silent conversion of others)
      bias = raw as FloatArray;
      dtypeOf('bias', raw);
      biasShape = [bias.length];
    } else {
      const bt = checkTensor('bias', raw);
      bias = bt.data;
      biasShape = bt.shape;
    }
    checkDtype('bias', dtypeOf('bias', bias), xt.dtype);
    if (biasShape.length !== 1 || biasShape[0] !== Cout) {
      fail(
        ErrorCodes.BIAS,
        `given weight of size [${wt.shape.join(', ')}] and groups=${g.groups}, expected bias to be 1-dimensional with ${Cout} elements, ` +
          `but got bias of size [${biasShape.join(', ')}]`,
      );
    }
  }

  const outputShape = g.batched ? [g.N, Cout, g.Hout, g.Wout] : [Cout, g.Hout, g.Wout];
  const outputLength = checkOutputLength(outputShape);

  let out: FloatArray | null = null;
  let outTensor: Tensor | null = null;
  const ot: unknown = options.out;
  if (ot !== undefined && ot !== null) {
    if (typeof ot !== 'object' || !('data' in ot) || !('shape' in ot)) {
      fail(ErrorCodes.OUT, `out must be a tensor { data, shape }, but got ${show(ot)}`);
    }
    const o = ot as Tensor;
    const data = o.data;
    checkDtype('out', dtypeOf('out.data', data), xt.dtype);
    const shape = Array.isArray(o.shape) ? Array.from(o.shape as readonly unknown[]) : null;
    const sameShape = shape !== null && shape.length === outputShape.length && shape.every((d, i) => d === outputShape[i]);
    if (!sameShape) fail(ErrorCodes.OUT, `out.shape must be [${outputShape.join(', ')}], but got ${show(shape ?? o.shape)}`);
    if (data.length !== outputLength) {
      fail(ErrorCodes.OUT, `out.data must have ${outputLength} elements, but has ${data.length}${data.length === 0 ? ' (is its buffer detached?)' : ''}`);
    }
    for (const [name, arr] of [['input', xt.data], ['weight', wt.data], ['bias', bias]] as const) {
      if (arr && outputLength > 0 && overlaps(data, arr)) fail(ErrorCodes.OUT, `out must not share memory with ${name}`);
    }
    out = data;
    outTensor = o;
  }

  const plan: Plan = Object.freeze({
    dtype: xt.dtype,
    batched: g.batched,
    N: g.N,
    Cin: g.Cin,
    H: g.H,
    W: g.W,
    Cout,
    kH: wt.shape[2] as number,
    kW: wt.shape[3] as number,
    sH: g.stride[0],
    sW: g.stride[1],
    pH: g.padding[0],
    pW: g.padding[1],
    dH: g.dilation[0],
    dW: g.dilation[1],
    opH: g.outputPadding[0],
    opW: g.outputPadding[1],
    groups: g.groups,
    cinPerGroup: g.Cin / g.groups,
    coutPerGroup,
    Hout: g.Hout,
    Wout: g.Wout,
    hasBias: bias !== null,
    outputShape: Object.freeze(outputShape),
    outputLength,
  });
  return { plan, x: xt.data, w: wt.data, bias, out, outTensor, options };
}

/** Checks a thread count (per call or setNumThreads). */
export function checkThreads(threads: unknown, what = 'threads'): number {
  if (typeof threads !== 'number' || !Number.isSafeInteger(threads) || threads < 1 || threads > 1024) {
    fail(ErrorCodes.THREADS, `${what} must be an integer from 1 to 1024, but got ${show(threads)}`);
  }
  return threads;
}

