/**
 * The pure-TypeScript transposed-convolution kernel: used when no native binary loads, and by the
 * tests as the second opinion. It computes exactly the sum of DESIGN.md §3 and nothing else.
 *
 * ## Algorithm (a gather formulation over output phases)
 *
 * The output is split into `sH*sW` phases (`oy mod sH`, `ox mod sW`). Inside one phase, output pixel
 * `(qy, qx)` (that is `oy = py + sH*qy`, `ox = px + sW*qx`) receives the kernel taps `ky` with
 * `(py + pH - ky*dH) mod sH == 0` from input row `iy = qy + offY(ky)`, and likewise for `x`: a dense
 * stride-1 correlation with a sub-kernel. Because `offY` decreases as `ky` grows, the taps that land
 * inside the input for a given `qy` form one contiguous range. Rows (and columns) with the same range
 * are grouped into *segments*; a row segment × column segment is a rectangle of output pixels that
 * all use the same list of `(ci, ky, kx)` terms, so the reduction for the whole rectangle is described
 * by one table of input and weight offsets and needs no bounds tests and no multiplication by zero.
 *
 * Loops, outermost first:
 * 1. phase `(py, px)`; row segment; column segment → build the term table (`xOff[k]`, `wOff[k]`);
 * 2. group `g`; the rectangle's pixels over all images, taken in chunks of {@link CHUNK} pixels
 *    (their input and output base offsets are listed once);
 * 3. output-channel block of {@link NR} channels (the weights of the block stay in cache over the chunk);
 * 4. pixel block of {@link MR} pixels: the register-tiled micro-kernel, `MR × NR` accumulators held in
 *    locals (JS numbers, i.e. float64) over the whole reduction, then bias added and stored once.
 *
 * Every output element belongs to exactly one (phase, rectangle, image, channel) and is written exactly
 * once, bias included, so `out` may hold garbage on entry. Accumulation is in float64 whatever the dtype.
 *
 * @module
 */
import type { FloatArray, Plan } from './types';

/** Output pixels per register tile (along the pixel list of one rectangle). */
const MR = 4;
/** Output channels per register tile: MR*NR = 12 accumulators + 3 temporaries fit x86-64's 16 XMM registers. */
const NR = 3;
/** Pixels per chunk: bounds the listed offsets, and the input rows touched per channel block (cache). */
const CHUNK = 256;
/** Largest offset the Int32 tables can hold; bigger tensors take the plain loop of {@link convTranspose2dSimple}. */
const INT32_LIMIT = 0x7fffffff;

/** One spatial axis of one phase: its taps, and runs of output positions that share a valid tap range. */
interface AxisPhase {
  /** Output positions of this phase along the axis: `ceil((out - p) / s)`. */
  readonly q: number;
  /** Kernel index of each tap of the phase, ascending. */
  readonly tap: Int32Array;
  /** Input offset of each tap: input index = q + off[t]. Descending. */
  readonly off: Int32Array;
  /** Segment boundaries: segment `i` covers `q` in `[segStart[i], segStart[i+1])`. */
  readonly segStart: Int32Array;
  /** First valid tap index (into `tap`) of each segment. */
  readonly segLo: Int32Array;
  /** One past the last valid tap index of each segment (`segLo == segHi`: bias only). */
  readonly segHi: Int32Array;
  readonly segments: number;
}

/**
 * Taps and segments of phase `p` along one axis (stride `s`, padding `pad`, dilation `d`, kernel `k`,
 * input extent `inLen`, output extent `outLen`).
 */
