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
 * Before the loops the input is copied once into a float64 scratch, channels innermost (planar when a
 * group has fewer than {@link CHANNELS_LAST_MIN} input channels), so every hot load reads one array type
 * and the reduction over input channels is contiguous. Loops, outermost first:
 * 1. phase `(py, px)` (its weights packed per group, input channel innermost); row segment; column
 *    segment → the rectangle's tap list (`xTap[t]`, `wTap[t]`);
 * 2. the rectangle's pixels over all images, in chunks sized so their input stays in L2;
 * 3. groups with at least {@link NR} output channels: the chunk's input terms are copied into panels of
 *    {@link MR} pixels (a GEMM's packed A), then per output-channel block of NR channels, per panel, the
 *    `MR × NR` micro-kernel runs one contiguous stream, accumulators in locals (float64), bias, one store;
 *    groups of 3-5 channels skip the copy and run the same tile on the input copy; groups of one or two
 *    channels use an 8-pixel × 1-channel tile, except one-channel groups whose column taps read consecutive
 *    columns: those treat the column taps as channels of the 4 × 3 tile ({@link phaseByTapColumns}).
 *
 * Every output element belongs to exactly one (phase, rectangle, image, channel) and is written exactly
 * once, bias included, so `out` may hold garbage on entry. Accumulation is in float64 whatever the dtype.
 *
 * @module
 */
import type { FloatArray, Plan } from './types';

/** Output pixels per register tile (along the pixel list of one rectangle). */
const MR = 4;
/** Output channels per register tile: MR*NR = 12 accumulators, about what x86-64's 16 XMM registers allow. */
const NR = 3;
/** Pixels per tile of the kernel for groups of fewer than NR output channels. */
const MR1 = 8;
/** Doubles of input terms one chunk of pixels may hold (`pixels × taps × channels`): keeps them in L2. */
const CHUNK_BUDGET = 1 << 15;
/** Input channels per group from which the input is copied channels-innermost (below: planar). */
const CHANNELS_LAST_MIN = 4;
/** Output channels per group from which pixels are copied into panels shared by the channel blocks. */
const PANEL_MIN_CHANNELS = 2 * NR;
/** Most pixels per chunk (the size of the pixel-offset lists). */
const MAX_CHUNK = 512;
/** Largest offset the Int32 tables can hold; bigger tensors take the plain loop of {@link convTranspose2dSimple}. */
const INT32_LIMIT = 0x7fffffff;
/**
 * Below this many multiply-adds (counting every kernel tap) the plain loop of {@link convTranspose2dSimple} wins:
 * the tables, copies and packing cost about 1 µs before the first useful one.
 */
const SIMPLE_MAX_MACS = 256;

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

/**
 * Grow-only scratch shared by calls (the kernel is synchronous, so one set suffices). One Float64Array holds
 * the input copy, the packed weights and the pixel panels: V8 checks the map and reloads the base pointer of
 * every typed array the inner loop reads on each iteration, so reading one array instead of two is about 9 %
 * faster on the micro-kernel.
 */
let heap = new Float64Array(0);
let scratchXTap = new Int32Array(64);
let scratchWTap = new Int32Array(64);
const scratchXBase = new Int32Array(MAX_CHUNK);
const scratchOBase = new Int32Array(MAX_CHUNK);
/** Per-tap partial sums of one input row, `[tap][column]` ({@link phaseByTapColumns}). */
let scratchY = new Float64Array(0);

/** The heap with room for at least `size` doubles. */
function heapOf(size: number): Float64Array {
  if (heap.length < size) heap = new Float64Array(size);
  return heap;
}

/**
 * One chunk of pixels to compute: where the call's parts live in {@link heap}, its output, and the chunk's tap
 * list and pixels. One object per call, updated per rectangle and chunk (a stable shape for V8).
 */
interface Chunk {
  h: Float64Array;
  /** Offset of the packed weights of the current phase and group (the input copy is at 0). */
  w0: number;
  /** Offset of the pixel panels. */
  a0: number;
  /** Pixel panels (a GEMM's packed A) shared by several channel blocks, or the input copy read directly. */
  panels: boolean;
  bias: FloatArray | null;
  out: FloatArray;
  /** Per tap: input offset relative to a pixel's own position, and first packed-weight row. */
  xTap: Int32Array;
  wTap: Int32Array;
  /** Taps, input channels per group, distance between consecutive input channels in the input copy. */
  T: number;
  cin: number;
  cstep: number;
  /** Per pixel: input position, output offset (channel 0 of the group). `np` pixels. */
  xb: Int32Array;
  ob: Int32Array;
  np: number;
  /** Rows of one channel block in the packed weights; output plane size; the group's first channel and channel count. */
  KF: number;
  HoWo: number;
  cog: number;
  cpg: number;
}

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
  if (x.length > INT32_LIMIT || out.length > INT32_LIMIT || w.length > INT32_LIMIT || out.length * plan.cinPerGroup * plan.kH * plan.kW < SIMPLE_MAX_MACS) {
    convTranspose2dSimple(plan, x, w, bias, out);
    return;
  }
  const { kH, kW, sH, sW, pH, pW, dH, dW, groups, cinPerGroup, coutPerGroup } = plan;
  const HoWo = Hout * Wout;
  const b = plan.hasBias ? bias : null;
  const axesY: AxisPhase[] = [];
  const axesX: AxisPhase[] = [];
  for (let py = 0; py < Math.min(sH, Hout); py++) axesY.push(axisPhase(py, sH, pH, dH, kH, H, Hout));
  for (let px = 0; px < Math.min(sW, Wout); px++) axesX.push(axisPhase(px, sW, pW, dW, kW, W, Wout));
  // Channels innermost makes the reduction over input channels contiguous; with few channels per group
  // (depthwise) the planar layout keeps neighbouring pixels in one cache line instead.
  const chLast = cinPerGroup >= CHANNELS_LAST_MIN;
  const HW = H * W;
  const cstep = chLast ? 1 : HW;
  const maxTy = maxTaps(axesY);
  const maxTx = maxTaps(axesX);
  const maxK = cinPerGroup * maxTy * maxTx;
  const panels = coutPerGroup >= PANEL_MIN_CHANNELS;
  // One output channel per group: phases whose column taps read consecutive input columns go by tap columns.
  const tapColumns = coutPerGroup === 1 && chLast;
  const xSize = N * Cin * HW;
  const wSize = Math.max(
    maxK * (coutPerGroup >= NR ? Math.ceil(coutPerGroup / NR) * NR : coutPerGroup),
    tapColumns ? cinPerGroup * maxTy * Math.ceil(maxTx / NR) * NR : 0,
  );
  // A chunk's panel holds at most max(CHUNK_BUDGET, MR1 * K) terms (chunkPixels), plus one padded block.
  const aSize = panels || tapColumns ? Math.max(CHUNK_BUDGET, MR1 * maxK) + MR * maxK : 0;
  const h = heapOf(xSize + wSize + aSize);
  const ck: Chunk = {
    h, w0: xSize, a0: xSize + wSize, panels, bias: b, out, xTap: scratchXTap, wTap: scratchWTap, T: 0, cin: cinPerGroup, cstep,
    xb: scratchXBase, ob: scratchOBase, np: 0, KF: 0, HoWo, cog: 0, cpg: coutPerGroup,
  };
  copyInput(h, x, N, Cin, HW, chLast);
  if (tapColumns && scratchY.length < Math.ceil(maxTx / NR) * NR * W) scratchY = new Float64Array(Math.ceil(maxTx / NR) * NR * W);

  for (let py = 0; py < axesY.length; py++) {
    const ay = axesY[py] as AxisPhase;
    for (let px = 0; px < axesX.length; px++) {
      const ax = axesX[px] as AxisPhase;
      const ntx = ax.tap.length;
      // Rows of one channel block in the packed weights: every (tap, ci) of the phase.
      const KF = cinPerGroup * ay.tap.length * ntx;
      const byTapColumns = tapColumns && unitColumnSteps(ax);
      for (let g = 0; g < groups; g++) {
        if (byTapColumns) {
          phaseByTapColumns(ck, plan, w, ay, ax, py, px, g);
          continue;
        }
        packWeights(h, ck.w0, w, g, cinPerGroup, coutPerGroup, kH, kW, ay.tap, ax.tap, KF);
        const xg = g * cinPerGroup;
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

            // The taps of this rectangle (all land in the input for all its pixels): the input offset of
            // each, relative to the pixel's own channels-last position, and its first packed-weight row.
            const T = (tyHi - tyLo) * (txHi - txLo);
            if (scratchXTap.length < T) {
              scratchXTap = new Int32Array(T);
              scratchWTap = new Int32Array(T);
            }
            const xTap = scratchXTap;
            const wTap = scratchWTap;
            ck.xTap = xTap;
            ck.wTap = wTap;
            ck.T = T;
            ck.KF = KF;
            ck.cog = cog;
            let t = 0;
            for (let ty = tyLo; ty < tyHi; ty++) {
              for (let tx = txLo; tx < txHi; tx++) {
                const off = (ay.off[ty] as number) * W + (ax.off[tx] as number);
                xTap[t] = chLast ? off * Cin : off;
                wTap[t] = (ty * ntx + tx) * cinPerGroup;
                t++;
              }
            }

            const rows = qy1 - qy0;
            const cols = qx1 - qx0;
            const total = N * rows * cols;
            const chunk = chunkPixels(T * cinPerGroup);
            // Walk the rectangle's pixels over all images in chunks.
            let n = 0;
            let r = 0;
            let c = 0;
            for (let done = 0; done < total; ) {
              const np = Math.min(chunk, total - done);
              for (let p = 0; p < np; p++) {
                const qy = qy0 + r;
                const qx = qx0 + c;
                scratchXBase[p] = chLast ? ((n * H + qy) * W + qx) * Cin + xg : (n * Cin + xg) * HW + qy * W + qx;
                scratchOBase[p] = og + n * Cout * HoWo + (py + sH * qy) * Wout + px + sW * qx;
                if (++c === cols) {
                  c = 0;
                  if (++r === rows) {
                    r = 0;
                    n++;
                  }
                }
              }
              ck.np = np;
              computeChunk(ck);
              done += np;
            }
          }
        }
      }
    }
  }
}

