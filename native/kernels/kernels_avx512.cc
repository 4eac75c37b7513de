// AVX-512F micro-kernels (compiled with -mavx512f; only called after a run-time CPU check).
// Tiles: 32 zmm registers; MRV*NR accumulators + MRV pixel vectors + 1 broadcast <= 32.
//   f32: 2x16 px x 12 ch, 3x16 x 8, 4x16 x 6, 6x16 x 4, 6x16 x 3, 8x16 x 2, 8x16 x 1, and 1x16 x 16:
//        one vector of pixels, so batch-inner tiles hold one pixel of 16 images and use exactly its taps
//        (a 4-pixel tile also multiplies the border pixels' zero lanes), and direct tiles waste at most
//        15 lanes per row; measured at 1 thread: DCGAN 512->256 on 4x4 10.4 -> 9.1 ms, U-Net 1024->512
//        on 28x28 36 -> 34 ms.
//   f64: the same shapes, with 8 lanes per vector (1x8 x 16 took fp64 DCGAN 512->256 on 4x4 from 76 to 85 %
//        of the fp64 peak at 2 threads).
#include "kernels/kernels.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__AVX512F__) || defined(_MSC_VER))
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <numeric>

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
  using lane_mask = __m512i;  // all-ones or zero lanes
  static lane_mask make_lane_mask(uint32_t m) { return _mm512_maskz_set1_epi32(static_cast<__mmask16>(m), -1); }
  static reg apply(reg a, lane_mask m) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), m)); }
};
struct VD {
  using T = double;
  using reg = __m512d;
  static constexpr int kLanes = 8;
  static reg set1(double x) { return _mm512_set1_pd(x); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, reg r) { _mm512_storeu_pd(p, r); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  using lane_mask = __m512i;
  static lane_mask make_lane_mask(uint32_t m) { return _mm512_maskz_set1_epi64(static_cast<__mmask8>(m), -1); }
  static reg apply(reg a, lane_mask m) { return _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(a), m)); }
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

// vpermt2ps indices that interleave two float32 vectors a, b: lo -> a0 b0 a1 b1 ... a7 b7, hi -> a8 b8 ... a15 b15.
inline __m512i interleave_lo_f32() {
  return _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
}
inline __m512i interleave_hi_f32() {
  return _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
}

// d[2l] = a[l], d[2l+1] = b[l]: two-source permutes (vpermt2ps), full-width stores; kStream: streaming stores
// (d 64-byte aligned: a whole cache line per store, not read before it is written, and the output does not
// evict the inputs from the cache).
template <bool kStream>
void interleave2_f32_impl(float* d, const float* a, const float* b, int64_t n) {
  const __m512i lo = interleave_lo_f32(), hi = interleave_hi_f32();
  int64_t l = 0;
  for (; l + 16 <= n; l += 16) {
    const __m512 va = _mm512_loadu_ps(a + l), vb = _mm512_loadu_ps(b + l);
    const __m512 v0 = _mm512_permutex2var_ps(va, lo, vb), v1 = _mm512_permutex2var_ps(va, hi, vb);
    if constexpr (kStream) {
      _mm512_stream_ps(d + 2 * l, v0);
      _mm512_stream_ps(d + 2 * l + 16, v1);
    } else {
      _mm512_storeu_ps(d + 2 * l, v0);
      _mm512_storeu_ps(d + 2 * l + 16, v1);
    }
  }
  for (; l < n; ++l) {
    d[2 * l] = a[l];
    d[2 * l + 1] = b[l];
  }
}
template <bool kStream>
void interleave2_f64_impl(double* d, const double* a, const double* b, int64_t n) {
  const __m512i lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
  int64_t l = 0;
  for (; l + 8 <= n; l += 8) {
    const __m512d va = _mm512_loadu_pd(a + l), vb = _mm512_loadu_pd(b + l);
    const __m512d v0 = _mm512_permutex2var_pd(va, lo, vb), v1 = _mm512_permutex2var_pd(va, hi, vb);
    if constexpr (kStream) {
      _mm512_stream_pd(d + 2 * l, v0);
      _mm512_stream_pd(d + 2 * l + 8, v1);
    } else {
      _mm512_storeu_pd(d + 2 * l, v0);
      _mm512_storeu_pd(d + 2 * l + 8, v1);
    }
  }
  for (; l < n; ++l) {
    d[2 * l] = a[l];
    d[2 * l + 1] = b[l];
  }
}
void interleave2_f32(float* d, const float* a, const float* b, int64_t n) { interleave2_f32_impl<false>(d, a, b, n); }
void interleave2_f64(double* d, const double* a, const double* b, int64_t n) { interleave2_f64_impl<false>(d, a, b, n); }
bool line_aligned(const void* d) { return (reinterpret_cast<uintptr_t>(d) & 63) == 0; }
void interleave2_stream_f32(float* d, const float* a, const float* b, int64_t n) {
  return line_aligned(d) ? interleave2_f32_impl<true>(d, a, b, n) : interleave2_f32_impl<false>(d, a, b, n);
}
void interleave2_stream_f64(double* d, const double* a, const double* b, int64_t n) {
  return line_aligned(d) ? interleave2_f64_impl<true>(d, a, b, n) : interleave2_f64_impl<false>(d, a, b, n);
}
void stream_fence() { _mm_sfence(); }