function axisPhase(p: number, s: number, pad: number, d: number, k: number, inLen: number, outLen: number): AxisPhase {
  const q = Math.floor((outLen - p + s - 1) / s);
  const taps: number[] = [];
  const offs: number[] = [];
  for (let t = 0; t < k; t++) {
    const num = p + pad - t * d;
    const r = num % s;
    if (r === 0) {
      taps.push(t);
      offs.push(num / s);
    }
  }
  const nt = taps.length;
  const starts: number[] = [];
  const los: number[] = [];
  const his: number[] = [];
  let prevLo = -1;
  let prevHi = -1;
  for (let i = 0; i < q; i++) {
    // Valid taps: 0 <= i + off[t] < inLen. off is decreasing, so they form one range [lo, hi).
    let lo = 0;
    while (lo < nt && i + (offs[lo] as number) >= inLen) lo++;
    let hi = lo;
    while (hi < nt && i + (offs[hi] as number) >= 0) hi++;
    if (hi === lo) {
      lo = 0;
      hi = 0;
    }
    if (lo !== prevLo || hi !== prevHi) {
      starts.push(i);
      los.push(lo);
      his.push(hi);
      prevLo = lo;
      prevHi = hi;
    }
  }
  starts.push(q);
  return {
    q,
    tap: Int32Array.from(taps),
    off: Int32Array.from(offs),
    segStart: Int32Array.from(starts),
    segLo: Int32Array.from(los),
    segHi: Int32Array.from(his),
    segments: los.length,
  };
}

/** Grow-only scratch shared by calls (the kernel is synchronous, so one set suffices). */
let scratchXOff = new Int32Array(1024);
let scratchWOff = new Int32Array(1024);
const scratchXBase = new Int32Array(CHUNK);
const scratchOBase = new Int32Array(CHUNK);
let scratchW = new Float64Array(1024);

/**
 * Computes the 2-D transposed convolution of DESIGN.md §3 into `out`.
 *
 * @param plan - the resolved, validated call (from `lib/params.ts`); `plan.N` is explicit even for unbatched input.
 * @param x - input, `(N, Cin, H, W)` in C order.
 * @param w - weight, `(Cin, Cout/groups, kH, kW)` in C order.
 * @param bias - `(Cout,)`, or `null` for no bias.
 * @param out - `(N, Cout, Hout, Wout)`, length `plan.outputLength`; every element is overwritten
 *   (it may hold garbage on entry). Same dtype as the inputs.
 */
export function convTranspose2dJs(plan: Plan, x: FloatArray, w: FloatArray, bias: FloatArray | null, out: FloatArray): void {
  const { N, Cin, H, W, Cout, Hout, Wout } = plan;
  if (N === 0 || Cout === 0 || Hout <= 0 || Wout <= 0) return;
  if (x.length > INT32_LIMIT || out.length > INT32_LIMIT || w.length > INT32_LIMIT) {
    convTranspose2dSimple(plan, x, w, bias, out);
    return;
  }
  const { kH, kW, sH, sW, pH, pW, dH, dW, groups, cinPerGroup, coutPerGroup } = plan;
  const HW = H * W;
  const kk = kH * kW;
  const HoWo = Hout * Wout;
  const phasesY = Math.min(sH, Hout);
  const phasesX = Math.min(sW, Wout);
  const b = plan.hasBias ? bias : null;

  for (let py = 0; py < phasesY; py++) {
    const ay = axisPhase(py, sH, pH, dH, kH, H, Hout);
    for (let px = 0; px < phasesX; px++) {
      const ax = axisPhase(px, sW, pW, dW, kW, W, Wout);
      const nty = ay.tap.length;
      const ntx = ax.tap.length;
      const KF = cinPerGroup * nty * ntx;
      for (let g = 0; g < groups; g++) {
        const wp = packWeights(w, g, cinPerGroup, coutPerGroup, kH, kW, ay.tap, ax.tap, KF);
        const xg = g * cinPerGroup * HW;
        const og = g * coutPerGroup * HoWo;
        const cog = g * coutPerGroup;
        for (let rs = 0; rs < ay.segments; rs++) {
          const qy0 = ay.segStart[rs] as number;
          const qy1 = ay.segStart[rs + 1] as number;
          const tyLo = ay.segLo[rs] as number;
          const tyHi = ay.segHi[rs] as number;
          for (let cs = 0; cs < ax.segments; cs++) {
            const qx0 = ax.segStart[cs] as number;
            const qx1 = ax.segStart[cs + 1] as number;
            const txLo = ax.segLo[cs] as number;
            const txHi = ax.segHi[cs] as number;

            // The term table of this rectangle: one entry per (ci, ky, kx) that lands in the input:
            // its input offset (relative to the pixel's own position) and its packed-weight row.
            const K = cinPerGroup * (tyHi - tyLo) * (txHi - txLo);
            if (scratchXOff.length < K) {
              scratchXOff = new Int32Array(K);
              scratchWOff = new Int32Array(K);
            }
            const xOff = scratchXOff;
            const wOff = scratchWOff;
            let k = 0;
            for (let ci = 0; ci < cinPerGroup; ci++) {
              for (let ty = tyLo; ty < tyHi; ty++) {
                const xRow = ci * HW + (ay.off[ty] as number) * W;
                const wRow = (ci * nty + ty) * ntx;
                for (let tx = txLo; tx < txHi; tx++) {
                  xOff[k] = xRow + (ax.off[tx] as number);
                  wOff[k] = wRow + tx;
                  k++;
                }
              }
            }

            const rows = qy1 - qy0;
            const cols = qx1 - qx0;
            const total = N * rows * cols;
            // Walk the rectangle's pixels over all images in chunks.
            let n = 0;
            let r = 0;
            let c = 0;
            for (let done = 0; done < total; ) {
              const np = Math.min(CHUNK, total - done);
              for (let p = 0; p < np; p++) {
                const qy = qy0 + r;
                const qx = qx0 + c;
                scratchXBase[p] = xg + n * Cin * HW + qy * W + qx;
                scratchOBase[p] = og + n * Cout * HoWo + (py + sH * qy) * Wout + px + sW * qx;
                if (++c === cols) {
                  c = 0;
                  if (++r === rows) {
                    r = 0;
                    n++;
                  }
                }
              }
              computeChunk(x, wp, b, out, xOff, wOff, K, scratchXBase, scratchOBase, np, KF, HoWo, cog, coutPerGroup);
              done += np;
            }
          }
        }
      }
    }
  }
}

