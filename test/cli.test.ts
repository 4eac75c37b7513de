// The `conv-transpose` command as a user runs it (node dist/cli.js in child processes), and the bilinear
// upsampling helpers it is built on (lib/cli/upsample.ts), checked against a direct bilinear interpolation.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { outputShape } from '../lib/index';
import { readNpyFile } from '../lib/npy';
import { bilinearKernel, decodePng, encodePng, upsampleGeometry, upsampleImage, upsampleTensor } from '../lib/cli/upsample';
import { backends, goldenDir, Rng, repoRoot } from './helpers';

const cli = path.join(repoRoot, 'dist', 'cli.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'conv-transpose-cli-'));

function run(args: string[], cwd = work): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  // `npm test` builds dist/ first; a bare `vitest run` after a clean checkout builds it here.
  if (!fs.existsSync(cli)) {
    execFileSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: repoRoot });
  }
}, 120_000);

function golden(name: string): { dir: string; input: string; weight: string; bias: string; expected: string } {
  const dir = path.join(goldenDir, name);
  return {
    dir,
    input: path.join(dir, 'input.npy'),
    weight: path.join(dir, 'weight.npy'),
    bias: path.join(dir, 'bias.npy'),
    expected: path.join(dir, 'expected.npy'),
  };
}

function maxRelErr(got: ArrayLike<number>, exp: ArrayLike<number>): number {
  let maxAbs = 0;
  let maxDiff = 0;
  for (let i = 0; i < exp.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(exp[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - exp[i]!));
  }
  return maxDiff / Math.max(1, maxAbs);
}

