'use strict';
// Child process of bench/run.js: the extra peak memory (beyond the output itself) of native calls for one shape.
//   node bench/memory.js '<shape JSON from shapes.json>'
// Prints one line "@@MEM@@{...}" (bytes). Method: reset the kernel's peak-RSS counter (write 5 to
// /proc/self/clear_refs), read VmRSS, make the call, read VmHWM; extra = VmHWM - VmRSS(before) - output bytes
// (the fresh output is touched by the call; in `out` mode the buffer was touched beforehand).

const fs = require('fs');
const C = require('./common');

function status() {
  const t = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => +(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t) || [0, 0])[1] * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

let resettable = true;
function resetPeak() {
  try { fs.writeFileSync('/proc/self/clear_refs', '5'); } catch { resettable = false; }
}

function main() {
  const pkg = require(process.env.CONVT_BENCH_PKG ? require('path').resolve(process.env.CONVT_BENCH_PKG) : '../dist/index.js');
  if (pkg.getBackend().name !== 'native') throw new Error(`native backend not loaded: ${pkg.getBackend().loadError}`);
  const sh = C.describe(JSON.parse(process.argv[2]));
  const d = C.makeData(sh);
  const input = { data: d.x, shape: sh.inputShape };
  const weight = { data: d.w, shape: sh.weightShape };
  const opts = {
    bias: d.b, stride: [sh.sH, sh.sW], padding: [sh.pH, sh.pW], outputPadding: [sh.opH, sh.opW],
    groups: sh.groups, dilation: [sh.dH, sh.dW], backend: 'native', threads: 2,
  };
  const outputBytes = sh.outputLength * 4;
  const measure = (fn, outputCounted) => {
    if (global.gc) global.gc();
    resetPeak();
    const before = status().rss;
    const keep = fn(); // keep the result alive until VmHWM is read
    const after = status();
    void keep;
    return Math.max(after.hwm, after.rss) - before - (outputCounted ? outputBytes : 0);
  };
  const fresh1Extra = measure(() => pkg.convTranspose2d(input, weight, opts), true);
  const fresh2Extra = measure(() => pkg.convTranspose2d(input, weight, opts), true);
  const out = { data: new Float32Array(sh.outputLength).fill(0), shape: sh.outputShape };
  const outExtra = measure(() => pkg.convTranspose2d(input, weight, { ...opts, out }), false);
  console.log(`@@MEM@@${JSON.stringify({ outputBytes, fresh1Extra, fresh2Extra, outExtra, hwmResettable: resettable })}`);
}

main();
