// The public functional API: validate once (params.ts), choose the backend (one place), dispatch.
import { availableParallelism } from 'node:os';
import { convTranspose2dJs } from './backend-js';
import { convTranspose2dJsThreaded } from './js-threads';
import { nativeBinding, nativeLoadError, runNative, runNativeAsync, type PackedWeightsCache } from './backend-native';
import { ConvTransposeError, ErrorCodes, fail } from './errors';
import { checkThreads, prepareCall, type PreparedCall } from './params';
import type { BackendChoice, ConvTranspose2dOptions, FloatArray, Tensor } from './types';

let defaultThreads = Math.max(1, availableParallelism());

/**
 * Sets the number of threads both backends use by default (a per-call `threads` option overrides it).
 * The default is the machine's available parallelism.
 */
export function setNumThreads(threads: number): void {
  defaultThreads = checkThreads(threads, 'setNumThreads(threads)');
}

/** What computes by default, with how many threads, and why the native addon did not load when it did not. */
export interface BackendInfo {
  name: 'native' | 'js';
  /** The native kernels' instruction set ('avx512', 'avx2', 'sse2', 'neon', 'scalar'), when native. */
  isa?: string;
  /** Default thread count (see setNumThreads). */
  threads: number;
  /** Why the native addon is not in use, when it is not. */
  loadError?: string;
}

const BACKEND_NAMES: readonly string[] = ['auto', 'native', 'js'];

function nativeUnavailable(reason: string): ConvTransposeError {
  return new ConvTransposeError(
    ErrorCodes.BACKEND,
    `the native backend was requested (${reason}) but the addon could not be loaded: ${nativeLoadError ?? 'unknown reason'}. ` +
      'Likely causes: no prebuilt binary for this platform and no C++ toolchain when the package was installed, ' +
      'or install scripts were skipped (--ignore-scripts). Fixes: install cmake and a C++17 compiler, then run ' +
      '`npm rebuild conv-transpose` (CONV_TRANSPOSE_NATIVE=build forces a build from source); or use the TypeScript ' +
      "implementation with { backend: 'js' } or CONV_TRANSPOSE_BACKEND=js.",
  );
}

// Read once at load, like the addon itself: process.env lookups cost about 0.3 µs each, on every call otherwise.
const envBackend = process.env.CONV_TRANSPOSE_BACKEND;
const envNativeRequired = process.env.CONV_TRANSPOSE_NATIVE === 'required';

/** The one place that decides which backend runs a call (the CLI asks it too, to say what ran). */
export function chooseBackend(choice: BackendChoice | undefined): 'native' | 'js' {
  const requested = choice ?? 'auto';
  if (!BACKEND_NAMES.includes(requested)) {
    fail(ErrorCodes.BACKEND, `backend must be 'auto', 'native' or 'js', but got ${JSON.stringify(requested)}`);
  }
  if (requested === 'js') return 'js';
  if (requested === 'native') {
    if (!nativeBinding) throw nativeUnavailable("backend: 'native'");
    return 'native';
  }
  if (envBackend === 'js') return 'js';
  if (envBackend === 'native' || envNativeRequired) {
    if (!nativeBinding) throw nativeUnavailable(envBackend === 'native' ? 'CONV_TRANSPOSE_BACKEND=native' : 'CONV_TRANSPOSE_NATIVE=required');
    return 'native';
  }
  return nativeBinding ? 'native' : 'js';
}

/** The backend a call without a `backend` option uses. Throws when the environment forces an unloadable native addon. */
export function getBackend(): BackendInfo {
  const name = chooseBackend('auto');
  if (name === 'native' && nativeBinding) return { name, isa: nativeBinding.info().isa, threads: defaultThreads };
  return nativeLoadError === undefined ? { name, threads: defaultThreads } : { name, threads: defaultThreads, loadError: nativeLoadError };
}

function newArray(call: PreparedCall): FloatArray {
  const { dtype, outputLength } = call.plan;
  try {
    return dtype === 'float32' ? new Float32Array(outputLength) : new Float64Array(outputLength);
  } catch (e) {
    // V8 throws a RangeError when the memory cannot be had: make it the documented, coded error
    throw new ConvTransposeError(
      ErrorCodes.TOO_LARGE,
      `could not allocate the result of shape [${call.plan.outputShape.join(', ')}] (${outputLength} ${dtype} elements): ${(e as Error).message}`,
    );
  }
}

function result(call: PreparedCall, data: FloatArray): Tensor {
  if (call.outTensor) return call.outTensor;
  // A new array literal of the plan's sizes (copying the plan's frozen outputShape took ~0.3 µs a call)
  const { plan } = call;
  return { data, shape: plan.batched ? [plan.N, plan.Cout, plan.Hout, plan.Wout] : [plan.Cout, plan.Hout, plan.Wout] };
}

