// Shared test helpers: backends under test, a seeded PRNG, a naive float64 scatter reference,
// random configurations over every parameter, tolerance checks and coded-error assertions.
// (Not a test file itself: vitest only collects test/**/*.test.ts.)
import * as path from 'node:path';
import { expect } from 'vitest';
import { ConvTransposeError, getBackend } from '../lib/index';
import type { ConvTranspose2dOptions, Tensor } from '../lib/types';

export const repoRoot = path.resolve(__dirname, '..');
export const goldenDir = path.resolve(__dirname, '../../shared/golden/public');

/** CI sets CONV_TRANSPOSE_NATIVE=required: then a missing binary must FAIL the native tests, never skip them. */
export const requireNative = process.env.CONV_TRANSPOSE_NATIVE === 'required';
export const nativeTested: boolean = requireNative || getBackend().name === 'native';
export type BackendName = 'js' | 'native';
export const backends: { backend: BackendName }[] = nativeTested
  ? [{ backend: 'js' }, { backend: 'native' }]
  : [{ backend: 'js' }];

// ---------------------------------------------------------------------------------------------------------
// PRNG (mulberry32): deterministic, tiny, good enough for test data.
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)] as T;
  }
  /** Uniform in [-1, 1), full float64 precision (two draws). */
  sym(): number {
    return (this.next() + this.next() / 4294967296) * 2 - 1;
  }
}

export type DT = 'float32' | 'float64';

export function alloc(dtype: DT, n: number): Float32Array | Float64Array {
  return dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
}

export function randTensor(rng: Rng, dtype: DT, shape: number[], scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = alloc(dtype, n);
  for (let i = 0; i < n; i++) data[i] = rng.sym() * scale;
  return { data, shape };
}

