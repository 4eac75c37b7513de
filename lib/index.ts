/**
 * conv-transpose: 2-D transposed convolution (ConvTranspose2d) with exactly PyTorch's semantics,
 * on a native multithreaded kernel when its addon loads, else on a pure-TypeScript implementation.
 * @packageDocumentation
 */
export { convTranspose2d, convTranspose2dAsync, outputShape, getBackend, setNumThreads } from './api';
export type { BackendInfo } from './api';
export { ConvTranspose2d } from './module';
export type { ConvTranspose2dModuleOptions } from './module';
export { ConvTransposeError, ErrorCodes } from './errors';
export type { ErrorCode } from './errors';
export { readNpy, writeNpy, readNpyFile, writeNpyFile } from './npy';
export type { Tensor, FloatArray, DType, Size2, BackendChoice, ConvTranspose2dOptions } from './types';
