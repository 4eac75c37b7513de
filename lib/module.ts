/**
 * `ConvTranspose2d`: a module holding a weight and an optional bias, mirroring `torch.nn.ConvTranspose2d`
 * (same constructor arguments, same initialisation, same `forward(input, output_size)`).
 * A thin wrapper: every call goes through the functional API, which validates once. On the native backend the
 * module keeps its weights packed for the kernels, as an inference session does.
 *
 * @module
 */
import { convTranspose2dAsyncWith, convTranspose2dWith } from './api';
import { PackedWeightsCache } from './backend-native';
import { ConvTransposeError, ErrorCodes } from './errors';
import { resolveLayerParams, resolveSize2 } from './params';
import { Random } from './random';
import type { DType, Size2, Tensor } from './types';

/** Constructor options of {@link ConvTranspose2d}, named as PyTorch's arguments (camelCase). */
export interface ConvTranspose2dModuleOptions {
  /** Default 1. */
  stride?: Size2;
  /** Default 0. */
  padding?: Size2;
  /** Default 0; must be smaller than stride or dilation (checked when `forward` runs, as in PyTorch). */
  outputPadding?: Size2;
  /** Default 1; must divide both channel counts. */
  groups?: number;
  /** Whether the module has a learnable bias. Default true. */
  bias?: boolean;
  /** Default 1. */
  dilation?: Size2;
  /** Only `'zeros'` is supported, as in PyTorch. */
  paddingMode?: 'zeros';
  /** Element type of the parameters (and of the inputs `forward` accepts). Default `'float32'`. */
  dtype?: DType;
  /** Seed of the initialisation: the same seed gives the same weight and bias. Default: random. */
  seed?: number;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  return String(value);
}

/** A new typed array, or TOO_LARGE when the memory cannot be had (V8 throws a plain RangeError). */
function allocate(Ctor: Float32ArrayConstructor | Float64ArrayConstructor, length: number, what: string): Float32Array | Float64Array {
  try {
    return new Ctor(length);
  } catch (e) {
    throw new ConvTransposeError(ErrorCodes.TOO_LARGE, `could not allocate the ${what}: ${(e as Error).message}`);
  }
}

function checkPositiveInteger(name: string, value: unknown, code: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ConvTransposeError(code, `${name} must be a positive integer, but got ${name}=${describe(value)}`);
  }
  return value;
}

/**
 * A 2-D transposed convolution layer, as `torch.nn.ConvTranspose2d`.
 *
 * The weight has shape `(inChannels, outChannels / groups, kH, kW)` and, like the bias `(outChannels,)`, is
 * initialised as PyTorch does: uniform in `[-b, b)` with `b = 1 / sqrt(fan_in)` and
 * `fan_in = (outChannels / groups) * kH * kW` (`kaiming_uniform_(a=sqrt(5))`, whose bound reduces to that).
 *
 * @example
 * ```ts
 * const up = new ConvTranspose2d(16, 8, 3, { stride: 2, padding: 1, outputPadding: 1, seed: 1 });
 * const y = up.forward({ data: new Float32Array(16 * 5 * 5), shape: [1, 16, 5, 5] }); // shape [1, 8, 10, 10]
 * ```
 */
export class ConvTranspose2d {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly outputPadding: readonly [number, number];
  readonly groups: number;
  readonly dilation: readonly [number, number];
  readonly dtype: DType;
  /**
   * `(inChannels, outChannels / groups, kH, kW)`. May be replaced (e.g. with trained values) by one of the same shape
   * and dtype, or written in place. On the native backend the module keeps the weights packed for the kernels,
   * with a copy of the values they came from (about twice the weight's memory): each forward compares the
   * current values with that copy and packs again only when they differ (depthwise layers and 1x1 inputs without
   * padding read the weights as they are and keep no copy).
   */
  weight: Tensor;
  /** `(outChannels,)`, or null when constructed with `bias: false`. */
  bias: Tensor | null;
  /** The native backend's packed copy of the weights. */
  readonly #packed = new PackedWeightsCache();
  // Unfrozen copies of the geometry for the calls: V8 reads frozen arrays through slower paths (about 0.8 µs
  // more per forward of a tiny layer); the public fields above stay frozen.
  readonly #geometry: { stride: [number, number]; padding: [number, number]; outputPadding: [number, number]; dilation: [number, number] };