/** Whether consecutive column taps of a phase read consecutive input columns (and there are at least two). */
function unitColumnSteps(ax: AxisPhase): boolean {
  for (let t = 1; t < ax.off.length; t++) if ((ax.off[t] as number) !== (ax.off[t - 1] as number) - 1) return false;
  return ax.off.length >= 2;
}

/**
 * Phase (py, px) of group g when the group has one output channel (FSRCNN's last layer, C of the bench): the
 * 8 x 1 tile would load one input value per multiply-add. Instead, for each input row of the phase, the column
 * taps act as output channels of the 4 x 3 panel GEMM: `Y[tx][ix] = sum over the row segment's (ty, ci) of
 * x[iy(ty)][ix][ci] * w[ty][tx][ci]` for every input column ix, then each output pixel adds its valid taps,
 * `out[qx] = bias + sum_tx Y[tx][qx + off(tx)]`. Same multiply-adds, a third of the loads. `ck` is the call's
 * chunk (heap, input copy, scratch); its panel and weight areas are used here and left for the next phase.
 */
function phaseByTapColumns(ck: Chunk, plan: Plan, w: FloatArray, ay: AxisPhase, ax: AxisPhase, py: number, px: number, g: number): void {
  const { N, Cin, H, W, Cout, Wout, kH, kW, sH, sW, cinPerGroup: cin } = plan;
  const { h, out } = ck;
  const nty = ay.tap.length;
  const ntx = ax.tap.length;
  const KF = nty * cin; // rows (ty, ci) of one block of NR column taps
  // weights of the group's one output channel: block of taps [b*NR, b*NR + NR) at w0 + b*NR*KF, row (ty, ci), NR values
  const kk = kH * kW;
  for (let ci = 0; ci < cin; ci++) {
    const src = (g * cin + ci) * kk;
    for (let ty = 0; ty < nty; ty++) {
      const rowBase = (ty * cin + ci) * NR;
      const ky = (ay.tap[ty] as number) * kW;
      for (let b = 0; b * NR < ntx; b++) {
        const d = ck.w0 + b * NR * KF + rowBase;
        for (let j = 0; j < NR; j++) {
          const tx = b * NR + j;
          h[d + j] = tx < ntx ? (w[src + ky + (ax.tap[tx] as number)] as number) : 0;
        }
      }
    }
  }
  const y = scratchY;
  const c: Chunk = {
    h, w0: ck.w0, a0: ck.a0, panels: false, bias: null, out: y, xTap: scratchXTap, wTap: scratchWTap, T: 0, cin, cstep: 1,
    xb: scratchXBase, ob: scratchOBase, np: 0, KF, HoWo: W, cog: 0, cpg: ntx,
  };
  const bv = ck.bias === null ? 0 : (ck.bias[g] as number);
  const xg = g * cin;
  const HoWo = plan.Hout * Wout;
  for (let rs = 0; rs < ay.segments; rs++) {
    const qy0 = ay.segStart[rs] as number;
    const qy1 = ay.segStart[rs + 1] as number;
    const tyLo = ay.segLo[rs] as number;
    const T = (ay.segHi[rs] as number) - tyLo;
    if (scratchXTap.length < T) {
      scratchXTap = new Int32Array(T);
      scratchWTap = new Int32Array(T);
    }
    c.xTap = scratchXTap;
    c.wTap = scratchWTap;
    for (let t = 0; t < T; t++) {
      c.xTap[t] = (ay.off[tyLo + t] as number) * W * Cin;
      c.wTap[t] = (tyLo + t) * cin;
    }
    c.T = T;
    const chunk = chunkPixels(T * cin);
    for (let n = 0; n < N; n++) {
      for (let qy = qy0; qy < qy1; qy++) {
        if (T > 0) {
          for (let ix0 = 0; ix0 < W; ix0 += chunk) {
            const np = Math.min(chunk, W - ix0);
            for (let p = 0; p < np; p++) {
              c.xb[p] = ((n * H + qy) * W + ix0 + p) * Cin + xg;
              c.ob[p] = ix0 + p;
            }
            c.np = np;
            chunkDirect(c);
          }
        }
        const orow = (n * Cout + g) * HoWo + (py + sH * qy) * Wout + px;
        for (let cs = 0; cs < ax.segments; cs++) {
          const txLo = T > 0 ? (ax.segLo[cs] as number) : 0;
          const txHi = T > 0 ? (ax.segHi[cs] as number) : 0;
          for (let qx = ax.segStart[cs] as number; qx < (ax.segStart[cs + 1] as number); qx++) {
            let v = bv;
            for (let tx = txLo; tx < txHi; tx++) v += y[tx * W + qx + (ax.off[tx] as number)] as number;
            out[orow + sW * qx] = v;
          }
        }
      }
    }
  }
}

