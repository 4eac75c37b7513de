'use strict';
// Peer: onnxruntime-node (CPU execution provider), a one-node ConvTranspose model built in memory.

const { convTransposeModel } = require('../onnx-model');

let ort = null;
let loadError = null;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  loadError = e && e.message ? e.message.split('\n')[0] : String(e);
}

function info() {
  if (!ort) return { available: false, note: `onnxruntime-node not loadable: ${loadError}` };
  let version = '?';
  try { version = require('onnxruntime-node/package.json').version; } catch { /* ignore */ }
  return { available: true, version };
}

/**
 * Creates a session for `sh` at `threads` intra-op threads. Returns { run() → Promise<Float32Array>, dispose() }.
 * The input tensor is created once (as a caller reusing its input would); every run allocates a fresh output.
 */
async function prepare(sh, data, threads) {
  const model = convTransposeModel(sh, data.w, data.b);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const x = new ort.Tensor('float32', data.x, sh.inputShape);
  const feeds = { x };
  return {
    async run() {
      const r = await session.run(feeds);
      return r.y.data;
    },
    async dispose() {
      await session.release();
    },
  };
}

module.exports = { info, prepare };
