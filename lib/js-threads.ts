/**
 * Worker threads for the TypeScript backend: a large call is cut into parts (by images, else by output
 * channels, else by groups) that the calling thread and up to `threads - 1` persistent workers compute at once,
 * each with the same kernel (`convTranspose2dJs`) on its own sub-problem. Every output element belongs to one
 * part and is computed exactly as a one-thread call computes it, so the result's bytes do not depend on the
 * thread count.
 *
 * Data goes through one grow-only SharedArrayBuffer (the arena): the caller copies each part's input, weights
 * and bias there, the parts write their outputs there, and the caller copies them into `out`. A call is
 * synchronous: the caller computes its own part, then waits (Atomics.wait) for the workers. Workers are
 * started on the first large call, never keep the process alive (unref), and a worker that fails or does not
 * answer in time has its part computed by the caller instead (and is not used again).
 *
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { convTranspose2dJs } from './backend-js';
import type { FloatArray, Plan } from './types';

/** Below this many FLOPs (about 1 ms of TypeScript) a call stays on the calling thread: a hand-off to the workers costs tens of microseconds. */
export const PARALLEL_MIN_FLOPS = 1 << 22;
/** Largest arena: its byte offsets travel as int32 (see {@link readJob}). */
const MAX_ARENA_BYTES = 2 ** 31 - 1;
/** Most workers started (the calling thread is one more). */
const MAX_WORKERS = 15;
/** Per worker in the control block: go counter, status (-1 busy, 0 done, 1 failed). */
const CTRL_STRIDE = 2;
const GO = 0;
const STATUS = 1;
/** Doubles of one part's description in the job block (see {@link writeJob}). */
export const JOB_LENGTH = 32;
/** How long the caller waits for a worker beyond its own part's time before computing that part itself. */
const GRACE_MS = 2000;

interface WorkerSlot {
  worker: Worker;
  port: MessagePort;
  /** Arena the worker was last sent. */
  arena: SharedArrayBuffer | null;
  broken: boolean;
}

/**
 * A sub-problem: the call's plan with fewer images, output channels, groups or output rows, and which ones: its
 * images start at n0, its input channels at ci0, its input rows at i0, its channels within a group at cg0, its
 * output channels at c0 and its output rows at a0.
 */
type SubPlan = Plan & { n0: number; ci0: number; i0: number; cg0: number; c0: number; a0: number };

/** A piece of the call: its plan and where its arrays live in the arena (byte offsets). */
interface Part {
  plan: SubPlan;
  x: number;
  w: number;
  b: number; // -1: no bias
  y: number;
}

/** Counts for tests and diagnostics: parts computed by workers, and parts the caller had to take back. */
export const threadStats = { workerParts: 0, takenBack: 0 };

const ctrl = new Int32Array(new SharedArrayBuffer(4 * CTRL_STRIDE * MAX_WORKERS));
const jobs = new Float64Array(new SharedArrayBuffer(8 * JOB_LENGTH * MAX_WORKERS));
let arena = new SharedArrayBuffer(0);
const slots: WorkerSlot[] = [];
/** The compiled worker script: dist/js-worker.js (also when these sources run from lib/ under the tests). */
const workerScript = path.join(__dirname, '..', 'dist', 'js-worker.js');
let workerScriptFound: boolean | null = null;
function workerScriptExists(): boolean {
  workerScriptFound ??= fs.existsSync(workerScript);
  return workerScriptFound;
}

function startWorker(index: number): WorkerSlot {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(workerScript, {
    workerData: { ctrl, jobs, index, port: port2, go: Atomics.load(ctrl, index * CTRL_STRIDE + GO) },
    transferList: [port2],
  });
  worker.unref();
  port1.unref();
  const slot: WorkerSlot = { worker, port: port1, arena: null, broken: false };
  worker.on('error', () => {
    slot.broken = true;
  });
  worker.on('exit', () => {
    slot.broken = true;
  });
  return slot;
}

/** The arena, grown to at least `bytes`. */
function arenaOf(bytes: number): SharedArrayBuffer {
  if (arena.byteLength < bytes) arena = new SharedArrayBuffer(Math.max(bytes, Math.floor(arena.byteLength * 1.25)));
  return arena;
}

