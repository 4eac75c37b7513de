// AVX2+FMA micro-kernels (compiled with -mavx2 -mfma; only called after a run-time CPU check).
// Tiles: 16 ymm registers; MRV*NR accumulators + MRV pixel vectors + 1 broadcast <= 16.
//   f32: 2x8 px x 6 ch, 3x8 x 4, 3x8 x 3, 4x8 x 2, 4x8 x 1; f64: the same with 4 lanes.
#include "kernels/kernels.h"

#if (defined(__x86_64__) || defined(_M_X64)) && ((defined(__AVX2__) && defined(__FMA__)) || defined(_MSC_VER))
#include <immintrin.h>

#define CONVT_KERNEL_NS isa_avx2
#include "kernels/gemm_simd.h"

namespace convt {
namespace kernels {
namespace {

struct VF {
  using T = float;
  using reg = __m256;
  static constexpr int kLanes = 8;
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg r) { _mm256_storeu_ps(p, r); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
};
struct VD {
  using T = double;
  using reg = __m256d;
  static constexpr int kLanes = 4;
  static reg set1(double x) { return _mm256_set1_pd(x); }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, reg r) { _mm256_storeu_pd(p, r); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
};

template <class V, int MRV, int NR>
GemmVariant<typename V::T> variant() {
  GemmVariant<typename V::T> g;
  g.mr = MRV * V::kLanes;
  g.nr = NR;
  g.fn = &isa_avx2::simd::gemm_tile<V, MRV, NR>;
  return g;
}

KernelSet make() {
  KernelSet k{};
  k.isa = "avx2";
  k.f32.gemm[0] = variant<VF, 4, 1>();
  k.f32.gemm[1] = variant<VF, 4, 2>();
  k.f32.gemm[2] = variant<VF, 3, 3>();
  k.f32.gemm[3] = variant<VF, 3, 4>();
  k.f32.gemm[4] = variant<VF, 2, 6>();
  k.f32.dw_plane = &isa_avx2::simd::dw_plane_simd<VF>;
  k.f32.add_pairs = &isa_avx2::simd::add_pairs<float>;
  k.f32.store_stride2 = &isa_avx2::simd::store_stride2<float>;
  k.f32.interleave2 = &isa_avx2::simd::interleave2<float>;
  k.f64.gemm[0] = variant<VD, 4, 1>();
  k.f64.gemm[1] = variant<VD, 4, 2>();
  k.f64.gemm[2] = variant<VD, 3, 3>();
  k.f64.gemm[3] = variant<VD, 3, 4>();
  k.f64.gemm[4] = variant<VD, 2, 6>();
  k.f64.dw_plane = &isa_avx2::simd::dw_plane_simd<VD>;
  k.f64.add_pairs = &isa_avx2::simd::add_pairs<double>;
  k.f64.store_stride2 = &isa_avx2::simd::store_stride2<double>;
  k.f64.interleave2 = &isa_avx2::simd::interleave2<double>;
  return k;
}

}  // namespace

const KernelSet* avx2_kernels() {
  static const KernelSet k = make();
  return &k;
}

}  // namespace kernels
}  // namespace convt

#else
namespace convt {
namespace kernels {
const KernelSet* avx2_kernels() { return nullptr; }
}  // namespace kernels
}  // namespace convt
#endif
