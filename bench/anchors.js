'use strict';
// Peers' timings on this VM, copied from ../shared/bench/anchors.md ("The peers' speed on the benchmark
// shapes", measured 2026-11-25: median per call, fresh output per call, best of two runs). Milliseconds
// (anchors.md gives H and Z in µs; converted here). T1/T2 = 1/2 threads.
// B3's ORT T2 was bimodal there ("25.6-189" ms); the low reading is used, the high one kept as ortT2Hi.

const ANCHORS = {
  //      torch T1  oneDNN T1  ORT T1   oneDNN T2  ORT T2   tfjs-cpu  tfjs-wasm
  A1: { torchT1: 51.1, onednnT1: 1.18, ortT1: 1.22, onednnT2: 0.71, ortT2: 1.55, tfjsCpu: 29.9, tfjsWasm: 9.28 },
  A2: { torchT1: 250, onednnT1: 10.2, ortT1: 6.94, onednnT2: 4.92, ortT2: 4.37, tfjsCpu: 767, tfjsWasm: 281 },
  A3: { torchT1: 172, onednnT1: 8.01, ortT1: 6.88, onednnT2: 4.10, ortT2: 4.25, tfjsCpu: 963, tfjsWasm: 308 },
  A4: { torchT1: 188, onednnT1: 8.28, ortT1: 8.31, onednnT2: 3.71, ortT2: 5.68, tfjsCpu: 969, tfjsWasm: 330 },
  A5: { torchT1: 16.5, onednnT1: 4.41, ortT1: 1.27, onednnT2: 1.92, ortT2: 1.28, tfjsCpu: 99.1, tfjsWasm: 32.6 },
  B1: { torchT1: 540, onednnT1: 32.7, ortT1: 22.5, onednnT2: 13.8, ortT2: 13.6, tfjsCpu: 2070, tfjsWasm: 1072 },
  B2: { torchT1: 572, onednnT1: 36.2, ortT1: 24.1, onednnT2: 14.6, ortT2: 15.3, tfjsCpu: 2089, tfjsWasm: 1078 },
  B3: { torchT1: 733, onednnT1: 284, ortT1: 150, onednnT2: 154, ortT2: 25.6, ortT2Hi: 189, tfjsCpu: 1782, tfjsWasm: 1195 },
  C: { torchT1: 24.8, onednnT1: 16.0, ortT1: 1.65, onednnT2: 8.64, ortT2: 1.47, tfjsCpu: 96.9, tfjsWasm: 69.5 },
  D: { torchT1: 17.5, onednnT1: 2.51, ortT1: 10.4, onednnT2: 1.21, ortT2: 13.5, tfjsCpu: null, tfjsWasm: null },
  E: { torchT1: 38.0, onednnT1: 1.28, ortT1: 2.01, onednnT2: 0.75, ortT2: 1.45, tfjsCpu: null, tfjsWasm: null },
  F: { torchT1: 156, onednnT1: 5.28, ortT1: 8.95, onednnT2: 2.78, ortT2: 6.43, tfjsCpu: 633, tfjsWasm: 422 },
  G: { torchT1: 722, onednnT1: 28.0, ortT1: 30.7, onednnT2: 13.9, ortT2: 19.3, tfjsCpu: 2680, tfjsWasm: 1869 },
  H: { torchT1: 0.863, onednnT1: 0.075, ortT1: 0.117, onednnT2: 0.083, ortT2: 0.210, tfjsCpu: 6.507, tfjsWasm: 3.432 },
  Z: { torchT1: 0.0034, onednnT1: 0.0077, ortT1: 0.0124, onednnT2: 0.0048, ortT2: 0.0195, tfjsCpu: 0.0042, tfjsWasm: 0.0039 },
};

// anchors.md "Machine limits" (GFLOP/s), the fallback when the core test binary cannot measure the peak.
// anchors.md gives no float64 figure: half the float32 one (8 doubles per 512-bit FMA instead of 16) is assumed.
const PEAK = {
  avx512: { fp32: { 1: 205, 2: 404 }, fp64: { 1: 102.5, 2: 202 } },
  avx2: { fp32: { 1: 103, 2: 202 }, fp64: { 1: 51.5, 2: 101 } },
};

/** Best peer at `t` threads (oneDNN or ORT) for a shape: { name, ms } or null. */
function bestPeer(id, t) {
  const a = ANCHORS[id];
  if (!a) return null;
  const on = t === 1 ? a.onednnT1 : a.onednnT2;
  const or = t === 1 ? a.ortT1 : a.ortT2;
  return on <= or ? { name: 'oneDNN', ms: on } : { name: 'ORT', ms: or };
}

module.exports = { ANCHORS, PEAK, bestPeer };
