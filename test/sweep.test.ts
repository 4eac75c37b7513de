// Seeded randomized sweep over every parameter against a naive float64 scatter reference (helpers.ts),
// on every backend under test, plus outputShape against the reference's shape.
import { afterAll, describe, expect, it } from 'vitest';
import { convTranspose2d, outputShape } from '../lib/index';
import type { ConvTranspose2dOptions } from '../lib/types';
import {
  Rng, alloc, backends, describeCfg, makeProblem, randomCfg, refConvTranspose2d, relErr, tolFor, type Cfg, type Problem,
} from './helpers';

const COUNT = 320;
const SEED = 0x5eed2024;

function buildProblems(): Problem[] {
  const rng = new Rng(SEED);
  const out: Problem[] = [];
  for (let i = 0; i < COUNT; i++) out.push(makeProblem(rng, randomCfg(rng)));
  return out;
}
const problems = buildProblems();

describe('sweep coverage', () => {
  // the sweep must actually reach every parameter region it claims to cover
  it('covers every parameter region', () => {
    const has = (f: (c: Cfg) => boolean): number => problems.filter((p) => f(p.cfg)).length;
    const report = {
      depthwise: has((c) => c.groups > 1 && c.Cin === c.groups),
      grouped: has((c) => c.groups > 1 && c.Cin > c.groups),
      dilation: has((c) => c.dH > 1 || c.dW > 1),
      opDilationRule: has((c) => c.opH >= c.sH || c.opW >= c.sW),
      outputPadding: has((c) => (c.opH > 0 || c.opW > 0) && !c.outputSize),
      unbatched: has((c) => !c.batched),
      zeroBatch: has((c) => c.N === 0),
      kernelGtInput: has((c) => c.kH > c.H || c.kW > c.W),
      heavyCrop: has((c) => {
        const h = (c.H - 1) * c.sH - 2 * c.pH + c.dH * (c.kH - 1) + c.opH + 1;
        const w = (c.W - 1) * c.sW - 2 * c.pW + c.dW * (c.kW - 1) + c.opW + 1;
        return (h === 1 || w === 1) && (c.pH > 0 || c.pW > 0);
      }),
      outputSize2: has((c) => c.outputSize?.length === 2),
      outputSize4: has((c) => c.outputSize?.length === 4),
      outputSize3: has((c) => c.outputSize?.length === 3),
      rect: has((c) => c.kH !== c.kW && c.sH !== c.sW && c.H !== c.W),
      biasTensor: has((c) => c.bias === 'tensor'),
      biasArray: has((c) => c.bias === 'array'),
      noBias: has((c) => c.bias === 'none'),
      f32: has((c) => c.dtype === 'float32'),
      f64: has((c) => c.dtype === 'float64'),
    };
    for (const [k, v] of Object.entries(report)) expect(v, `sweep never covers ${k}`).toBeGreaterThanOrEqual(2);
    expect(problems.length).toBeGreaterThanOrEqual(300);
  });

  it('the reference itself agrees with a direct gather formulation on a few problems', () => {
    // guards the reference: gather form out[oy,ox] = sum over taps where (oy+p-k*d) divisible by s
    const rng = new Rng(99);
    for (let t = 0; t < 20; t++) {
      const p = makeProblem(rng, randomCfg(rng));
      const c = p.cfg;
      const N = c.batched ? c.N : 1;
      const Cout = c.groups * c.coutPerGroup;
      const Hout = p.ref.shape[p.ref.shape.length - 2]!;
      const Wout = p.ref.shape[p.ref.shape.length - 1]!;
      const cpg = c.Cin / c.groups;
      const bias = p.bias ? ('data' in p.bias ? p.bias.data : p.bias) : null;
      for (let n = 0; n < N; n++)
        for (let oc = 0; oc < Cout; oc++)
          for (let oy = 0; oy < Hout; oy++)
            for (let ox = 0; ox < Wout; ox++) {
              const g = Math.floor(oc / c.coutPerGroup);
              const co = oc % c.coutPerGroup;
              let acc = 0;
              for (let ci = g * cpg; ci < (g + 1) * cpg; ci++)
                for (let ky = 0; ky < c.kH; ky++) {
                  const ty = oy + c.pH - ky * c.dH;
                  if (ty < 0 || ty % c.sH) continue;
                  const iy = ty / c.sH;
                  if (iy >= c.H) continue;
                  for (let kx = 0; kx < c.kW; kx++) {
                    const tx = ox + c.pW - kx * c.dW;
                    if (tx < 0 || tx % c.sW) continue;
                    const ix = tx / c.sW;
                    if (ix >= c.W) continue;
                    acc += p.input.data[((n * c.Cin + ci) * c.H + iy) * c.W + ix]! *
                      p.weight.data[((ci * c.coutPerGroup + co) * c.kH + ky) * c.kW + kx]!;
                  }
                }
              if (bias) acc += bias[oc]!;
              const r = p.ref.data[((n * Cout + oc) * Hout + oy) * Wout + ox]!;
              expect(Math.abs(acc - r)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(r)));
            }
    }
  });
});

