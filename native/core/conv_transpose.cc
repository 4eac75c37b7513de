// Core driver of conv_transpose2d.
//
// Algorithm (DESIGN.md section 5). The output is split into sH*sW phases (oy mod sH, ox mod sW).
// In phase (ry, rx) output pixel (j, i) is (oy, ox) = (sH*j + ry, sW*i + rx) and receives exactly
// the taps ky with (ry + pH - ky*dH) divisible by sH (input row iy = j + offy(ky)), and likewise kx.
// So each phase is a dense stride-1 correlation with a sub-kernel of Ty x Tx taps: an implicit GEMM
//     C[pixels M] x [Cout/G] = A[M x (taps * Cin/G)] * B[(taps * Cin/G) x Cout/G]
// done with a register-tiled micro-kernel (MR pixels in SIMD lanes x NR channels broadcast).
//
// Loops (one task = group g, phase, a range of MR-pixel tiles, a range of NR-channel tiles):
//   for each pixel tile of the task:  pack A (only taps valid for some pixel of the tile; zeros for
//                                     the lanes where a tap falls outside the input)
//   for each channel tile:            B panel (weights, packed once per call for all phases)
//     for each pixel tile:            micro-kernel over the whole reduction (acc in registers,
//                                     bias as initial value) -> output (direct or via a tile buffer)
// Every output element is produced by exactly one tile, with the reduction in a fixed order, so the
// result does not depend on the number of threads or on how tiles are grouped into tasks.
//
// Pixel ordering inside a phase: batch-outer (n, j, i) or, for tiny images, batch-inner (j, i, n),
// so a tile holds few distinct pixels and skips the taps none of them uses.
// Depthwise (Cin/G == 1) has its own path: per output row, vectorised over the phase's pixels.
#include "core/conv_transpose.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>
#include <string>

#include "core/blocking.h"
#include "kernels/kernels.h"
#include "threading/thread_pool.h"

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <immintrin.h>
#include <intrin.h>
#endif

namespace convt {

// ------------------------------------------------------------------------------------------------
// check
// ------------------------------------------------------------------------------------------------
namespace {

constexpr int64_t kMaxParam = (int64_t{1} << 31) - 1;  // every single size/stride/... fits in int32
constexpr int64_t kMaxElements = int64_t{1} << 53;      // exact in a JS number / double

bool mul_ok(int64_t a, int64_t b, int64_t* r) {  // a, b >= 0
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return false;
  *r = a * b;
  return true;
}

bool count_ok(std::initializer_list<int64_t> dims) {
  int64_t r = 1;
  for (int64_t d : dims)
    if (!mul_ok(r, d, &r)) return false;
  return r <= kMaxElements;
}

std::string S(int64_t v) { return std::to_string(v); }

int64_t floordiv(int64_t a, int64_t b) {  // b > 0
  int64_t q = a / b;
  if ((a % b != 0) && (a < 0)) --q;
  return q;
}

}  // namespace

std::string check(const Problem& p) {
  struct NV {
    const char* name;
    int64_t v, min;
  };
  const bool empty_batch = p.N == 0;
  const NV fields[] = {
      {"batch size N", p.N, 0},
      {"input channels Cin", p.Cin, 1},
      {"input height H", p.H, empty_batch ? 0 : 1},
      {"input width W", p.W, empty_batch ? 0 : 1},
      {"output channels Cout", p.Cout, 1},
      {"kernel height kH", p.kH, 1},
      {"kernel width kW", p.kW, 1},
      {"stride sH", p.sH, 1},
      {"stride sW", p.sW, 1},
      {"padding pH", p.pH, 0},
      {"padding pW", p.pW, 0},
      {"dilation dH", p.dH, 1},
      {"dilation dW", p.dW, 1},
      {"groups", p.groups, 1},
      {"output height Hout", p.Hout, empty_batch ? 0 : 1},
      {"output width Wout", p.Wout, empty_batch ? 0 : 1},
  };
  for (const NV& f : fields) {
    if (f.v < f.min) return std::string(f.name) + " must be >= " + S(f.min) + ", got " + S(f.v);
    if (f.v > kMaxParam) return std::string(f.name) + " is too large (" + S(f.v) + " > " + S(kMaxParam) + ")";
  }
  if (p.Cin % p.groups != 0) return "groups (" + S(p.groups) + ") must divide input channels (" + S(p.Cin) + ")";
  if (p.Cout % p.groups != 0)
    return "groups (" + S(p.groups) + ") must divide output channels (" + S(p.Cout) + ")";

  // base = (in-1)*s - 2*pad + d*(k-1) + 1 is the extent with output padding 0; a legal output
  // padding op satisfies 0 <= op < max(s, d). Every term < 2^62 since every parameter < 2^31.
  struct Dim {
    const char* name;
    int64_t in, k, s, pad, d, out;
  };
  const Dim dims[] = {{"height", p.H, p.kH, p.sH, p.pH, p.dH, p.Hout}, {"width", p.W, p.kW, p.sW, p.pW, p.dW, p.Wout}};
  for (const Dim& d : dims) {
    if (d.in == 0) continue;  // only possible with N == 0: nothing is read or written
    const int64_t base = (d.in - 1) * d.s - 2 * d.pad + d.d * (d.k - 1) + 1;
    const int64_t maxop = std::max(d.s, d.d) - 1;
    if (empty_batch && d.out == 0 && base + maxop < 1) continue;
    if (base + maxop < 1)
      return std::string("output ") + d.name + " would be " + S(base) + ", must be >= 1 (padding too large)";
    if (d.out < base || d.out > base + maxop)
      return std::string("output ") + d.name + " " + S(d.out) + " is not in [" + S(base) + ", " + S(base + maxop) +
             "]: the output padding it implies must be >= 0 and smaller than stride or dilation";
    if (d.out < 1) return std::string("output ") + d.name + " must be >= 1, got " + S(d.out);
  }
  if (!count_ok({p.N, p.Cin, p.H, p.W})) return "input has too many elements (more than 2^53)";
  if (!count_ok({p.Cin, p.Cout / p.groups, p.kH, p.kW})) return "weight has too many elements (more than 2^53)";
  if (!count_ok({p.N, p.Cout, p.Hout, p.Wout})) return "output has too many elements (more than 2^53)";
  return std::string();
}

int64_t input_elements(const Problem& p) { return p.N * p.Cin * p.H * p.W; }
int64_t weight_elements(const Problem& p) { return p.Cin * (p.Cout / p.groups) * p.kH * p.kW; }
int64_t output_elements(const Problem& p) { return p.N * p.Cout * p.Hout * p.Wout; }

// ------------------------------------------------------------------------------------------------
// CPU dispatch
// ------------------------------------------------------------------------------------------------
namespace {

struct CpuFeatures {
  bool avx2_fma = false, avx512f = false;
};

CpuFeatures detect_cpu() {
  CpuFeatures f;
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512f = f.avx2_fma && __builtin_cpu_supports("avx512f");
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
  int r[4];
  __cpuid(r, 0);
  const int max_leaf = r[0];
  __cpuid(r, 1);
  const bool osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1, fma = (r[2] >> 12) & 1;
  if (osxsave && avx && max_leaf >= 7) {
    const unsigned long long xcr0 = _xgetbv(0);
    int r7[4];
    __cpuidex(r7, 7, 0);
    const bool ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xE6) == 0xE6;
    f.avx2_fma = ymm_os && fma && ((r7[1] >> 5) & 1);
    f.avx512f = f.avx2_fma && zmm_os && ((r7[1] >> 16) & 1);
  }
#endif
  return f;
}

std::vector<const kernels::KernelSet*> detect_sets() {
  std::vector<const kernels::KernelSet*> v;
  const CpuFeatures f = detect_cpu();
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
  // (the AVX kernel files are only compiled on x86; they return nullptr on 32-bit x86)
  if (f.avx512f && kernels::avx512_kernels()) v.push_back(kernels::avx512_kernels());
  if (f.avx2_fma && kernels::avx2_kernels()) v.push_back(kernels::avx2_kernels());
#else
  (void)f;
#endif
  v.push_back(kernels::portable_kernels());
  return v;
}

const std::vector<const kernels::KernelSet*>& sets() {
  static const std::vector<const kernels::KernelSet*> s = detect_sets();
  return s;
}

std::atomic<const kernels::KernelSet*> g_active{nullptr};

const kernels::KernelSet* active_set() {
  const kernels::KernelSet* k = g_active.load(std::memory_order_acquire);
  return k ? k : sets().front();
}

}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> r;
  for (auto* s : sets()) r.push_back(s->isa);
  return r;
}
std::string active_isa() { return active_set()->isa; }
bool set_isa(const std::string& isa) {
  for (auto* s : sets())
    if (isa == s->isa) {
      g_active.store(s, std::memory_order_release);
      return true;
    }
  return false;
}