  /**
   * @param inChannels - channels of the input.
   * @param outChannels - channels of the output.
   * @param kernelSize - `k` or `[kH, kW]`.
   * @param options - stride, padding, outputPadding, groups, bias, dilation, paddingMode, dtype, seed.
   * @throws ConvTransposeError for a padding mode other than `'zeros'` (`ERR_CONV_TRANSPOSE_PADDING`), groups that
   *   are not a positive integer or do not divide both channel counts (`ERR_CONV_TRANSPOSE_GROUPS`), channel counts
   *   that are not positive integers (`ERR_CONV_TRANSPOSE_CHANNELS`), kernel sizes that are not positive integers
   *   (`ERR_CONV_TRANSPOSE_EMPTY_WEIGHT`), and invalid stride, padding, outputPadding or dilation values (their own codes).
   */
  constructor(inChannels: number, outChannels: number, kernelSize: Size2, options: ConvTranspose2dModuleOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new ConvTransposeError(ErrorCodes.INVALID_ARGUMENT, `options must be an object, but got ${describe(options)}`);
    }
    const paddingMode: unknown = options.paddingMode ?? 'zeros';
    if (paddingMode !== 'zeros') {
      throw new ConvTransposeError(
        ErrorCodes.PADDING,
        `Only "zeros" padding mode is supported for ConvTranspose2d, but got paddingMode=${describe(paddingMode)}`,
      );
    }
    // stride, padding, outputPadding, dilation and groups: the rules shared with the functional API
    const { stride, padding, outputPadding, dilation, groups } = resolveLayerParams(options);
    this.inChannels = checkPositiveInteger('in_channels', inChannels, ErrorCodes.CHANNELS);
    this.outChannels = checkPositiveInteger('out_channels', outChannels, ErrorCodes.CHANNELS);
    if (inChannels % groups !== 0) {
      throw new ConvTransposeError(
        ErrorCodes.GROUPS,
        `in_channels must be divisible by groups, but got in_channels=${inChannels}, groups=${groups}`,
      );
    }
    if (outChannels % groups !== 0) {
      throw new ConvTransposeError(
        ErrorCodes.GROUPS,
        `out_channels must be divisible by groups, but got out_channels=${outChannels}, groups=${groups}`,
      );
    }
    this.groups = groups;

    const kernel = resolveSize2('kernelSize', kernelSize, 1);
    if (kernelSize === undefined || kernel[0] <= 0 || kernel[1] <= 0) {
      throw new ConvTransposeError(
        ErrorCodes.EMPTY_WEIGHT,
        `kernel size should be greater than zero, but got kernelSize=${describe(kernelSize)}`,
      );
    }
    const dtype: unknown = options.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'float64') {
      throw new ConvTransposeError(ErrorCodes.DTYPE, `dtype must be 'float32' or 'float64', but got dtype=${describe(dtype)}`);
    }
    const withBias: unknown = options.bias ?? true;
    if (typeof withBias !== 'boolean') {
      throw new ConvTransposeError(ErrorCodes.INVALID_ARGUMENT, `bias must be a boolean, but got bias=${describe(withBias)}`);
    }
    if (options.seed !== undefined && (typeof options.seed !== 'number' || !Number.isFinite(options.seed))) {
      throw new ConvTransposeError(ErrorCodes.INVALID_ARGUMENT, `seed must be a finite number, but got seed=${describe(options.seed)}`);
    }

    this.kernelSize = Object.freeze(kernel);
    this.stride = Object.freeze(stride);
    this.padding = Object.freeze(padding);
    this.outputPadding = Object.freeze(outputPadding);
    this.dilation = Object.freeze(dilation);
    this.#geometry = { stride: [...stride], padding: [...padding], outputPadding: [...outputPadding], dilation: [...dilation] };
    this.dtype = dtype;

    const coutPerGroup = outChannels / groups;
    const weightShape = [inChannels, coutPerGroup, kernel[0], kernel[1]] as const;
    const weightLength = inChannels * coutPerGroup * kernel[0] * kernel[1];
    if (!Number.isSafeInteger(weightLength) || weightLength > 2 ** 32 - 1) {
      throw new ConvTransposeError(ErrorCodes.TOO_LARGE, `weight of shape [${weightShape.join(', ')}] is too large`);
    }
    const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
    const rng = new Random(options.seed);
    // PyTorch: kaiming_uniform_(weight, a=sqrt(5)) -> bound = sqrt(3) * sqrt(2 / (1 + 5)) / sqrt(fan_in) = 1/sqrt(fan_in),
    // with fan_in = weight.size(1) * kH * kW; the bias uses the same 1/sqrt(fan_in).
    const fanIn = coutPerGroup * kernel[0] * kernel[1];
    const bound = 1 / Math.sqrt(fanIn);
    const weightData = allocate(Ctor, weightLength, `weight of shape [${weightShape.join(', ')}]`);
    rng.fillUniform(weightData, -bound, bound);
    this.weight = { data: weightData, shape: weightShape };
    if (withBias) {
      const biasData = allocate(Ctor, outChannels, `bias of shape [${outChannels}]`);
      rng.fillUniform(biasData, -bound, bound);
      this.bias = { data: biasData, shape: [outChannels] };
    } else {
      this.bias = null;
    }
  }

  /**
   * Applies the layer: `convTranspose2d(input, this.weight, { bias, stride, padding, outputPadding, groups, dilation, outputSize })`.
   *
   * @param input - `(N, inChannels, H, W)` or unbatched `(inChannels, H, W)`, of the module's dtype.
   * @param outputSize - optional `[H, W]` (or `[N, C, H, W]` / `[C, H, W]`) selecting the output padding, as PyTorch's
   *   `forward(input, output_size)`.
   */
  forward(input: Tensor, outputSize?: readonly number[]): Tensor {
    return convTranspose2dWith(this.#packed, input, this.weight, this.callOptions(outputSize));
  }

  /** As {@link ConvTranspose2d.forward}, computed off the JS thread (resolves with the output). */
  forwardAsync(input: Tensor, outputSize?: readonly number[]): Promise<Tensor> {
    return convTranspose2dAsyncWith(this.#packed, input, this.weight, this.callOptions(outputSize));
  }

  private callOptions(outputSize: readonly number[] | undefined) {
    const g = this.#geometry;
    return {
      bias: this.bias,
      stride: g.stride,
      padding: g.padding,
      outputPadding: g.outputPadding,
      groups: this.groups,
      dilation: g.dilation,
      ...(outputSize === undefined ? {} : { outputSize }),
    };
  }
}