/** The most taps any phase of one axis has. */
function maxTaps(axes: readonly AxisPhase[]): number {
  let m = 0;
  for (const a of axes) m = Math.max(m, a.tap.length);
  return m;
}

/** Pixels per chunk for a reduction of `k` terms: the chunk's input stays in L2 while each channel block sweeps it. */
function chunkPixels(k: number): number {
  const p = Math.floor(CHUNK_BUDGET / Math.max(k, 1) / MR1) * MR1;
  return Math.min(MAX_CHUNK, Math.max(MR1, p));
}

/**
 * Copies the input as float64 to the start of the heap, so every hot load is from one array: channels
 * innermost (`(N, H, W, Cin)`) when `chLast`, else in its own `(N, Cin, H, W)` order.
 */
function copyInput(h: Float64Array, x: FloatArray, N: number, Cin: number, HW: number, chLast: boolean): void {
  const size = N * Cin * HW;
  if (!chLast) {
    for (let i = 0; i < size; i++) h[i] = x[i] as number;
    return;
  }
  for (let n = 0; n < N; n++) {
    const base = n * Cin * HW;
    for (let ci = 0; ci < Cin; ci++) {
      const src = base + ci * HW;
      let d = base + ci;
      for (let i = 0; i < HW; i++, d += Cin) h[d] = x[src + i] as number;
    }
  }
}