// A vector to its destination: streamed when asked and d is aligned (transposes, depthwise pair rows).
inline void put(float* d, __m512 v, bool stream) {
  if (stream && line_aligned(d))
    _mm512_stream_ps(d, v);
  else
    _mm512_storeu_ps(d, v);
}
inline void put(double* d, __m512d v, bool stream) {
  if (stream && line_aligned(d))
    _mm512_stream_pd(d, v);
  else
    _mm512_storeu_pd(d, v);
}

// DwPairRowsFn, float32: per row, blocks of 4 x 16 pairs (8 accumulators, so the FMA latency overlaps), each pair of
// phase vectors interleaved in registers (vpermt2ps) and stored as two output vectors.
void dw_pair_rows_f32(float* d, int64_t ldd, const float* in, int64_t ldin, const int64_t* toff0, const float* w0,
                      int ntap0, const int64_t* toff1, const float* w1, int ntap1, int64_t nrows, int64_t n, float init,
                      bool stream) {
  const __m512i lo = interleave_lo_f32(), hi = interleave_hi_f32();
  const __m512 vinit = _mm512_set1_ps(init);
  constexpr int U = 4;
  for (int64_t r = 0; r < nrows; ++r) {
    const float* row = in + r * ldin;
    float* dr = d + r * ldd;
    int64_t l = 0;
    for (; l + 16 * U <= n; l += 16 * U) {
      __m512 a0[U], a1[U];
      for (int u = 0; u < U; ++u) a0[u] = a1[u] = vinit;
      for (int t = 0; t < ntap0; ++t) {
        const float* s = row + toff0[t] + l;
        const __m512 wt = _mm512_set1_ps(w0[t]);
        for (int u = 0; u < U; ++u) a0[u] = _mm512_fmadd_ps(_mm512_loadu_ps(s + 16 * u), wt, a0[u]);
      }
      for (int t = 0; t < ntap1; ++t) {
        const float* s = row + toff1[t] + l;
        const __m512 wt = _mm512_set1_ps(w1[t]);
        for (int u = 0; u < U; ++u) a1[u] = _mm512_fmadd_ps(_mm512_loadu_ps(s + 16 * u), wt, a1[u]);
      }
      for (int u = 0; u < U; ++u) {
        put(dr + 2 * (l + 16 * u), _mm512_permutex2var_ps(a0[u], lo, a1[u]), stream);
        put(dr + 2 * (l + 16 * u) + 16, _mm512_permutex2var_ps(a0[u], hi, a1[u]), stream);
      }
    }
    for (; l < n; l += 16) {  // single blocks; the last one may be partial (masked stores)
      __m512 a0 = vinit, a1 = vinit;
      for (int t = 0; t < ntap0; ++t) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(row + toff0[t] + l), _mm512_set1_ps(w0[t]), a0);
      for (int t = 0; t < ntap1; ++t) a1 = _mm512_fmadd_ps(_mm512_loadu_ps(row + toff1[t] + l), _mm512_set1_ps(w1[t]), a1);
      const __m512 v0 = _mm512_permutex2var_ps(a0, lo, a1), v1 = _mm512_permutex2var_ps(a0, hi, a1);
      const int64_t m = std::min<int64_t>(16, n - l);  // pairs in this block: 2m outputs
      if (m == 16) {
        put(dr + 2 * l, v0, stream);
        put(dr + 2 * l + 16, v1, stream);
      } else {
        _mm512_mask_storeu_ps(dr + 2 * l, static_cast<__mmask16>((1u << std::min<int64_t>(16, 2 * m)) - 1), v0);
        if (2 * m > 16) _mm512_mask_storeu_ps(dr + 2 * l + 16, static_cast<__mmask16>((1u << (2 * m - 16)) - 1), v1);
      }
    }
  }
}