// ------------------------------------------------------------------------------------------------
// Scratch memory: per thread, grown on demand and kept (freshly touched memory costs ~3 ms/MiB on
// the target VM, so buffers are reused across calls instead of allocated per call).
// ------------------------------------------------------------------------------------------------
namespace {

class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(raw_); }
  // 64-byte aligned, at least `bytes`; previous contents are not kept.
  void* get(size_t bytes) {
    if (bytes > cap_) {
      std::free(raw_);
      cap_ = std::max(bytes, cap_ + cap_ / 2);
      raw_ = std::malloc(cap_ + 64);
      if (!raw_) {
        cap_ = 0;
        return nullptr;
      }
    }
    return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(raw_) + 63) & ~uintptr_t{63});
  }

 private:
  void* raw_ = nullptr;
  size_t cap_ = 0;
};

enum ScratchSlot { kSlotWeights = 0, kSlotA, kSlotTile, kSlotInfo, kSlotDw, kSlotCount };

void* scratch(int slot, size_t bytes) {
  thread_local Scratch s[kSlotCount];
  void* r = s[slot].get(bytes);
  if (!r) throw std::bad_alloc();
  return r;
}

// ------------------------------------------------------------------------------------------------
// Plan: phases, taps, tile shape
// ------------------------------------------------------------------------------------------------
struct Tap {
  int64_t k;    // kernel index (ky or kx)
  int64_t off;  // input index = phase pixel index + off
};

struct Phase {
  int64_t ry, rx;
  int64_t Hj, Wj;              // phase extent (output rows sH*j+ry < Hout, cols sW*i+rx < Wout)
  std::vector<Tap> ty, tx;     // taps of the phase, in kernel order
  int64_t M = 0, mtiles = 0;   // pixels (all images) and MR-tiles
  int64_t bofs = 0;            // offset of this phase's B block within a group's B block
};

struct Run {  // a run of lanes of one tile that map to consecutive pixels of one row, or to one pixel of consecutive images
  int32_t lane0, len;
  int64_t n, j, i;
  bool batch;  // true: lanes are images n..n+len-1 of pixel (j, i); false: pixels (n, j, i..i+len-1)
};

struct Geometry {
  int64_t Cin_g, Cout_g, HW, CinHW, HWo, CoutHWo;
  std::vector<Phase> phases;
};

Geometry make_geometry(const Problem& p) {
  Geometry g;
  g.Cin_g = p.Cin / p.groups;
  g.Cout_g = p.Cout / p.groups;
  g.HW = p.H * p.W;
  g.CinHW = p.Cin * g.HW;
  g.HWo = p.Hout * p.Wout;
  g.CoutHWo = p.Cout * g.HWo;
  // All sH*sW phases, even those no output pixel has (Hout < sH): the packed weight layout then depends
  // only on channels, kernel, stride, padding and dilation (see PackedWeights).
  for (int64_t ry = 0; ry < p.sH; ++ry)
    for (int64_t rx = 0; rx < p.sW; ++rx) {
      Phase ph;
      ph.ry = ry;
      ph.rx = rx;
      ph.Hj = (p.Hout - ry + p.sH - 1) / p.sH;
      ph.Wj = (p.Wout - rx + p.sW - 1) / p.sW;
      for (int64_t ky = 0; ky < p.kH; ++ky) {
        const int64_t t = ry + p.pH - ky * p.dH;
        if (t - floordiv(t, p.sH) * p.sH == 0) ph.ty.push_back({ky, floordiv(t, p.sH)});
      }
      for (int64_t kx = 0; kx < p.kW; ++kx) {
        const int64_t t = rx + p.pW - kx * p.dW;
        if (t - floordiv(t, p.sW) * p.sW == 0) ph.tx.push_back({kx, floordiv(t, p.sW)});
      }
      g.phases.push_back(std::move(ph));
    }
  return g;
}

// Valid taps of a set of pixels with rows in [jmin, jmax] and columns in [imin, imax]: those whose
// input index lands in range for at least one of them (tap offsets are monotone in the kernel index).
inline bool tap_hits(const Tap& t, int64_t lo, int64_t hi, int64_t extent) {
  return hi + t.off >= 0 && lo + t.off <= extent - 1;
}

// Two ways to feed the micro-kernel its pixel panel (chosen per problem by a cost model):
//  - im2col: per tile, copy the tile's pixels for every valid tap into a packed panel (lda = MR).
//    Exact lanes (tiles may span rows and images), skips taps no pixel of the tile uses; the copy
//    costs taps x Cin/G per pixel, so it suits small images and many output channels.
//  - direct: per task, copy a zero-padded block of input rows/columns once; a tap is then just a
//    shifted window of the block (lda = block plane). Tiles run over the block's padded grid, so the
//    lanes that fall on padding columns are computed and dropped; copy cost Cin/G per pixel.
template <class T>
struct Plan {
  const Problem* p;
  Geometry geo;
  kernels::GemmVariant<T> var;
  bool batch_inner = false;
  bool direct = false;
  int64_t ntile_c = 0;   // channel tiles per group
  int64_t bgroup = 0;    // B elements per group
  int64_t maxK = 0;      // largest taps * Cin_g over phases
  // direct mode: tap offset ranges over all phases, block extents (in phase rows / columns)
  int64_t ymin = 0, ymax = 0, xmin = 0, xmax = 0;
  int64_t R = 1, Cb = 1, maxHj = 0, maxWj = 0;
};