describe('conv-transpose info', () => {
  it('prints the version and the backend', () => {
    const r = run(['info']);
    expect(r.status, r.stderr).toBe(0);
    const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    expect(r.stdout).toContain(`conv-transpose ${version}`);
    expect(r.stdout).toMatch(/^backend\s+(native \(\w+\)|js \(pure TypeScript\))$/m);
    expect(r.stdout).toMatch(/^platform\s+\S+-\S+, Node v\d+/m);
  });

  it('--json reports backend, ISA, threads, N-API version and the load error', () => {
    const r = run(['info', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(['native', 'js']).toContain(info.backend);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.platform).toBe(`${process.platform}-${process.arch}`);
    if (info.backend === 'native') {
      expect(typeof info.isa).toBe('string');
      expect(info.isaAvailable).toContain(info.isa);
      expect(info.napiVersion).toBeGreaterThanOrEqual(8);
    } else {
      expect(typeof info.loadError).toBe('string');
    }
    if (process.env.CONV_TRANSPOSE_NATIVE === 'required') expect(info.backend).toBe('native');
  });
});

describe('conv-transpose run', () => {
  it.each(backends)('k4_s2_p1_dcgan matches PyTorch within 1e-5 ($backend)', ({ backend }) => {
    const g = golden('k4_s2_p1_dcgan');
    const out = path.join(work, `dcgan-${backend}.npy`);
    const r = run(['run', '--input', g.input, '--weight', g.weight, '--bias', g.bias, '--stride', '2', '--padding', '1',
      '--backend', backend, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('[2, 4, 12, 12]');
    const y = readNpyFile(out);
    const e = readNpyFile(g.expected);
    expect(y.shape).toEqual([2, 4, 12, 12]);
    expect(y.data).toBeInstanceOf(Float32Array);
    expect(maxRelErr(y.data, e.data)).toBeLessThan(1e-5);
  });

  it('float64 with --output-size (f64_output_size_s3) and with --groups --dilation (f64_groups2_dil2_p1)', () => {
    const a = golden('f64_output_size_s3');
    const outA = path.join(work, 'os.npy');
    let r = run(['run', '-i', a.input, '-w', a.weight, '-b', a.bias, '--stride', '3', '--output-size', '9,14', '-o', outA]);
    expect(r.status, r.stderr).toBe(0);
    let y = readNpyFile(outA);
    expect(y.data).toBeInstanceOf(Float64Array);
    expect(y.shape).toEqual([1, 2, 9, 14]);
    expect(maxRelErr(y.data, readNpyFile(a.expected).data)).toBeLessThan(1e-12);

    const b = golden('f64_groups2_dil2_p1');
    const outB = path.join(work, 'gd.npy');
    r = run(['run', '-i', b.input, '-w', b.weight, '-b', b.bias, '--groups', '2', '--dilation', '2', '--padding', '1', '-o', outB]);
    expect(r.status, r.stderr).toBe(0);
    y = readNpyFile(outB);
    expect(y.shape).toEqual([1, 6, 8, 7]);
    expect(maxRelErr(y.data, readNpyFile(b.expected).data)).toBeLessThan(1e-12);
  });

  it('per-dimension sizes (dil_asym_2x1_k3x2_s1x2: --stride 1,2 --dilation 2,1)', () => {
    const g = golden('dil_asym_2x1_k3x2_s1x2');
    const out = path.join(work, 'asym.npy');
    const r = run(['run', '-i', g.input, '-w', g.weight, '-b', g.bias, '--stride', '1,2', '--dilation', '2x1', '--output-padding', '[0,0]', '-o', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(maxRelErr(readNpyFile(out).data, readNpyFile(g.expected).data)).toBeLessThan(1e-5);
  });

  it('an invalid parameter exits 1 with the library\'s coded error and no stack trace', () => {
    const g = golden('k4_s2_p1_dcgan');
    const out = path.join(work, 'never.npy');
    const r = run(['run', '--input', g.input, '--weight', g.weight, '--stride', '2', '--output-padding', '2', '--out', out]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error ERR_CONV_TRANSPOSE_OUTPUT_PADDING: output ?padding must be smaller than either stride or dilation/im);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(out)).toBe(false);

    const bad = run(['run', '--input', g.input, '--weight', g.weight, '--stride', 'two', '--out', out]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^error ERR_CONV_TRANSPOSE_STRIDE: /);

    const groups = run(['run', '--input', g.input, '--weight', g.weight, '--groups', '3', '--out', out]);
    expect(groups.status).toBe(1);
    expect(groups.stderr).toMatch(/^error ERR_CONV_TRANSPOSE_GROUPS: /);
  });

  it('a missing file exits 1 with its code; usage errors exit 2', () => {
    const g = golden('k4_s2_p1_dcgan');
    const missing = run(['run', '--input', path.join(work, 'nope.npy'), '--weight', g.weight, '--out', path.join(work, 'x.npy')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^error ENOENT: /);

    const noWeight = run(['run', '--input', g.input, '--out', path.join(work, 'x.npy')]);
    expect(noWeight.status).toBe(2);
    expect(noWeight.stderr).toContain('--weight');

    expect(run(['frobnicate']).status).toBe(2);
    expect(run(['upsample', '--scale', 'big']).status).toBe(2);
    expect(run(['--help']).status).toBe(0);
  });
});

describe('conv-transpose upsample', () => {
  it('with no arguments upsamples the shipped sample x4 into ./upsampled.png', () => {
    const dir = fs.mkdtempSync(path.join(work, 'default-'));
    const r = run(['upsample'], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('upsampled.png');
    const input = PNG.sync.read(fs.readFileSync(path.join(repoRoot, 'assets', 'sample.png')));
    const output = PNG.sync.read(fs.readFileSync(path.join(dir, 'upsampled.png')));
    expect([output.width, output.height]).toEqual([input.width * 4, input.height * 4]);
  });

  it.each([2, 3])('--scale %i gives f·H x f·W', (f) => {
    const out = path.join(work, `sample-x${f}.png`);
    const r = run(['upsample', path.join(repoRoot, 'assets', 'sample.png'), '--scale', String(f), '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const img = decodePng(fs.readFileSync(out));
    expect([img.width, img.height, img.channels]).toEqual([64 * f, 64 * f, 3]);
  });

  it('a constant image stays constant (everywhere with replicate edges, inside with zero edges)', () => {
    const src = path.join(work, 'const.png');
    const W = 7;
    const H = 5;
    const data = new Uint8Array(W * H * 4);
    for (let i = 0; i < W * H; i++) data.set([200, 17, 93, 255], i * 4);
    fs.writeFileSync(src, encodePng({ width: W, height: H, channels: 4, data }));
    for (const f of [2, 3, 4]) {
      for (const edges of ['replicate', 'zero']) {
        const out = path.join(work, `const-x${f}-${edges}.png`);
        const r = run(['upsample', src, '--scale', String(f), '--edges', edges, '--out', out]);
        expect(r.status, r.stderr).toBe(0);
        const img = decodePng(fs.readFileSync(out));
        expect([img.width, img.height]).toEqual([W * f, H * f]);
        const margin = edges === 'zero' ? f : 0; // zero padding darkens only the outermost input pixel's footprint
        for (let y = margin; y < img.height - margin; y++) {
          for (let x = margin; x < img.width - margin; x++) {
            const p = (y * img.width + x) * img.channels;
            expect([img.data[p], img.data[p + 1], img.data[p + 2]], `${f} ${edges} (${x}, ${y})`).toEqual([200, 17, 93]);
          }
        }
      }
    }
  });

  it('keeps an alpha channel', () => {
    const src = path.join(work, 'alpha.png');
    const data = new Uint8Array(3 * 3 * 4).fill(255);
    data[4 * 4 + 3] = 0; // a transparent centre
    fs.writeFileSync(src, encodePng({ width: 3, height: 3, channels: 4, data }));
    const out = path.join(work, 'alpha-x2.png');
    expect(run(['upsample', src, '--scale', '2', '--out', out]).status).toBe(0);
    const img = decodePng(fs.readFileSync(out));
    expect(img.channels).toBe(4);
    expect(img.width).toBe(6);
  });

  it('a file that is not a PNG exits 1 with a coded error', () => {
    const src = path.join(work, 'not.png');
    fs.writeFileSync(src, 'hello');
    const r = run(['upsample', src, '--out', path.join(work, 'never.png')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error ERR_CLI_PNG: /);
  });
});

describe('bilinear kernel and geometry', () => {
  it('bilinearKernel(2) is the outer product of [1/4, 3/4, 3/4, 1/4]', () => {
    const v = [0.25, 0.75, 0.75, 0.25];
    expect(Array.from(bilinearKernel(2))).toEqual(v.flatMap((a) => v.map((b) => a * b)));
  });

  it('bilinearKernel(3) is the outer product of [1/3, 2/3, 1, 2/3, 1/3]', () => {
    const v = [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3];
    const k = bilinearKernel(3);
    expect(k.length).toBe(25);
    v.forEach((a, i) => v.forEach((b, j) => expect(k[i * 5 + j]).toBeCloseTo(a * b, 6)));
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('scale %i: k = 2f - (f mod 2), symmetric, and every output phase gets taps summing to 1', (f) => {
    const g = upsampleGeometry(f);
    const k = 2 * f - (f % 2);
    expect(g).toEqual({ scale: f, kernelSize: k, stride: f, padding: Math.ceil((f - 1) / 2), outputPadding: 0 });
    const w = bilinearKernel(f);
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) expect(w[i * k + j]).toBe(w[(k - 1 - i) * k + (k - 1 - j)]);
    // taps landing on output row oy: ky ≡ (oy + p) mod f; the 1-D weights of one phase sum to 1
    const oneD = Array.from({ length: k }, (_, i) => Math.sqrt(w[i * k + i]!));
    for (let phase = 0; phase < f; phase++) {
      let s = 0;
      for (let ky = phase; ky < k; ky += f) s += oneD[ky]!;
      expect(s).toBeCloseTo(1, 6);
    }
  });

  it.each([1, 2, 3, 4, 5, 8])('scale %i: the output is exactly f·H x f·W for any size', (f) => {
    const g = upsampleGeometry(f);
    for (const [H, W] of [[1, 1], [2, 5], [7, 3], [64, 48]] as const) {
      const shape = outputShape([1, 3, H, W], [3, 1, g.kernelSize, g.kernelSize], {
        stride: g.stride, padding: g.padding, outputPadding: g.outputPadding, groups: 3,
      });
      expect(shape).toEqual([1, 3, f * H, f * W]);
    }
  });

  it('rejects a scale that is not an integer from 1 to 16', () => {
    for (const bad of [0, -2, 2.5, 17, Number.NaN]) expect(() => upsampleGeometry(bad)).toThrow(/scale must be an integer/);
  });
});

/** PyTorch's F.interpolate(mode='bilinear', align_corners=False) on one (H, W) plane, in float64. */
function bilinearReference(x: Float64Array, H: number, W: number, f: number): Float64Array {
  const src = (d: number, n: number): [number, number, number] => {
    const s = Math.max((d + 0.5) / f - 0.5, 0);
    const i0 = Math.floor(s);
    const i1 = i0 < n - 1 ? i0 + 1 : i0;
    return [i0, i1, s - i0];
  };
  const y = new Float64Array(H * f * W * f);
  for (let oy = 0; oy < H * f; oy++) {
    const [y0, y1, ly] = src(oy, H);
    for (let ox = 0; ox < W * f; ox++) {
      const [x0, x1, lx] = src(ox, W);
      const top = (1 - lx) * x[y0 * W + x0]! + lx * x[y0 * W + x1]!;
      const bottom = (1 - lx) * x[y1 * W + x0]! + lx * x[y1 * W + x1]!;
      y[oy * W * f + ox] = (1 - ly) * top + ly * bottom;
    }
  }
  return y;
}

describe('upsampleTensor', () => {
  it.each(backends.flatMap(({ backend }) => [2, 3, 4].map((f) => ({ backend, f }))))(
    'equals bilinear interpolation (align_corners=False) with replicate edges: x$f, $backend',
    ({ backend, f }) => {
      const rng = new Rng(1234 + f);
      const [N, C, H, W] = [2, 3, 5, 7];
      const x = new Float64Array(N * C * H * W).map(() => rng.next() * 2 - 1);
      const y = upsampleTensor({ data: x, shape: [N, C, H, W] }, f, { backend });
      expect(y.shape).toEqual([N, C, H * f, W * f]);
      expect(y.data).toBeInstanceOf(Float64Array);
      for (let plane = 0; plane < N * C; plane++) {
        const ref = bilinearReference(x.subarray(plane * H * W, (plane + 1) * H * W), H, W, f);
        const got = y.data.subarray(plane * ref.length, (plane + 1) * ref.length);
        expect(maxRelErr(got, ref), `plane ${plane}`).toBeLessThan(1e-12);
      }
    },
  );

  it('accepts unbatched (C, H, W) tensors', () => {
    const y = upsampleTensor({ data: new Float32Array([0, 1]), shape: [1, 1, 2] }, 2);
    expect(y.shape).toEqual([1, 2, 4]);
    expect(Array.from(y.data)).toEqual([0, 0.25, 0.75, 1, 0, 0.25, 0.75, 1]);
  });

  it('upsampleImage rounds and keeps the channel layout', () => {
    const img = upsampleImage({ width: 2, height: 1, channels: 1, data: new Uint8Array([0, 255]) }, 2);
    expect([img.width, img.height, img.channels]).toEqual([4, 2, 1]);
    expect(Array.from(img.data)).toEqual([0, 64, 191, 255, 0, 64, 191, 255]);
  });
});
