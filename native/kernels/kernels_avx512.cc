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

// d[2l] = a[l]: each vector of a is spread over the even lanes of two vectors (vpermps) and stored
// with a write mask, so the odd elements (another phase's) are not touched.
void store_stride2_f32(float* d, const float* a, int64_t n) {
  const __m512i lo = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i hi = _mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
  const __mmask16 even = 0x5555;
  int64_t l = 0;
  for (; l + 16 <= n; l += 16) {
    const __m512 v = _mm512_loadu_ps(a + l);
    _mm512_mask_storeu_ps(d + 2 * l, even, _mm512_permutexvar_ps(lo, v));
    _mm512_mask_storeu_ps(d + 2 * l + 16, even, _mm512_permutexvar_ps(hi, v));
  }
  for (; l < n; ++l) d[2 * l] = a[l];
}
void store_stride2_f64(double* d, const double* a, int64_t n) {
  const __m512i lo = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i hi = _mm512_set_epi64(7, 7, 6, 6, 5, 5, 4, 4);
  const __mmask8 even = 0x55;
  int64_t l = 0;
  for (; l + 8 <= n; l += 8) {
    const __m512d v = _mm512_loadu_pd(a + l);
    _mm512_mask_storeu_pd(d + 2 * l, even, _mm512_permutexvar_pd(lo, v));
    _mm512_mask_storeu_pd(d + 2 * l + 8, even, _mm512_permutexvar_pd(hi, v));
  }
  for (; l < n; ++l) d[2 * l] = a[l];
}

// d[2l] = a[l], d[2l+1] = b[l]: two-source permutes (vpermt2ps), full-width stores.
void interleave2_f32(float* d, const float* a, const float* b, int64_t n) {
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  int64_t l = 0;
  for (; l + 16 <= n; l += 16) {
    const __m512 va = _mm512_loadu_ps(a + l), vb = _mm512_loadu_ps(b + l);
    _mm512_storeu_ps(d + 2 * l, _mm512_permutex2var_ps(va, lo, vb));
    _mm512_storeu_ps(d + 2 * l + 16, _mm512_permutex2var_ps(va, hi, vb));
  }
  for (; l < n; ++l) {
    d[2 * l] = a[l];
    d[2 * l + 1] = b[l];
  }
}
void interleave2_f64(double* d, const double* a, const double* b, int64_t n) {
  const __m512i lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
  int64_t l = 0;
  for (; l + 8 <= n; l += 8) {
    const __m512d va = _mm512_loadu_pd(a + l), vb = _mm512_loadu_pd(b + l);
    _mm512_storeu_pd(d + 2 * l, _mm512_permutex2var_pd(va, lo, vb));
    _mm512_storeu_pd(d + 2 * l + 8, _mm512_permutex2var_pd(va, hi, vb));
  }
  for (; l < n; ++l) {
    d[2 * l] = a[l];
    d[2 * l + 1] = b[l];
  }
}

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
  k.f32.dw_plane = &isa_avx512::simd::dw_plane_simd<VF>;
  k.f32.add_pairs = &isa_avx512::simd::add_pairs<float>;
  k.f32.store_stride2 = &store_stride2_f32;
  k.f32.interleave2 = &interleave2_f32;
  k.f64.gemm[0] = variant<VD, 8, 1>();
  k.f64.gemm[1] = variant<VD, 8, 2>();
  k.f64.gemm[2] = variant<VD, 6, 3>();
  k.f64.gemm[3] = variant<VD, 6, 4>();
  k.f64.gemm[4] = variant<VD, 4, 6>();
  k.f64.gemm[5] = variant<VD, 3, 8>();
  k.f64.gemm[6] = variant<VD, 2, 12>();
  k.f64.dw_plane = &isa_avx512::simd::dw_plane_simd<VD>;
  k.f64.add_pairs = &isa_avx512::simd::add_pairs<double>;
  k.f64.store_stride2 = &store_stride2_f64;
  k.f64.interleave2 = &interleave2_f64;
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
