// Micro-kernel interface shared by the core driver and the per-ISA kernel files.
//
// GEMM micro-kernel (lanes = output pixels, broadcast = weights):
//   C[c][l] = bias[c] + sum_{s < nseg} sum_{k < kseg} a[s][k*lda + l] * B[boff[s] + k*NR + c]
//   for c < NR, l < MR; C[c][l] is stored at C + c*ldc + l (so the tile can go straight to an
//   NCHW output row when its MR pixels are contiguous there, or to a small tile buffer).
//   a[s]: pixel panel of segment s (one kernel tap), MR values per reduction step, lda apart: either
//         a packed panel (lda = MR) or a window of a zero-padded input block (lda = its plane size).
//   B: packed weight panel; kseg = input channels of the group.
//   bias: NR initial values (zeros when the layer has no bias), or nullptr to continue a reduction:
//         the initial values are then C's current contents (partial sums of earlier reduction blocks;
//         the FMAs and their order are those of one pass, so the result bits are too).
// Depthwise plane kernel (no reduction over channels; vectorised over output pixels), for rows r < nrows:
//   acc[r*ldacc + i] = init + sum_{t < ntaps} w[t] * in[r*ldin + toff[t] + i]  for i < len.
#pragma once

#include <cstdint>

namespace convt {
namespace kernels {

template <class T>
using GemmFn = void (*)(int64_t kseg, int nseg, const T* const* a, int64_t lda, const T* B, const int64_t* boff,
                        const T* bias, T* C, int64_t ldc);

// The same with lane masks, for tiles over an input block without padding columns, whose lanes may read across a row
// edge: segment s takes a[s][k*lda + l] as 0 (as a padding zero would be) where bit l % 64 of
// amask[s * mask_words(MR) + l / 64] is clear. Every lane's element is still read, so it must be readable memory.
template <class T>
using GemmMaskedFn = void (*)(int64_t kseg, int nseg, const T* const* a, int64_t lda, const T* B, const int64_t* boff,
                              const T* bias, T* C, int64_t ldc, const uint64_t* amask);

constexpr int64_t mask_words(int64_t mr) { return (mr + 63) / 64; }

template <class T>
using DwPlaneFn = void (*)(T* acc, int64_t ldacc, const T* in, int64_t ldin, const int64_t* toff, const T* w, int ntaps,
                           int64_t nrows, int64_t len, T init);

// Depthwise, stride 2 in width, both column phases at once, for r < nrows and l < n (no phase rows in memory):
//   d[r*ldd + 2l]     = init + sum_{t < ntap0} w0[t] * in[r*ldin + toff0[t] + l]
//   d[r*ldd + 2l + 1] = init + sum_{t < ntap1} w1[t] * in[r*ldin + toff1[t] + l]
// It may read in[r*ldin + toff[t] + l] for l up to n rounded up to 16 (the padded rows have room). stream: streaming
// stores wherever d is aligned (the caller then calls stream_fence, as for interleave2_stream).
template <class T>
using DwPairRowsFn = void (*)(T* d, int64_t ldd, const T* in, int64_t ldin, const int64_t* toff0, const T* w0, int ntap0,
                              const int64_t* toff1, const T* w1, int ntap1, int64_t nrows, int64_t n, T init, bool stream);

// Scatter-path col2im for stride 2: d[2l] += a[l], d[2l+1] += b[l] for l < n.
template <class T>
using AddPairsFn = void (*)(T* d, const T* a, const T* b, int64_t n);

// Output write-out for stride 2: d[2l] = a[l] for l < n (the odd elements are left untouched).
template <class T>
using StoreStride2Fn = void (*)(T* d, const T* a, int64_t n);

// Two phase rows interleaved into an output row: d[2l] = a[l], d[2l+1] = b[l] for l < n.
template <class T>
using Interleave2Fn = void (*)(T* d, const T* a, const T* b, int64_t n);

// Transpose (weight packing, batch-innermost copies of input and output): `rows` rows of `cols` elements, row r
// at src + (r / rpg) * ld + (r % rpg) * cols (groups of rpg contiguous rows, ld apart), stored transposed:
// dst[t][r] = element t of row r, t < cols. Does a prefix of whole blocks of lcm(V, rpg) rows (V: the kernel's
// block, 16 or 8) with register transposes and returns its length (0 when it has no code for `cols`: it has
// for 16 and 4); the caller copies the remaining rows. stream: streaming stores wherever a destination vector is
// aligned, fenced before returning (for a large destination that other threads read next).
template <class T>
using TransposeFn = int64_t (*)(const T* src, int64_t ld, int64_t rpg, int64_t rows, int64_t cols, T* const* dst,
                                bool stream);

template <class T>
struct GemmVariant {
  int mr = 0, nr = 0;  // tile: mr pixels (a multiple of the vector width) x nr output channels
  GemmFn<T> fn = nullptr;
  GemmMaskedFn<T> fn_masked = nullptr;  // optional (AVX-512)
};

constexpr int kMaxVariants = 8;
constexpr int kMaxNr = 32;  // no tile has more output channels (callers may size bias arrays with it)

template <class T>
struct TypedSet {
  GemmVariant<T> gemm[kMaxVariants];  // sorted by nr ascending; unused entries have fn == nullptr
  DwPlaneFn<T> dw_plane = nullptr;
  DwPairRowsFn<T> dw_pair_rows = nullptr;  // optional
  AddPairsFn<T> add_pairs = nullptr;
  StoreStride2Fn<T> store_stride2 = nullptr;
  Interleave2Fn<T> interleave2 = nullptr;
  TransposeFn<T> transpose = nullptr;  // optional
  // Optional: interleave2 with non-temporal (streaming) stores wherever d is aligned to the ISA's vector width, for
  // outputs too large to stay in cache; a thread that used it calls stream_fence before its writes may be read by
  // another.
  Interleave2Fn<T> interleave2_stream = nullptr;
  void (*stream_fence)() = nullptr;
};

struct KernelSet {
  const char* isa;  // "avx512", "avx2", "sse2" / "neon" / "scalar"
  TypedSet<float> f32;
  TypedSet<double> f64;
};

// Each returns nullptr when the build has no such kernels (e.g. AVX-512 on arm64).
const KernelSet* portable_kernels();
const KernelSet* avx2_kernels();
const KernelSet* avx512_kernels();

}  // namespace kernels
}  // namespace convt
