// Bilinear upsampling as the classic FCN does it: a depthwise ConvTranspose2d whose kernel is initialised to
// the bilinear filter (Long, Shelhamer & Darrell, "Fully Convolutional Networks", 2015), one group per colour
// channel. Used by `conv-transpose upsample`; exported so it can be tested and reused.
import { PNG } from 'pngjs';
import { convTranspose2d } from '../api';
import { fail, ErrorCodes } from '../errors';
import type { BackendChoice, Tensor } from '../types';

/** The ConvTranspose2d parameters of an upsampling by an integer factor. */
export interface UpsampleGeometry {
  /** The upsampling factor f. */
  readonly scale: number;
  /** Kernel size k = 2f - f mod 2 (both dimensions). */
  readonly kernelSize: number;
  /** Stride f. */
  readonly stride: number;
  /** Padding ceil((f - 1) / 2), chosen with k so that the output is exactly f·H × f·W with no output padding. */
  readonly padding: number;
  /** Always 0 for this geometry (kept to show the full parameter set). */
  readonly outputPadding: number;
}

/** The largest factor {@link upsampleGeometry} accepts. */
export const MAX_SCALE = 16;

function checkScale(scale: number): void {
  if (!Number.isInteger(scale) || scale < 1 || scale > MAX_SCALE) {
    fail(ErrorCodes.INVALID_ARGUMENT, `scale must be an integer from 1 to ${MAX_SCALE}, but got ${String(scale)}`);
  }
}

/**
 * Kernel size, stride and padding of the FCN bilinear upsampling by `scale`.
 * With k = 2f - f mod 2, s = f and p = ceil((f-1)/2), `Hout = (H-1)·f - 2p + k = f·H` for every f.
 * @example upsampleGeometry(2) // { scale: 2, kernelSize: 4, stride: 2, padding: 1, outputPadding: 0 }
 */
export function upsampleGeometry(scale: number): UpsampleGeometry {
  checkScale(scale);
  const kernelSize = 2 * scale - (scale % 2);
  const padding = Math.ceil((scale - 1) / 2);
  // Hout = (H-1)·f - 2p + k + op = f·H  <=>  op = f + 2p - k, which is 0 for both parities of f.
  const outputPadding = scale + 2 * padding - kernelSize;
  return { scale, kernelSize, stride: scale, padding, outputPadding };
}

/**
 * The k × k bilinear filter of the FCN upsampling layer, row-major, in float64 (rounded to the tensor's dtype when used):
 * `w[i][j] = (1 - |i - c| / fac) · (1 - |j - c| / fac)` with `fac = floor((k + 1) / 2)` and
 * `c = fac - 1` for odd k, `fac - 0.5` for even k.
 * Every output pixel of the transposed convolution receives taps summing to 1, so a constant image stays constant.
 * @example bilinearKernel(2) // 4×4: outer product of [0.25, 0.75, 0.75, 0.25]
 */
export function bilinearKernel(scale: number): Float64Array {
  const { kernelSize: k } = upsampleGeometry(scale);
  const fac = Math.floor((k + 1) / 2);
  const c = k % 2 === 1 ? fac - 1 : fac - 0.5;
  const oneD = Array.from({ length: k }, (_, i) => 1 - Math.abs(i - c) / fac);
  const w = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) w[i * k + j] = oneD[i]! * oneD[j]!;
  return w;
}

/** An 8-bit image with interleaved channels (`data[(y * width + x) * channels + c]`). */
export interface Image {
  width: number;
  height: number;
  /** 1 to 4 (gray, gray+alpha, RGB, RGBA). */
  channels: number;
  data: Uint8Array;
}

/** How the image border is treated. */
export type EdgeMode = 'replicate' | 'zero';

/** Options of {@link upsampleImage}. */
export interface UpsampleOptions {
  /**
   * `replicate` (default) repeats the border pixels, so the result equals PyTorch's
   * `F.interpolate(x, scale_factor=f, mode='bilinear', align_corners=False)` everywhere;
   * `zero` is the plain FCN layer (zero padding), whose outermost output pixels fade towards black.
   */
  edges?: EdgeMode;
  /** Backend of the transposed convolution (default `auto`). */
  backend?: BackendChoice;
  /** Threads for the native backend. */
  threads?: number;
}

/**
 * Upsamples a float tensor `(C, H, W)` or `(N, C, H, W)` by an integer factor with a bilinear-initialised
 * depthwise ConvTranspose2d (`groups = C`, weight `(C, 1, k, k)`, no bias). Returns `(…, C, f·H, f·W)`.
 * With `edges: 'replicate'` the result equals PyTorch's bilinear `interpolate` with `align_corners=False`.
 * @example
 * const y = upsampleTensor({ data: new Float32Array([0, 1]), shape: [1, 1, 2] }, 2); // shape [1, 2, 4]
 */
