// Portable micro-kernels: plain C++ compiled at the baseline ISA (SSE2 on x86-64, NEON on arm64);
// the compiler vectorises the fixed-size lane loops. Also the fallback everywhere else.
#include <cstdint>

#define CONVT_KERNEL_NS isa_portable
#include "kernels/gemm_simd.h"
#include "kernels/kernels.h"

namespace convt {
namespace kernels {
namespace {

// MR pixels x NR channels; acc lives in MR*NR scalars the compiler keeps in vector registers.
template <class T, int MR, int NR>
void gemm_tile_portable(int64_t kseg, int nseg, const T* const* aseg, int64_t lda, const T* B, const int64_t* boff,
                        const T* bias, T* C, int64_t ldc) {
  T acc[NR][MR];
  for (int c = 0; c < NR; ++c)
    for (int l = 0; l < MR; ++l) acc[c][l] = bias ? bias[c] : C[c * ldc + l];  // no bias: continue C's sums
  for (int s = 0; s < nseg; ++s) {
    const T* b = B + boff[s];
    const T* A = aseg[s];
    for (int64_t k = 0; k < kseg; ++k) {
      for (int c = 0; c < NR; ++c) {
        const T bc = b[c];
        for (int l = 0; l < MR; ++l) acc[c][l] += A[l] * bc;
      }
      A += lda;
      b += NR;
    }
  }
  for (int c = 0; c < NR; ++c)
    for (int l = 0; l < MR; ++l) C[c * ldc + l] = acc[c][l];
}

template <class T, int MR, int NR>
GemmVariant<T> variant() {
  GemmVariant<T> g;
  g.mr = MR;
  g.nr = NR;
  g.fn = &gemm_tile_portable<T, MR, NR>;
  return g;
}

KernelSet make() {
  KernelSet k{};
#if defined(__x86_64__) || defined(_M_X64)
  k.isa = "sse2";
#elif defined(__aarch64__) || defined(_M_ARM64)
  k.isa = "neon";
#else
  k.isa = "scalar";
#endif
  k.f32.gemm[0] = variant<float, 16, 1>();
  k.f32.gemm[1] = variant<float, 8, 2>();
  k.f32.gemm[2] = variant<float, 8, 4>();
  k.f32.dw_plane = &isa_portable::simd::dw_plane<float>;
  k.f32.add_pairs = &isa_portable::simd::add_pairs<float>;
  k.f32.store_stride2 = &isa_portable::simd::store_stride2<float>;
  k.f32.interleave2 = &isa_portable::simd::interleave2<float>;
  k.f64.gemm[0] = variant<double, 8, 1>();
  k.f64.gemm[1] = variant<double, 4, 2>();
  k.f64.gemm[2] = variant<double, 4, 4>();
  k.f64.dw_plane = &isa_portable::simd::dw_plane<double>;
  k.f64.add_pairs = &isa_portable::simd::add_pairs<double>;
  k.f64.store_stride2 = &isa_portable::simd::store_stride2<double>;
  k.f64.interleave2 = &isa_portable::simd::interleave2<double>;
  return k;
}

}  // namespace

const KernelSet* portable_kernels() {
  static const KernelSet k = make();
  return &k;
}

}  // namespace kernels
}  // namespace convt