// Lanes of tile [m0, m0 + MR) of a phase (im2col mode), as runs.
template <class T>
int make_runs(const Plan<T>& pl, const Phase& ph, int64_t m0, Run* runs) {
  const int64_t N = pl.p->N, M = ph.M, mr = pl.var.mr;
  const int64_t mend = std::min(M, m0 + mr);
  int nr = 0;
  for (int64_t m = m0; m < mend;) {
    Run r;
    r.lane0 = static_cast<int32_t>(m - m0);
    if (!pl.batch_inner) {
      const int64_t img = ph.Hj * ph.Wj;
      r.n = m / img;
      const int64_t q = m - r.n * img;
      r.j = q / ph.Wj;
      r.i = q - r.j * ph.Wj;
      r.len = static_cast<int32_t>(std::min(ph.Wj - r.i, mend - m));
      r.batch = false;
    } else {
      const int64_t q = m / N;
      r.n = m - q * N;
      r.j = q / ph.Wj;
      r.i = q - r.j * ph.Wj;
      r.len = static_cast<int32_t>(std::min(N - r.n, mend - m));
      r.batch = true;
    }
    runs[nr++] = r;
    m += r.len;
  }
  return nr;
}

// Lanes of a direct-mode tile: positions [q0, q0 + MR) of a block grid of width wblk whose row r is
// phase row j0 + r and column c is phase column i0 + c; only columns c < ncols are real pixels.
inline int make_runs_direct(int64_t q0, int64_t qend, int64_t wblk, int64_t ncols, int64_t n, int64_t j0, int64_t i0,
                            int64_t mr, Run* runs) {
  int nr = 0;
  const int64_t end = std::min(qend, q0 + mr);
  for (int64_t q = q0; q < end;) {
    const int64_t r = q / wblk, c = q - r * wblk;
    if (c >= ncols) {
      q = (r + 1) * wblk;
      continue;
    }
    Run ru;
    ru.lane0 = static_cast<int32_t>(q - q0);
    ru.len = static_cast<int32_t>(std::min(ncols - c, end - q));
    ru.n = n;
    ru.j = j0 + r;
    ru.i = i0 + c;
    ru.batch = false;
    runs[nr++] = ru;
    q += ru.len;
  }
  return nr;
}

struct Bounds {
  int64_t jmin, jmax, imin, imax;
};
Bounds run_bounds(const Run* runs, int nrun) {
  Bounds b{std::numeric_limits<int64_t>::max(), -1, std::numeric_limits<int64_t>::max(), -1};
  for (int r = 0; r < nrun; ++r) {
    b.jmin = std::min(b.jmin, runs[r].j);
    b.jmax = std::max(b.jmax, runs[r].j);
    b.imin = std::min(b.imin, runs[r].i);
    b.imax = std::max(b.imax, runs[r].i + (runs[r].batch ? 0 : runs[r].len - 1));
  }
  return b;
}

// Rough efficiency of a tile shape: low-NR tiles are load-bound (measured: NR 1 ~0.5, 2-3 ~0.75).
inline double tile_eff(int64_t nr) { return nr >= 4 ? 1.0 : nr >= 2 ? 0.75 : 0.5; }

// Cost, in lane multiply-adds: im2col mode (exact tap counting for small phases) + its copying.
template <class T>
double cost_im2col(Plan<T>& pl) {
  const Problem& p = *pl.p;
  const int64_t mr = pl.var.mr, nr = pl.var.nr;
  const int64_t ntile_c = (pl.geo.Cout_g + nr - 1) / nr;
  std::vector<Run> runs(static_cast<size_t>(mr));
  double steps = 0, copied = 0;
  for (Phase& ph : pl.geo.phases) {
    ph.M = p.N * ph.Hj * ph.Wj;
    ph.mtiles = (ph.M + mr - 1) / mr;
    const int64_t T_all = static_cast<int64_t>(ph.ty.size() * ph.tx.size());
    if (ph.M > blocking::kExactCostMaxPixels) {
      steps += static_cast<double>(ph.mtiles) * static_cast<double>(T_all * pl.geo.Cin_g + 4);
      copied += static_cast<double>(ph.mtiles * mr) * static_cast<double>(T_all * pl.geo.Cin_g);
      continue;
    }
    for (int64_t mt = 0; mt < ph.mtiles; ++mt) {
      const int nrun = make_runs(pl, ph, mt * mr, runs.data());
      const Bounds b = run_bounds(runs.data(), nrun);
      int64_t cy = 0, cx = 0;
      for (const Tap& t : ph.ty) cy += tap_hits(t, b.jmin, b.jmax, p.H);
      for (const Tap& t : ph.tx) cx += tap_hits(t, b.imin, b.imax, p.W);
      steps += static_cast<double>(cy * cx * pl.geo.Cin_g + 4);  // +4: per-tile store/overhead
      copied += static_cast<double>(cy * cx * pl.geo.Cin_g * mr) * (pl.batch_inner ? 2.0 : 1.0);
    }
  }
  return steps * static_cast<double>(ntile_c * nr * mr) / tile_eff(nr) + blocking::kCopyCost * copied;
}

// Direct mode: fixes the block extents (from the cache budget only, never from the thread count, so
// the tiling and hence the result bytes do not depend on it) and returns its cost.
template <class T>
double cost_direct(Plan<T>& pl) {
  const Problem& p = *pl.p;
  const Geometry& geo = pl.geo;
  const int64_t mr = pl.var.mr, nr = pl.var.nr;
  const int64_t ntile_c = (geo.Cout_g + nr - 1) / nr;
  bool first = true;
  pl.maxHj = pl.maxWj = 0;
  for (const Phase& ph : geo.phases) {
    pl.maxHj = std::max(pl.maxHj, ph.Hj);
    pl.maxWj = std::max(pl.maxWj, ph.Wj);
    for (const Tap& t : ph.ty) {
      pl.ymin = first ? t.off : std::min(pl.ymin, t.off);
      pl.ymax = first ? t.off : std::max(pl.ymax, t.off);
      first = false;
    }
  }
  first = true;
  for (const Phase& ph : geo.phases)
    for (const Tap& t : ph.tx) {
      pl.xmin = first ? t.off : std::min(pl.xmin, t.off);
      pl.xmax = first ? t.off : std::max(pl.xmax, t.off);
      first = false;
    }
  const int64_t yspan = pl.ymax - pl.ymin, xspan = pl.xmax - pl.xmin;
  // Column block: whole rows unless a single row block overflows the budget.
  const int64_t row_bytes = geo.Cin_g * int64_t(sizeof(T));
  const int64_t budget = blocking::kABlockBytes;
  int64_t Cb = pl.maxWj;
  if (row_bytes * (1 + yspan) * (Cb + xspan) > budget) {
    Cb = std::max<int64_t>(budget / (row_bytes * (1 + yspan)) - xspan, mr);
    Cb = std::max<int64_t>(mr, Cb / mr * mr);
    Cb = std::min(Cb, pl.maxWj);
  }
  const int64_t wblk = Cb + xspan;
  int64_t R = std::max<int64_t>(1, budget / (row_bytes * wblk) - yspan);
  R = std::min(R, pl.maxHj);
  pl.R = R;
  pl.Cb = Cb;
  double lanes = 0, copied = 0;
  for (int64_t j0 = 0; j0 < pl.maxHj; j0 += R)
    for (int64_t i0 = 0; i0 < pl.maxWj; i0 += Cb) {
      copied += static_cast<double>((std::min(R, pl.maxHj - j0) + yspan) * wblk * geo.Cin_g);
      for (const Phase& ph : geo.phases) {
        const int64_t rows = std::min(ph.Hj, j0 + R) - j0, cols = std::min(ph.Wj, i0 + Cb) - i0;
        if (rows <= 0 || cols <= 0) continue;
        const int64_t q = (rows - 1) * wblk + cols;
        const int64_t K = static_cast<int64_t>(ph.ty.size() * ph.tx.size()) * geo.Cin_g;
        lanes += static_cast<double>((q + mr - 1) / mr * mr) * static_cast<double>(K + 4);
      }
    }
  return static_cast<double>(p.N) *
         (lanes * static_cast<double>(ntile_c * nr) / tile_eff(nr) + blocking::kCopyCost * copied);
}