/**
 * Packs the weights of group `g` for one phase (taps `tapY` × `tapX`) into the grow-only scratch:
 * channel blocks of {@link NR} (then single tail channels), each `KF` rows of its width, row
 * `(ci*nty + ty)*ntx + tx`. Block `co` (first channel) starts at `co*KF`.
 */
function packWeights(
  w: FloatArray,
  g: number,
  cinPerGroup: number,
  cpg: number,
  kH: number,
  kW: number,
  tapY: Int32Array,
  tapX: Int32Array,
  KF: number,
): Float64Array {
  const size = KF * cpg;
  if (scratchW.length < size) scratchW = new Float64Array(size);
  const wp = scratchW;
  const nty = tapY.length;
  const ntx = tapX.length;
  const kk = kH * kW;
  const full = cpg - (cpg % NR);
  for (let ci = 0; ci < cinPerGroup; ci++) {
    const wci = (g * cinPerGroup + ci) * cpg * kk;
    for (let ty = 0; ty < nty; ty++) {
      for (let tx = 0; tx < ntx; tx++) {
        const row = (ci * nty + ty) * ntx + tx;
        const src = wci + (tapY[ty] as number) * kW + (tapX[tx] as number);
        let co = 0;
        for (; co < full; co += NR) {
          const d = co * KF + row * NR;
          wp[d] = w[src + co * kk] as number;
          wp[d + 1] = w[src + (co + 1) * kk] as number;
          wp[d + 2] = w[src + (co + 2) * kk] as number;
        }
        for (; co < cpg; co++) wp[co * KF + row] = w[src + co * kk] as number;
      }
    }
  }
  return wp;
}

/**
 * All output channels of one group for `np` listed pixels that share one term table.
 * Channel blocks of NR outer (their packed weights stay in L1/L2 over the chunk), pixel blocks of MR
 * inner; tails take narrower tiles.
 */
