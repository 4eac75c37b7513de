'use strict';
// Peer: TensorFlow.js CPU backend (@tensorflow/tfjs-core + @tensorflow/tfjs-backend-cpu), conv2dTranspose in NHWC.
// tfjs has no groups or dilation, and pads like TensorFlow's forward conv; PyTorch's padding p with output
// padding op maps exactly to the explicit padding [[0,0],[pH, pH-opH],[pW, pW-opW],[0,0]] when p >= op.

let tf = null;
let loadError = null;
let version = '?';

function load() {
  if (tf || loadError) return;
  const { log, warn, info } = console;
  const mute = () => {};
  // tfjs prints an advert for tfjs-node on first use in Node; keep the bench output clean.
  console.log = console.warn = console.info = mute;
  try {
    tf = require('@tensorflow/tfjs-core');
    require('@tensorflow/tfjs-backend-cpu');
    tf.env().set('IS_TEST', true); // no "install tfjs-node" advert
    tf.setBackend('cpu');
    tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync());
    try { version = require('@tensorflow/tfjs-core/package.json').version; } catch { /* ignore */ }
  } catch (e) {
    tf = null;
    loadError = e && e.message ? e.message.split('\n')[0] : String(e);
  } finally {
    Object.assign(console, { log, warn, info });
  }
}

function info() {
  load();
  if (!tf) return { available: false, note: `@tensorflow/tfjs-core/-backend-cpu not loadable: ${loadError}` };
  return { available: true, version, backend: tf.getBackend() };
}

/** Why tfjs cannot compute `sh` exactly, or null when it can. */
function unsupported(sh) {
  if (sh.groups !== 1) return 'tfjs has no grouped transposed conv';
  if (sh.dH !== 1 || sh.dW !== 1) return 'tfjs conv2dTranspose has no dilation';
  if (sh.pH < sh.opH || sh.pW < sh.opW) return 'padding < output padding has no explicit-padding equivalent';
  return null;
}

/**
 * Prepares NHWC input and [kH, kW, Cout, Cin] filter tensors once (not timed).
 * run() computes conv2dTranspose + bias and reads the result back (NHWC), as a tfjs user would;
 * toNCHW() converts one result for the correctness check.
 */
function prepare(sh, data) {
  const { N, Cin, H, W, Cout, kH, kW, Hout, Wout } = sh;
  const xh = new Float32Array(sh.inputLength);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < Cin; c++)
      for (let i = 0; i < H * W; i++) xh[(n * H * W + i) * Cin + c] = data.x[(n * Cin + c) * H * W + i];
  const fh = new Float32Array(sh.weightLength);
  for (let ci = 0; ci < Cin; ci++)
    for (let co = 0; co < Cout; co++)
      for (let k = 0; k < kH * kW; k++) fh[(k * Cout + co) * Cin + ci] = data.w[(ci * Cout + co) * kH * kW + k];
  const x = tf.tensor4d(xh, [N, H, W, Cin]);
  const f = tf.tensor4d(fh, [kH, kW, Cout, Cin]);
  const b = data.b ? tf.tensor1d(data.b) : null;
  const outShape = [N, Hout, Wout, Cout];
  const pad = [[0, 0], [sh.pH, sh.pH - sh.opH], [sh.pW, sh.pW - sh.opW], [0, 0]];
  const strides = [sh.sH, sh.sW];
  return {
    run() {
      const y = tf.conv2dTranspose(x, f, outShape, strides, pad);
      if (!b) {
        const v = y.dataSync();
        y.dispose();
        return v;
      }
      const z = tf.add(y, b);
      y.dispose();
      const v = z.dataSync();
      z.dispose();
      return v;
    },
    toNCHW(v) {
      const out = new Float32Array(sh.outputLength);
      const P = Hout * Wout;
      for (let n = 0; n < N; n++)
        for (let i = 0; i < P; i++)
          for (let c = 0; c < Cout; c++) out[(n * Cout + c) * P + i] = v[(n * P + i) * Cout + c];
      return out;
    },
    dispose() {
      x.dispose();
      f.dispose();
      if (b) b.dispose();
    },
  };
}

module.exports = { info, unsupported, prepare };