/**
 * Packs the weights of group `g` for one phase (taps `tapY` × `tapX`) into the heap from `w0`,
 * row `(ty*ntx + tx)*cinPerGroup + ci` (input channel innermost, as in the input). With at least
 * {@link NR} channels: blocks of NR interleaved channels, the last one padded with zero channels that
 * are computed but never stored; with fewer: one block per channel. Block `co` (first channel) starts at `w0 + co*KF`.
 */
function packWeights(
  h: Float64Array,
  w0: number,
  w: FloatArray,
  g: number,
  cinPerGroup: number,
  cpg: number,
  kH: number,
  kW: number,
  tapY: Int32Array,
  tapX: Int32Array,
  KF: number,
): void {
  const nty = tapY.length;
  const ntx = tapX.length;
  const kk = kH * kW;
  const ciStride = cpg * kk; // between input channels in w
  const g0 = g * cinPerGroup * ciStride;
  if (cpg < NR) {
    for (let co = 0; co < cpg; co++) {
      let d = w0 + co * KF;
      for (let ty = 0; ty < nty; ty++) {
        for (let tx = 0; tx < ntx; tx++) {
          let src = g0 + co * kk + (tapY[ty] as number) * kW + (tapX[tx] as number);
          for (let ci = 0; ci < cinPerGroup; ci++, src += ciStride) h[d++] = w[src] as number;
        }
      }
    }
    return;
  }
  // Block by block, rows in order, so the writes are sequential; the last block's missing channels are zeros.
  for (let co = 0; co < cpg; co += NR) {
    const nc = Math.min(NR, cpg - co);
    let d = w0 + co * KF;
    for (let ty = 0; ty < nty; ty++) {
      for (let tx = 0; tx < ntx; tx++) {
        let src = g0 + co * kk + (tapY[ty] as number) * kW + (tapX[tx] as number);
        if (nc === NR) {
          for (let ci = 0; ci < cinPerGroup; ci++, src += ciStride, d += NR) {
            h[d] = w[src] as number;
            h[d + 1] = w[src + kk] as number;
            h[d + 2] = w[src + 2 * kk] as number;
          }
        } else {
          for (let ci = 0; ci < cinPerGroup; ci++, src += ciStride, d += NR) {
            for (let j = 0; j < NR; j++) h[d + j] = j < nc ? (w[src + j * kk] as number) : 0;
          }
        }
      }
    }
  }
}