export function prod(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---------------------------------------------------------------------------------------------------------
// Naive reference: float64 scatter, straight from the definition (golden README).
export interface RefParams {
  sH: number; sW: number; pH: number; pW: number; dH: number; dW: number; opH: number; opW: number; groups: number;
}

export function refConvTranspose2d(
  input: { data: ArrayLike<number>; shape: readonly number[] },
  weight: { data: ArrayLike<number>; shape: readonly number[] },
  bias: ArrayLike<number> | null,
  p: RefParams,
): { shape: number[]; data: Float64Array } {
  const batched = input.shape.length === 4;
  const [N, Cin, H, W] = (batched ? input.shape : [1, ...input.shape]) as number[];
  const [wCin, Cg, kH, kW] = weight.shape as number[];
  if (wCin !== Cin) throw new Error('reference: channel mismatch');
  const G = p.groups;
  const Cout = G * Cg!;
  const Cpg = Cin! / G;
  const Hout = (H! - 1) * p.sH - 2 * p.pH + p.dH * (kH! - 1) + p.opH + 1;
  const Wout = (W! - 1) * p.sW - 2 * p.pW + p.dW * (kW! - 1) + p.opW + 1;
  const out = new Float64Array(N! * Cout * Hout * Wout);
  const x = input.data;
  const w = weight.data;
  for (let n = 0; n < N!; n++) {
    for (let ci = 0; ci < Cin!; ci++) {
      const g = Math.floor(ci / Cpg);
      for (let ih = 0; ih < H!; ih++) {
        for (let iw = 0; iw < W!; iw++) {
          const xv = x[((n * Cin! + ci) * H! + ih) * W! + iw]!;
          for (let co = 0; co < Cg!; co++) {
            const oc = g * Cg! + co;
            for (let kh = 0; kh < kH!; kh++) {
              const oh = ih * p.sH - p.pH + kh * p.dH;
              if (oh < 0 || oh >= Hout) continue;
              for (let kw = 0; kw < kW!; kw++) {
                const ow = iw * p.sW - p.pW + kw * p.dW;
                if (ow < 0 || ow >= Wout) continue;
                out[((n * Cout + oc) * Hout + oh) * Wout + ow]! += xv * w[((ci * Cg! + co) * kH! + kh) * kW! + kw]!;
              }
            }
          }
        }
      }
    }
  }
  if (bias) {
    const plane = Hout * Wout;
    for (let n = 0; n < N!; n++)
      for (let oc = 0; oc < Cout; oc++) {
        const b = bias[oc]!;
        const base = (n * Cout + oc) * plane;
        for (let i = 0; i < plane; i++) out[base + i]! += b;
      }
  }
  const shape = batched ? [N!, Cout, Hout, Wout] : [Cout, Hout, Wout];
  return { shape, data: out };
}

// ---------------------------------------------------------------------------------------------------------
// Tolerance (DESIGN §6): float32 1e-5, float64 1e-12, relative to max(1, max|expected|).
export function tolFor(dtype: DT): number {
  return dtype === 'float32' ? 1e-5 : 1e-12;
}

/** max|got - exp| / max(1, max|exp|); Infinity when got has a NaN/Inf or a different length. */
export function relErr(got: ArrayLike<number>, exp: ArrayLike<number>): number {
  if (got.length !== exp.length) return Infinity;
  let maxExp = 0;
  let maxDiff = 0;
  for (let i = 0; i < exp.length; i++) {
    const e = exp[i]!;
    const g = got[i]!;
    if (!Number.isFinite(g)) return Infinity;
    const a = Math.abs(e);
    if (a > maxExp) maxExp = a;
    const d = Math.abs(g - e);
    if (d > maxDiff) maxDiff = d;
  }
  return maxDiff / Math.max(1, maxExp);
}

export function expectClose(got: Tensor, exp: { shape: readonly number[]; data: ArrayLike<number> }, dtype: DT, what: string): number {
  expect([...got.shape], `${what}: shape`).toEqual([...exp.shape]);
  if (dtype === 'float32') expect(got.data, `${what}: dtype`).toBeInstanceOf(Float32Array);
  else expect(got.data, `${what}: dtype`).toBeInstanceOf(Float64Array);
  const r = relErr(got.data, exp.data);
  expect(r, `${what}: max|got-exp|/max(1,max|exp|) over tolerance`).toBeLessThanOrEqual(tolFor(dtype));
  return r;
}

export function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export function expectSameBytes(a: Tensor, b: Tensor, what: string): void {
  expect([...a.shape], `${what}: shape`).toEqual([...b.shape]);
  expect(a.data.constructor, `${what}: dtype`).toBe(b.data.constructor);
  expect(bytesOf(a.data).equals(bytesOf(b.data)), `${what}: bytes differ`).toBe(true);
}

// ---------------------------------------------------------------------------------------------------------
// Coded errors.
export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Asserts that fn throws a ConvTransposeError with the given code; returns it. */
export function expectCode(fn: () => unknown, code: string, what = ''): ConvTransposeError {
  const e = caught(fn);
  expect(e, `${what}: expected a throw with ${code}`).toBeDefined();
  expect(e, `${what}: expected a ConvTransposeError, got ${String(e)}`).toBeInstanceOf(ConvTransposeError);
  const ce = e as ConvTransposeError;
  expect(ce.code, `${what}: wrong code (message: ${ce.message})`).toBe(code);
  expect(typeof ce.message === 'string' && ce.message.length > 0, `${what}: empty message`).toBe(true);
  return ce;
}

/** Asserts that the call returns a promise (no synchronous throw) that rejects with a coded ConvTransposeError. */
export async function expectAsyncCode(fn: () => Promise<unknown>, code: string, what = ''): Promise<ConvTransposeError> {
  let p: Promise<unknown> | undefined;
  const syncErr = caught(() => {
    p = fn();
  });
  expect(syncErr, `${what}: threw synchronously instead of rejecting: ${String(syncErr)}`).toBeUndefined();
  expect(p, `${what}: did not return a promise`).toBeInstanceOf(Promise);
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `${what}: expected a rejection with ${code}`).toBeDefined();
  expect(err, `${what}: expected a ConvTransposeError, got ${String(err)}`).toBeInstanceOf(ConvTransposeError);
  expect((err as ConvTransposeError).code, `${what}: wrong code (message: ${(err as Error).message})`).toBe(code);
  return err as ConvTransposeError;
}

