/**
 * A worker thread of the TypeScript backend (see js-threads.ts): waits for a part, computes it with the
 * ordinary kernel into the shared arena, reports, and waits again. It holds no state besides the arena.
 *
 * @module
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { convTranspose2dJs } from './backend-js';
import { CONTROL, JOB_LENGTH, readJob } from './js-threads';

const { ctrl, jobs, index, port, go } = workerData as { ctrl: Int32Array; jobs: Float64Array; index: number; port: MessagePort; go: number };
const base = index * CONTROL.CTRL_STRIDE;
let arena = new SharedArrayBuffer(0);
let seen = go; // the counter when this worker was created: a part may be posted before it starts

for (;;) {
  Atomics.wait(ctrl, base + CONTROL.GO, seen);
  seen = Atomics.load(ctrl, base + CONTROL.GO);
  // a grown arena is posted before the part that needs it
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) arena = m.message as SharedArrayBuffer;
  let status = 0;
  try {
    const j = readJob(jobs, index * JOB_LENGTH, arena);
    convTranspose2dJs(j.plan, j.x, j.w, j.b, j.y);
  } catch {
    status = 1; // the caller computes the part itself
  }
  Atomics.store(ctrl, base + CONTROL.STATUS, status);
  Atomics.notify(ctrl, base + CONTROL.STATUS);
}