/**
 * All output channels of one group for the chunk's pixels, which share one tap list. Groups with at least
 * {@link PANEL_MIN_CHANNELS} channels first copy the pixels into {@link MR}-wide panels (a GEMM's packed A)
 * that every channel block then reads as one stream; smaller groups read the input copy directly (a panel
 * would cost as much as their arithmetic): NR channels at a time from NR channels up, else one.
 * Each way has its own function, so V8 optimises each loop nest for the micro-kernel it calls.
 */
function computeChunk(c: Chunk): void {
  if (c.panels) {
    packPixels(c);
    chunkFromPanels(c);
  } else if (c.cpg >= NR) chunkDirect(c);
  else chunkSingleChannels(c);
}

/** Bias of channel `co` of the chunk's group, 0 past the group's channels or without bias. */
function biasAt(c: Chunk, co: number): number {
  return c.bias === null || co >= c.cpg ? 0 : (c.bias[c.cog + co] as number);
}

/** {@link computeChunk} from the chunk's panels: channel blocks outer (their weights stay in cache), panels inner. */
function chunkFromPanels(c: Chunk): void {
  const { h, out, wTap, T, cin, ob, np, KF, HoWo, cpg } = c;
  const K = T * cin;
  for (let co = 0; co < cpg; co += NR) {
    const wb = c.w0 + co * KF;
    const nc = Math.min(NR, cpg - co);
    const b0 = biasAt(c, co);
    const b1 = biasAt(c, co + 1);
    const b2 = biasAt(c, co + 2);
    for (let p = 0; p < np; p += MR) {
      tile4x3(h, out, wTap, T, cin, c.a0 + p * K, wb, ob, p, Math.min(MR, np - p), nc, co * HoWo, HoWo, b0, b1, b2);
    }
  }
}

