/**
 * Stable error codes. Each PyTorch rejection kind (`../shared/golden/public/errors.json`) maps to one code;
 * the rest cover what PyTorch's type system would reject before the operator runs.
 */
export const ErrorCodes = {
  /** Input is not 3-D (unbatched) or 4-D (batched). PyTorch kind `bad_rank`. */
  INPUT_RANK: 'ERR_CONV_TRANSPOSE_INPUT_RANK',
  /** Weight is not 4-D. PyTorch kind `weight_rank`. */
  WEIGHT_RANK: 'ERR_CONV_TRANSPOSE_WEIGHT_RANK',
  /** Input channels differ from weight.shape[0]; or a module channel count is invalid. PyTorch kind `channels`. */
  CHANNELS: 'ERR_CONV_TRANSPOSE_CHANNELS',
  /** groups not a positive integer dividing the channels. PyTorch kind `groups`. */
  GROUPS: 'ERR_CONV_TRANSPOSE_GROUPS',
  /** stride not positive integers. PyTorch kind `stride`. */
  STRIDE: 'ERR_CONV_TRANSPOSE_STRIDE',
  /** padding not non-negative integers, or a padding mode other than 'zeros'. PyTorch kind `padding`. */
  PADDING: 'ERR_CONV_TRANSPOSE_PADDING',
  /** outputPadding negative, or not smaller than stride or dilation. PyTorch kind `output_padding`. */
  OUTPUT_PADDING: 'ERR_CONV_TRANSPOSE_OUTPUT_PADDING',
  /** dilation not positive integers. PyTorch kind `dilation`. */
  DILATION: 'ERR_CONV_TRANSPOSE_DILATION',
  /** A size parameter given as a list of the wrong length. PyTorch kind `param_length`. */
  PARAM_LENGTH: 'ERR_CONV_TRANSPOSE_PARAM_LENGTH',
  /** The computed output height or width is below 1. PyTorch kind `nonpositive_output`. */
  NONPOSITIVE_OUTPUT: 'ERR_CONV_TRANSPOSE_NONPOSITIVE_OUTPUT',
  /** outputSize of the wrong length or outside the reachable range. PyTorch kind `output_size`. */
  OUTPUT_SIZE: 'ERR_CONV_TRANSPOSE_OUTPUT_SIZE',
  /** A zero spatial size with a non-zero batch. PyTorch kind `empty_input`. */
  EMPTY_INPUT: 'ERR_CONV_TRANSPOSE_EMPTY_INPUT',
  /** A weight (or module kernel size) with a zero dimension. PyTorch kind `empty_weight`. */
  EMPTY_WEIGHT: 'ERR_CONV_TRANSPOSE_EMPTY_WEIGHT',
  /** Bias of the wrong shape. PyTorch kind `bias`. */
  BIAS: 'ERR_CONV_TRANSPOSE_BIAS',
  /** Data not a Float32Array/Float64Array, or input, weight, bias and out of different dtypes. PyTorch kind `dtype`. */
  DTYPE: 'ERR_CONV_TRANSPOSE_DTYPE',
  /** A tensor whose data length differs from the product of its shape (e.g. a detached buffer). */
  DATA_LENGTH: 'ERR_CONV_TRANSPOSE_DATA_LENGTH',
  /** A tensor or option of the wrong type (not an object, a shape that is not a list of non-negative integers, ...). */
  INVALID_ARGUMENT: 'ERR_CONV_TRANSPOSE_INVALID_ARGUMENT',
  /** A result larger than a typed array can hold, or sizes whose product overflows. */
  TOO_LARGE: 'ERR_CONV_TRANSPOSE_TOO_LARGE',
  /** `out` of the wrong shape or size, detached, or sharing memory with an input (a wrong dtype is DTYPE). */
  OUT: 'ERR_CONV_TRANSPOSE_OUT',
  /** A backend was requested that cannot be used (e.g. native forced but not loadable), or an unknown backend name. */
  BACKEND: 'ERR_CONV_TRANSPOSE_BACKEND',
  /** `threads` not a positive integer. */
  THREADS: 'ERR_CONV_TRANSPOSE_THREADS',
  /** A malformed or unsupported .npy file. */
  NPY: 'ERR_CONV_TRANSPOSE_NPY',
  /** An unexpected failure inside the native addon (e.g. out of memory). */
  INTERNAL: 'ERR_CONV_TRANSPOSE_INTERNAL',
} as const;

/** One of the `ERR_CONV_TRANSPOSE_*` strings of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The error every rejected call throws: `code` is stable, `message` names the parameter and the values. */
export class ConvTransposeError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'ConvTransposeError';
    this.code = code;
  }
}

/** Throws a ConvTransposeError; an expression-friendly shorthand for validation code. */
export function fail(code: ErrorCode, message: string): never {
  throw new ConvTransposeError(code, message);
}
