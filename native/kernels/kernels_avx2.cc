// AVX2+FMA micro-kernels (compiled with -mavx2 -mfma; only called after a run-time CPU check).
// Tiles: 16 ymm registers; MRV*NR accumulators + MRV pixel vectors + 1 broadcast <= 16.
//   f32: 2x8 px x 6 ch, 3x8 x 4, 3x8 x 3, 4x8 x 2, 4x8 x 1; f64: the same with 4 lanes.
#include "kernels/kernels.h"

#if (defined(__x86_64__) || defined(_M_X64)) && ((defined(__AVX2__) && defined(__FMA__)) || defined(_MSC_VER))
#include <immintrin.h>

#include <cstdint>
#include <numeric>

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

// r[i] = row i of an 8 x 8 block -> r[t] = column t (unpack pairs, shuffle quads within 128-bit lanes, swap
// the lanes).
inline void transpose8x8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {  // u[4i + k], 128-bit lane L: column 4L + k of rows 4i..4i+3
    u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
    r[4 + k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
  }
}

// A transposed vector to its destination: streamed when asked and d is aligned (see TransposeFn).
inline void put(float* d, __m256 v, bool stream) {
  if (stream && (reinterpret_cast<uintptr_t>(d) & 31) == 0)
    _mm256_stream_ps(d, v);
  else
    _mm256_storeu_ps(d, v);
}

// TransposeFn for float32 rows of 16 (4x4 and 1x16 kernels' taps, 16 images) or 4 (2x2 kernels' taps, 4 images), 8 rows at a time.
int64_t transpose_f32(const float* src, int64_t ld, int64_t rpg, int64_t rows, int64_t cols, float* const* dst,
                      bool stream) {
  if (cols != 16 && cols != 4) return 0;
  const int64_t block = std::lcm<int64_t>(8, rpg), done = rows / block * block;
  auto row = [&](int64_t q) { return src + q / rpg * ld + q % rpg * cols; };
  for (int64_t r0 = 0; r0 < done; r0 += 8) {
    if (cols == 16) {
      for (int half = 0; half < 16; half += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(row(r0 + i) + half);
        transpose8x8(r);
        for (int t = 0; t < 8; ++t) put(dst[half + t] + r0, r[t], stream);
      }
      continue;
    }
    // 4 taps: z[j], 128-bit lane L = row 4L + j; a 4 x 4 transpose within each lane gives tap t of rows
    // 4L..4L+3 in lane L.
    __m256 z[4];
    for (int j = 0; j < 4; ++j)
      z[j] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(row(r0 + j))), _mm_loadu_ps(row(r0 + 4 + j)), 1);
    const __m256 t0 = _mm256_unpacklo_ps(z[0], z[1]), t1 = _mm256_unpackhi_ps(z[0], z[1]);
    const __m256 t2 = _mm256_unpacklo_ps(z[2], z[3]), t3 = _mm256_unpackhi_ps(z[2], z[3]);
    put(dst[0] + r0, _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), stream);
    put(dst[1] + r0, _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)), stream);
    put(dst[2] + r0, _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), stream);
    put(dst[3] + r0, _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)), stream);
  }
  if (stream) _mm_sfence();
  return done;
}

// interleave2 with streaming stores when d is 32-byte aligned (see TypedSet::interleave2_stream): pairs of lanes
// interleaved within 128-bit halves (unpack), then the halves put in order.
void interleave2_stream_f32(float* d, const float* a, const float* b, int64_t n) {
  if ((reinterpret_cast<uintptr_t>(d) & 31) != 0) return isa_avx2::simd::interleave2<float>(d, a, b, n);
  int64_t l = 0;
  for (; l + 8 <= n; l += 8) {
    const __m256 va = _mm256_loadu_ps(a + l), vb = _mm256_loadu_ps(b + l);
    const __m256 lo = _mm256_unpacklo_ps(va, vb), hi = _mm256_unpackhi_ps(va, vb);
    _mm256_stream_ps(d + 2 * l, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_stream_ps(d + 2 * l + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
  for (; l < n; ++l) {
    d[2 * l] = a[l];
    d[2 * l + 1] = b[l];
  }
}
void interleave2_stream_f64(double* d, const double* a, const double* b, int64_t n) {
  if ((reinterpret_cast<uintptr_t>(d) & 31) != 0) return isa_avx2::simd::interleave2<double>(d, a, b, n);
  int64_t l = 0;
  for (; l + 4 <= n; l += 4) {
    const __m256d va = _mm256_loadu_pd(a + l), vb = _mm256_loadu_pd(b + l);
    const __m256d lo = _mm256_unpacklo_pd(va, vb), hi = _mm256_unpackhi_pd(va, vb);
    _mm256_stream_pd(d + 2 * l, _mm256_permute2f128_pd(lo, hi, 0x20));
    _mm256_stream_pd(d + 2 * l + 4, _mm256_permute2f128_pd(lo, hi, 0x31));
  }
  for (; l < n; ++l) {
    d[2 * l] = a[l];
    d[2 * l + 1] = b[l];
  }
}
void stream_fence() { _mm_sfence(); }

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
  k.f32.transpose = &transpose_f32;
  k.f32.interleave2_stream = &interleave2_stream_f32;
  k.f32.stream_fence = &stream_fence;
  k.f64.gemm[0] = variant<VD, 4, 1>();
  k.f64.gemm[1] = variant<VD, 4, 2>();
  k.f64.gemm[2] = variant<VD, 3, 3>();
  k.f64.gemm[3] = variant<VD, 3, 4>();
  k.f64.gemm[4] = variant<VD, 2, 6>();
  k.f64.dw_plane = &isa_avx2::simd::dw_plane_simd<VD>;
  k.f64.add_pairs = &isa_avx2::simd::add_pairs<double>;
  k.f64.store_stride2 = &isa_avx2::simd::store_stride2<double>;
  k.f64.interleave2 = &isa_avx2::simd::interleave2<double>;
  k.f64.interleave2_stream = &interleave2_stream_f64;
  k.f64.stream_fence = &stream_fence;
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