function threadsFor(options: Readonly<ConvTranspose2dOptions>): number {
  return options.threads === undefined ? defaultThreads : checkThreads(options.threads);
}

/**
 * Runs the TypeScript kernel, on worker threads too for large calls (js-threads.ts); a failure to allocate its
 * scratch memory becomes a coded error.
 */
function runJs(call: PreparedCall, x: FloatArray, w: FloatArray, bias: FloatArray | null, out: FloatArray, threads: number): void {
  try {
    if (!convTranspose2dJsThreaded(call.plan, x, w, bias, out, threads)) convTranspose2dJs(call.plan, x, w, bias, out);
  } catch (e) {
    if (e instanceof RangeError) throw new ConvTransposeError(ErrorCodes.INTERNAL, `the TypeScript kernel could not allocate its scratch memory: ${e.message}`);
    throw e;
  }
}

/**
 * 2-D transposed convolution with PyTorch's `torch.nn.functional.conv_transpose2d` semantics.
 * `input` is `(N, Cin, H, W)` or unbatched `(Cin, H, W)`; `weight` is `(Cin, Cout/groups, kH, kW)`.
 * Returns `(N, Cout, Hout, Wout)` (or `(Cout, Hout, Wout)`) of the input's dtype, computed on the calling thread.
 * @throws ConvTransposeError with a stable `code` for any invalid argument.
 */
export function convTranspose2d(input: Tensor, weight: Tensor, options?: ConvTranspose2dOptions): Tensor {
  return convTranspose2dWith(null, input, weight, options);
}

/** {@link convTranspose2d}, keeping the native backend's packed weights in `cache` when given (the module's forward). */
export function convTranspose2dWith(cache: PackedWeightsCache | null, input: Tensor, weight: Tensor, options?: ConvTranspose2dOptions): Tensor {
  const call = prepareCall(input, weight, options);
  const backend = chooseBackend(call.options.backend);
  const threads = threadsFor(call.options);
  const { plan } = call;
  if (plan.outputLength === 0) return result(call, call.out ?? newArray(call));
  if (backend === 'native' && nativeBinding) {
    // A small result is allocated here (faster than through Node-API); large ones come from the addon's pool.
    const out = call.out ?? (plan.outputLength * call.x.BYTES_PER_ELEMENT < nativeBinding.POOLED_RESULT_MIN_BYTES ? newArray(call) : null);
    return result(call, runNative(nativeBinding, plan, call.x, call.w, call.bias, out, threads, cache));
  }
  const out = call.out ?? newArray(call);
  runJs(call, call.x, call.w, call.bias, out, threads);
  return result(call, out);
}

/**
 * Same as {@link convTranspose2d}, computed off the JS thread by the native backend (the event loop keeps running).
 * The inputs are copied before this returns, so they may be reused at once. The TypeScript backend computes in a
 * later task of the JS thread (with its worker threads for large calls). Validation errors reject the promise.
 */
export function convTranspose2dAsync(input: Tensor, weight: Tensor, options?: ConvTranspose2dOptions): Promise<Tensor> {
  return convTranspose2dAsyncWith(null, input, weight, options);
}

/** {@link convTranspose2dAsync}, keeping the packed weights in `cache` when given (the module's forwardAsync). */
export function convTranspose2dAsyncWith(
  cache: PackedWeightsCache | null,
  input: Tensor,
  weight: Tensor,
  options?: ConvTranspose2dOptions,
): Promise<Tensor> {
  try {
    const call = prepareCall(input, weight, options);
    const backend = chooseBackend(call.options.backend);
    const threads = threadsFor(call.options);
    const { plan } = call;
    if (plan.outputLength === 0) return Promise.resolve(result(call, call.out ?? newArray(call)));
    if (backend === 'native' && nativeBinding) {
      return runNativeAsync(nativeBinding, plan, call.x, call.w, call.bias, call.out, threads, cache).then((data) => result(call, data));
    }
    // The TypeScript path: copy now, like the native path, so the caller may reuse its inputs at once.
    const x = call.x.slice();
    const w = call.w.slice();
    const bias = call.bias ? call.bias.slice() : null;
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          const out = call.out ?? newArray(call);
          if (call.out && call.out.length !== plan.outputLength) fail(ErrorCodes.OUT, 'out was detached or resized during the call');
          runJs(call, x, w, bias, out, threads);
          resolve(result(call, out));
        } catch (e) {
          reject(e);
        }
      });
    });
  } catch (e) {
    return Promise.reject(e);
  }
}

export { outputShape } from './params';