std::atomic<int> g_force_mode{-1};

// forced_nr > 0: only tile shapes with that many channels (weights packed earlier for it).
template <class T>
Plan<T> make_plan(const Problem& p, const kernels::TypedSet<T>& ks, int forced_nr = 0) {
  const int forced = g_force_mode.load(std::memory_order_relaxed);
  Plan<T> best;
  best.p = &p;
  best.geo = make_geometry(p);
  double best_cost = -1;
  bool any_small = false;
  for (const Phase& ph : best.geo.phases) any_small |= ph.Hj * ph.Wj < blocking::kBatchInnerMaxPhasePixels;
  for (int mode = 0; mode < 3; ++mode) {  // 0: im2col batch-outer, 1: im2col batch-inner, 2: direct
    if (forced >= 0 ? mode != forced : (mode == 1 && (p.N <= 1 || !any_small))) continue;
    for (int v = 0; v < kernels::kMaxVariants && ks.gemm[v].fn; ++v) {
      if (forced_nr > 0 && ks.gemm[v].nr != forced_nr) continue;
      Plan<T> cand;
      cand.p = &p;
      cand.geo = best.geo;
      cand.var = ks.gemm[v];
      cand.batch_inner = mode == 1;
      cand.direct = mode == 2;
      const double c = cand.direct ? cost_direct(cand) : cost_im2col(cand);
      if (best_cost < 0 || c < best_cost) {
        best_cost = c;
        Geometry g = std::move(cand.geo);
        best = cand;
        best.geo = std::move(g);
      }
    }
  }
  const int64_t mr = best.var.mr, nr = best.var.nr;
  best.ntile_c = (best.geo.Cout_g + nr - 1) / nr;
  int64_t ofs = 0;
  for (Phase& ph : best.geo.phases) {
    ph.M = p.N * ph.Hj * ph.Wj;
    ph.mtiles = (ph.M + mr - 1) / mr;
    ph.bofs = ofs;
    const int64_t K = static_cast<int64_t>(ph.ty.size() * ph.tx.size()) * best.geo.Cin_g;
    ofs += best.ntile_c * K * nr;
    best.maxK = std::max(best.maxK, K);
  }
  best.bgroup = ofs;
  return best;
}

// ------------------------------------------------------------------------------------------------
// Weight packing: for group g, phase, channel tile ct: [tap (ty, tx)][ci][NR] (zero-padded channels)
// ------------------------------------------------------------------------------------------------
template <class T>
void pack_b_unit(const Plan<T>& pl, const T* w, T* B, int64_t g, const Phase& ph, int64_t ct) {
  const Problem& p = *pl.p;
  const int64_t nr = pl.var.nr, Cin_g = pl.geo.Cin_g, Cout_g = pl.geo.Cout_g;
  const int64_t K = static_cast<int64_t>(ph.ty.size() * ph.tx.size()) * Cin_g;
  T* dst = B + g * pl.bgroup + ph.bofs + ct * K * nr;
  const int64_t co0 = ct * nr, nc = std::min(nr, Cout_g - co0);
  const int64_t kHW = p.kH * p.kW;
  for (const Tap& ty : ph.ty)
    for (const Tap& tx : ph.tx) {
      const int64_t tap = ty.k * p.kW + tx.k;
      for (int64_t ci = 0; ci < Cin_g; ++ci) {
        const T* src = w + ((g * Cin_g + ci) * Cout_g + co0) * kHW + tap;
        int64_t c = 0;
        for (; c < nc; ++c) dst[c] = src[c * kHW];
        for (; c < nr; ++c) dst[c] = T(0);
        dst += nr;
      }
    }
}

// ------------------------------------------------------------------------------------------------
// The GEMM driver
// ------------------------------------------------------------------------------------------------
struct TileInfo {
  int32_t nseg;        // valid taps
  int32_t run0, nrun;  // lanes -> pixels
  int32_t seg0;        // first entry in the task's segment arrays (A pointers, B offsets)
  int32_t phase;
};

struct Task {
  int64_t g, phase_or_n;  // im2col: phase; direct: image
  int64_t a0, a1;         // im2col: tile range; direct: phase rows [a0, a1)
  int64_t b0, b1;         // direct: phase columns [b0, b1)
  int64_t ct0, ct1;       // channel tiles
};

template <class T>
struct GemmCtx {
  const Plan<T>* pl;
  const T* x;
  const T* B;
  const T* biasp;  // padded bias, G * ntile_c * NR
  T* y;
};

// Per-task scratch: tile infos, runs, segment A pointers and B offsets.
template <class T>
struct TaskScratch {
  TileInfo* infos;
  Run* runs;
  const T** aptr;
  int64_t* boff;
  T* ctile;
};

template <class T>
TaskScratch<T> task_scratch(int64_t ntiles, int64_t mr, int64_t nr, int64_t nseg_max) {
  const size_t a = static_cast<size_t>(ntiles) * sizeof(TileInfo);
  const size_t b = static_cast<size_t>(ntiles * mr) * sizeof(Run);
  const size_t c = static_cast<size_t>(ntiles * nseg_max) * sizeof(T*);
  const size_t d = static_cast<size_t>(ntiles * nseg_max) * sizeof(int64_t);
  const size_t e = static_cast<size_t>(mr * nr) * sizeof(T);
  auto up = [](size_t v) { return (v + 63) & ~size_t{63}; };
  char* m = static_cast<char*>(scratch(kSlotInfo, up(a) + up(b) + up(c) + up(d) + up(e)));
  TaskScratch<T> s;
  s.infos = reinterpret_cast<TileInfo*>(m);
  s.runs = reinterpret_cast<Run*>(m + up(a));
  s.aptr = reinterpret_cast<const T**>(m + up(a) + up(b));
  s.boff = reinterpret_cast<int64_t*>(m + up(a) + up(b) + up(c));
  s.ctile = reinterpret_cast<T*>(m + up(a) + up(b) + up(c) + up(d));
  return s;
}