function computeChunk(
  x: FloatArray,
  wp: Float64Array,
  bias: FloatArray | null,
  out: FloatArray,
  xOff: Int32Array,
  wOff: Int32Array,
  K: number,
  xb: Int32Array,
  ob: Int32Array,
  np: number,
  KF: number,
  HoWo: number,
  cog: number,
  cpg: number,
): void {
  let co = 0;
  for (; co + NR <= cpg; co += NR) {
    const wb = co * KF;
    const oc = co * HoWo;
    const b0 = bias === null ? 0 : (bias[cog + co] as number);
    const b1 = bias === null ? 0 : (bias[cog + co + 1] as number);
    const b2 = bias === null ? 0 : (bias[cog + co + 2] as number);
    let p = 0;
    for (; p + MR <= np; p += MR) {
      tile4x3(x, wp, out, xOff, wOff, K, xb, ob, p, wb, oc, HoWo, b0, b1, b2);
    }
    for (; p < np; p++) {
      tile1x3(x, wp, out, xOff, wOff, K, xb[p] as number, ob[p] as number, wb, oc, HoWo, b0, b1, b2);
    }
  }
  for (; co < cpg; co++) {
    const wb = co * KF;
    const oc = co * HoWo;
    const b0 = bias === null ? 0 : (bias[cog + co] as number);
    let p = 0;
    for (; p + MR <= np; p += MR) {
      tile4x1(x, wp, out, xOff, wOff, K, xb, ob, p, wb, oc, b0);
    }
    for (; p < np; p++) {
      tile1x1(x, wp, out, xOff, wOff, K, xb[p] as number, ob[p] as number, wb, oc, b0);
    }
  }
}

/** Micro-kernel: 4 pixels × 3 channels, 12 float64 accumulators over the whole reduction, then bias and store. */
function tile4x3(
  x: FloatArray,
  wp: Float64Array,
  out: FloatArray,
  xOff: Int32Array,
  wOff: Int32Array,
  K: number,
  xb: Int32Array,
  ob: Int32Array,
  p: number,
  wb: number,
  oc: number,
  HoWo: number,
  b0: number,
  b1: number,
  b2: number,
): void {
  const x0 = xb[p] as number;
  const x1 = xb[p + 1] as number;
  const x2 = xb[p + 2] as number;
  const x3 = xb[p + 3] as number;
  let c00 = 0, c01 = 0, c02 = 0;
  let c10 = 0, c11 = 0, c12 = 0;
  let c20 = 0, c21 = 0, c22 = 0;
  let c30 = 0, c31 = 0, c32 = 0;
  for (let k = 0; k < K; k++) {
    const xo = xOff[k] as number;
    const wo = wb + 3 * (wOff[k] as number);
    const a0 = x[xo + x0] as number;
    const a1 = x[xo + x1] as number;
    const a2 = x[xo + x2] as number;
    const a3 = x[xo + x3] as number;
    let v = wp[wo] as number;
    c00 += a0 * v;
    c10 += a1 * v;
    c20 += a2 * v;
    c30 += a3 * v;
    v = wp[wo + 1] as number;
    c01 += a0 * v;
    c11 += a1 * v;
    c21 += a2 * v;
    c31 += a3 * v;
    v = wp[wo + 2] as number;
    c02 += a0 * v;
    c12 += a1 * v;
    c22 += a2 * v;
    c32 += a3 * v;
  }
  let o = (ob[p] as number) + oc;
  out[o] = c00 + b0;
  out[o + HoWo] = c01 + b1;
  out[o + 2 * HoWo] = c02 + b2;
  o = (ob[p + 1] as number) + oc;
  out[o] = c10 + b0;
  out[o + HoWo] = c11 + b1;
  out[o + 2 * HoWo] = c12 + b2;
  o = (ob[p + 2] as number) + oc;
  out[o] = c20 + b0;
  out[o + HoWo] = c21 + b1;
  out[o + 2 * HoWo] = c22 + b2;
  o = (ob[p + 3] as number) + oc;
  out[o] = c30 + b0;
  out[o + HoWo] = c31 + b1;
  out[o + 2 * HoWo] = c32 + b2;
}