export function upsampleTensor(input: Tensor, scale: number, options: UpsampleOptions = {}): Tensor {
  const geometry = upsampleGeometry(scale);
  const edges = options.edges ?? 'replicate';
  if (edges !== 'replicate' && edges !== 'zero') {
    fail(ErrorCodes.INVALID_ARGUMENT, `edges must be 'replicate' or 'zero', but got ${JSON.stringify(edges)}`);
  }
  const { shape, data } = input;
  if (shape.length !== 3 && shape.length !== 4) {
    fail(ErrorCodes.INPUT_RANK, `expected a (C, H, W) or (N, C, H, W) tensor, but got shape [${shape.join(', ')}]`);
  }
  const [N, C, H, W] = shape.length === 4 ? (shape as [number, number, number, number]) : [1, ...(shape as [number, number, number])];
  if (data.length !== N * C * H * W) {
    fail(ErrorCodes.DATA_LENGTH, `data has ${data.length} elements, but shape [${shape.join(', ')}] needs ${N * C * H * W}`);
  }
  // A 1-pixel replicated border is all the bilinear filter reaches beyond the image; the padding grows by f to match.
  const border = edges === 'replicate' ? 1 : 0;
  let x = data;
  let Hp = H;
  let Wp = W;
  if (border > 0 && H > 0 && W > 0) {
    Hp = H + 2 * border;
    Wp = W + 2 * border;
    x = data instanceof Float64Array ? new Float64Array(N * C * Hp * Wp) : new Float32Array(N * C * Hp * Wp);
    for (let plane = 0; plane < N * C; plane++) {
      for (let yy = 0; yy < Hp; yy++) {
        const sy = Math.min(H - 1, Math.max(0, yy - border));
        for (let xx = 0; xx < Wp; xx++) {
          const sx = Math.min(W - 1, Math.max(0, xx - border));
          x[(plane * Hp + yy) * Wp + xx] = data[(plane * H + sy) * W + sx]!;
        }
      }
    }
  }
  const k = geometry.kernelSize;
  const kernel = bilinearKernel(scale);
  const w = data instanceof Float64Array ? new Float64Array(C * k * k) : new Float32Array(C * k * k);
  for (let c = 0; c < C; c++) w.set(kernel, c * k * k);
  const y = convTranspose2d({ data: x, shape: [N, C, Hp, Wp] }, { data: w, shape: [C, 1, k, k] }, {
    stride: scale,
    padding: geometry.padding + (Hp > H ? border * scale : 0),
    outputPadding: geometry.outputPadding,
    groups: C,
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
  });
  return shape.length === 4 ? y : { data: y.data, shape: y.shape.slice(1) };
}

/**
 * Upsamples an 8-bit image by an integer factor with {@link upsampleTensor} (one depthwise group per channel),
 * then rounds and clamps to [0, 255]. The result is `scale·height × scale·width` with the input's channel count.
 * @example
 * const big = upsampleImage({ width: 2, height: 1, channels: 1, data: new Uint8Array([0, 255]) }, 2);
 * // big.width === 4, big.height === 2
 */
export function upsampleImage(image: Image, scale: number, options: UpsampleOptions = {}): Image {
  const { width: W, height: H, channels: C, data } = image;
  if (!Number.isInteger(C) || C < 1 || C > 4) fail(ErrorCodes.INVALID_ARGUMENT, `channels must be 1 to 4, but got ${C}`);
  if (!Number.isInteger(W) || !Number.isInteger(H) || W < 1 || H < 1) {
    fail(ErrorCodes.INVALID_ARGUMENT, `image size must be positive integers, but got ${W}x${H}`);
  }
  if (data.length !== W * H * C) {
    fail(ErrorCodes.DATA_LENGTH, `image data has ${data.length} bytes, expected width*height*channels = ${W * H * C}`);
  }
  const planar = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) planar[c * H * W + i] = data[i * C + c]!;
  const y = upsampleTensor({ data: planar, shape: [C, H, W] }, scale, options);
  const Ho = y.shape[1]!;
  const Wo = y.shape[2]!;
  const out = new Uint8Array(Ho * Wo * C);
  const yd = y.data;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < Ho * Wo; i++) {
      const v = Math.round(yd[c * Ho * Wo + i]!);
      out[i * C + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width: Wo, height: Ho, channels: C, data: out };
}

/**
 * Decodes a PNG (any bit depth and colour type pngjs reads) into 8-bit RGB when it is fully opaque,
 * else 8-bit RGBA.
 */
export function decodePng(bytes: Buffer): Image {
  const png = PNG.sync.read(bytes);
  const { width, height } = png;
  const rgba = png.data;
  let opaque = true;
  for (let i = 3; i < rgba.length; i += 4) {
    if (rgba[i] !== 255) {
      opaque = false;
      break;
    }
  }
  if (!opaque) return { width, height, channels: 4, data: new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.length).slice() };
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
    rgb[q] = rgba[p]!;
    rgb[q + 1] = rgba[p + 1]!;
    rgb[q + 2] = rgba[p + 2]!;
  }
  return { width, height, channels: 3, data: rgb };
}

/** Encodes an 8-bit image as PNG: gray, gray+alpha, RGB or RGBA by its channel count. */
export function encodePng(image: Image): Buffer {
  const { width, height, channels: C, data } = image;
  const png = new PNG({ width, height });
  const rgba = png.data;
  for (let i = 0; i < width * height; i++) {
    const g = data[i * C]!;
    rgba[i * 4] = g;
    rgba[i * 4 + 1] = C >= 3 ? data[i * C + 1]! : g;
    rgba[i * 4 + 2] = C >= 3 ? data[i * C + 2]! : g;
    rgba[i * 4 + 3] = C === 2 ? data[i * C + 1]! : C === 4 ? data[i * C + 3]! : 255;
  }
  const colorType = C === 1 ? 0 : C === 2 ? 4 : C === 3 ? 2 : 6;
  return PNG.sync.write(png, { colorType });
}
