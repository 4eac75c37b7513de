/**
 * Reading and writing NumPy `.npy` files holding float32 (`<f4`) or float64 (`<f8`) C-order arrays:
 * the format of the golden test vectors, and a convenient way to exchange tensors with Python.
 *
 * Reads format versions 1.0, 2.0 and 3.0; writes 1.0 (2.0 only if the header would not fit), with the
 * header padded so the data starts at a multiple of 64 bytes, as `numpy.save` does.
 *
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ConvTransposeError } from './errors';
import { checkTensor } from './params';
import type { Tensor } from './types';

const NPY_CODE = 'ERR_CONV_TRANSPOSE_NPY';
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function npyError(message: string): ConvTransposeError {
  return new ConvTransposeError(NPY_CODE, message);
}

/**
 * Parses `.npy` bytes into a tensor. The data is copied into a fresh, aligned buffer.
 *
 * @param bytes - the whole file.
 * @returns `{ data, shape }` with a Float32Array for `<f4` and a Float64Array for `<f8`.
 * @throws ConvTransposeError (`ERR_CONV_TRANSPOSE_NPY`) on a bad magic string, an unknown version, a malformed
 *   header, Fortran order, a dtype other than little-endian float32/float64, or missing data bytes.
 */
export function readNpy(bytes: Uint8Array): Tensor {
  if (!(bytes instanceof Uint8Array)) throw npyError(`.npy data must be a Uint8Array or Buffer, got ${typeof bytes}`);
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw npyError('not a .npy file: missing the \\x93NUMPY magic string');
  }
  const major = bytes[6] as number;
  const minor = bytes[7] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1 && minor === 0) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if ((major === 2 || major === 3) && minor === 0) {
    if (bytes.length < 12) throw npyError('truncated .npy file: the header length is missing');
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw npyError(`unsupported .npy format version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) {
    throw npyError(`truncated .npy file: header of ${headerLen} bytes but only ${bytes.length - headerStart} bytes follow`);
  }
  const headerBytes = bytes.subarray(headerStart, dataStart);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(headerBytes);

  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)\b/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined || !/^\s*\{/.test(header)) {
    throw npyError(`malformed .npy header (expected a dict with 'descr', 'fortran_order' and 'shape'): ${JSON.stringify(header.trim())}`);
  }
  if (fortran === 'True') throw npyError('unsupported .npy array: fortran_order is True (only C order is supported)');
  let itemSize: number;
  if (descr === '<f4') itemSize = 4;
  else if (descr === '<f8') itemSize = 8;
  else if (descr === '>f4' || descr === '>f8') {
    throw npyError(`unsupported .npy dtype '${descr}': big-endian data (save it as '<${descr.slice(1)}')`);
  } else {
    throw npyError(`unsupported .npy dtype '${descr}' (supported: '<f4' float32, '<f8' float64)`);
  }
  const pieces = shapeText.split(',').map((p) => p.trim());
  if (pieces.length > 0 && pieces[pieces.length - 1] === '') pieces.pop();
  const shape: number[] = [];
  for (const p of pieces) {
    if (!/^\d+L?$/.test(p)) throw npyError(`malformed .npy shape (${shapeText.trim()}): '${p}' is not a non-negative integer`);
    const d = Number.parseInt(p, 10);
    if (!Number.isSafeInteger(d)) throw npyError(`malformed .npy shape (${shapeText.trim()}): dimension too large`);
    shape.push(d);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const byteCount = count * itemSize;
  if (!Number.isSafeInteger(byteCount) || count > 0x7fffffff) {
    throw npyError(`.npy array too large: shape (${shape.join(', ')})`);
  }
  const available = bytes.length - dataStart;
  if (available < byteCount) {
    throw npyError(`truncated .npy data: shape (${shape.join(', ')}) of '${descr}' needs ${byteCount} bytes, file has ${available}`);
  }
  // Copy into a fresh buffer: the payload offset inside `bytes` may not be aligned for the element type.
  const copy = new ArrayBuffer(byteCount);
  new Uint8Array(copy).set(bytes.subarray(dataStart, dataStart + byteCount));
  let data: Float32Array | Float64Array;
  if (LITTLE_ENDIAN_HOST) {
    data = itemSize === 4 ? new Float32Array(copy) : new Float64Array(copy);
  } else {
    const dv = new DataView(copy);
    if (itemSize === 4) {
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getFloat32(4 * i, true);
    } else {
      data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getFloat64(8 * i, true);
    }
  }
  return { data, shape };
}

/**
 * Serialises a tensor as `.npy` bytes (`<f4` for Float32Array data, `<f8` for Float64Array; C order).
 *
 * @throws ConvTransposeError with the library's tensor codes (`ERR_CONV_TRANSPOSE_DTYPE`, `ERR_CONV_TRANSPOSE_DATA_LENGTH`,
 *   `ERR_CONV_TRANSPOSE_INVALID_ARGUMENT`) when the tensor is malformed.
 */
export function writeNpy(t: Tensor): Uint8Array {
  const { data, shape } = checkTensor('writeNpy(tensor)', t);
  const descr = data instanceof Float32Array ? '<f4' : '<f8';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let prefix = 10;
  let total = prefix + dict.length + 1;
  let padded = Math.ceil(total / 64) * 64;
  let version = 1;
  if (padded - prefix > 0xffff) {
    version = 2;
    prefix = 12;
    total = prefix + dict.length + 1;
    padded = Math.ceil(total / 64) * 64;
  }
  const headerLen = padded - prefix;
  const header = dict + ' '.repeat(padded - total) + '\n';
  const out = new Uint8Array(padded + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, headerLen, true);
  else dv.setUint32(8, headerLen, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  if (LITTLE_ENDIAN_HOST) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), padded);
  } else {
    for (let i = 0; i < data.length; i++) {
      if (descr === '<f4') dv.setFloat32(padded + 4 * i, data[i] as number, true);
      else dv.setFloat64(padded + 8 * i, data[i] as number, true);
    }
  }
  return out;
}

/** Reads a `.npy` file from disk; see {@link readNpy}. */
export function readNpyFile(path: string): Tensor {
  return readNpy(readFileSync(path));
}

/** Writes a tensor to a `.npy` file on disk; see {@link writeNpy}. */
export function writeNpyFile(path: string, tensor: Tensor): void {
  writeFileSync(path, writeNpy(tensor));
}
