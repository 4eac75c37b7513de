// Generic register-tiled GEMM micro-kernel over a SIMD traits class V:
//   V::T (scalar), V::reg, V::kLanes, zero(), set1(x), load(p), store(p, r), fma(a, b, c) = a*b + c.
// Included only by the per-ISA kernel files, which compile it with their own ISA flags. Each file
// defines CONVT_KERNEL_NS first: the templates must get a distinct namespace (and so distinct symbols)
// per ISA, or the linker would merge e.g. dw_row<float> of the SSE2 and AVX-512 files into one (ODR).
#pragma once
#ifndef CONVT_KERNEL_NS
#error "define CONVT_KERNEL_NS (a namespace name unique to the including kernel file) before including gemm_simd.h"
#endif

#include <cstdint>

namespace convt {
namespace kernels {
namespace CONVT_KERNEL_NS {
namespace simd {

// MRV vectors of pixels x NR channels of accumulators (MRV*NR registers), fully unrolled.
template <class V, int MRV, int NR>
void gemm_tile(int64_t kseg, int nseg, const typename V::T* const* aseg, int64_t lda, const typename V::T* B,
               const int64_t* boff, const typename V::T* bias, typename V::T* C, int64_t ldc) {
  using R = typename V::reg;
  constexpr int L = V::kLanes;
  R acc[NR][MRV];
  for (int c = 0; c < NR; ++c) {
    const R b = V::set1(bias[c]);
    for (int v = 0; v < MRV; ++v) acc[c][v] = b;
  }
  for (int s = 0; s < nseg; ++s) {
    const typename V::T* b = B + boff[s];
    const typename V::T* A = aseg[s];
    for (int64_t k = 0; k < kseg; ++k) {
      R a[MRV];
      for (int v = 0; v < MRV; ++v) a[v] = V::load(A + v * L);
      for (int c = 0; c < NR; ++c) {
        const R bc = V::set1(b[c]);
        for (int v = 0; v < MRV; ++v) acc[c][v] = V::fma(a[v], bc, acc[c][v]);
      }
      A += lda;
      b += NR;
    }
  }
  for (int c = 0; c < NR; ++c)
    for (int v = 0; v < MRV; ++v) V::store(C + c * ldc + v * L, acc[c][v]);
}

// Depthwise row: acc[i] += sum_t w[t] * src[t][i]; the compiler vectorises the i loop.
template <class T>
void dw_row(T* __restrict acc, const T* const* src, const T* w, int ntaps, int64_t len) {
  int t = 0;
  for (; t + 4 <= ntaps; t += 4) {
    const T* __restrict s0 = src[t];
    const T* __restrict s1 = src[t + 1];
    const T* __restrict s2 = src[t + 2];
    const T* __restrict s3 = src[t + 3];
    const T w0 = w[t], w1 = w[t + 1], w2 = w[t + 2], w3 = w[t + 3];
    for (int64_t i = 0; i < len; ++i) acc[i] += w0 * s0[i] + w1 * s1[i] + w2 * s2[i] + w3 * s3[i];
  }
  for (; t + 2 <= ntaps; t += 2) {
    const T* __restrict s0 = src[t];
    const T* __restrict s1 = src[t + 1];
    const T w0 = w[t], w1 = w[t + 1];
    for (int64_t i = 0; i < len; ++i) acc[i] += w0 * s0[i] + w1 * s1[i];
  }
  for (; t < ntaps; ++t) {
    const T* __restrict s0 = src[t];
    const T w0 = w[t];
    for (int64_t i = 0; i < len; ++i) acc[i] += w0 * s0[i];
  }
}

// Scatter path col2im, stride 2: two output columns that interleave (d[2l] and d[2l+1]) updated in one
// pass, so the compiler can vectorise with interleaving shuffles instead of strided scalar stores.
template <class T>
void add_pairs(T* __restrict d, const T* __restrict a, const T* __restrict b, int64_t n) {
  for (int64_t l = 0; l < n; ++l) {
    d[2 * l] += a[l];
    d[2 * l + 1] += b[l];
  }
}

}  // namespace simd
}  // namespace CONVT_KERNEL_NS
}  // namespace kernels
}  // namespace convt