describe('outputShape', () => {
  it('equals the reference shape on every sweep configuration', () => {
    for (const p of problems) {
      const { bias: _b, ...o } = p.options;
      expect(outputShape(p.input.shape, p.weight.shape, o), describeCfg(p.cfg)).toEqual(p.ref.shape);
    }
  });
});

describe.each(backends)('sweep vs naive reference, backend $backend', ({ backend }) => {
  let worst = 0;
  let worstCfg = '';
  afterAll(() => {
    console.log(`[sweep] ${backend}: ${problems.length} configurations, worst relative error ${worst.toExponential(3)} (${worstCfg})`);
  });

  it(`${COUNT} random configurations`, () => {
    const failures: string[] = [];
    for (const [i, p] of problems.entries()) {
      const o: ConvTranspose2dOptions = { ...p.options, backend };
      // every fourth call writes into a NaN-filled `out`: every element must be written
      if (i % 4 === 1) o.out = { data: alloc(p.cfg.dtype, p.ref.data.length).fill(NaN), shape: [...p.ref.shape] };
      let got;
      try {
        got = convTranspose2d(p.input, p.weight, o);
      } catch (e) {
        failures.push(`${describeCfg(p.cfg)}: threw ${(e as Error).message}`);
        continue;
      }
      if (JSON.stringify([...got.shape]) !== JSON.stringify(p.ref.shape)) {
        failures.push(`${describeCfg(p.cfg)}: shape [${got.shape}] != [${p.ref.shape}]`);
        continue;
      }
      const want = p.cfg.dtype === 'float32' ? Float32Array : Float64Array;
      if (!(got.data instanceof want)) {
        failures.push(`${describeCfg(p.cfg)}: result is ${got.data.constructor.name}`);
        continue;
      }
      const r = relErr(got.data, p.ref.data);
      if (r > worst) {
        worst = r;
        worstCfg = describeCfg(p.cfg);
      }
      if (!(r <= tolFor(p.cfg.dtype))) failures.push(`${describeCfg(p.cfg)}: relative error ${r}`);
    }
    expect(failures.slice(0, 15), `${failures.length} of ${problems.length} configurations failed`).toEqual([]);
  });

  it('unbatched equals the batched computation with N = 1', () => {
    const rng = new Rng(4242);
    for (let t = 0; t < 30; t++) {
      const cfg = randomCfg(rng);
      cfg.batched = false;
      cfg.N = 1;
      if (cfg.outputSize && cfg.outputSize.length === 4) cfg.outputSize = cfg.outputSize.slice(1);
      const p = makeProblem(rng, cfg);
      const u = convTranspose2d(p.input, p.weight, { ...p.options, backend });
      const o4 = { ...p.options, backend };
      if (o4.outputSize && o4.outputSize.length === 3) o4.outputSize = o4.outputSize.slice(1);
      const b = convTranspose2d({ data: p.input.data, shape: [1, ...p.input.shape] }, p.weight, o4);
      expect([1, ...u.shape]).toEqual([...b.shape]);
      expect(relErr(u.data, b.data)).toBeLessThanOrEqual(tolFor(cfg.dtype));
      expect(relErr(u.data, p.ref.data)).toBeLessThanOrEqual(tolFor(cfg.dtype));
    }
  });

  it('groups with one output channel and several input channels (the TypeScript tap-column path)', () => {
    const rng = new Rng(31337);
    const failures: string[] = [];
    for (let t = 0; t < 60; t++) {
      const cfg = randomCfg(rng, { maxCpg: 12, maxCoutPg: 1, maxHW: 9, maxK: 6, maxN: 2, maxGroups: 3 });
      cfg.coutPerGroup = 1;
      cfg.Cin = cfg.groups * Math.max(4, cfg.Cin / cfg.groups);
      const p = makeProblem(rng, cfg);
      const got = convTranspose2d(p.input, p.weight, { ...p.options, backend });
      const r = relErr(got.data, p.ref.data);
      if (!(r <= tolFor(cfg.dtype)) || JSON.stringify([...got.shape]) !== JSON.stringify(p.ref.shape)) {
        failures.push(`${describeCfg(cfg)}: relative error ${r}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('tile-edge channel and width sizes (around common micro-kernel tiles)', () => {
    const rng = new Rng(777);
    const sizes = [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33];
    for (const dtype of ['float32', 'float64'] as const) {
      for (let t = 0; t < 8; t++) {
        const cout = sizes[(t * 5 + (dtype === 'float32' ? 0 : 3)) % sizes.length]!;
        const W = sizes[(t * 7 + 2) % sizes.length]!;
        const cfg: Cfg = {
          dtype, batched: true, N: 1, Cin: 1 + (t % 5) * 3, H: 1 + (t % 4), W, groups: 1, coutPerGroup: cout,
          kH: 1 + (t % 3), kW: 1 + ((t + 1) % 4), sH: 1 + (t % 2), sW: 1 + ((t + 1) % 3), pH: 0, pW: t % 2,
          dH: 1, dW: 1 + (t % 2), opH: 0, opW: 0, bias: t % 2 ? 'tensor' : 'none',
        };
        if (cfg.pW > 0 && (W - 1) * cfg.sW + cfg.dW * (cfg.kW - 1) + 1 - 2 * cfg.pW < 1) cfg.pW = 0;
        const p = makeProblem(rng, cfg);
        const got = convTranspose2d(p.input, p.weight, { ...p.options, backend });
        expect([...got.shape], describeCfg(cfg)).toEqual(p.ref.shape);
        expect(relErr(got.data, p.ref.data), describeCfg(cfg)).toBeLessThanOrEqual(tolFor(dtype));
      }
    }
  });

  it('output padding rows/columns receive kernel taps and bias (not zero-filled)', () => {
    // 1x1 input, k=3, s=2, d=2, op=1 in H (allowed by stride): extent 1 + 2*2 + 1 = 6
    const x = { data: new Float64Array([2]), shape: [1, 1, 1, 1] };
    const w = { data: new Float64Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), shape: [1, 1, 3, 3] };
    const y = convTranspose2d(x, w, { stride: 2, dilation: 2, outputPadding: [1, 1], bias: new Float64Array([0.5]), backend });
    const ref = refConvTranspose2d(x, w, [0.5], { sH: 2, sW: 2, pH: 0, pW: 0, dH: 2, dW: 2, opH: 1, opW: 1, groups: 1 });
    expect([...y.shape]).toEqual([1, 1, 6, 6]);
    expect(Array.from(y.data)).toEqual(Array.from(ref.data));
    // last row and column are output padding: only the bias
    for (let i = 0; i < 6; i++) {
      expect(y.data[5 * 6 + i]).toBe(0.5);
      expect(y.data[i * 6 + 5]).toBe(0.5);
    }
    // with padding 1 the padding row now receives the last tap row
    const y2 = convTranspose2d(x, w, { stride: 2, dilation: 2, padding: 1, outputPadding: 1, backend });
    const ref2 = refConvTranspose2d(x, w, null, { sH: 2, sW: 2, pH: 1, pW: 1, dH: 2, dW: 2, opH: 1, opW: 1, groups: 1 });
    expect([...y2.shape]).toEqual(ref2.shape);
    expect(Array.from(y2.data)).toEqual(Array.from(ref2.data));
  });
});