/** How a plan is cut into at most `parts` sub-plans, or null when it is not worth it. */
function split(plan: Plan, parts: number): SubPlan[] | null {
  const { N, groups, coutPerGroup, cinPerGroup } = plan;
  const make = (over: Partial<SubPlan>): SubPlan => ({ ...plan, n0: 0, ci0: 0, i0: 0, cg0: 0, c0: 0, a0: 0, ...over });
  const ranges = (total: number, unit: number): [number, number][] => {
    const units = Math.ceil(total / unit);
    const k = Math.min(parts, units);
    const out: [number, number][] = [];
    for (let i = 0; i < k; i++) {
      const a = Math.floor((units * i) / k) * unit;
      const b = Math.min(total, Math.floor((units * (i + 1)) / k) * unit);
      if (b > a) out.push([a, b]);
    }
    return out;
  };
  // output channels in blocks of 3 (the kernel's register tile), at least two blocks per part
  const channelsOk = groups === 1 && coutPerGroup >= 6 * parts;
  // Each part packs the weights it uses and copies the input it reads: cut the larger of the two.
  const weightsLarger = plan.Cin * coutPerGroup * plan.kH * plan.kW > N * plan.Cin * plan.H * plan.W;
  if (N >= parts && !(channelsOk && weightsLarger)) return ranges(N, 1).map(([a, b]) => make({ N: b - a, n0: a }));
  if (channelsOk) return ranges(coutPerGroup, 3).map(([a, b]) => make({ Cout: b - a, coutPerGroup: b - a, cg0: a, c0: a }));
  if (groups >= parts) {
    return ranges(groups, 1).map(([a, b]) =>
      make({ groups: b - a, Cin: (b - a) * cinPerGroup, Cout: (b - a) * coutPerGroup, ci0: a * cinPerGroup, c0: a * coutPerGroup }));
  }
  // Output rows (one image, few channels: C of the bench). Rows [a, b) come from the input rows i0.. whose taps
  // reach them; the part's padding moves its first row to a. Taking i0 no later than needed keeps it >= 0.
  if (plan.Hout >= 8 * parts) {
    const { sH, pH, dH, kH, H } = plan;
    return ranges(plan.Hout, 1).map(([a, b]) => {
      const i0 = Math.max(0, Math.floor((a + pH - (kH - 1) * dH) / sH));
      const i1 = Math.min(H - 1, Math.floor((b - 1 + pH) / sH));
      return make({ H: Math.max(0, i1 - i0 + 1), pH: pH + a - i0 * sH, Hout: b - a, i0, a0: a });
    }).filter((p) => p.H > 0);
  }
  return null;
}

/**
 * Computes like {@link convTranspose2dJs} with up to `threads` threads (the caller's included). Returns false,
 * computing nothing, when the call is too small or cannot be cut: the caller then runs the kernel itself.
 */