// Runs the micro-kernel over the task's tiles for its channel tiles and writes the output.
template <class T>
void compute_tiles(const GemmCtx<T>& c, const Task& tk, const TaskScratch<T>& s, int64_t ntiles, int64_t lda) {
  const Plan<T>& pl = *c.pl;
  const Problem& p = *pl.p;
  const Geometry& geo = pl.geo;
  const int64_t mr = pl.var.mr, nr = pl.var.nr, Cin_g = geo.Cin_g, Cout_g = geo.Cout_g;
  const kernels::GemmFn<T> fn = pl.var.fn;
  for (int64_t ct = tk.ct0; ct < tk.ct1; ++ct) {
    const T* bias = c.biasp + (tk.g * pl.ntile_c + ct) * nr;
    const int64_t co0 = ct * nr, nc = std::min(nr, Cout_g - co0);
    const int64_t cog0 = tk.g * Cout_g + co0;  // absolute output channel of the tile's first channel
    for (int64_t t = 0; t < ntiles; ++t) {
      const TileInfo& ti = s.infos[t];
      if (ti.nrun == 0) continue;
      const Phase& ph = geo.phases[static_cast<size_t>(ti.phase)];
      const int64_t K = static_cast<int64_t>(ph.ty.size() * ph.tx.size()) * Cin_g;
      const T* Bp = c.B + tk.g * pl.bgroup + ph.bofs + ct * K * nr;
      const Run* tr = s.runs + ti.run0;
      const Run& r0 = tr[0];
      if (p.sW == 1 && ti.nrun == 1 && !r0.batch && r0.len == mr && nc == nr) {
        T* dst = c.y + (r0.n * p.Cout + cog0) * geo.HWo + (p.sH * r0.j + ph.ry) * p.Wout + r0.i;
        fn(Cin_g, ti.nseg, s.aptr + ti.seg0, lda, Bp, s.boff + ti.seg0, bias, dst, geo.HWo);
        continue;
      }
      fn(Cin_g, ti.nseg, s.aptr + ti.seg0, lda, Bp, s.boff + ti.seg0, bias, s.ctile, mr);
      for (int r = 0; r < ti.nrun; ++r) {
        const Run& ru = tr[r];
        const int64_t oy = p.sH * ru.j + ph.ry, ox = p.sW * ru.i + ph.rx;
        T* dst = c.y + (ru.n * p.Cout + cog0) * geo.HWo + oy * p.Wout + ox;
        if (ru.batch) {
          for (int64_t cc = 0; cc < nc; ++cc) {
            const T* sp = s.ctile + cc * mr + ru.lane0;
            T* d = dst + cc * geo.HWo;
            for (int32_t l = 0; l < ru.len; ++l) d[l * geo.CoutHWo] = sp[l];
          }
        } else if (p.sW == 1) {
          for (int64_t cc = 0; cc < nc; ++cc)
            std::memcpy(dst + cc * geo.HWo, s.ctile + cc * mr + ru.lane0, static_cast<size_t>(ru.len) * sizeof(T));
        } else {
          const int64_t sw = p.sW;
          for (int64_t cc = 0; cc < nc; ++cc) {
            const T* sp = s.ctile + cc * mr + ru.lane0;
            T* d = dst + cc * geo.HWo;
            for (int32_t l = 0; l < ru.len; ++l) d[l * sw] = sp[l];
          }
        }
      }
    }
  }
}

template <class T>
void run_task_im2col(const GemmCtx<T>& c, const Task& tk) {
  const Plan<T>& pl = *c.pl;
  const Problem& p = *pl.p;
  const Geometry& geo = pl.geo;
  const Phase& ph = geo.phases[static_cast<size_t>(tk.phase_or_n)];
  const int64_t mr = pl.var.mr, Cin_g = geo.Cin_g;
  const int64_t ntx = static_cast<int64_t>(ph.tx.size());
  const int64_t ntaps = static_cast<int64_t>(ph.ty.size()) * ntx;
  const int64_t ntiles = tk.a1 - tk.a0;
  T* A = static_cast<T*>(scratch(kSlotA, static_cast<size_t>(std::max<int64_t>(1, ntiles * ntaps * Cin_g * mr)) * sizeof(T)));
  const TaskScratch<T> s = task_scratch<T>(ntiles, mr, pl.var.nr, std::max<int64_t>(1, ntaps));
  const T* xg = c.x + tk.g * Cin_g * geo.HW;  // channel 0 of the group, image 0

  struct RunSrc {
    const T* src;    // element for ci = 0, lane 0 of the run (may point outside; only [lo,hi) used)
    int32_t lo, hi;  // lanes [lo, hi) of the run are valid for this tap
  };
  RunSrc rs[256];  // runs per tile <= mr <= 256
  int64_t aofs = 0;
  int32_t nrun_total = 0, nseg_total = 0;
  for (int64_t t = 0; t < ntiles; ++t) {
    TileInfo& ti = s.infos[t];
    Run* tr = s.runs + nrun_total;
    const int nrun = make_runs(pl, ph, (tk.a0 + t) * mr, tr);
    const int64_t used = tr[nrun - 1].lane0 + tr[nrun - 1].len;
    const Bounds b = run_bounds(tr, nrun);
    ti.phase = static_cast<int32_t>(tk.phase_or_n);
    ti.run0 = nrun_total;
    ti.nrun = nrun;
    ti.seg0 = nseg_total;
    int32_t nseg = 0;
    for (size_t iy = 0; iy < ph.ty.size(); ++iy) {
      const Tap& ty = ph.ty[iy];
      if (!tap_hits(ty, b.jmin, b.jmax, p.H)) continue;
      for (size_t ix = 0; ix < ph.tx.size(); ++ix) {
        const Tap& tx = ph.tx[ix];
        if (!tap_hits(tx, b.imin, b.imax, p.W)) continue;
        T* a = A + aofs;
        s.aptr[nseg_total + nseg] = a;
        s.boff[nseg_total + nseg] = (static_cast<int64_t>(iy) * ntx + static_cast<int64_t>(ix)) * Cin_g * pl.var.nr;
        ++nseg;
        aofs += Cin_g * mr;
        for (int r = 0; r < nrun; ++r) {
          const Run& ru = tr[r];
          const int64_t iy_in = ru.j + ty.off, ix_in = ru.i + tx.off;
          RunSrc& q = rs[r];
          if (iy_in < 0 || iy_in >= p.H) {
            q.lo = q.hi = 0;
            q.src = xg;
          } else if (ru.batch) {
            const bool ok = ix_in >= 0 && ix_in < p.W;
            q.lo = 0;
            q.hi = ok ? ru.len : 0;
            q.src = xg + ru.n * geo.CinHW + iy_in * p.W + (ok ? ix_in : 0);
          } else {
            q.lo = static_cast<int32_t>(std::min<int64_t>(ru.len, std::max<int64_t>(0, -ix_in)));
            q.hi = static_cast<int32_t>(std::max<int64_t>(q.lo, std::min<int64_t>(ru.len, p.W - ix_in)));
            q.src = xg + ru.n * geo.CinHW + iy_in * p.W + ix_in;  // lane l reads src[l] (l in [lo,hi))
          }
        }
        for (int64_t ci = 0; ci < Cin_g; ++ci) {
          const int64_t cofs = ci * geo.HW;
          for (int r = 0; r < nrun; ++r) {
            const Run& ru = tr[r];
            const RunSrc& q = rs[r];
            T* d = a + ru.lane0;
            int32_t l = 0;
            for (; l < q.lo; ++l) d[l] = T(0);
            const T* src = q.src + cofs;
            if (ru.batch) {
              for (; l < q.hi; ++l) d[l] = src[l * geo.CinHW];
            } else {
              for (; l < q.hi; ++l) d[l] = src[l];
            }
            for (; l < ru.len; ++l) d[l] = T(0);
          }
          for (int64_t l = used; l < mr; ++l) a[l] = T(0);
          a += mr;
        }
      }
    }
    ti.nseg = nseg;
    nseg_total += nseg;
    nrun_total += nrun;
  }
  compute_tiles(c, tk, s, ntiles, mr);
}