/** Micro-kernel: 1 pixel × 3 channels (pixel tail). */
function tile1x3(
  x: FloatArray,
  wp: Float64Array,
  out: FloatArray,
  xOff: Int32Array,
  wOff: Int32Array,
  K: number,
  x0: number,
  o: number,
  wb: number,
  oc: number,
  HoWo: number,
  b0: number,
  b1: number,
  b2: number,
): void {
  let c0 = 0, c1 = 0, c2 = 0;
  for (let k = 0; k < K; k++) {
    const a = x[(xOff[k] as number) + x0] as number;
    const wo = wb + 3 * (wOff[k] as number);
    c0 += a * (wp[wo] as number);
    c1 += a * (wp[wo + 1] as number);
    c2 += a * (wp[wo + 2] as number);
  }
  o += oc;
  out[o] = c0 + b0;
  out[o + HoWo] = c1 + b1;
  out[o + 2 * HoWo] = c2 + b2;
}

/** Micro-kernel: 4 pixels × 1 channel (channel tail; all of a single-output-channel group). */
function tile4x1(
  x: FloatArray,
  wp: Float64Array,
  out: FloatArray,
  xOff: Int32Array,
  wOff: Int32Array,
  K: number,
  xb: Int32Array,
  ob: Int32Array,
  p: number,
  wb: number,
  oc: number,
  b0: number,
): void {
  const x0 = xb[p] as number;
  const x1 = xb[p + 1] as number;
  const x2 = xb[p + 2] as number;
  const x3 = xb[p + 3] as number;
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  for (let k = 0; k < K; k++) {
    const xo = xOff[k] as number;
    const v = wp[wb + (wOff[k] as number)] as number;
    c0 += (x[xo + x0] as number) * v;
    c1 += (x[xo + x1] as number) * v;
    c2 += (x[xo + x2] as number) * v;
    c3 += (x[xo + x3] as number) * v;
  }
  out[(ob[p] as number) + oc] = c0 + b0;
  out[(ob[p + 1] as number) + oc] = c1 + b0;
  out[(ob[p + 2] as number) + oc] = c2 + b0;
  out[(ob[p + 3] as number) + oc] = c3 + b0;
}

/** Micro-kernel: 1 pixel × 1 channel (both tails). */
function tile1x1(
  x: FloatArray,
  wp: Float64Array,
  out: FloatArray,
  xOff: Int32Array,
  wOff: Int32Array,
  K: number,
  x0: number,
  o: number,
  wb: number,
  oc: number,
  b0: number,
): void {
  let c = 0;
  for (let k = 0; k < K; k++) {
    c += (x[(xOff[k] as number) + x0] as number) * (wp[wb + (wOff[k] as number)] as number);
  }
  out[o + oc] = c + b0;
}

/**
 * The same sum as {@link convTranspose2dJs} with plain index arithmetic in JS numbers: used only for
 * tensors too large for Int32 offsets. Gather per output element over the valid taps.
 */
function convTranspose2dSimple(plan: Plan, x: FloatArray, w: FloatArray, bias: FloatArray | null, out: FloatArray): void {
  const { N, Cin, H, W, Cout, Hout, Wout, kH, kW, sH, sW, pH, pW, dH, dW, cinPerGroup, coutPerGroup } = plan;
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / coutPerGroup);
      const cw = co - g * coutPerGroup;
      const bv = plan.hasBias && bias !== null ? (bias[co] as number) : 0;
      for (let oy = 0; oy < Hout; oy++) {
        for (let ox = 0; ox < Wout; ox++) {
          let acc = 0;
          for (let ky = 0; ky < kH; ky++) {
            const ny = oy + pH - ky * dH;
            if (ny < 0 || ny % sH !== 0) continue;
            const iy = ny / sH;
            if (iy >= H) continue;
            for (let kx = 0; kx < kW; kx++) {
              const nx = ox + pW - kx * dW;
              if (nx < 0 || nx % sW !== 0) continue;
              const ix = nx / sW;
              if (ix >= W) continue;
              for (let cl = 0; cl < cinPerGroup; cl++) {
                const ci = g * cinPerGroup + cl;
                acc +=
                  (x[((n * Cin + ci) * H + iy) * W + ix] as number) *
                  (w[((ci * coutPerGroup + cw) * kH + ky) * kW + kx] as number);
              }
            }
          }
          out[((n * Cout + co) * Hout + oy) * Wout + ox] = acc + bv;
        }
      }
    }
  }
}
