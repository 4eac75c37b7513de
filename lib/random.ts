/**
 * A small seeded pseudo-random generator for module initialisation: xoshiro128** (Blackman & Vigna),
 * seeded through splitmix32 so that any 32-bit seed, including 0, gives a well-mixed state.
 * Not cryptographic; reproducible across platforms (32-bit integer arithmetic only).
 *
 * @module
 */

/** Advances a splitmix32 state; used only to expand a seed into the generator's 128-bit state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A seeded generator of uniform numbers. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /**
   * @param seed - any finite number; its low 32 bits (after truncation) select the stream. Omitted:
   *   seeded from `Math.random()` (not reproducible).
   */
  constructor(seed?: number) {
    const s0 = seed === undefined ? Math.floor(Math.random() * 0x100000000) : Math.trunc(seed) >>> 0;
    const st = { s: s0 | 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1; // the all-zero state is a fixed point
  }

  /** The next 32 random bits as an unsigned integer in `[0, 2^32)` (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** A uniform double in `[0, 1)` with 53 random bits. */
  nextDouble(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform double in `[lo, hi)` (`lo` when `hi <= lo`). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.nextDouble();
  }

  /**
   * Fills `out` with uniform values in `[lo, hi)`. For a Float32Array, values that would round up to
   * `hi` are drawn again, so the half-open range also holds after rounding to float32.
   */
  fillUniform(out: Float32Array | Float64Array, lo: number, hi: number): void {
    const f32 = out instanceof Float32Array;
    for (let i = 0; i < out.length; i++) {
      let v = this.uniform(lo, hi);
      if (f32) {
        while (Math.fround(v) >= hi && hi > lo) v = this.uniform(lo, hi);
      }
      out[i] = v;
    }
  }
}

/** Rotates a 32-bit integer left by `k` bits. */
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
