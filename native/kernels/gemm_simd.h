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

// Keeps a loaded value in a register: without it, the compiler folds each pixel-vector load into every FMA that
// uses it (a load per FMA instead of per MRV FMAs), which makes tiles with few channels load-bound on cores with
// two FMA pipes (measured on Zen 5, 6x16 x 3 tile in L1: 95 -> 210 GFLOP/s).
template <class R>
inline void keep_in_register(R& r) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
  asm("" : "+v"(r));
#else
  (void)r;
#endif
}

// The lane-mask type of V in masked kernels (V::lane_mask), nothing otherwise (V need not have one).
template <class V, bool Masked>
struct MaskedTraits {
  using type = int;
};
template <class V>
struct MaskedTraits<V, true> {
  using type = typename V::lane_mask;
};

// MRV vectors of pixels x NR channels of accumulators (MRV*NR registers), fully unrolled. Masked: each segment's pixel
// vectors are zeroed outside its lane masks (amask, see GemmMaskedFn; V then has lane_mask, make_lane_mask, apply).
template <class V, int MRV, int NR, bool Masked>
inline void gemm_tile_impl(int64_t kseg, int nseg, const typename V::T* const* aseg, int64_t lda,
                           const typename V::T* B, const int64_t* boff, const typename V::T* bias, typename V::T* C,
                           int64_t ldc, const uint64_t* amask) {
  using R = typename V::reg;
  constexpr int L = V::kLanes;
  constexpr int64_t kWords = (int64_t{MRV} * L + 63) / 64;
  R acc[NR][MRV];
  if (bias) {
    for (int c = 0; c < NR; ++c) {
      const R b = V::set1(bias[c]);
      for (int v = 0; v < MRV; ++v) acc[c][v] = b;
    }
  } else {  // continue a reduction whose partial sums are in C
    for (int c = 0; c < NR; ++c)
      for (int v = 0; v < MRV; ++v) acc[c][v] = V::load(C + c * ldc + v * L);
  }
  for (int s = 0; s < nseg; ++s) {
    const typename V::T* b = B + boff[s];
    const typename V::T* A = aseg[s];
    // Masked: per pixel vector, the segment's lanes as all-ones / zero bit patterns, ANDed into each loaded vector
    // (merge-masked FMAs instead ran ~10 % slower per lane on Zen 5, and with masked loads GCC 12 stored every
    // accumulator at every step).
    [[maybe_unused]] typename MaskedTraits<V, Masked>::type m[MRV];
    if constexpr (Masked)
      for (int v = 0; v < MRV; ++v)
        m[v] = V::make_lane_mask(static_cast<uint32_t>(amask[s * kWords + v * L / 64] >> (v * L % 64)));
    for (int64_t k = 0; k < kseg; ++k) {
      R a[MRV];
      for (int v = 0; v < MRV; ++v) {
        if constexpr (Masked)
          a[v] = V::apply(V::load(A + v * L), m[v]);
        else
          a[v] = V::load(A + v * L);
        keep_in_register(a[v]);
      }
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

template <class V, int MRV, int NR>
void gemm_tile(int64_t kseg, int nseg, const typename V::T* const* aseg, int64_t lda, const typename V::T* B,
               const int64_t* boff, const typename V::T* bias, typename V::T* C, int64_t ldc) {
  gemm_tile_impl<V, MRV, NR, false>(kseg, nseg, aseg, lda, B, boff, bias, C, ldc, nullptr);
}

template <class V, int MRV, int NR>
void gemm_tile_masked(int64_t kseg, int nseg, const typename V::T* const* aseg, int64_t lda, const typename V::T* B,
                      const int64_t* boff, const typename V::T* bias, typename V::T* C, int64_t ldc,
                      const uint64_t* amask) {
  gemm_tile_impl<V, MRV, NR, true>(kseg, nseg, aseg, lda, B, boff, bias, C, ldc, amask);
}

// Depthwise plane, portable: acc[r*ldacc + i] = init + sum_t w[t] * in[r*ldin + toff[t] + i] for r < nrows,
// i < len; the compiler vectorises the i loops.
template <class T>
void dw_plane(T* acc, int64_t ldacc, const T* in, int64_t ldin, const int64_t* toff, const T* w, int ntaps,
              int64_t nrows, int64_t len, T init) {
  for (int64_t r = 0; r < nrows; ++r) {
    T* __restrict a = acc + r * ldacc;
    for (int64_t i = 0; i < len; ++i) a[i] = init;
    for (int t = 0; t < ntaps; ++t) {
      const T* __restrict s = in + r * ldin + toff[t];
      const T wt = w[t];
      for (int64_t i = 0; i < len; ++i) a[i] += wt * s[i];
    }
  }
}

// Depthwise plane with explicit vectors: per row, pixels in blocks of four vectors held in registers with
// the taps inside, so each register carries its own chain of FMAs and the FMA latency overlaps across the
// block (a per-vector sum over the taps would serialise them). One call covers a whole phase plane of a
// task, so the per-row setup (tap pointers, weights) is paid once.
template <class V>
void dw_plane_simd(typename V::T* acc, int64_t ldacc, const typename V::T* in, int64_t ldin, const int64_t* toff,
                   const typename V::T* w, int ntaps, int64_t nrows, int64_t len, typename V::T init) {
  using R = typename V::reg;
  using T = typename V::T;
  constexpr int L = V::kLanes;
  const R vinit = V::set1(init);
  for (int64_t r = 0; r < nrows; ++r) {
    T* a = acc + r * ldacc;
    const T* row = in + r * ldin;
    int64_t i = 0;
    for (; i + 4 * L <= len; i += 4 * L) {
      R a0 = vinit, a1 = vinit, a2 = vinit, a3 = vinit;
      for (int t = 0; t < ntaps; ++t) {
        const T* s = row + toff[t] + i;
        const R wt = V::set1(w[t]);
        a0 = V::fma(V::load(s), wt, a0);
        a1 = V::fma(V::load(s + L), wt, a1);
        a2 = V::fma(V::load(s + 2 * L), wt, a2);
        a3 = V::fma(V::load(s + 3 * L), wt, a3);
      }
      V::store(a + i, a0);
      V::store(a + i + L, a1);
      V::store(a + i + 2 * L, a2);
      V::store(a + i + 3 * L, a3);
    }
    for (; i + L <= len; i += L) {
      R a0 = vinit;
      for (int t = 0; t < ntaps; ++t) a0 = V::fma(V::load(row + toff[t] + i), V::set1(w[t]), a0);
      V::store(a + i, a0);
    }
    for (; i < len; ++i) {
      T v = init;
      for (int t = 0; t < ntaps; ++t) v += w[t] * row[toff[t] + i];
      a[i] = v;
    }
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

// d[2l] = a[l], portable.
template <class T>
void store_stride2(T* __restrict d, const T* __restrict a, int64_t n) {
  for (int64_t l = 0; l < n; ++l) d[2 * l] = a[l];
}

// d[2l] = a[l], d[2l+1] = b[l], portable.
template <class T>
void interleave2(T* __restrict d, const T* __restrict a, const T* __restrict b, int64_t n) {
  for (int64_t l = 0; l < n; ++l) {
    d[2 * l] = a[l];
    d[2 * l + 1] = b[l];
  }
}

}  // namespace simd
}  // namespace CONVT_KERNEL_NS
}  // namespace kernels
}  // namespace convt