export function convTranspose2dJsThreaded(
  plan: Plan,
  x: FloatArray,
  w: FloatArray,
  bias: FloatArray | null,
  out: FloatArray,
  threads: number,
): boolean {
  if (threads < 2) return false;
  const flops = 2 * plan.N * plan.Cin * plan.H * plan.W * plan.coutPerGroup * plan.kH * plan.kW;
  if (flops < PARALLEL_MIN_FLOPS) return false;
  const subPlans = split(plan, Math.min(threads, MAX_WORKERS + 1));
  if (subPlans === null || subPlans.length < 2 || !workerScriptExists()) return false;
  try {
    while (slots.length < subPlans.length - 1) slots.push(startWorker(slots.length));
  } catch {
    workerScriptFound = false; // no threads to be had here (a resource limit, a runtime without workers)
    return false;
  }
  const usable = slots.slice(0, subPlans.length - 1);
  if (usable.some((s) => s.broken)) return false;

  const es = x.BYTES_PER_ELEMENT;
  const HW = plan.H * plan.W;
  const HoWo = plan.Hout * plan.Wout;
  const kk = plan.kH * plan.kW;
  // Layout: every part's x, w, bias and y, each 8-byte aligned.
  let bytes = 0;
  const take = (n: number) => {
    const at = bytes;
    bytes += Math.ceil((n * es) / 8) * 8;
    return at;
  };
  // parts over images or rows share one copy of the weights
  const sharesW = (p: SubPlan) => p.Cin === plan.Cin && p.coutPerGroup === plan.coutPerGroup && p.groups === plan.groups;
  const sharedW = subPlans.every(sharesW) ? take(plan.Cin * plan.coutPerGroup * kk) : -1;
  const parts: Part[] = subPlans.map((p) => ({
    plan: p,
    x: take(p.N * p.Cin * p.H * plan.W),
    w: sharedW >= 0 ? sharedW : take(p.Cin * p.coutPerGroup * kk),
    b: plan.hasBias && bias ? take(p.Cout) : -1,
    y: take(p.N * p.Cout * p.Hout * plan.Wout),
  }));
  if (bytes > MAX_ARENA_BYTES) return false;
  const buf = arenaOf(bytes);
  const view = (at: number, n: number) => floatView(es, buf, at, n);

  // Copy each part's inputs into the arena: whole runs where the part keeps every row (or channel).
  const W = plan.W;
  for (const part of parts) {
    const p = part.plan;
    const xs = view(part.x, p.N * p.Cin * p.H * W);
    const planeIn = p.H * W;
    for (let n = 0; n < p.N; n++) {
      const src = ((p.n0 + n) * plan.Cin + p.ci0) * HW + p.i0 * W;
      if (p.H === plan.H) xs.set(x.subarray(src, src + p.Cin * HW), n * p.Cin * HW);
      else for (let ci = 0; ci < p.Cin; ci++) xs.set(x.subarray(src + ci * HW, src + ci * HW + planeIn), (n * p.Cin + ci) * planeIn);
    }
    if (part.w !== sharedW || part === parts[0]) {
      const ws = view(part.w, p.Cin * p.coutPerGroup * kk);
      const run = p.coutPerGroup * kk;
      const src = (p.ci0 * plan.coutPerGroup + p.cg0) * kk;
      if (p.coutPerGroup === plan.coutPerGroup) ws.set(w.subarray(src, src + p.Cin * run));
      else for (let ci = 0; ci < p.Cin; ci++) ws.set(w.subarray(src + ci * plan.coutPerGroup * kk, src + ci * plan.coutPerGroup * kk + run), ci * run);
    }
    if (part.b >= 0 && bias) view(part.b, p.Cout).set(bias.subarray(p.c0, p.c0 + p.Cout));
  }

  // Hand parts 1.. to the workers, compute part 0 here, then collect.
  for (let k = 1; k < parts.length; k++) {
    const slot = usable[k - 1] as WorkerSlot;
    if (slot.arena !== buf) {
      slot.port.postMessage(buf);
      slot.arena = buf;
    }
    writeJob(jobs, (k - 1) * JOB_LENGTH, parts[k] as Part, es);
    Atomics.store(ctrl, (k - 1) * CTRL_STRIDE + STATUS, -1);
    Atomics.add(ctrl, (k - 1) * CTRL_STRIDE + GO, 1);
    Atomics.notify(ctrl, (k - 1) * CTRL_STRIDE + GO);
  }
  const t0 = performance.now();
  runPart(buf, parts[0] as Part, es);
  const ownMs = performance.now() - t0;
  for (let k = 1; k < parts.length; k++) {
    const slot = usable[k - 1] as WorkerSlot;
    const base = (k - 1) * CTRL_STRIDE;
    const deadline = performance.now() + 4 * ownMs + GRACE_MS;
    let status = Atomics.load(ctrl, base + STATUS);
    while (status === -1) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(ctrl, base + STATUS, -1, left);
      status = Atomics.load(ctrl, base + STATUS);
    }
    if (status === 0) threadStats.workerParts++;
    else {
      // failed, or no answer in time: never use this worker again (nor this arena, which it may still
      // write to until it stops), and compute its part here
      slot.broken = true;
      void slot.worker.terminate();
      arena = new SharedArrayBuffer(0);
      threadStats.takenBack++;
      runPart(buf, parts[k] as Part, es);
    }
  }

  for (const part of parts) {
    const p = part.plan;
    const plane = p.Hout * plan.Wout;
    const ys = view(part.y, p.N * p.Cout * plane);
    for (let n = 0; n < p.N; n++) {
      const dst = ((p.n0 + n) * plan.Cout + p.c0) * HoWo + p.a0 * plan.Wout;
      if (p.Hout === plan.Hout) out.set(ys.subarray(n * p.Cout * plane, (n + 1) * p.Cout * plane), dst);
      else for (let c = 0; c < p.Cout; c++) out.set(ys.subarray((n * p.Cout + c) * plane, (n * p.Cout + c + 1) * plane), dst + c * HoWo);
    }
  }
  return true;
}