template <class T>
void run_task_direct(const GemmCtx<T>& c, const Task& tk) {
  const Plan<T>& pl = *c.pl;
  const Problem& p = *pl.p;
  const Geometry& geo = pl.geo;
  const int64_t mr = pl.var.mr, Cin_g = geo.Cin_g, n = tk.phase_or_n;
  const int64_t j0 = tk.a0, i0 = tk.b0;
  const int64_t rows = tk.a1 - tk.a0, cols = tk.b1 - tk.b0;
  const int64_t brows = rows + pl.ymax - pl.ymin, wblk = cols + pl.xmax - pl.xmin;
  const int64_t plane = brows * wblk;

  // 1. zero-padded input block: row r <-> input row j0 + ymin + r, column q <-> input column i0 + xmin + q
  const size_t slack = static_cast<size_t>(mr + 64);
  T* blk = static_cast<T*>(scratch(kSlotA, (static_cast<size_t>(Cin_g * plane) + slack) * sizeof(T)));
  const T* xs = c.x + (n * p.Cin + tk.g * Cin_g) * geo.HW;
  const int64_t ix0 = i0 + pl.xmin;
  const int64_t lo = std::min(wblk, std::max<int64_t>(0, -ix0)), hi = std::max(lo, std::min(wblk, p.W - ix0));
  for (int64_t ci = 0; ci < Cin_g; ++ci) {
    T* d = blk + ci * plane;
    for (int64_t r = 0; r < brows; ++r, d += wblk) {
      const int64_t iy = j0 + pl.ymin + r;
      if (iy < 0 || iy >= p.H || hi == lo) {
        std::memset(d, 0, static_cast<size_t>(wblk) * sizeof(T));
        continue;
      }
      if (lo > 0) std::memset(d, 0, static_cast<size_t>(lo) * sizeof(T));
      std::memcpy(d + lo, xs + ci * geo.HW + iy * p.W + ix0 + lo, static_cast<size_t>(hi - lo) * sizeof(T));
      if (hi < wblk) std::memset(d + hi, 0, static_cast<size_t>(wblk - hi) * sizeof(T));
    }
  }
  std::memset(blk + Cin_g * plane, 0, slack * sizeof(T));  // junk lanes of the last tiles read here

  // 2. tiles of every phase over the block grid
  int64_t ntiles = 0, maxtaps = 1;
  for (const Phase& ph : geo.phases) {
    const int64_t pr = std::min(ph.Hj, j0 + rows) - j0, pc = std::min(ph.Wj, i0 + cols) - i0;
    if (pr > 0 && pc > 0) ntiles += ((pr - 1) * wblk + pc + mr - 1) / mr;
    maxtaps = std::max<int64_t>(maxtaps, static_cast<int64_t>(ph.ty.size() * ph.tx.size()));
  }
  const TaskScratch<T> s = task_scratch<T>(ntiles, mr, pl.var.nr, maxtaps);
  int64_t t = 0;
  int32_t nrun_total = 0, nseg_total = 0;
  for (size_t phi = 0; phi < geo.phases.size(); ++phi) {
    const Phase& ph = geo.phases[phi];
    const int64_t pr = std::min(ph.Hj, j0 + rows) - j0, pc = std::min(ph.Wj, i0 + cols) - i0;
    if (pr <= 0 || pc <= 0) continue;
    const int64_t qend = (pr - 1) * wblk + pc;
    const int64_t ntx = static_cast<int64_t>(ph.tx.size());
    for (int64_t q0 = 0; q0 < qend; q0 += mr, ++t) {
      TileInfo& ti = s.infos[t];
      Run* tr = s.runs + nrun_total;
      const int nrun = make_runs_direct(q0, qend, wblk, pc, n, j0, i0, mr, tr);
      ti.phase = static_cast<int32_t>(phi);
      ti.run0 = nrun_total;
      ti.nrun = nrun;
      ti.seg0 = nseg_total;
      ti.nseg = 0;
      if (nrun == 0) continue;  // every lane on padding columns: nothing to compute
      const Bounds b = run_bounds(tr, nrun);
      int32_t nseg = 0;
      for (size_t iy = 0; iy < ph.ty.size(); ++iy) {
        const Tap& ty = ph.ty[iy];
        if (!tap_hits(ty, b.jmin, b.jmax, p.H)) continue;
        for (size_t ix = 0; ix < ph.tx.size(); ++ix) {
          const Tap& tx = ph.tx[ix];
          if (!tap_hits(tx, b.imin, b.imax, p.W)) continue;
          s.aptr[nseg_total + nseg] = blk + (ty.off - pl.ymin) * wblk + (tx.off - pl.xmin) + q0;
          s.boff[nseg_total + nseg] = (static_cast<int64_t>(iy) * ntx + static_cast<int64_t>(ix)) * Cin_g * pl.var.nr;
          ++nseg;
        }
      }
      ti.nseg = nseg;
      nseg_total += nseg;
      nrun_total += nrun;
    }
  }
  compute_tiles(c, tk, s, ntiles, plane);
}

// Packs B for plan pl (all groups, phases, channel tiles) into B (pl.p->groups * pl.bgroup elements).
// Units = (group, channel tile), all phases of a unit together so that the unit's weight slice
// (Cin/G x NR x kH x kW) is read from memory once and from L2 for the later phases.
template <class T>
void pack_b(const Plan<T>& pl, const T* w, T* B, int threads) {
  const Problem& p = *pl.p;
  const int64_t units = p.groups * pl.ntile_c;
  auto pack_unit = [&](int64_t u) {
    const int64_t ct = u % pl.ntile_c, g = u / pl.ntile_c;
    for (const Phase& ph : pl.geo.phases) pack_b_unit(pl, w, B, g, ph, ct);
  };
  threading::parallel_for(units, weight_elements(p) >= blocking::kParallelPackMinElements ? threads : 1, pack_unit);
}