// r[i] = row i of a 16 x 16 block -> r[t] = column t: pairs interleaved (unpack), then quads (shuffle
// within 128-bit lanes), then the 4 x 4 grid of 128-bit lanes transposed (two rounds of shuffle_f32x4).
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i + k], 128-bit lane L: column 4L + k of rows 4i..4i+3
    u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; ++k) {
    const __m512 w0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x88), w1 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xdd);
    const __m512 w2 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x88);
    const __m512 w3 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xdd);
    r[k] = _mm512_shuffle_f32x4(w0, w2, 0x88);
    r[4 + k] = _mm512_shuffle_f32x4(w1, w3, 0x88);
    r[8 + k] = _mm512_shuffle_f32x4(w0, w2, 0xdd);
    r[12 + k] = _mm512_shuffle_f32x4(w1, w3, 0xdd);
  }
}

// TransposeFn for float32 rows of 16 (4x4 and 1x16 kernels' taps, 16 images) or 4 (2x2 kernels' taps, 4 images), 16 rows at a time.
// (The scalar copy this replaces moved ~0.5 element per cycle; A2's 8 MiB of weights took ~0.65 ms at 2 threads.)
int64_t transpose_f32(const float* src, int64_t ld, int64_t rpg, int64_t rows, int64_t cols, float* const* dst,
                      bool stream) {
  if (cols != 16 && cols != 4) return 0;
  const int64_t block = std::lcm<int64_t>(16, rpg), done = rows / block * block;
  auto row = [&](int64_t q) { return src + q / rpg * ld + q % rpg * cols; };
  for (int64_t r0 = 0; r0 < done; r0 += 16) {
    if (cols == 16) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(row(r0 + i));
      transpose16x16(r);
      for (int t = 0; t < 16; ++t) put(dst[t] + r0, r[t], stream);
      continue;
    }
    // 4 taps: z[j], 128-bit lane L = row 4L + j; then a 4 x 4 transpose within each lane gives tap t of
    // rows 4L..4L+3 in lane L of o[t].
    __m512 z[4];
    for (int j = 0; j < 4; ++j) {
      z[j] = _mm512_castps128_ps512(_mm_loadu_ps(row(r0 + j)));
      z[j] = _mm512_insertf32x4(z[j], _mm_loadu_ps(row(r0 + 4 + j)), 1);
      z[j] = _mm512_insertf32x4(z[j], _mm_loadu_ps(row(r0 + 8 + j)), 2);
      z[j] = _mm512_insertf32x4(z[j], _mm_loadu_ps(row(r0 + 12 + j)), 3);
    }
    const __m512 t0 = _mm512_unpacklo_ps(z[0], z[1]), t1 = _mm512_unpackhi_ps(z[0], z[1]);
    const __m512 t2 = _mm512_unpacklo_ps(z[2], z[3]), t3 = _mm512_unpackhi_ps(z[2], z[3]);
    put(dst[0] + r0, _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), stream);
    put(dst[1] + r0, _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)), stream);
    put(dst[2] + r0, _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), stream);
    put(dst[3] + r0, _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)), stream);
  }
  if (stream) _mm_sfence();
  return done;
}

