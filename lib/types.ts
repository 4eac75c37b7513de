/** Element type of every tensor in one call. */
export type DType = 'float32' | 'float64';

/** The typed arrays a tensor's data may live in. */
export type FloatArray = Float32Array | Float64Array;

/** A dense C-order (row-major) tensor: `data.length` equals the product of `shape`. */
export interface Tensor<A extends FloatArray = FloatArray> {
  data: A;
  shape: readonly number[];
}

/** A scalar applied to both spatial dimensions, or an `[h, w]` pair (a 1-element list is broadcast, as in PyTorch). */
export type Size2 = number | readonly [number, number] | readonly number[];

/** Which implementation computes: `auto` picks native when it loaded. */
export type BackendChoice = 'auto' | 'native' | 'js';

/** Options of `convTranspose2d`, named as PyTorch's `conv_transpose2d` arguments (camelCase). */
export interface ConvTranspose2dOptions {
  /** `(Cout,)` bias, as a tensor or a bare typed array of the input's dtype. */
  bias?: Tensor | FloatArray | null;
  /** Default 1. */
  stride?: Size2;
  /** Implicit zero padding removed from both sides of the output. Default 0. */
  padding?: Size2;
  /** Extra rows/columns added at the bottom/right of the output. Default 0; must be `< stride` or `< dilation` per dimension. */
  outputPadding?: Size2;
  /** Default 1; must divide the input channels. */
  groups?: number;
  /** Spacing between kernel taps. Default 1. */
  dilation?: Size2;
  /** Requested output size `[H, W]`, `[N, C, H, W]` (or `[C, H, W]` unbatched), as `nn.ConvTranspose2d.forward(output_size=...)`; overrides `outputPadding`. */
  outputSize?: readonly number[];
  /** Preallocated output tensor of the result's shape and dtype; fully overwritten and returned. */
  out?: Tensor;
  /** Force an implementation for this call. Default `auto` (or `CONV_TRANSPOSE_BACKEND`). */
  backend?: BackendChoice;
  /** Threads for this call (both backends). Default: `setNumThreads` or the machine's available parallelism. */
  threads?: number;
}

/**
 * Every integer of one call, resolved and checked by `lib/params.ts`: what the kernels receive.
 * Spatial parameters are per dimension (H then W). The batch is always explicit here (unbatched input has N = 1).
 */
export interface Plan {
  readonly dtype: DType;
  /** False when the input was `(Cin, H, W)`: the output is then `(Cout, Hout, Wout)`. */
  readonly batched: boolean;
  readonly N: number;
  readonly Cin: number;
  readonly H: number;
  readonly W: number;
  readonly Cout: number;
  readonly kH: number;
  readonly kW: number;
  readonly sH: number;
  readonly sW: number;
  readonly pH: number;
  readonly pW: number;
  readonly dH: number;
  readonly dW: number;
  readonly opH: number;
  readonly opW: number;
  readonly groups: number;
  /** Cin / groups. */
  readonly cinPerGroup: number;
  /** Cout / groups (= weight.shape[1]). */
  readonly coutPerGroup: number;
  readonly Hout: number;
  readonly Wout: number;
  readonly hasBias: boolean;
  /** The shape of the result as returned to the caller (3 entries when unbatched). */
  readonly outputShape: readonly number[];
  /** Product of outputShape. */
  readonly outputLength: number;
}