// B == nullptr: pack the weights w now, into the caller's scratch; otherwise B holds them packed for
// a plan with the same tile shape.
template <class T>
void gemm_path(const Problem& p, const T* x, const T* w, const T* Bpre, int forced_nr, const T* bias, T* y,
               int threads, const kernels::TypedSet<T>& ks) {
  Plan<T> pl = make_plan(p, ks, forced_nr);
  const Geometry& geo = pl.geo;
  const int64_t mr = pl.var.mr, nr = pl.var.nr;

  // Packed weights + padded bias in the caller's scratch (reused across calls).
  const int64_t belems = Bpre ? 0 : p.groups * pl.bgroup;
  const int64_t bias_elems = p.groups * pl.ntile_c * nr;
  T* mem = static_cast<T*>(scratch(kSlotWeights, static_cast<size_t>(belems + bias_elems + 16) * sizeof(T)));
  T* biasp = mem + belems;
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t c = 0; c < pl.ntile_c * nr; ++c)
      biasp[g * pl.ntile_c * nr + c] = (bias && c < geo.Cout_g) ? bias[g * geo.Cout_g + c] : T(0);

  const double flops = 2.0 * static_cast<double>(p.N) * static_cast<double>(p.Cin) * static_cast<double>(p.H * p.W) *
                       static_cast<double>(geo.Cout_g) * static_cast<double>(p.kH * p.kW);
  if (flops < static_cast<double>(blocking::kParallelMinFlops)) threads = 1;

  const int64_t nph = static_cast<int64_t>(geo.phases.size());
  const T* B = Bpre;
  if (!B) {
    pack_b(pl, w, mem, threads);
    B = mem;
  }

  // Tasks. The tiling is fixed by the plan; the thread count only changes how tiles are grouped.
  const int64_t target = int64_t{threads} * blocking::kTasksPerThread;
  const int64_t max_tasks = std::max<int64_t>(1, static_cast<int64_t>(flops / static_cast<double>(blocking::kMinTaskFlops)));
  const int64_t want = threads > 1 ? std::min(target, max_tasks) : 1;
  std::vector<Task> tasks;
  if (pl.direct) {
    const int64_t nrb = (pl.maxHj + pl.R - 1) / pl.R, ncb = (pl.maxWj + pl.Cb - 1) / pl.Cb;
    const int64_t blocks = p.groups * p.N * nrb * ncb;
    int64_t ct_per = pl.ntile_c;
    while (blocks * ((pl.ntile_c + ct_per - 1) / ct_per) < want && ct_per > 1) ct_per = (ct_per + 1) / 2;
    tasks.reserve(static_cast<size_t>(blocks * ((pl.ntile_c + ct_per - 1) / ct_per)));
    for (int64_t g = 0; g < p.groups; ++g)
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t j0 = 0; j0 < pl.maxHj; j0 += pl.R)
          for (int64_t i0 = 0; i0 < pl.maxWj; i0 += pl.Cb)
            for (int64_t ct = 0; ct < pl.ntile_c; ct += ct_per)
              tasks.push_back({g, n, j0, std::min(pl.maxHj, j0 + pl.R), i0, std::min(pl.maxWj, i0 + pl.Cb), ct,
                               std::min(pl.ntile_c, ct + ct_per)});
  } else {
    int64_t mt_per =
        std::max<int64_t>(1, blocking::kABlockBytes / std::max<int64_t>(1, pl.maxK * mr * int64_t(sizeof(T))));
    int64_t ct_per = pl.ntile_c;
    auto count_tasks = [&](int64_t mtp, int64_t ctp) {
      int64_t k = 0;
      for (const Phase& ph : geo.phases) k += ((ph.mtiles + mtp - 1) / mtp) * ((pl.ntile_c + ctp - 1) / ctp);
      return k * p.groups;
    };
    while (count_tasks(mt_per, ct_per) < want && mt_per > 1) mt_per = (mt_per + 1) / 2;
    while (count_tasks(mt_per, ct_per) < want && ct_per > 1) ct_per = (ct_per + 1) / 2;
    tasks.reserve(static_cast<size_t>(count_tasks(mt_per, ct_per)));
    for (int64_t g = 0; g < p.groups; ++g)
      for (int64_t ph = 0; ph < nph; ++ph) {
        const Phase& P = geo.phases[static_cast<size_t>(ph)];
        for (int64_t mt = 0; mt < P.mtiles; mt += mt_per)
          for (int64_t ct = 0; ct < pl.ntile_c; ct += ct_per)
            tasks.push_back({g, ph, mt, std::min(P.mtiles, mt + mt_per), 0, 0, ct, std::min(pl.ntile_c, ct + ct_per)});
      }
  }
  GemmCtx<T> ctx{&pl, x, B, biasp, y};
  if (pl.direct)
    threading::parallel_for(static_cast<int64_t>(tasks.size()), threads,
                            [&](int64_t t) { run_task_direct(ctx, tasks[static_cast<size_t>(t)]); });
  else
    threading::parallel_for(static_cast<int64_t>(tasks.size()), threads,
                            [&](int64_t t) { run_task_im2col(ctx, tasks[static_cast<size_t>(t)]); });
}


}  // namespace

void force_plan_mode_for_testing(int mode) { g_force_mode.store(mode < 0 || mode > 2 ? -1 : mode); }

std::string describe_plan(const Problem& p) {
  if (!check(p).empty()) return "invalid problem";
  if (p.Cin / p.groups == 1) return "depthwise";
  const Plan<float> pl = make_plan(p, active_set()->f32);
  std::string s = pl.direct ? "direct" : pl.batch_inner ? "im2col-batch-inner" : "im2col";
  s += " tile " + std::to_string(pl.var.mr) + "x" + std::to_string(pl.var.nr);
  if (pl.direct) s += " block rows " + std::to_string(pl.R) + " cols " + std::to_string(pl.Cb);
  return s;
}

namespace {

// ------------------------------------------------------------------------------------------------
// Depthwise path (Cin/G == 1): out[n, co] = bias + sum_taps x[n, g] * w[g, co % Cout_g]; no reduction
// over channels. Per output row and x phase: interior pixels (every x tap in range) go through the
// vectorised row kernel, the few border pixels through a scalar loop.
// ------------------------------------------------------------------------------------------------
template <class T>
void depthwise_path(const Problem& p, const T* x, const T* w, const T* bias, T* y, int threads,
                    const kernels::TypedSet<T>& ks) {
  const Geometry geo = make_geometry(p);
  const int64_t Cout_g = geo.Cout_g, kHW = p.kH * p.kW;
  const int64_t rows_per = blocking::kDepthwiseRowsPerTask;
  const int64_t rblocks = (p.Hout + rows_per - 1) / rows_per;
  const int64_t ntasks = p.N * p.Cout * rblocks;
  const double flops = 2.0 * static_cast<double>(p.N * p.Cout) * static_cast<double>(p.H * p.W) * static_cast<double>(kHW);
  if (flops < static_cast<double>(blocking::kParallelMinFlops)) threads = 1;
  const int64_t nph_x = std::min(p.sW, p.Wout);
  int64_t maxWj = 0, maxtaps = 0;
  for (const Phase& ph : geo.phases) {
    maxWj = std::max(maxWj, ph.Wj);
    maxtaps = std::max<int64_t>(maxtaps, static_cast<int64_t>(ph.ty.size() * ph.tx.size()));
  }
  // one accumulator row per x phase; a multiple of 16 elements, so the pointer array placed after
  // the rows stays 64-byte aligned
  const int64_t accw = (maxWj + 16 + 15) / 16 * 16;
  auto task = [&](int64_t t) {
    const int64_t rb = t % rblocks, nc = t / rblocks, co = nc % p.Cout, n = nc / p.Cout, g = co / Cout_g;
    const T* xp = x + (n * p.Cin + g) * geo.HW;
    const T* wp = w + (g * Cout_g + (co % Cout_g)) * kHW;
    T* yp = y + nc * geo.HWo;
    const T b = bias ? bias[co] : T(0);
    char* mem = static_cast<char*>(scratch(kSlotDw, static_cast<size_t>(accw * nph_x) * sizeof(T) +
                                                         static_cast<size_t>(maxtaps + 4) * (sizeof(T*) + sizeof(T))));
    T* accs = reinterpret_cast<T*>(mem);
    const T** src = reinterpret_cast<const T**>(mem + static_cast<size_t>(accw * nph_x) * sizeof(T));
    T* wt = reinterpret_cast<T*>(mem + static_cast<size_t>(accw * nph_x) * sizeof(T) + static_cast<size_t>(maxtaps + 4) * sizeof(T*));
    for (int64_t oy = rb * rows_per; oy < std::min(p.Hout, (rb + 1) * rows_per); ++oy) {
      const int64_t ry = oy % p.sH, j = oy / p.sH;
      for (int64_t rx = 0; rx < nph_x; ++rx) {
        const Phase& ph = geo.phases[static_cast<size_t>(ry * p.sW + rx)];
        const int64_t Wj = ph.Wj;
        T* acc = accs + rx * accw;
        // interior: i in [ilo, ihi) where every x tap is inside the input
        int64_t ilo = 0, ihi = Wj;
        for (const Tap& tx : ph.tx) {
          ilo = std::max(ilo, -tx.off);
          ihi = std::min(ihi, p.W - tx.off);
        }
        if (ihi < ilo) ihi = ilo = std::min(ilo, Wj);
        for (int64_t i = 0; i < Wj; ++i) acc[i] = T(0);
        int ntap = 0;
        for (const Tap& ty : ph.ty) {
          const int64_t iy = j + ty.off;
          if (iy < 0 || iy >= p.H) continue;
          const T* xr = xp + iy * p.W;
          for (const Tap& tx : ph.tx) {
            const T wv = wp[ty.k * p.kW + tx.k];
            // borders, scalar
            for (int64_t i = 0; i < ilo; ++i) {
              const int64_t ix = i + tx.off;
              if (ix >= 0 && ix < p.W) acc[i] += wv * xr[ix];
            }
            for (int64_t i = ihi; i < Wj; ++i) {
              const int64_t ix = i + tx.off;
              if (ix >= 0 && ix < p.W) acc[i] += wv * xr[ix];
            }
            src[ntap] = xr + ilo + tx.off;
            wt[ntap] = wv;
            ++ntap;
          }
        }
        if (ihi > ilo && ntap > 0) ks.dw_row(acc + ilo, src, wt, ntap, ihi - ilo);
      }
      // write the output row once, phases interleaved
      T* dst = yp + oy * p.Wout;
      if (nph_x == 1) {
        for (int64_t i = 0; i < p.Wout; ++i) dst[i] = b + accs[i];
      } else if (nph_x == 2) {
        const T* a0 = accs;
        const T* a1 = accs + accw;
        const int64_t half = p.Wout / 2;
        for (int64_t i = 0; i < half; ++i) {
          dst[2 * i] = b + a0[i];
          dst[2 * i + 1] = b + a1[i];
        }
        if (p.Wout & 1) dst[p.Wout - 1] = b + a0[half];
      } else {
        for (int64_t ox = 0; ox < p.Wout; ++ox) dst[ox] = b + accs[(ox % p.sW) * accw + ox / p.sW];
      }
    }
  };
  threading::parallel_for(ntasks, threads, task);
}

const kernels::TypedSet<float>& typed(const kernels::KernelSet& k, float*) { return k.f32; }
const kernels::TypedSet<double>& typed(const kernels::KernelSet& k, double*) { return k.f64; }

template <class T>
void run(const Problem& p, const T* x, const T* w, const T* Bpre, int forced_nr, const kernels::KernelSet* ks,
         const T* bias, T* y, int threads) {
  if (output_elements(p) == 0) return;
  if (threads < 1) threads = 1;
  const kernels::TypedSet<T>& ts = typed(*ks, static_cast<T*>(nullptr));
  if (p.Cin / p.groups == 1)
    depthwise_path(p, x, w, bias, y, threads, ts);
  else
    gemm_path(p, x, w, Bpre, forced_nr, bias, y, threads, ts);
}

bool same_weight_geometry(const Problem& a, const Problem& b) {
  return a.Cin == b.Cin && a.Cout == b.Cout && a.groups == b.groups && a.kH == b.kH && a.kW == b.kW && a.sH == b.sH &&
         a.sW == b.sW && a.pH == b.pH && a.pW == b.pW && a.dH == b.dH && a.dW == b.dW;
}

}  // namespace