// r[i] = row i of an 8 x 8 block of doubles -> r[t] = column t: pairs interleaved (unpack), then the 128-bit
// lanes regrouped twice (shuffle_f64x2).
inline void transpose8x8(__m512d r[8]) {
  __m512d t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 4h..4h+3; u[4h + k], lanes: columns k and k + 4 of those rows
    u[4 * h + 0] = _mm512_shuffle_f64x2(t[4 * h], t[4 * h + 2], 0x88);
    u[4 * h + 1] = _mm512_shuffle_f64x2(t[4 * h + 1], t[4 * h + 3], 0x88);
    u[4 * h + 2] = _mm512_shuffle_f64x2(t[4 * h], t[4 * h + 2], 0xdd);
    u[4 * h + 3] = _mm512_shuffle_f64x2(t[4 * h + 1], t[4 * h + 3], 0xdd);
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm512_shuffle_f64x2(u[k], u[4 + k], 0x88);
    r[k + 4] = _mm512_shuffle_f64x2(u[k], u[4 + k], 0xdd);
  }
}

// TransposeFn for float64 rows of 16 or 4 taps, 8 rows at a time (rows of 4 are zero-extended to 8 columns).
int64_t transpose_f64(const double* src, int64_t ld, int64_t rpg, int64_t rows, int64_t cols, double* const* dst,
                      bool stream) {
  if (cols != 16 && cols != 4) return 0;
  const int64_t block = std::lcm<int64_t>(8, rpg), done = rows / block * block;
  auto row = [&](int64_t q) { return src + q / rpg * ld + q % rpg * cols; };
  for (int64_t r0 = 0; r0 < done; r0 += 8) {
    __m512d r[8];
    if (cols == 4) {
      for (int i = 0; i < 8; ++i) r[i] = _mm512_zextpd256_pd512(_mm256_loadu_pd(row(r0 + i)));
      transpose8x8(r);
      for (int t = 0; t < 4; ++t) put(dst[t] + r0, r[t], stream);
      continue;
    }
    for (int half = 0; half < 16; half += 8) {
      for (int i = 0; i < 8; ++i) r[i] = _mm512_loadu_pd(row(r0 + i) + half);
      transpose8x8(r);
      for (int t = 0; t < 8; ++t) put(dst[half + t] + r0, r[t], stream);
    }
  }
  if (stream) _mm_sfence();
  return done;
}

template <class V, int MRV, int NR>
GemmVariant<typename V::T> variant() {
  GemmVariant<typename V::T> g;
  g.mr = MRV * V::kLanes;
  g.nr = NR;
  g.fn = &isa_avx512::simd::gemm_tile<V, MRV, NR>;
  g.fn_masked = &isa_avx512::simd::gemm_tile_masked<V, MRV, NR>;
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
  k.f32.gemm[7] = variant<VF, 1, 16>();
  k.f32.dw_plane = &isa_avx512::simd::dw_plane_simd<VF>;
  k.f32.dw_pair_rows = &dw_pair_rows_f32;
  k.f32.add_pairs = &isa_avx512::simd::add_pairs<float>;
  k.f32.store_stride2 = &store_stride2_f32;
  k.f32.interleave2 = &interleave2_f32;
  k.f32.transpose = &transpose_f32;
  k.f32.interleave2_stream = &interleave2_stream_f32;
  k.f32.stream_fence = &stream_fence;
  k.f64.gemm[0] = variant<VD, 8, 1>();
  k.f64.gemm[1] = variant<VD, 8, 2>();
  k.f64.gemm[2] = variant<VD, 6, 3>();
  k.f64.gemm[3] = variant<VD, 6, 4>();
  k.f64.gemm[4] = variant<VD, 4, 6>();
  k.f64.gemm[5] = variant<VD, 3, 8>();
  k.f64.gemm[6] = variant<VD, 2, 12>();
  k.f64.gemm[7] = variant<VD, 1, 16>();
  k.f64.dw_plane = &isa_avx512::simd::dw_plane_simd<VD>;
  k.f64.add_pairs = &isa_avx512::simd::add_pairs<double>;
  k.f64.store_stride2 = &store_stride2_f64;
  k.f64.interleave2 = &interleave2_f64;
  k.f64.interleave2_stream = &interleave2_stream_f64;
  k.f64.transpose = &transpose_f64;
  k.f64.stream_fence = &stream_fence;
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