// ---------------------------------------------------------------------------------------------------------
// Random configurations over every parameter.
export interface Cfg {
  dtype: DT;
  batched: boolean;
  N: number;
  Cin: number;
  H: number;
  W: number;
  groups: number;
  coutPerGroup: number;
  kH: number; kW: number;
  sH: number; sW: number;
  pH: number; pW: number;
  dH: number; dW: number;
  opH: number; opW: number;
  bias: 'none' | 'tensor' | 'array';
  /** When set, passed as outputSize (and opH/opW are the derived ones, not passed). */
  outputSize?: number[];
}

export interface CfgLimits {
  maxCpg: number; maxCoutPg: number; maxHW: number; maxK: number; maxN: number; maxGroups: number;
}

export const smallLimits: CfgLimits = { maxCpg: 4, maxCoutPg: 4, maxHW: 7, maxK: 5, maxN: 3, maxGroups: 3 };

function outExtent(inp: number, s: number, p: number, d: number, k: number, op: number): number {
  return (inp - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

export function randomCfg(rng: Rng, lim: CfgLimits = smallLimits): Cfg {
  const dtype: DT = rng.bool(0.5) ? 'float32' : 'float64';
  const batched = !rng.bool(0.15);
  const N = batched ? (rng.bool(0.05) ? 0 : rng.int(1, lim.maxN)) : 1;
  let groups: number;
  let cpg: number;
  let coutPerGroup: number;
  const kind = rng.next();
  if (kind < 0.15) {
    // depthwise (channel multiplier 1..2)
    groups = rng.int(2, Math.max(2, lim.maxGroups * 2));
    cpg = 1;
    coutPerGroup = rng.int(1, 2);
  } else if (kind < 0.4) {
    groups = rng.int(2, lim.maxGroups);
    cpg = rng.int(1, lim.maxCpg);
    coutPerGroup = rng.int(1, lim.maxCoutPg);
  } else {
    groups = 1;
    cpg = rng.int(1, lim.maxCpg);
    coutPerGroup = rng.int(1, lim.maxCoutPg);
  }
  const Cin = groups * cpg;
  const H = rng.int(1, lim.maxHW);
  const W = rng.int(1, lim.maxHW);
  const kH = rng.int(1, lim.maxK);
  const kW = rng.bool(0.6) ? rng.int(1, lim.maxK) : kH;
  const sH = rng.int(1, 3);
  const sW = rng.bool(0.6) ? rng.int(1, 3) : sH;
  const dH = rng.bool(0.7) ? 1 : rng.int(2, 3);
  const dW = rng.bool(0.7) ? 1 : rng.int(1, 3);
  // output padding by the dilation rule: op < max(stride, dilation)
  let opH = rng.bool(0.6) ? 0 : rng.int(0, Math.max(sH, dH) - 1);
  let opW = rng.bool(0.6) ? 0 : rng.int(0, Math.max(sW, dW) - 1);
  const padFor = (inp: number, s: number, d: number, k: number, op: number): number => {
    const full = outExtent(inp, s, 0, d, k, op); // >= 1 always
    const maxP = Math.floor((full - 1) / 2); // largest p keeping the extent >= 1
    const r = rng.next();
    if (r < 0.45) return 0;
    if (r < 0.8) return rng.int(0, Math.min(maxP, 2));
    return maxP; // heavy crop: output just >= 1
  };
  const pH = padFor(H, sH, dH, kH, opH);
  const pW = padFor(W, sW, dW, kW, opW);
  const bias = rng.pick(['none', 'tensor', 'array'] as const);
  let outputSize: number[] | undefined;
  if (rng.bool(0.15)) {
    // module rule: op in [0, stride-1] (ignores dilation); the resulting size must be >= 1
    const minH = outExtent(H, sH, pH, dH, kH, 0);
    const minW = outExtent(W, sW, pW, dW, kW, 0);
    const loH = Math.max(0, 1 - minH);
    const loW = Math.max(0, 1 - minW);
    if (loH <= sH - 1 && loW <= sW - 1) {
      opH = rng.int(loH, sH - 1);
      opW = rng.int(loW, sW - 1);
      const hw = [minH + opH, minW + opW];
      const form = rng.next();
      if (form < 0.5) outputSize = hw;
      else if (batched) outputSize = [rng.bool() ? N : 99, rng.bool() ? groups * coutPerGroup : 77, ...hw];
      else outputSize = [rng.bool() ? groups * coutPerGroup : 55, ...hw];
    }
  }
  const cfg: Cfg = {
    dtype, batched, N, Cin, H, W, groups, coutPerGroup, kH, kW, sH, sW, pH, pW, dH, dW, opH, opW, bias, outputSize,
  };
  // Sanity: the parameters must be valid (PyTorch rules).
  if (outExtent(H, sH, pH, dH, kH, opH) < 1 || outExtent(W, sW, pW, dW, kW, opW) < 1) {
    // can only happen through outputSize bookkeeping; fall back to no output padding
    cfg.opH = 0; cfg.opW = 0; cfg.outputSize = undefined; cfg.pH = 0; cfg.pW = 0;
  }
  return cfg;
}

/** Passes a pair in one of the forms PyTorch accepts: scalar, [v] (broadcast) or [h, w]. */
function pair(rng: Rng, h: number, w: number): number | number[] {
  if (h === w) {
    const r = rng.next();
    if (r < 0.4) return h;
    if (r < 0.55) return [h];
  }
  return [h, w];
}

export interface Problem {
  cfg: Cfg;
  input: Tensor;
  weight: Tensor;
  bias: Tensor | Float32Array | Float64Array | null;
  options: ConvTranspose2dOptions;
  ref: { shape: number[]; data: Float64Array };
}

export function makeProblem(rng: Rng, cfg: Cfg, withRef = true): Problem {
  const inShape = cfg.batched ? [cfg.N, cfg.Cin, cfg.H, cfg.W] : [cfg.Cin, cfg.H, cfg.W];
  const input = randTensor(rng, cfg.dtype, inShape);
  const weight = randTensor(rng, cfg.dtype, [cfg.Cin, cfg.coutPerGroup, cfg.kH, cfg.kW], 1 / Math.sqrt((cfg.Cin / cfg.groups) * cfg.kH * cfg.kW));
  const Cout = cfg.groups * cfg.coutPerGroup;
  let bias: Tensor | Float32Array | Float64Array | null = null;
  let biasData: ArrayLike<number> | null = null;
  if (cfg.bias !== 'none') {
    const b = randTensor(rng, cfg.dtype, [Cout], 0.5);
    biasData = b.data;
    bias = cfg.bias === 'tensor' ? b : b.data;
  }
  const options: ConvTranspose2dOptions = {
    stride: pair(rng, cfg.sH, cfg.sW),
    padding: pair(rng, cfg.pH, cfg.pW),
    dilation: pair(rng, cfg.dH, cfg.dW),
    groups: cfg.groups,
  };
  if (bias) options.bias = bias;
  if (cfg.outputSize) options.outputSize = cfg.outputSize;
  else if (cfg.opH || cfg.opW || rng.bool(0.3)) options.outputPadding = pair(rng, cfg.opH, cfg.opW);
  const ref = withRef
    ? refConvTranspose2d(input, weight, biasData, {
        sH: cfg.sH, sW: cfg.sW, pH: cfg.pH, pW: cfg.pW, dH: cfg.dH, dW: cfg.dW, opH: cfg.opH, opW: cfg.opW, groups: cfg.groups,
      })
    : { shape: [], data: new Float64Array(0) };
  return { cfg, input, weight, bias, options, ref };
}

export function describeCfg(c: Cfg): string {
  const inShape = c.batched ? [c.N, c.Cin, c.H, c.W] : [c.Cin, c.H, c.W];
  return `${c.dtype} in=[${inShape}] w=[${c.Cin},${c.coutPerGroup},${c.kH},${c.kW}] g=${c.groups} s=[${c.sH},${c.sW}] p=[${c.pH},${c.pW}] d=[${c.dH},${c.dW}] op=[${c.opH},${c.opW}] bias=${c.bias}${c.outputSize ? ` outputSize=[${c.outputSize}]` : ''}`;
}