/** {@link computeChunk} for groups of a few channels, NR at a time, reading the input copy. */
function chunkDirect(c: Chunk): void {
  const { h, out, xTap, wTap, T, cin, cstep, xb, ob, np, KF, HoWo, cpg } = c;
  for (let co = 0; co < cpg; co += NR) {
    const wb = c.w0 + co * KF;
    const oc = co * HoWo;
    const nc = Math.min(NR, cpg - co);
    const b0 = biasAt(c, co);
    const b1 = biasAt(c, co + 1);
    const b2 = biasAt(c, co + 2);
    let p = 0;
    for (; p + MR <= np; p += MR) tile4x3Direct(h, out, xTap, wTap, T, cin, cstep, xb, wb, ob, p, nc, oc, HoWo, b0, b1, b2);
    for (; p < np; p++) {
      for (let j = 0; j < nc; j++) {
        tile1x1(h, out, xTap, wTap, T, cin, cstep, NR, xb[p] as number, (ob[p] as number) + oc + j * HoWo, wb + j, biasAt(c, co + j));
      }
    }
  }
}

/** {@link computeChunk} for groups of one or two channels, one at a time, reading the input copy. */
function chunkSingleChannels(c: Chunk): void {
  const { h, out, xTap, wTap, T, cin, cstep, xb, ob, np, KF, HoWo, cpg } = c;
  for (let co = 0; co < cpg; co++) {
    const wb = c.w0 + co * KF;
    const oc = co * HoWo;
    const b0 = biasAt(c, co);
    let p = 0;
    for (; p + MR1 <= np; p += MR1) tile8x1(h, out, xTap, wTap, T, cin, cstep, xb, ob, p, wb, oc, b0);
    for (; p < np; p++) tile1x1(h, out, xTap, wTap, T, cin, cstep, 1, xb[p] as number, (ob[p] as number) + oc, wb, b0);
  }
}

/**
 * Copies the chunk's input terms into panels of {@link MR} pixels from `a0`, `[block][tap][ci][pixel]`, so the
 * micro-kernel reads one contiguous stream; the last block is padded with zero pixels (never stored).
 */
function packPixels(c: Chunk): void {
  const { h, xTap, T, cin, cstep, xb, np } = c;
  const K = T * cin;
  for (let p = 0; p < np; p += MR) {
    const base = c.a0 + p * K;
    for (let pp = 0; pp < MR; pp++) {
      let d = base + pp;
      if (p + pp >= np) {
        for (let k = 0; k < K; k++, d += MR) h[d] = 0;
        continue;
      }
      const x0 = xb[p + pp] as number;
      for (let t = 0; t < T; t++) {
        const s = x0 + (xTap[t] as number);
        for (let ci = 0, o = s; ci < cin; ci++, o += cstep, d += MR) h[d] = h[o] as number;
      }
    }
  }
}

/** The accumulators of a partial tile, stored by {@link storeTile}. */
const tileAcc = new Float64Array(MR * NR);

/**
 * Micro-kernel: 4 pixels × 3 channels, 12 float64 accumulators over the whole reduction, then bias and
 * one store each. The pixels' panel starts at `ai` (4 values per term); the channel block at `wb`, 3 values
 * per term, its rows per tap listed in `wTap`. `pn` pixels and `nc` channels are real.
 * The three weights are loaded first and each input value feeds three accumulators at once, which keeps
 * the live values (12 + 3 + 1 + a product) nearest the 15 allocatable XMM registers.
 */