struct PackedWeights::Impl {
  Problem key;
  const kernels::KernelSet* ks = nullptr;
  bool f64 = false;
  int nr = 0;                 // tile channels the GEMM layout was packed for (0: depthwise, raw copy)
  std::vector<double> store;  // doubles: 8-byte aligned for either dtype
  const void* data() const { return store.data(); }
};

struct PackedWeightsAccess {
  static std::shared_ptr<PackedWeights> make() { return std::shared_ptr<PackedWeights>(new PackedWeights()); }
  static PackedWeights::Impl& impl(PackedWeights& w) { return *w.impl_; }
  static const PackedWeights::Impl& impl(const PackedWeights& w) { return *w.impl_; }
};

PackedWeights::PackedWeights() : impl_(new Impl) {}
PackedWeights::~PackedWeights() = default;
int64_t PackedWeights::bytes() const { return static_cast<int64_t>(impl_->store.size() * sizeof(double)); }
bool PackedWeights::is_double() const { return impl_->f64; }

namespace {

template <class T>
std::shared_ptr<const PackedWeights> pack_impl(const Problem& p, const T* w, int threads) {
  if (!check(p).empty()) return nullptr;
  auto pw = PackedWeightsAccess::make();
  PackedWeights::Impl& im = PackedWeightsAccess::impl(*pw);
  im.key = p;
  im.ks = active_set();
  im.f64 = sizeof(T) == 8;
  if (threads < 1) threads = 1;
  if (p.Cin / p.groups == 1) {
    const int64_t n = weight_elements(p);
    im.store.resize(static_cast<size_t>((n * int64_t(sizeof(T)) + 7) / 8));
    std::memcpy(im.store.data(), w, static_cast<size_t>(n) * sizeof(T));
    return pw;
  }
  // Plan for this problem; the layout depends only on the weight geometry and the tile's NR.
  const Plan<T> pl = make_plan(p, typed(*im.ks, static_cast<T*>(nullptr)));
  im.nr = pl.var.nr;
  const int64_t n = p.groups * pl.bgroup;
  im.store.resize(static_cast<size_t>((n * int64_t(sizeof(T)) + 7) / 8 + 1));
  pack_b(pl, w, reinterpret_cast<T*>(im.store.data()), threads);
  return pw;
}

template <class T>
std::string run_packed(const Problem& p, const T* x, const PackedWeights& pw, const T* bias, T* y, int threads) {
  const PackedWeights::Impl& im = PackedWeightsAccess::impl(pw);
  if (im.f64 != (sizeof(T) == 8)) return "packed weights have a different dtype";
  if (!same_weight_geometry(p, im.key))
    return "packed weights were made for other channels, groups, kernel, stride, padding or dilation";
  const T* wp = reinterpret_cast<const T*>(im.data());
  if (im.nr == 0)
    run(p, x, wp, static_cast<const T*>(nullptr), 0, im.ks, bias, y, threads);
  else
    run(p, x, static_cast<const T*>(nullptr), wp, im.nr, im.ks, bias, y, threads);
  return std::string();
}

}  // namespace

std::shared_ptr<const PackedWeights> pack_weights(const Problem& p, const float* w, int threads) {
  return pack_impl(p, w, threads);
}
std::shared_ptr<const PackedWeights> pack_weights(const Problem& p, const double* w, int threads) {
  return pack_impl(p, w, threads);
}
std::string conv_transpose2d_packed(const Problem& p, const float* x, const PackedWeights& w, const float* bias,
                                    float* y, int threads) {
  return run_packed(p, x, w, bias, y, threads);
}
std::string conv_transpose2d_packed(const Problem& p, const double* x, const PackedWeights& w, const double* bias,
                                    double* y, int threads) {
  return run_packed(p, x, w, bias, y, threads);
}

void conv_transpose2d(const Problem& p, const float* x, const float* w, const float* bias, float* y, int threads) {
  run(p, x, w, static_cast<const float*>(nullptr), 0, active_set(), bias, y, threads);
}
void conv_transpose2d(const Problem& p, const double* x, const double* w, const double* bias, double* y,
                      int threads) {
  run(p, x, w, static_cast<const double*>(nullptr), 0, active_set(), bias, y, threads);
}

}  // namespace convt
