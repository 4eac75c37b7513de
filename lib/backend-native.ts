// Loads the native addon (node-gyp-build: build/Release, then prebuilds/<platform>-<arch>), records why it failed,
// and adapts a Plan to the binding's calling convention (binding.d.ts).
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type * as Binding from '../binding';
import { ConvTransposeError } from './errors';
import type { FloatArray, Plan } from './types';

type NativeBinding = typeof Binding;

/** The package root: lib/ (sources under vitest) and dist/ (built) are both one level down. */
const packageRoot = path.join(__dirname, '..');

function describeLoadFailure(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0] ?? msg;
}

function load(): { binding: NativeBinding | null; loadError?: string } {
  if (process.env.CONV_TRANSPOSE_BACKEND === 'js') {
    return { binding: null, loadError: 'not loaded: CONV_TRANSPOSE_BACKEND=js' };
  }
  try {
    const req = createRequire(__filename);
    const binding = (req('node-gyp-build') as (dir: string) => NativeBinding)(packageRoot);
    if (
      typeof binding.convTranspose2d !== 'function' || typeof binding.createWeightCache !== 'function' || binding.PROBLEM_LENGTH !== 16 ||
      typeof binding.POOLED_RESULT_MIN_BYTES !== 'number'
    ) {
      return { binding: null, loadError: 'the loaded binary is not this version of conv-transpose (unexpected exports)' };
    }
    return { binding };
  } catch (e) {
    // node-gyp-build throws when nothing matches, and require() throws when a found binary cannot be opened
    // (missing shared library, wrong architecture): either way the TypeScript implementation serves.
    return { binding: null, loadError: describeLoadFailure(e) };
  }
}

const loaded = load();

/** The addon, or null when it could not be loaded (see `nativeLoadError`). */
export const nativeBinding: NativeBinding | null = loaded.binding;
/** Why the addon is not loaded, when it is not. */
export const nativeLoadError: string | undefined = loaded.loadError;

// One problem vector reused by every call: the binding reads it before returning (async calls copy it).
const problemVector = new Float64Array(16);

function fillProblem(p: Plan): Float64Array {
  const v = problemVector;
  v[0] = p.N; v[1] = p.Cin; v[2] = p.H; v[3] = p.W; v[4] = p.Cout; v[5] = p.kH; v[6] = p.kW;
  v[7] = p.sH; v[8] = p.sW; v[9] = p.pH; v[10] = p.pW; v[11] = p.dH; v[12] = p.dW;
  v[13] = p.groups; v[14] = p.Hout; v[15] = p.Wout;
  return v;
}

/** The addon throws plain Errors with a `code`: give callers the one error class the API documents. */
function asConvTransposeError(e: unknown): unknown {
  if (e instanceof ConvTransposeError || !(e instanceof Error)) return e;
  const code = (e as Error & { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_CONV_TRANSPOSE_')) return e;
  const wrapped = new ConvTransposeError(code, e.message);
  wrapped.stack = e.stack;
  return wrapped;
}

/**
 * A module's weights packed for the native kernels (the addon's weight cache, made on first use). The addon
 * compares the call's weight bytes with the ones it packed, so weights written in place are never stale;
 * unchanged ones skip the packing, up to 15 % of a call on the large layers (A2, G of the bench).
 */
export class PackedWeightsCache {
  private cache: Binding.WeightCache | null = null;

  /** The addon's cache object. */
  of(binding: NativeBinding): Binding.WeightCache {
    this.cache ??= binding.createWeightCache();
    return this.cache;
  }
}

/** Computes on the calling thread (plus the addon's pool); returns `out` or a new array. */
export function runNative(
  binding: NativeBinding, plan: Plan, x: FloatArray, w: FloatArray, bias: FloatArray | null, out: FloatArray | null, threads: number,
  cache: PackedWeightsCache | null,
): FloatArray {
  try {
    return binding.convTranspose2d(fillProblem(plan), x, w, bias, out, threads, cache?.of(binding));
  } catch (e) {
    throw asConvTransposeError(e);
  }
}

/**
 * Computes off the JS thread; inputs are copied by the addon before this returns (with a cache, the weights are
 * compared, and packed when they changed, on this thread).
 */
export function runNativeAsync(
  binding: NativeBinding, plan: Plan, x: FloatArray, w: FloatArray, bias: FloatArray | null, out: FloatArray | null, threads: number,
  cache: PackedWeightsCache | null,
): Promise<FloatArray> {
  return binding.convTranspose2dAsync(fillProblem(plan), x, w, bias, out, threads, cache?.of(binding)).catch((e: unknown) => {
    throw asConvTransposeError(e);
  });
}
