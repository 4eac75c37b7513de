// AVX-512F micro-kernels (compiled with -mavx512f; only called after a run-time CPU check).
// Tiles: 32 zmm registers; MRV*NR accumulators + MRV pixel vectors + 1 broadcast <= 32.
//   f32: 2x16 px x 12 ch, 3x16 x 8, 4x16 x 6, 6x16 x 4, 6x16 x 3, 8x16 x 2, 8x16 x 1
//   f64: the same shapes with 8 lanes per vector.
#include "kernels/kernels.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__AVX512F__) || defined(_MSC_VER))
#include <immintrin.h>

#define CONVT_KERNEL_NS isa_avx512
#include "kernels/gemm_simd.h"

namespace convt {
namespace kernels {
namespace {

struct VF {
  using T = float;
  using reg = __m512;
  static constexpr int kLanes = 16;
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg r) { _mm512_storeu_ps(p, r); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
};
struct VD {
  using T = double;
  using reg = __m512d;
  static constexpr int kLanes = 8;
  static reg set1(double x) { return _mm512_set1_pd(x); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, reg r) { _mm512_storeu_pd(p, r); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
};

template <class V, int MRV, int NR>
GemmVariant<typename V::T> variant() {
  GemmVariant<typename V::T> g;
  g.mr = MRV * V::kLanes;
  g.nr = NR;
  g.fn = &isa_avx512::simd::gemm_tile<V, MRV, NR>;
  return g;
}

KernelSet make() {
  KernelSet k{};
  k.isa = "avx512";
  k.f32.gemm[0] = variant<VF, 8, 1>();
  k.f32.gemm[1] = variant<VF, 8, 2>();
  k.f32.gemm[2] = variant<VF, 6, 3>();
  k.f32.gemm[3] = variant<VF, 6, 4>();
  k.f32.gemm[4] = variant<VF, 4, 6>();
  k.f32.gemm[5] = variant<VF, 3, 8>();
  k.f32.gemm[6] = variant<VF, 2, 12>();
  k.f32.dw_row = &isa_avx512::simd::dw_row<float>;
  k.f32.add_pairs = &isa_avx512::simd::add_pairs<float>;
  k.f64.gemm[0] = variant<VD, 8, 1>();
  k.f64.gemm[1] = variant<VD, 8, 2>();
  k.f64.gemm[2] = variant<VD, 6, 3>();
  k.f64.gemm[3] = variant<VD, 6, 4>();
  k.f64.gemm[4] = variant<VD, 4, 6>();
  k.f64.gemm[5] = variant<VD, 3, 8>();
  k.f64.gemm[6] = variant<VD, 2, 12>();
  k.f64.dw_row = &isa_avx512::simd::dw_row<double>;
  k.f64.add_pairs = &isa_avx512::simd::add_pairs<double>;
  return k;
}

}  // namespace

const KernelSet* avx512_kernels() {
  static const KernelSet k = make();
  return &k;
}

}  // namespace kernels
}  // namespace convt

#else
namespace convt {
namespace kernels {
const KernelSet* avx512_kernels() { return nullptr; }
}  // namespace kernels
}  // namespace convt
#endif
