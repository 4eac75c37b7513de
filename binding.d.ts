// The native addon's exports (build/Release/conv_transpose.node or prebuilds/<platform>/conv-transpose.node).
// This is the one hand-written contract between lib/backend-native.ts and native/binding/; a test holds
// the binary's exports to it. Arguments arrive already validated by lib/params.ts; the binding still
// re-checks sizes against the arrays so that a wrong call throws instead of touching foreign memory.

export type FloatArray = Float32Array | Float64Array;

/**
 * The resolved integers of one call, in this order (a Float64Array of length PROBLEM_LENGTH, every entry an
 * integer): N, Cin, H, W, Cout, kH, kW, sH, sW, pH, pW, dH, dW, groups, Hout, Wout.
 * Unbatched input is passed with N = 1.
 */
export type ProblemVector = Float64Array;

/** Number of entries in a ProblemVector. */
export const PROBLEM_LENGTH: 16;

/**
 * Results of at least this many bytes come from the addon's pool of recycled buffers; a smaller one would be a
 * plain new buffer, which the caller allocates faster itself and passes as `out`.
 */
export const POOLED_RESULT_MIN_BYTES: number;

/**
 * A weight cache from {@link createWeightCache}: an opaque object (its memory is freed when it is garbage
 * collected) holding one set of weights packed for the kernels and a copy of the bytes they came from. A call
 * given a cache compares its `w` with that copy: equal bytes (and the same channels, groups, kernel, stride,
 * padding, dilation and dtype) reuse the packed weights; anything else packs `w` into the cache first. Problems
 * whose kernel reads the weights as they are (depthwise; a 1x1 input without padding) leave the cache unused.
 */
export interface WeightCache {
  /** Brand: only createWeightCache makes these. */
  readonly __weightCache: unique symbol;
}

/** A new, empty weight cache. */
export function createWeightCache(): WeightCache;

/**
 * Computes synchronously on the calling thread (and the addon's worker threads).
 * x, w, bias and out must share one element type. `out` (length N*Cout*Hout*Wout), when given, is fully
 * overwritten and returned; otherwise a new array is returned. `threads` >= 1 caps the threads used.
 * With a `weightCache`, the packed weights come from it (see WeightCache).
 * Throws an Error with a `code` property (ERR_CONV_TRANSPOSE_*) on inconsistent arguments.
 */
export function convTranspose2d(
  problem: ProblemVector, x: FloatArray, w: FloatArray, bias: FloatArray | null, out: FloatArray | null, threads: number,
  weightCache?: WeightCache | null,
): FloatArray;

/**
 * Same as convTranspose2d, computed off the JS thread. Inputs are copied before the promise is returned,
 * so the caller may mutate, transfer or drop them at once; `out` is written when the promise settles
 * (it is rejected if `out` was detached or resized meanwhile). Bad arguments reject the promise (with the
 * same coded errors as the sync call) rather than throw; a call still running when the process exits is
 * stopped between tasks and rejected.
 */
export function convTranspose2dAsync(
  problem: ProblemVector, x: FloatArray, w: FloatArray, bias: FloatArray | null, out: FloatArray | null, threads: number,
  weightCache?: WeightCache | null,
): Promise<FloatArray>;

/** What the addon runs with. */
export function info(): {
  /** Instruction set of the kernels in use: 'avx512' | 'avx2' | 'sse2' | 'neon' | 'scalar'. */
  isa: string;
  /** Every instruction set this CPU and build can run, best first. */
  isaAvailable: string[];
  /** Threads the machine offers (std::thread::hardware_concurrency, at least 1). */
  hardwareConcurrency: number;
  /** N-API version the addon was compiled for. */
  napiVersion: number;
};

/** Selects the kernels' instruction set (one of info().isaAvailable); for tests and benchmarks. Throws on others. */
export function setIsa(isa: string): void;