/** One part's description for a worker: its plan's integers and its arrays' byte offsets. */
function writeJob(job: Float64Array, at: number, part: Part, es: number): void {
  const p = part.plan;
  const v = [p.N, p.Cin, p.H, p.W, p.Cout, p.kH, p.kW, p.sH, p.sW, p.pH, p.pW, p.dH, p.dW, p.groups, p.cinPerGroup,
    p.coutPerGroup, p.Hout, p.Wout, p.opH, p.opW, part.b >= 0 ? 1 : 0, es, part.x, part.w, part.b, part.y];
  for (let i = 0; i < v.length; i++) job[at + i] = v[i] as number;
}

/** The part's plan and arrays back from a job description (in a worker). */
export function readJob(job: Float64Array, at: number, buf: SharedArrayBuffer): { plan: Plan; x: FloatArray; w: FloatArray; b: FloatArray | null; y: FloatArray } {
  // `| 0`: integers (all below 2^31), so the plan's fields are small integers as in params.ts's plans, not doubles
  // (a double field would generalise the Plan shape for every caller and slow the kernel's index arithmetic).
  const g = (i: number) => (job[at + i] as number) | 0;
  const N = g(0), Cin = g(1), H = g(2), W = g(3), Cout = g(4), kH = g(5), kW = g(6);
  const coutPerGroup = g(15), Hout = g(16), Wout = g(17);
  const hasBias = g(20) === 1;
  const es = g(21);
  // Built like params.ts builds a Plan (same fields, same order, frozen), so the kernel sees one object shape.
  const plan: Plan = Object.freeze({
    dtype: es === 4 ? 'float32' : 'float64',
    batched: true,
    N,
    Cin,
    H,
    W,
    Cout,
    kH,
    kW,
    sH: g(7),
    sW: g(8),
    pH: g(9),
    pW: g(10),
    dH: g(11),
    dW: g(12),
    opH: g(18),
    opW: g(19),
    groups: g(13),
    cinPerGroup: g(14),
    coutPerGroup,
    Hout,
    Wout,
    hasBias,
    outputShape: Object.freeze([N, Cout, Hout, Wout]),
    outputLength: N * Cout * Hout * Wout,
  });
  return {
    plan,
    x: floatView(es, buf, g(22), N * Cin * H * W),
    w: floatView(es, buf, g(23), Cin * coutPerGroup * kH * kW),
    b: hasBias ? floatView(es, buf, g(24), Cout) : null,
    y: floatView(es, buf, g(25), N * Cout * Hout * Wout),
  };
}

/** A Float32Array (es 4) or Float64Array view of `n` elements of the arena from byte `at`. */
function floatView(es: number, buf: SharedArrayBuffer, at: number, n: number): FloatArray {
  return es === 4 ? new Float32Array(buf, at, n) : new Float64Array(buf, at, n);
}

function runPart(buf: SharedArrayBuffer, part: Part, es: number): void {
  const job = new Float64Array(JOB_LENGTH);
  writeJob(job, 0, part, es);
  const j = readJob(job, 0, buf);
  convTranspose2dJs(j.plan, j.x, j.w, j.b, j.y);
}

export const CONTROL = { CTRL_STRIDE, GO, STATUS } as const;