function tile4x3(
  h: Float64Array,
  out: FloatArray,
  wTap: Int32Array,
  T: number,
  cin: number,
  ai: number,
  wb: number,
  ob: Int32Array,
  p: number,
  pn: number,
  nc: number,
  oc: number,
  HoWo: number,
  b0: number,
  b1: number,
  b2: number,
): void {
  let c00 = 0, c01 = 0, c02 = 0;
  let c10 = 0, c11 = 0, c12 = 0;
  let c20 = 0, c21 = 0, c22 = 0;
  let c30 = 0, c31 = 0, c32 = 0;
  let i = ai;
  for (let t = 0; t < T; t++) {
    let j = wb + NR * (wTap[t] as number);
    const end = j + NR * cin;
    for (; j < end; j += NR, i += MR) {
      const v0 = h[j] as number;
      const v1 = h[j + 1] as number;
      const v2 = h[j + 2] as number;
      let x = h[i] as number;
      c00 += x * v0;
      c01 += x * v1;
      c02 += x * v2;
      x = h[i + 1] as number;
      c10 += x * v0;
      c11 += x * v1;
      c12 += x * v2;
      x = h[i + 2] as number;
      c20 += x * v0;
      c21 += x * v1;
      c22 += x * v2;
      x = h[i + 3] as number;
      c30 += x * v0;
      c31 += x * v1;
      c32 += x * v2;
    }
  }
  storeTile(out, ob, p, pn, nc, oc, HoWo, c00 + b0, c01 + b1, c02 + b2, c10 + b0, c11 + b1, c12 + b2, c20 + b0, c21 + b1, c22 + b2, c30 + b0, c31 + b1, c32 + b2);
}

/**
 * The 4 × 3 micro-kernel reading the input copy directly (groups with too few channels for a panel to pay):
 * pixel `p + i` at `xb[p + i]`, consecutive input channels `cstep` apart. All 4 pixels are real.
 */
function tile4x3Direct(
  h: Float64Array,
  out: FloatArray,
  xTap: Int32Array,
  wTap: Int32Array,
  T: number,
  cin: number,
  cstep: number,
  xb: Int32Array,
  wb: number,
  ob: Int32Array,
  p: number,
  nc: number,
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
  for (let t = 0; t < T; t++) {
    const xo = xTap[t] as number;
    let j = wb + NR * (wTap[t] as number);
    const end = j + NR * cin;
    for (let o = xo; j < end; j += NR, o += cstep) {
      const v0 = h[j] as number;
      const v1 = h[j + 1] as number;
      const v2 = h[j + 2] as number;
      let x = h[x0 + o] as number;
      c00 += x * v0;
      c01 += x * v1;
      c02 += x * v2;
      x = h[x1 + o] as number;
      c10 += x * v0;
      c11 += x * v1;
      c12 += x * v2;
      x = h[x2 + o] as number;
      c20 += x * v0;
      c21 += x * v1;
      c22 += x * v2;
      x = h[x3 + o] as number;
      c30 += x * v0;
      c31 += x * v1;
      c32 += x * v2;
    }
  }
  storeTile(out, ob, p, MR, nc, oc, HoWo, c00 + b0, c01 + b1, c02 + b2, c10 + b0, c11 + b1, c12 + b2, c20 + b0, c21 + b1, c22 + b2, c30 + b0, c31 + b1, c32 + b2);
}

/** Stores a 4 × 3 tile (pixel-major values) of which the first `pn` pixels and `nc` channels are real. */
function storeTile(
  out: FloatArray,
  ob: Int32Array,
  p: number,
  pn: number,
  nc: number,
  oc: number,
  HoWo: number,
  v00: number, v01: number, v02: number,
  v10: number, v11: number, v12: number,
  v20: number, v21: number, v22: number,
  v30: number, v31: number, v32: number,
): void {
  if (pn === MR && nc === NR) {
    let o = (ob[p] as number) + oc;
    out[o] = v00;
    out[o + HoWo] = v01;
    out[o + 2 * HoWo] = v02;
    o = (ob[p + 1] as number) + oc;
    out[o] = v10;
    out[o + HoWo] = v11;
    out[o + 2 * HoWo] = v12;
    o = (ob[p + 2] as number) + oc;
    out[o] = v20;
    out[o + HoWo] = v21;
    out[o + 2 * HoWo] = v22;
    o = (ob[p + 3] as number) + oc;
    out[o] = v30;
    out[o + HoWo] = v31;
    out[o + 2 * HoWo] = v32;
    return;
  }
  const acc = tileAcc;
  acc[0] = v00;
  acc[1] = v01;
  acc[2] = v02;
  acc[3] = v10;
  acc[4] = v11;
  acc[5] = v12;
  acc[6] = v20;
  acc[7] = v21;
  acc[8] = v22;
  acc[9] = v30;
  acc[10] = v31;
  acc[11] = v32;
  for (let i = 0; i < pn; i++) {
    const o = (ob[p + i] as number) + oc;
    for (let j = 0; j < nc; j++) out[o + j * HoWo] = acc[i * NR + j] as number;
  }
}

/**
 * Micro-kernel: 8 pixels × 1 channel (groups of one or two channels): one weight feeds 8 accumulators.
 * Reads the input copy directly (consecutive channels `cstep` apart).
 */
function tile8x1(
  h: Float64Array,
  out: FloatArray,
  xTap: Int32Array,
  wTap: Int32Array,
  T: number,
  cin: number,
  cstep: number,
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
  const x4 = xb[p + 4] as number;
  const x5 = xb[p + 5] as number;
  const x6 = xb[p + 6] as number;
  const x7 = xb[p + 7] as number;
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
  for (let t = 0; t < T; t++) {
    const xo = xTap[t] as number;
    const j = wb + (wTap[t] as number);
    const i0 = x0 + xo;
    const i1 = x1 + xo;
    const i2 = x2 + xo;
    const i3 = x3 + xo;
    const i4 = x4 + xo;
    const i5 = x5 + xo;
    const i6 = x6 + xo;
    const i7 = x7 + xo;
    for (let ci = 0, o = 0; ci < cin; ci++, o += cstep) {
      const v = h[j + ci] as number;
      c0 += (h[i0 + o] as number) * v;
      c1 += (h[i1 + o] as number) * v;
      c2 += (h[i2 + o] as number) * v;
      c3 += (h[i3 + o] as number) * v;
      c4 += (h[i4 + o] as number) * v;
      c5 += (h[i5 + o] as number) * v;
      c6 += (h[i6 + o] as number) * v;
      c7 += (h[i7 + o] as number) * v;
    }
  }
  out[(ob[p] as number) + oc] = c0 + b0;
  out[(ob[p + 1] as number) + oc] = c1 + b0;
  out[(ob[p + 2] as number) + oc] = c2 + b0;
  out[(ob[p + 3] as number) + oc] = c3 + b0;
  out[(ob[p + 4] as number) + oc] = c4 + b0;
  out[(ob[p + 5] as number) + oc] = c5 + b0;
  out[(ob[p + 6] as number) + oc] = c6 + b0;
  out[(ob[p + 7] as number) + oc] = c7 + b0;
}

/**
 * Micro-kernel: 1 pixel × 1 channel (the tails); `o` is the pixel's output offset in its channel, the channel's
 * weights start at `wb` with consecutive terms `wstep` apart (1 unblocked, {@link NR} inside a channel block).
 */
function tile1x1(
  h: Float64Array,
  out: FloatArray,
  xTap: Int32Array,
  wTap: Int32Array,
  T: number,
  cin: number,
  cstep: number,
  wstep: number,
  x0: number,
  o: number,
  wb: number,
  b0: number,
): void {
  let c = 0;
  for (let t = 0; t < T; t++) {
    const i0 = x0 + (xTap[t] as number);
    const j = wb + wstep * (wTap[t] as number);
    for (let ci = 0, s = i0; ci < cin; ci++, s += cstep) c += (h[s] as number) * (h[j + ci * wstep] as number);
  }
  out[o] = c + b0;
}

/**
 * The same sum as {@link convTranspose2dJs} with plain index arithmetic in JS numbers: used for tensors too
 * large for Int32 offsets, and for tiny problems. Gather per output element over the valid taps.
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
