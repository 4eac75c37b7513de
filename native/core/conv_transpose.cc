// Core driver of conv_transpose2d.
//
// Algorithm (DESIGN.md section 5). The output is split into phases (oy mod sH, ox mod sW). In phase
// (ry, rx) output pixel (j, i) is (oy, ox) = (sH*j + ry, sW*i + rx) and receives exactly the taps ky
// with (ry + pH - ky*dH) divisible by sH (input row iy = j + offy(ky)), and likewise kx. Tap ky
// reaches one residue ry only, so at most kH x kW phases have taps, whatever the stride; the other
// outputs (stride > kernel) get the bias alone. Each phase is a dense stride-1 correlation with a
// sub-kernel of Ty x Tx taps: an implicit GEMM
//     C[pixels M] x [Cout/G] = A[M x (taps * Cin/G)] * B[(taps * Cin/G) x Cout/G]
// done with a register-tiled micro-kernel (MR pixels in SIMD lanes x NR channels broadcast).
//
// Loops of the phase GEMM (one task = group g, phase or input block, a range of MR-pixel tiles, a
// range of NR-channel tiles):
//   for each pixel tile of the task:  pack A (im2col: only taps valid for some pixel of the tile),
//                                     point into a zero-padded input block (direct), or, for a tile
//                                     of one pixel of MR images, into x copied batch-innermost (xt)
//   for each channel tile:            B panel (weights, packed once per call for all phases)
//     for each reduction block:       ~kc steps, so its B sub-panel serves every tile from L1
//       for each pixel tile:          micro-kernel (bias, or the previous block's partial sums, as
//                                     initial value) -> output (in place or via a tile buffer)
// Every output element is produced by exactly one tile, with the reduction in a fixed order, so the
// result does not depend on the number of threads or on how tiles are grouped into tasks.
//
// Pixel ordering inside a phase: batch-outer (n, j, i) or, for tiny images or N a multiple of MR,
// batch-inner (j, i, n), so a tile holds few distinct pixels and skips the taps none of them uses.
// Other paths, chosen per problem:
//   depthwise (Cin/G == 1): no reduction over channels; per task, zero-padded input rows and one
//     vectorised plane kernel call per phase;
//   scatter (Cout/G <= 3): a GEMM over input pixels x (ky, co, kx) columns added into the output one
//     register tile at a time (the phase GEMM would have 1-3 channels per tile);
//   single pixel (1x1 input, no padding/dilation): a plain GEMM over (co, ky, kx) columns straight
//     from the weights into the output.
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
#include "core/large_alloc.h"
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
// the target VM, so buffers are reused across calls instead of allocated per call; large ones are mapped for
// huge pages, see large_alloc.h). Putting a 0.5 MiB input block in a huge page too made no measurable difference.
// ------------------------------------------------------------------------------------------------
namespace {

class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { free_large(p_, cap_); }
  // 64-byte aligned, at least `bytes`; previous contents are not kept.
  void* get(size_t bytes) {
    if (bytes > cap_) {
      free_large(p_, cap_);
      cap_ = std::max(bytes, cap_ + cap_ / 2);
      p_ = alloc_large(cap_);
      if (!p_) {
        cap_ = 0;
        return nullptr;
      }
    }
    return p_;
  }

 private:
  void* p_ = nullptr;
  size_t cap_ = 0;
};

enum ScratchSlot { kSlotWeights = 0, kSlotA, kSlotTile, kSlotInfo, kSlotDw, kSlotXT, kSlotYT, kSlotCount };

std::atomic<int64_t> g_scratch_limit{-1};  // set_scratch_limit_for_testing

void* scratch(int slot, size_t bytes) {
  const int64_t limit = g_scratch_limit.load(std::memory_order_relaxed);
  if (limit >= 0 && bytes > static_cast<size_t>(limit)) throw std::bad_alloc();
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

// One residue class of an output axis: the output indices o with o mod stride == r, and the kernel taps
// that reach them. Tap k reaches residue (k*d - pad) mod s only, so at most k residues have taps; the
// others (possible when s > k) receive the bias alone.
struct AxisClass {
  int64_t r;
  std::vector<Tap> taps;  // in kernel order
};

std::vector<AxisClass> axis_classes(int64_t k, int64_t s, int64_t pad, int64_t d) {
  struct E {
    int64_t r, k, off;
  };
  std::vector<E> e(static_cast<size_t>(k));
  for (int64_t kk = 0; kk < k; ++kk) {
    const int64_t t = kk * d - pad;  // |t| < 2^62: every parameter < 2^31
    const int64_t q = floordiv(t, s);
    e[static_cast<size_t>(kk)] = {t - q * s, kk, -q};  // input index = output phase index + off
  }
  std::stable_sort(e.begin(), e.end(), [](const E& a, const E& b) { return a.r < b.r; });
  std::vector<AxisClass> v;
  for (const E& x : e) {
    if (v.empty() || v.back().r != x.r) v.push_back({x.r, {}});
    v.back().taps.push_back({x.k, x.off});
  }
  return v;
}

struct Geometry {
  int64_t Cin_g, Cout_g, HW, CinHW, HWo, CoutHWo;
  // Phases: only the (ry, rx) pairs whose residue classes both have taps, row-major over the classes
  // (at most kH * kW, whatever the stride). The list depends only on kernel, stride, padding and
  // dilation, so the packed weight layout does too (see PackedWeights); phases with no pixel in this
  // problem (ry >= Hout or rx >= Wout) have Hj or Wj == 0 and are skipped.
  std::vector<Phase> phases;
  // Some output rows or columns are reached by no tap (s > k): they get the bias alone.
  bool bias_only_outputs = false;
};

Geometry make_geometry(const Problem& p) {
  Geometry g;
  g.Cin_g = p.Cin / p.groups;
  g.Cout_g = p.Cout / p.groups;
  g.HW = p.H * p.W;
  g.CinHW = p.Cin * g.HW;
  g.HWo = p.Hout * p.Wout;
  g.CoutHWo = p.Cout * g.HWo;
  const std::vector<AxisClass> ys = axis_classes(p.kH, p.sH, p.pH, p.dH);
  const std::vector<AxisClass> xs = axis_classes(p.kW, p.sW, p.pW, p.dW);
  g.phases.reserve(ys.size() * xs.size());
  int64_t rows_with_taps = 0, cols_with_taps = 0;
  for (const AxisClass& cy : ys) rows_with_taps += cy.r < p.Hout;
  for (const AxisClass& cx : xs) cols_with_taps += cx.r < p.Wout;
  g.bias_only_outputs = rows_with_taps < std::min(p.sH, p.Hout) || cols_with_taps < std::min(p.sW, p.Wout);
  for (const AxisClass& cy : ys)
    for (const AxisClass& cx : xs) {
      Phase ph;
      ph.ry = cy.r;
      ph.rx = cx.r;
      ph.Hj = cy.r < p.Hout ? (p.Hout - cy.r + p.sH - 1) / p.sH : 0;
      ph.Wj = cx.r < p.Wout ? (p.Wout - cx.r + p.sW - 1) / p.sW : 0;
      ph.ty = cy.taps;
      ph.tx = cx.taps;
      g.phases.push_back(std::move(ph));
    }
  return g;
}

// Writes the bias (or 0) to every output element that no tap reaches (only when geo.bias_only_outputs).
// Work O(output elements touched + min(s, out) per axis), never O(sH * sW).
// Residues r < min(s, out) of one axis: 1 where some tap reaches them.
std::vector<char> residue_has_taps(int64_t s, int64_t out, const std::vector<Phase>& phases, bool rows) {
  std::vector<char> m(static_cast<size_t>(std::min(s, out)), 0);
  for (const Phase& ph : phases) {
    const int64_t r = rows ? ph.ry : ph.rx;
    if (r < static_cast<int64_t>(m.size())) m[static_cast<size_t>(r)] = 1;
  }
  return m;
}

template <class T>
void fill_bias_only_outputs(const Problem& p, const Geometry& geo, const T* bias, T* y, int threads,
                            const std::atomic<bool>* cancel) {
  const std::vector<char> yhas = residue_has_taps(p.sH, p.Hout, geo.phases, true);
  const std::vector<char> xhas = residue_has_taps(p.sW, p.Wout, geo.phases, false);
  const int64_t nx = static_cast<int64_t>(xhas.size());
  auto plane = [&](int64_t t) {  // t = n * Cout + co
    const T b = bias ? bias[t % p.Cout] : T(0);
    T* yp = y + t * geo.HWo;
    for (int64_t oy = 0; oy < p.Hout; ++oy) {
      T* row = yp + oy * p.Wout;
      if (!yhas[static_cast<size_t>(oy % p.sH)]) {
        std::fill(row, row + p.Wout, b);
        continue;
      }
      for (int64_t rx = 0; rx < nx; ++rx)
        if (!xhas[static_cast<size_t>(rx)])
          for (int64_t ox = rx; ox < p.Wout; ox += p.sW) row[ox] = b;
    }
  };
  const int64_t planes = p.N * p.Cout;
  // a plane is cheap: parallel only when the planes add up to a large output
  const int t = geo.HWo * planes >= blocking::kParallelFillMinElements ? threads : 1;
  if (!threading::parallel_for(planes, t, plane, cancel)) throw Cancelled();
}

// Valid taps of a set of pixels with rows in [jmin, jmax] and columns in [imin, imax]: those whose
// input index lands in range for at least one of them (tap offsets are monotone in the kernel index).
// An empty set (lo > hi, e.g. bounds of no run) hits nothing; the test keeps lo + off from overflowing.
inline bool tap_hits(const Tap& t, int64_t lo, int64_t hi, int64_t extent) {
  return lo <= hi && hi + t.off >= 0 && lo + t.off <= extent - 1;
}

struct Bounds {
  int64_t jmin, jmax, imin, imax;
};

// Calls f(ty, tx, boff) for each tap (ty, tx) of phase ph that reaches the input from some pixel within bounds
// b, in kernel order: the segments of one tile, in the order both feeders give them to the micro-kernel. boff
// is the tap's offset in the phase's packed weights (channel tile 0).
template <class F>
void for_each_tile_tap(const Phase& ph, const Bounds& b, const Problem& p, int64_t Cin_g, int64_t nr, F&& f) {
  const int64_t ntx = static_cast<int64_t>(ph.tx.size());
  for (size_t iy = 0; iy < ph.ty.size(); ++iy) {
    const Tap& ty = ph.ty[iy];
    if (!tap_hits(ty, b.jmin, b.jmax, p.H)) continue;
    for (size_t ix = 0; ix < ph.tx.size(); ++ix) {
      const Tap& tx = ph.tx[ix];
      if (!tap_hits(tx, b.imin, b.imax, p.W)) continue;
      f(ty, tx, (static_cast<int64_t>(iy) * ntx + static_cast<int64_t>(ix)) * Cin_g * nr);
    }
  }
}

// Two ways to feed the micro-kernel its pixel panel (chosen per problem by a cost model):
//  - im2col: per tile, copy the tile's pixels for every valid tap into a packed panel (lda = MR).
//    Exact lanes (tiles may span rows and images), skips taps no pixel of the tile uses; the copy
//    costs taps x Cin/G per pixel, so it suits small images and many output channels.
//  - direct: per task, copy a zero-padded block of input rows/columns once; a tap is then just a
//    shifted window of the block (lda = block plane). Tiles run over the block's padded grid, so the
//    lanes that fall on padding columns are computed and dropped; copy cost Cin/G per pixel. Where the
//    kernels can mask lanes and a block holds whole rows, it may have no padding columns: a lane whose tap
//    would read across a row edge is masked off instead (no lanes lost to padding, one copy per channel).
template <class T>
struct Plan {
  const Problem* p;
  Geometry geo;
  kernels::GemmVariant<T> var;
  bool batch_inner = false;
  bool direct = false;
  bool masked = false;   // direct mode, blocks of whole rows without padding columns (see block_width)
  int64_t ntile_c = 0;   // channel tiles per group
  int64_t bgroup = 0;    // B elements per group
  int64_t maxK = 0;      // largest taps * Cin_g over phases
  // direct mode: tap offset ranges over all phases, block extents (in phase rows / columns)
  int64_t ymin = 0, ymax = 0, xmin = 0, xmax = 0;
  int64_t R = 1, Cb = 1, maxHj = 0, maxWj = 0;
};

// Direct mode: row length of a block of `cols` phase columns, which is also the width of its tile grid. Padded, a
// block row covers input columns [i0 + xmin, i0 + cols + xmax); masked, the input row from column 0 (and at least
// the widest phase, with zero columns beyond the input).
template <class T>
int64_t block_width(const Plan<T>& pl, int64_t cols) {
  return pl.masked ? std::max(pl.p->W, pl.maxWj) : cols + pl.xmax - pl.xmin;
}

// Batch-inner with N a multiple of MR: every tile is one pixel of MR consecutive images, and every tap listed for
// it is in range (a single pixel's bounds are exact), so the micro-kernel reads its lanes straight from the
// batch-innermost input copy xt (a pixel's channels N elements apart, as in a packed panel): no panel is copied.
template <class T>
bool tiles_read_xt(const Plan<T>& pl) {
  return pl.batch_inner && pl.p->N % pl.var.mr == 0;
}

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

// Lane masks of a masked direct-mode tile's segment (see kernels::GemmMaskedFn): lane l, at grid column
// (q0 + l) % wblk, is set where that column is in [cmin, cmax), i.e. where the tap reads its own block row.
inline void set_lane_mask(int64_t q0, int64_t mr, int64_t wblk, int64_t cmin, int64_t cmax, uint64_t* mask) {
  for (int64_t w = 0; w < kernels::mask_words(mr); ++w) mask[w] = 0;
  for (int64_t l = 0; l < mr;) {
    const int64_t c = (q0 + l) % wblk, len = std::min(wblk - c, mr - l);  // lanes [l, l + len): one grid row
    for (int64_t a = l + std::max<int64_t>(0, cmin - c), b = l + std::min(len, cmax - c); a < b;) {
      const int64_t n = std::min(b - a, 64 - a % 64);  // lanes [a, a + n) within one word
      mask[a / 64] |= (n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1)) << (a % 64);
      a += n;
    }
    l += len;
  }
}

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

// Rough efficiency of a tile shape: low-NR tiles are load-bound (measured: NR 1 ~0.5, 2-3 ~0.75). In direct mode
// the tiles read their pixel vectors from an input block in L2, one vector per NR FMAs, and on a Zen 5 core (two
// 512-bit FMA pipes) that traffic limits tiles with fewer than 8 channels (1 thread, min of 5 runs: stride-1 64->64
// on 112x112 with 6x16 x 4 tiles 5.97 ms, 3x16 x 8 4.95 ms; dilated 64->64 on 56x56: 1.28 and 1.23 ms). The
// 16-channel tile (one pixel vector per 16 FMAs with 16 broadcasts) ran 12-17 % slower there than 4-6-channel tiles
// (HiFi-GAN 512->256 27.7 -> 22.9 ms, dilated 1.42 -> 1.25 ms), where on the one-FMA-pipe Intel host of the first
// sessions it had been the faster tile (U-Net 1024->512: 36 -> 34 ms). In L1 it reaches ~0.9 of the 24-accumulator
// tiles (17 loads per 16 FMAs), which also counts in im2col mode (U-Net 1024->512 then takes 2x16 x 12 tiles in
// direct mode: 1 thread, min of 3, 25.0 -> 21.7 ms).
inline double tile_eff(int64_t nr, bool direct = false) {
  if (nr >= 16) return direct ? 0.85 : 0.9;
  if (direct && nr >= 4) return std::min(1.0, 0.7 + 0.3 * static_cast<double>(nr) / 8.0);
  return nr >= 4 ? 1.0 : nr >= 2 ? 0.75 : 0.5;
}

// Cost, in lane multiply-adds: im2col mode (exact tap counting for small phases) + its copying.
template <class T>
double cost_im2col(Plan<T>& pl) {
  const Problem& p = *pl.p;
  const int64_t mr = pl.var.mr, nr = pl.var.nr;
  const int64_t ntile_c = (pl.geo.Cout_g + nr - 1) / nr;
  std::vector<Run> runs(static_cast<size_t>(mr));
  const double panel_copy = tiles_read_xt(pl) ? 0.0 : 1.0;
  double steps = 0, copied = 0;
  for (Phase& ph : pl.geo.phases) {
    ph.M = p.N * ph.Hj * ph.Wj;
    ph.mtiles = (ph.M + mr - 1) / mr;
    const int64_t T_all = static_cast<int64_t>(ph.ty.size() * ph.tx.size());
    if (ph.M > blocking::kExactCostMaxPixels) {
      steps += static_cast<double>(ph.mtiles) * static_cast<double>(T_all * pl.geo.Cin_g + 4);
      copied += panel_copy * static_cast<double>(ph.mtiles * mr) * static_cast<double>(T_all * pl.geo.Cin_g);
      continue;
    }
    for (int64_t mt = 0; mt < ph.mtiles; ++mt) {
      const int nrun = make_runs(pl, ph, mt * mr, runs.data());
      const Bounds b = run_bounds(runs.data(), nrun);
      int64_t cy = 0, cx = 0;
      for (const Tap& t : ph.ty) cy += tap_hits(t, b.jmin, b.jmax, p.H);
      for (const Tap& t : ph.tx) cx += tap_hits(t, b.imin, b.imax, p.W);
      steps += static_cast<double>(cy * cx * pl.geo.Cin_g + 4);  // +4: per-tile store/overhead
      copied += panel_copy * static_cast<double>(cy * cx * pl.geo.Cin_g * mr);
    }
  }
  // x copied with the batch innermost, and the staged output back (transposes); counted 1.5x, since these
  // memory-bound passes slow down more than the kernels when both cores run them (measured, DCGAN 128->64 on 16x16,
  // 16 images, min of 5, batch-inner against direct 3x16 x 8: 1 thread 6.27 vs 6.72 ms, 2 threads 4.04 vs 3.67 ms;
  // float64 14.7 vs 13.7 and 8.0 vs 7.3 ms)
  if (pl.batch_inner) copied += 3.0 * static_cast<double>(input_elements(p) + output_elements(p));
  return steps * static_cast<double>(ntile_c * nr * mr) / tile_eff(nr) + blocking::kCopyCost * copied;
}

// Direct mode: fixes the block extents (from the cache budget only, never from the thread count, so
// the tiling and hence the result bytes do not depend on it) and returns its cost.
template <class T>
double cost_direct(Plan<T>& pl, double* padded_cost) {
  const Problem& p = *pl.p;
  const Geometry& geo = pl.geo;
  const int64_t mr = pl.var.mr, nr = pl.var.nr;
  const int64_t ntile_c = (geo.Cout_g + nr - 1) / nr;
  // Block extents cover the taps that reach the input from some pixel of a phase that has pixels (the
  // only ones a tile can use, see tap_hits), so far-away taps (huge padding or dilation) cost nothing.
  pl.maxHj = pl.maxWj = 0;
  bool firsty = true, firstx = true;
  pl.ymin = pl.ymax = pl.xmin = pl.xmax = 0;
  for (const Phase& ph : geo.phases) {
    if (ph.Hj == 0 || ph.Wj == 0) continue;
    pl.maxHj = std::max(pl.maxHj, ph.Hj);
    pl.maxWj = std::max(pl.maxWj, ph.Wj);
    for (const Tap& t : ph.ty) {
      if (!tap_hits(t, 0, ph.Hj - 1, p.H)) continue;
      pl.ymin = firsty ? t.off : std::min(pl.ymin, t.off);
      pl.ymax = firsty ? t.off : std::max(pl.ymax, t.off);
      firsty = false;
    }
    for (const Tap& t : ph.tx) {
      if (!tap_hits(t, 0, ph.Wj - 1, p.W)) continue;
      pl.xmin = firstx ? t.off : std::min(pl.xmin, t.off);
      pl.xmax = firstx ? t.off : std::max(pl.xmax, t.off);
      firstx = false;
    }
  }
  if (pl.maxHj == 0) {  // every output pixel is bias only: nothing to compute
    pl.R = pl.Cb = 1;
    *padded_cost = 0;
    return 0;
  }
  const int64_t yspan = pl.ymax - pl.ymin, xspan = pl.xmax - pl.xmin;
  // Column block: whole rows unless a single row block overflows the budget.
  const int64_t row_bytes = geo.Cin_g * int64_t(sizeof(T));
  // The budget is for float32 blocks; a float64 block gets twice the bytes, so as many pixels: a block's pixels set
  // how often the packed weights are streamed again (once per block), and float64 weights are twice as large
  // (measured, float64 HiFi-GAN 512->256, 1 thread: 74 -> 60 ms; other shapes level).
  const int64_t budget = blocking::kABlockBytes / 4 * int64_t(sizeof(T));
  int64_t Cb = pl.maxWj;
  if (row_bytes * (1 + yspan) * (Cb + xspan) > budget) {
    Cb = std::max<int64_t>(budget / (row_bytes * (1 + yspan)) - xspan, mr);
    Cb = std::max<int64_t>(mr, Cb / mr * mr);
    Cb = std::min(Cb, pl.maxWj);
  }
  // Block rows: the budget's, or up to twice as many when that wastes fewer lanes (a block's grid of
  // rows x wblk positions is cut into MR-lane tiles: e.g. 2 x 56 = 112 positions take 128 lanes, 4 x 56
  // take exactly 7 x 32). Blocks of whole rows can also go without padding columns (masked), where the kernels
  // can mask lanes: no lanes on padding columns, and one copy per channel when the block rows are the input's. A
  // masked lane measured as cheap as another (dilated 64->64 on 56x56, 1 thread: 4 % fewer lanes, -5.9 %).
  double best = -1;
  bool best_masked = false;
  const bool can_mask = Cb == pl.maxWj && pl.var.fn_masked;
  for (const bool masked : {false, true}) {
    if (masked && !can_mask) continue;
    pl.masked = masked;
    const int64_t wblk = block_width(pl, Cb);
    const double lane_cost = static_cast<double>(ntile_c * nr) / tile_eff(nr, true);
    // A block whose rows are the input's (no column padding, as wide as the input) is copied in one call per channel,
    // else each row takes a copy and up to two fills (see run_task_direct).
    const bool whole_rows = (masked || pl.xmin >= 0) && wblk == p.W;
    auto cost_for = [&](int64_t R) {
      double lanes = 0, copied = 0, calls = 0;
      for (int64_t j0 = 0; j0 < pl.maxHj; j0 += R)
        for (int64_t i0 = 0; i0 < pl.maxWj; i0 += Cb) {
          const int64_t brows = std::min(R, pl.maxHj - j0) + yspan;
          copied += static_cast<double>(brows * wblk * geo.Cin_g);
          calls += static_cast<double>(geo.Cin_g * (whole_rows ? 1 : brows * (masked ? 2 : 3)));
          for (const Phase& ph : geo.phases) {
            const int64_t rows = std::min(ph.Hj, j0 + R) - j0, cols = std::min(ph.Wj, i0 + Cb) - i0;
            if (rows <= 0 || cols <= 0) continue;
            const int64_t q = (rows - 1) * wblk + cols;
            const int64_t K = static_cast<int64_t>(ph.ty.size() * ph.tx.size()) * geo.Cin_g;
            lanes += static_cast<double>((q + mr - 1) / mr * mr) * static_cast<double>(K + 4);
          }
        }
      return static_cast<double>(p.N) *
             (lanes * lane_cost + blocking::kCopyCost * copied + blocking::kCopyCallCost * calls);
    };
    const int64_t R_budget = std::min(pl.maxHj, std::max<int64_t>(1, budget / (row_bytes * wblk) - yspan));
    for (int64_t R = R_budget; R <= std::min(pl.maxHj, 2 * R_budget); ++R) {
      const double c = cost_for(R);
      if (!masked) *padded_cost = *padded_cost < 0 ? c : std::min(*padded_cost, c);
      if (best < 0 || c < best * 0.99) {  // clearly cheaper, not rounding noise
        best = c;
        best_masked = masked;
        pl.R = R;
      }
    }
  }
  pl.masked = best_masked;
  pl.Cb = Cb;
  return best;
}

std::atomic<int> g_force_mode{-1};
std::atomic<int64_t> g_experiment_knob{0};

// forced_nr > 0: only tile shapes with that many channels (weights packed earlier for it).
template <class T>
Plan<T> make_plan(const Problem& p, const kernels::TypedSet<T>& ks, int forced_nr = 0) {
  const int forced = g_force_mode.load(std::memory_order_relaxed);
  Plan<T> best;
  best.p = &p;
  best.geo = make_geometry(p);
  // The cheapest candidate of each mode. The direct mode is weighed against the others by its cheapest plan with
  // padding columns: masking only refines a direct plan (it made DCGAN 256->128 on 8x8 switch from batch-inner to
  // direct, 7.6 % slower at 1 thread, level at 2).
  struct Choice {
    Plan<T> plan;
    double cost = -1, mode_cost = -1;
  };
  Choice by_mode[3];
  bool any_small = false;
  for (const Phase& ph : best.geo.phases) any_small |= ph.Hj * ph.Wj <= blocking::kBatchInnerMaxPhasePixels;
  // Batch-inner for larger phases too when tiles of one pixel can read the batch-innermost input copy (N a
  // multiple of MR) and the output is staged (else each lane is a store to another image).
  const bool stageable = output_elements(p) * int64_t(sizeof(T)) <= blocking::kBatchInnerStageMaxBytes;
  for (int mode = 0; mode < 3; ++mode) {  // 0: im2col batch-outer, 1: im2col batch-inner, 2: direct
    if (forced >= 0 ? mode != forced : (mode == 1 && (p.N <= 1 || (!any_small && !stageable)))) continue;
    for (int v = 0; v < kernels::kMaxVariants && ks.gemm[v].fn; ++v) {
      if (forced_nr > 0 && ks.gemm[v].nr != forced_nr) continue;
      if (forced < 0 && mode == 1 && !any_small && p.N % ks.gemm[v].mr != 0) continue;  // see tiles_read_xt
      Plan<T> cand;
      cand.p = &p;
      cand.geo = best.geo;
      cand.var = ks.gemm[v];
      cand.batch_inner = mode == 1;
      cand.direct = mode == 2;
      double padded_cost = -1;
      const double c = cand.direct ? cost_direct(cand, &padded_cost) : cost_im2col(cand);
      const double mode_cost = cand.direct ? padded_cost : c;
      Choice& ch = by_mode[mode];
      ch.mode_cost = ch.mode_cost < 0 ? mode_cost : std::min(ch.mode_cost, mode_cost);
      if (ch.cost < 0 || c < ch.cost) {
        ch.cost = c;
        ch.plan = std::move(cand);
      }
    }
  }
  int best_mode = -1;
  for (int mode = 0; mode < 3; ++mode)
    if (by_mode[mode].cost >= 0 && (best_mode < 0 || by_mode[mode].mode_cost < by_mode[best_mode].mode_cost))
      best_mode = mode;
  best = std::move(by_mode[best_mode].plan);
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

bool same_problem(const Problem& a, const Problem& b) { return std::memcmp(&a, &b, sizeof(Problem)) == 0; }

// make_plan of the calling thread's previous call, when it had the same problem and kernels (repeated calls
// with one shape are the common case; planning walks every tile of small phases: ~5-10 % of a small call).
// The plan is a pure function of its key, so reuse changes no result.
template <class T>
const Plan<T>& cached_plan(const Problem& p, const kernels::TypedSet<T>& ks, int forced_nr) {
  struct Entry {
    Problem key{};
    const kernels::TypedSet<T>* ks = nullptr;
    int forced_nr = -1, forced_mode = -2;
    int64_t knob = 0;
    Plan<T> plan;
  };
  // Entries for knob 0 (the product), odd and even non-zero experiment_knob() values (an A/B run alternates two).
  thread_local Entry entries[3];
  const int64_t knob = experiment_knob();
  Entry& e = entries[knob == 0 ? 0 : 1 + (knob & 1)];
  const int mode = g_force_mode.load(std::memory_order_relaxed);
  if (!(e.ks == &ks && e.forced_nr == forced_nr && e.forced_mode == mode && e.knob == knob && same_problem(e.key, p))) {
    e.ks = nullptr;  // invalid until complete (make_plan may throw)
    e.key = p;
    e.plan = make_plan(e.key, ks, forced_nr);
    e.ks = &ks;
    e.forced_nr = forced_nr;
    e.forced_mode = mode;
    e.knob = knob;
  }
  return e.plan;
}

// ------------------------------------------------------------------------------------------------
// Weight packing: for group g, phase, channel tile ct: [tap (ty, tx)][ci][NR] (zero-padded channels).
// Every kernel tap belongs to exactly one phase, so a unit (g, ct) is packed in one sequential pass
// over its weights (ci-major, each channel's kH*kW taps contiguous), scattering each tap's NR values
// to its phase's panel: the weights are read once, instead of once per tap with a kH*kW stride.
// ------------------------------------------------------------------------------------------------
template <class T>
struct TapSlot {
  int64_t ofs;  // offset of the tap's [ci][NR] panel from the group's B block, for channel tile 0
  int64_t ct_stride;  // K * NR of the tap's phase: distance between channel tiles
};

template <class T>
std::vector<TapSlot<T>> tap_slots(const Plan<T>& pl) {
  const Problem& p = *pl.p;
  const int64_t nr = pl.var.nr, Cin_g = pl.geo.Cin_g;
  std::vector<TapSlot<T>> v(static_cast<size_t>(p.kH * p.kW));
  for (const Phase& ph : pl.geo.phases) {
    const int64_t ntx = static_cast<int64_t>(ph.tx.size());
    const int64_t K = static_cast<int64_t>(ph.ty.size()) * ntx * Cin_g;
    for (size_t iy = 0; iy < ph.ty.size(); ++iy)
      for (size_t ix = 0; ix < ph.tx.size(); ++ix)
        v[static_cast<size_t>(ph.ty[iy].k * p.kW + ph.tx[ix].k)] = {
            ph.bofs + (static_cast<int64_t>(iy) * ntx + static_cast<int64_t>(ix)) * Cin_g * nr, K * nr};
  }
  return v;
}

// dst[tap][ci * NR + c] = src[c * kHW + tap] for c < NR.
template <class T, int NR>
void scatter_taps(const T* src, int64_t kHW, T* const* dst, int64_t ci) {
  for (int64_t tap = 0; tap < kHW; ++tap) {
    T* d = dst[tap] + ci * NR;
    for (int c = 0; c < NR; ++c) d[c] = src[c * kHW + tap];
  }
}

template <class T>
void pack_b_unit(const Plan<T>& pl, const kernels::TypedSet<T>& ks, const std::vector<TapSlot<T>>& slots, const T* w,
                 T* B, int64_t g, int64_t ct, T** dst, bool stream) {
  const Problem& p = *pl.p;
  const int64_t nr = pl.var.nr, Cin_g = pl.geo.Cin_g, Cout_g = pl.geo.Cout_g;
  const int64_t co0 = ct * nr, nc = std::min(nr, Cout_g - co0);
  const int64_t kHW = p.kH * p.kW;
  for (int64_t tap = 0; tap < kHW; ++tap) {
    const TapSlot<T>& sl = slots[static_cast<size_t>(tap)];
    dst[tap] = B + g * pl.bgroup + sl.ofs + ct * sl.ct_stride;
  }
  // Full tiles: the ISA's register transposes take the rows (ci, c) they can (whole channels), the loop
  // below the rest. Rows of one channel are contiguous; channels are Cout/G * kH * kW apart.
  int64_t ci0 = 0;
  if (nc == nr && ks.transpose)
    ci0 = ks.transpose(w + (g * Cin_g * Cout_g + co0) * kHW, Cout_g * kHW, nr, Cin_g * nr, kHW, dst, stream) / nr;
  for (int64_t ci = ci0; ci < Cin_g; ++ci) {
    const T* src = w + ((g * Cin_g + ci) * Cout_g + co0) * kHW;  // [c < nc][tap], contiguous
    // the rows of later channels are Cout/G * kH * kW apart: too far for the hardware prefetcher
    if (ci + blocking::kPackPrefetch < Cin_g) {
      const char* pf = reinterpret_cast<const char*>(src + blocking::kPackPrefetch * Cout_g * kHW);
      for (int64_t b = 0; b < nc * kHW * int64_t(sizeof(T)); b += 64) __builtin_prefetch(pf + b);
    }
    if (nc == nr) {  // full tile: a fixed-length inner loop (the common case, ~4x faster than a variable one)
      switch (nr) {
        case 1: scatter_taps<T, 1>(src, kHW, dst, ci); continue;
        case 2: scatter_taps<T, 2>(src, kHW, dst, ci); continue;
        case 3: scatter_taps<T, 3>(src, kHW, dst, ci); continue;
        case 4: scatter_taps<T, 4>(src, kHW, dst, ci); continue;
        case 6: scatter_taps<T, 6>(src, kHW, dst, ci); continue;
        case 8: scatter_taps<T, 8>(src, kHW, dst, ci); continue;
        case 12: scatter_taps<T, 12>(src, kHW, dst, ci); continue;
        default: break;
      }
    }
    for (int64_t tap = 0; tap < kHW; ++tap) {
      T* d = dst[tap] + ci * nr;
      int64_t c = 0;
      for (; c < nc; ++c) d[c] = src[c * kHW + tap];
      for (; c < nr; ++c) d[c] = T(0);
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
  int32_t q0;          // direct mode: first lane's position in the block grid
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
  kernels::StoreStride2Fn<T> store_stride2;
  const T* xt;  // batch-inner plans: x with the batch innermost, [iy][ix][ci][n]
  kernels::Interleave2Fn<T> interleave2;
  T* yt;  // batch-inner plans with a staged output: y with the batch innermost, [co][oy][ox][n] (else null)
  void (*fence)();  // non-null when interleave2 streams: each task calls it when done
};

// The row interleave that writes an output like p's: streaming stores where the ISA has them for large outputs (see
// blocking::kStreamOutputMinBytes) and for cold ones (see conv_transpose2d); its caller then fences
// (TypedSet::stream_fence).
template <class T>
kernels::Interleave2Fn<T> output_interleave2(const kernels::TypedSet<T>& ks, const Problem& p, bool cold_output) {
  const bool large = output_elements(p) * int64_t(sizeof(T)) >= blocking::kStreamOutputMinBytes;
  return (large || cold_output) && ks.interleave2_stream && ks.stream_fence ? ks.interleave2_stream : ks.interleave2;
}

// Per-task scratch: tile infos, runs, segment A pointers, B offsets and lane masks (masked direct mode).
template <class T>
struct TaskScratch {
  TileInfo* infos;
  Run* runs;
  const T** aptr;
  int64_t* boff;
  uint64_t* amask;  // kernels::mask_words(MR) per segment
  T* ctile;
};

template <class T>
TaskScratch<T> task_scratch(int64_t ntiles, int64_t mr, int64_t nr, int64_t nseg_max, int64_t cbuf_elems = 0) {
  const size_t a = static_cast<size_t>(ntiles) * sizeof(TileInfo);
  const size_t b = static_cast<size_t>(ntiles * mr) * sizeof(Run);
  const size_t c = static_cast<size_t>(ntiles * nseg_max) * sizeof(T*);
  const size_t d = static_cast<size_t>(ntiles * nseg_max) * sizeof(int64_t);
  const size_t d2 = static_cast<size_t>(ntiles * nseg_max * kernels::mask_words(mr)) * sizeof(uint64_t);
  // a C tile per tile (reduction blocks), or the caller's layout (staged stride-2 write-out)
  const size_t e = static_cast<size_t>(std::max(ntiles * mr * nr, cbuf_elems)) * sizeof(T);
  auto up = [](size_t v) { return (v + 63) & ~size_t{63}; };
  char* m = static_cast<char*>(scratch(kSlotInfo, up(a) + up(b) + up(c) + up(d) + up(d2) + up(e)));
  TaskScratch<T> s;
  s.infos = reinterpret_cast<TileInfo*>(m);
  s.runs = reinterpret_cast<Run*>(m + up(a));
  s.aptr = reinterpret_cast<const T**>(m + up(a) + up(b));
  s.boff = reinterpret_cast<int64_t*>(m + up(a) + up(b) + up(c));
  s.amask = reinterpret_cast<uint64_t*>(m + up(a) + up(b) + up(c) + up(d));
  s.ctile = reinterpret_cast<T*>(m + up(a) + up(b) + up(c) + up(d) + up(d2));
  return s;
}

// Direct mode, stride 2, phases (yc, 0) and (yc, 1) at indices 2*yc and 2*yc + 1: writes the task's output
// rows of nc channels from the staged tiles, each row's two column phases interleaved.
template <class T>
void write_staged(const GemmCtx<T>& c, const Task& tk, const T* stage, int64_t plane, int64_t wblk, int64_t cog0,
                  int64_t nc) {
  const Plan<T>& pl = *c.pl;
  const Problem& p = *pl.p;
  const Geometry& geo = pl.geo;
  const int64_t nr = pl.var.nr, n = tk.phase_or_n, j0 = tk.a0, i0 = tk.b0;
  const int64_t rows = tk.a1 - tk.a0, cols = tk.b1 - tk.b0;
  for (size_t pi = 0; pi + 1 < geo.phases.size(); pi += 2) {
    const Phase& p0 = geo.phases[pi];
    const Phase& p1 = geo.phases[pi + 1];
    const int64_t pr = std::min(p0.Hj, j0 + rows) - j0;
    const int64_t c0 = std::min(p0.Wj, i0 + cols) - i0, c1 = std::max<int64_t>(0, std::min(p1.Wj, i0 + cols) - i0);
    if (pr <= 0 || c0 <= 0) continue;
    const int64_t m = std::min(c0, c1);  // Wj1 <= Wj0: column phase 0 may have one more
    for (int64_t cc = 0; cc < nc; ++cc) {
      const T* a = stage + (static_cast<int64_t>(pi) * nr + cc) * plane;
      const T* b = stage + (static_cast<int64_t>(pi + 1) * nr + cc) * plane;
      T* yc = c.y + (n * p.Cout + cog0 + cc) * geo.HWo + 2 * i0;
      for (int64_t r = 0; r < pr; ++r) {
        T* dst = yc + (p.sH * (j0 + r) + p0.ry) * p.Wout;
        c.interleave2(dst, a + r * wblk, b + r * wblk, m);
        if (c0 > m) dst[2 * m] = a[r * wblk + m];
      }
    }
  }
}

// Runs the micro-kernel over the task's tiles for its channel tiles and writes the output.
// stage_plane > 0 (direct mode, stride 2 with both column residues): tiles are stored into s.ctile as
// [phase][channel][block grid position] (plane stage_plane), and each output row segment is then
// written once, its two column phases interleaved with full-width stores (instead of two strided,
// masked passes). wblk: the block grid's row length.
template <class T>
void compute_tiles(const GemmCtx<T>& c, const Task& tk, const TaskScratch<T>& s, int64_t ntiles, int64_t lda,
                   int64_t stage_plane = 0, int64_t wblk = 0) {
  const Plan<T>& pl = *c.pl;
  const Problem& p = *pl.p;
  const Geometry& geo = pl.geo;
  const int64_t mr = pl.var.mr, nr = pl.var.nr, Cin_g = geo.Cin_g, Cout_g = geo.Cout_g;
  const kernels::GemmFn<T> fn = pl.var.fn;
  const kernels::GemmMaskedFn<T> fn_masked = pl.var.fn_masked;
  const int64_t mwords = kernels::mask_words(mr);
  // Reduction blocks of about kc steps: segments in groups, or each segment in chunks when Cin/G > kc.
  // Per block, one weight sub-panel (kc x NR) serves every tile of the task from L1.
  const int64_t kc = std::max<int64_t>(16, blocking::kBPanelBytes / (nr * int64_t(sizeof(T))));
  const int64_t sub = (Cin_g + kc - 1) / kc;              // chunks per segment (1: whole segments)
  const int64_t kcc = (Cin_g + sub - 1) / sub;            // steps per chunk
  const int64_t spb = sub > 1 ? 1 : std::max<int64_t>(1, kc / Cin_g);  // segments per block
  int64_t max_blocks = 1;
  for (int64_t t = 0; t < ntiles; ++t)
    max_blocks = std::max(max_blocks, (s.infos[t].nseg + spb - 1) / spb * sub);
  // Where a tile can keep its sums in place (one run of MR lanes, all NR channels real): straight in the output (MR
  // pixels of a row, stride 1), or in the staged batch-inner output (one pixel of MR images, adjacent there: no tile
  // buffer and no copy, measured DCGAN 128->64 on 16x16, 16 images: the copies were ~6 % of the time). Else nullptr.
  auto in_place = [&](const TileInfo& ti, const Phase& ph, int64_t cog0, int64_t nc, int64_t* ldc) -> T* {
    const Run& r0 = s.runs[ti.run0];
    if (ti.nrun != 1 || r0.len != mr || nc != nr) return nullptr;
    const int64_t oy = p.sH * r0.j + ph.ry;
    if (r0.batch && c.yt) {
      *ldc = geo.HWo * p.N;
      return c.yt + (cog0 * geo.HWo + oy * p.Wout + p.sW * r0.i + ph.rx) * p.N + r0.n;
    }
    if (!r0.batch && p.sW == 1) {
      *ldc = geo.HWo;
      return c.y + (r0.n * p.Cout + cog0) * geo.HWo + oy * p.Wout + r0.i;
    }
    return nullptr;
  };
  for (int64_t ct = tk.ct0; ct < tk.ct1; ++ct) {
    const T* bias = c.biasp + (tk.g * pl.ntile_c + ct) * nr;
    const int64_t co0 = ct * nr, nc = std::min(nr, Cout_g - co0);
    const int64_t cog0 = tk.g * Cout_g + co0;  // absolute output channel of the tile's first channel
    for (int64_t kb = 0; kb < max_blocks; ++kb) {
      for (int64_t t = 0; t < ntiles; ++t) {
        const TileInfo& ti = s.infos[t];
        if (ti.nrun == 0) continue;
        const int64_t nblocks = std::max<int64_t>(1, (ti.nseg + spb - 1) / spb * sub);
        if (kb >= nblocks) continue;
        const Phase& ph = geo.phases[static_cast<size_t>(ti.phase)];
        const int64_t K = static_cast<int64_t>(ph.ty.size() * ph.tx.size()) * Cin_g;
        const T* Bp = c.B + tk.g * pl.bgroup + ph.bofs + ct * K * nr;
        T* C = s.ctile + t * mr * nr;
        int64_t ldc = mr;
        if (stage_plane > 0) {
          C = s.ctile + ti.phase * nr * stage_plane + ti.q0;
          ldc = stage_plane;
        } else if (T* d = in_place(ti, ph, cog0, nc, &ldc)) {
          C = d;
        }
        const T* b0 = kb == 0 ? bias : nullptr;
        // segments [sg, sg + ns), steps [k0, k1) of each
        const int64_t sg = sub == 1 ? ti.seg0 + kb * spb : ti.seg0 + kb / sub;
        const int64_t ns = sub == 1 ? std::max<int64_t>(0, std::min<int64_t>(spb, ti.seg0 + ti.nseg - sg)) : 1;
        const int64_t k0 = sub == 1 ? 0 : (kb % sub) * kcc, k1 = sub == 1 ? Cin_g : std::min(Cin_g, k0 + kcc);
        const T* const* a = s.aptr + sg;
        const int64_t* bo = s.boff + sg;
        const T* a_k0;
        int64_t bo_k0;
        if (k0 > 0) {  // a chunk of one segment
          a_k0 = s.aptr[sg] + k0 * lda;
          bo_k0 = s.boff[sg] + k0 * nr;
          a = &a_k0;
          bo = &bo_k0;
        }
        if (pl.masked)
          fn_masked(k1 - k0, static_cast<int>(ns), a, lda, Bp, bo, b0, C, ldc, s.amask + sg * mwords);
        else
          fn(k1 - k0, static_cast<int>(ns), a, lda, Bp, bo, b0, C, ldc);
      }
    }
    if (stage_plane > 0) {
      write_staged(c, tk, s.ctile, stage_plane, wblk, cog0, nc);
      continue;
    }
    for (int64_t t = 0; t < ntiles; ++t) {
      const TileInfo& ti = s.infos[t];
      if (ti.nrun == 0) continue;
      const Phase& ph = geo.phases[static_cast<size_t>(ti.phase)];
      const Run* tr = s.runs + ti.run0;
      int64_t ldc_unused;
      if (in_place(ti, ph, cog0, nc, &ldc_unused)) continue;
      const T* ctile = s.ctile + t * mr * nr;
      for (int r = 0; r < ti.nrun; ++r) {
        const Run& ru = tr[r];
        const int64_t oy = p.sH * ru.j + ph.ry, ox = p.sW * ru.i + ph.rx;
        T* dst = c.y + (ru.n * p.Cout + cog0) * geo.HWo + oy * p.Wout + ox;
        if (ru.batch && c.yt) {
          T* d = c.yt + (cog0 * geo.HWo + oy * p.Wout + ox) * p.N + ru.n;
          for (int64_t cc = 0; cc < nc; ++cc)
            std::memcpy(d + cc * geo.HWo * p.N, ctile + cc * mr + ru.lane0, static_cast<size_t>(ru.len) * sizeof(T));
        } else if (ru.batch) {
          for (int64_t cc = 0; cc < nc; ++cc) {
            const T* sp = ctile + cc * mr + ru.lane0;
            T* d = dst + cc * geo.HWo;
            for (int32_t l = 0; l < ru.len; ++l) d[l * geo.CoutHWo] = sp[l];
          }
        } else if (p.sW == 1) {
          for (int64_t cc = 0; cc < nc; ++cc)
            std::memcpy(dst + cc * geo.HWo, ctile + cc * mr + ru.lane0, static_cast<size_t>(ru.len) * sizeof(T));
        } else if (p.sW == 2) {
          for (int64_t cc = 0; cc < nc; ++cc) c.store_stride2(dst + cc * geo.HWo, ctile + cc * mr + ru.lane0, ru.len);
        } else {
          const int64_t sw = p.sW;
          for (int64_t cc = 0; cc < nc; ++cc) {
            const T* sp = ctile + cc * mr + ru.lane0;
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
  // Measured at 1 thread (16 images, 1x16 tiles, three runs each), reading xt instead of copying panels:
  // DCGAN 256->128 on 8x8 10.1-10.3 -> 9.5-9.7 ms, 512->256 on 4x4 9.0-9.2 -> 8.7-9.0 ms.
  const bool from_xt = tiles_read_xt(pl);
  const int64_t lda = from_xt ? p.N : mr;  // xt: one pixel's channels are N elements apart
  T* A = from_xt ? nullptr
                 : static_cast<T*>(scratch(kSlotA, static_cast<size_t>(std::max<int64_t>(1, ntiles * ntaps * Cin_g * mr)) *
                                                       sizeof(T)));
  const TaskScratch<T> s = task_scratch<T>(ntiles, mr, pl.var.nr, std::max<int64_t>(1, ntaps));
  const T* xg = c.x + tk.g * Cin_g * geo.HW;  // channel 0 of the group, image 0
  const T* xtg = c.xt ? c.xt + tk.g * Cin_g * p.N : nullptr;  // the same in xt (pixel 0)

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
    ti.q0 = 0;
    ti.run0 = nrun_total;
    ti.nrun = nrun;
    ti.seg0 = nseg_total;
    int32_t nseg = 0;
    for_each_tile_tap(ph, b, p, Cin_g, pl.var.nr, [&](const Tap& ty, const Tap& tx, int64_t boff) {
      s.boff[nseg_total + nseg] = boff;
      if (from_xt) {
        const Run& ru = tr[0];
        s.aptr[nseg_total + nseg++] = xtg + ((ru.j + ty.off) * p.W + ru.i + tx.off) * p.Cin * p.N + ru.n;
        return;
      }
      T* a = A + aofs;
      s.aptr[nseg_total + nseg] = a;
      ++nseg;
      aofs += Cin_g * mr;
      for (int r = 0; r < nrun; ++r) {
        const Run& ru = tr[r];
        const int64_t iy_in = ru.j + ty.off, ix_in = ru.i + tx.off;
        RunSrc& q = rs[r];
        if (iy_in < 0 || iy_in >= p.H) {
          q.lo = q.hi = 0;
          q.src = xg;
        } else if (ru.batch) {  // images n.. of one pixel: contiguous in xt
          const bool ok = ix_in >= 0 && ix_in < p.W;
          q.lo = 0;
          q.hi = ok ? ru.len : 0;
          q.src = xtg + (iy_in * p.W + (ok ? ix_in : 0)) * p.Cin * p.N + ru.n;
        } else {
          q.lo = static_cast<int32_t>(std::min<int64_t>(ru.len, std::max<int64_t>(0, -ix_in)));
          q.hi = static_cast<int32_t>(std::max<int64_t>(q.lo, std::min<int64_t>(ru.len, p.W - ix_in)));
          q.src = xg + ru.n * geo.CinHW + iy_in * p.W + ix_in;  // lane l reads src[l] (l in [lo,hi))
        }
      }
      // Batch-inner tiles of 16 images: every run is one pixel's 16 images, copied with a fixed-size move
      // the compiler inlines (a libc call per 64-byte run cost about a fifth of the A3 layer).
      bool runs_of_16 = used == mr;
      for (int r = 0; r < nrun && runs_of_16; ++r) runs_of_16 = tr[r].batch && tr[r].len == 16;
      if (runs_of_16) {
        for (int64_t ci = 0; ci < Cin_g; ++ci) {
          const int64_t cofs_t = ci * p.N;
          for (int r = 0; r < nrun; ++r) {
            T* d = a + tr[r].lane0;
            if (rs[r].hi == 16)
              std::memcpy(d, rs[r].src + cofs_t, 16 * sizeof(T));
            else
              std::memset(d, 0, 16 * sizeof(T));  // T(0) is all-zero bytes for float and double
          }
          a += mr;
        }
        return;
      }
      for (int64_t ci = 0; ci < Cin_g; ++ci) {
        const int64_t cofs = ci * geo.HW, cofs_t = ci * p.N;
        for (int r = 0; r < nrun; ++r) {
          const Run& ru = tr[r];
          const RunSrc& q = rs[r];
          T* d = a + ru.lane0;
          int32_t l = 0;
          for (; l < q.lo; ++l) d[l] = T(0);
          const T* src = q.src + (ru.batch ? cofs_t : cofs);
          if (q.hi > l) {  // libc's copy: vector moves at the CPU's width for these short runs
            std::memcpy(d + l, src + l, static_cast<size_t>(q.hi - l) * sizeof(T));
            l = q.hi;
          }
          for (; l < ru.len; ++l) d[l] = T(0);
        }
        for (int64_t l = used; l < mr; ++l) a[l] = T(0);
        a += mr;
      }
    });
    ti.nseg = nseg;
    nseg_total += nseg;
    nrun_total += nrun;
  }
  compute_tiles(c, tk, s, ntiles, lda);
}

template <class T>
void run_task_direct(const GemmCtx<T>& c, const Task& tk) {
  const Plan<T>& pl = *c.pl;
  const Problem& p = *pl.p;
  const Geometry& geo = pl.geo;
  const int64_t mr = pl.var.mr, Cin_g = geo.Cin_g, n = tk.phase_or_n, mwords = kernels::mask_words(mr);
  const int64_t j0 = tk.a0, i0 = tk.b0;
  const int64_t rows = tk.a1 - tk.a0, cols = tk.b1 - tk.b0;
  const int64_t brows = rows + pl.ymax - pl.ymin, wblk = block_width(pl, cols);
  const int64_t plane = brows * wblk;

  // 1. zero-padded input block: row r <-> input row j0 + ymin + r, column q <-> input column i0 + xofs + q
  // Slack for the junk lanes of the last tiles, and in masked mode for the masked-off lanes, which are read too: up to
  // -xmin elements before the block and a row after it.
  const size_t front = pl.masked ? static_cast<size_t>((std::max<int64_t>(0, -pl.xmin) + 15) / 16 * 16) : 0;
  const size_t slack = static_cast<size_t>(mr + 64 + (pl.masked ? wblk : 0));
  T* blk = static_cast<T*>(scratch(kSlotA, (front + static_cast<size_t>(Cin_g * plane) + slack) * sizeof(T))) + front;
  std::memset(blk - front, 0, front * sizeof(T));
  const T* xs = c.x + (n * p.Cin + tk.g * Cin_g) * geo.HW;
  const int64_t xofs = pl.masked ? 0 : pl.xmin;  // block column q <-> input column i0 + xofs + q
  const int64_t ix0 = i0 + xofs;
  const int64_t lo = std::min(wblk, std::max<int64_t>(0, -ix0)), hi = std::max(lo, std::min(wblk, p.W - ix0));
  // block rows [rlo, rhi) come from the input, the others are padding
  const int64_t rlo = std::clamp<int64_t>(-(j0 + pl.ymin), 0, brows);
  const int64_t rhi = hi == lo ? rlo : std::clamp<int64_t>(p.H - (j0 + pl.ymin), rlo, brows);
  // The block's rows are adjacent in x too (no column padding, whole rows): one copy per channel (U-Net 1024->512
  // and 512->256, 1 thread, calls alternating with a copy per row: -1.5 %).
  const bool whole_rows = lo == 0 && hi == wblk && wblk == p.W;
  for (int64_t ci = 0; ci < Cin_g; ++ci) {
    T* d = blk + ci * plane;
    const int64_t src0 = ci * geo.HW + (j0 + pl.ymin) * p.W + ix0;  // block row r, column q: xs[src0 + r * W + q]
    if (rlo > 0) std::memset(d, 0, static_cast<size_t>(rlo * wblk) * sizeof(T));
    if (whole_rows) {
      std::memcpy(d + rlo * wblk, xs + src0 + rlo * p.W, static_cast<size_t>((rhi - rlo) * wblk) * sizeof(T));
    } else {
      for (int64_t r = rlo; r < rhi; ++r) {
        T* dr = d + r * wblk;
        if (lo > 0) std::memset(dr, 0, static_cast<size_t>(lo) * sizeof(T));
        std::memcpy(dr + lo, xs + (src0 + r * p.W + lo), static_cast<size_t>(hi - lo) * sizeof(T));
        if (hi < wblk) std::memset(dr + hi, 0, static_cast<size_t>(wblk - hi) * sizeof(T));
      }
    }
    if (rhi < brows) std::memset(d + rhi * wblk, 0, static_cast<size_t>((brows - rhi) * wblk) * sizeof(T));
  }
  std::memset(blk + Cin_g * plane, 0, slack * sizeof(T));  // junk lanes of the last tiles read here

  // 2. tiles of every phase over the block grid
  int64_t ntiles = 0, maxtaps = 1;
  for (const Phase& ph : geo.phases) {
    const int64_t pr = std::min(ph.Hj, j0 + rows) - j0, pc = std::min(ph.Wj, i0 + cols) - i0;
    if (pr > 0 && pc > 0) ntiles += ((pr - 1) * wblk + pc + mr - 1) / mr;
    maxtaps = std::max<int64_t>(maxtaps, static_cast<int64_t>(ph.ty.size() * ph.tx.size()));
  }
  // Stride 2 with column residues 0 and 1 both reached (phases (yc, 0), (yc, 1) adjacent): stage the tiles
  // and write each output row segment once, interleaved (see compute_tiles).
  const size_t nph = geo.phases.size();
  const bool stage = p.sW == 2 && nph % 2 == 0 && geo.phases[0].rx == 0 && geo.phases[1].rx == 1 &&
                     geo.phases[1].ry == geo.phases[0].ry && (nph == 2 || geo.phases[2].ry != geo.phases[0].ry);
  const int64_t stage_plane = stage ? ((rows - 1) * wblk + cols + mr - 1) / mr * mr : 0;
  const TaskScratch<T> s =
      task_scratch<T>(ntiles, mr, pl.var.nr, maxtaps, static_cast<int64_t>(nph) * pl.var.nr * stage_plane);
  int64_t t = 0;
  int32_t nrun_total = 0, nseg_total = 0;
  for (size_t phi = 0; phi < geo.phases.size(); ++phi) {
    const Phase& ph = geo.phases[phi];
    const int64_t pr = std::min(ph.Hj, j0 + rows) - j0, pc = std::min(ph.Wj, i0 + cols) - i0;
    if (pr <= 0 || pc <= 0) continue;
    const int64_t qend = (pr - 1) * wblk + pc;
    for (int64_t q0 = 0; q0 < qend; q0 += mr, ++t) {
      TileInfo& ti = s.infos[t];
      Run* tr = s.runs + nrun_total;
      const int nrun = make_runs_direct(q0, qend, wblk, pc, n, j0, i0, mr, tr);
      ti.phase = static_cast<int32_t>(phi);
      ti.q0 = static_cast<int32_t>(q0);
      ti.run0 = nrun_total;
      ti.nrun = nrun;
      ti.seg0 = nseg_total;
      ti.nseg = 0;
      if (nrun == 0) continue;  // every lane on padding columns: nothing to compute
      const Bounds b = run_bounds(tr, nrun);
      int32_t nseg = 0;
      for_each_tile_tap(ph, b, p, Cin_g, pl.var.nr, [&](const Tap& ty, const Tap& tx, int64_t boff) {
        s.aptr[nseg_total + nseg] = blk + (ty.off - pl.ymin) * wblk + (tx.off - xofs) + q0;
        s.boff[nseg_total + nseg] = boff;
        if (pl.masked) set_lane_mask(q0, mr, wblk, -tx.off, p.W - tx.off, s.amask + (nseg_total + nseg) * mwords);
        ++nseg;
      });
      ti.nseg = nseg;
      nseg_total += nseg;
      nrun_total += nrun;
    }
  }
  compute_tiles(c, tk, s, ntiles, plane, stage_plane, wblk);
  if (c.fence) c.fence();
}

// Packs B for plan pl (all groups, phases, channel tiles) into B (pl.p->groups * pl.bgroup elements),
// in parallel over units (group, channel tile).
template <class T>
void pack_b(const Plan<T>& pl, const kernels::TypedSet<T>& ks, const T* w, T* B, int threads,
            const std::atomic<bool>* cancel) {
  const Problem& p = *pl.p;
  const int64_t units = p.groups * pl.ntile_c;
  const std::vector<TapSlot<T>> slots = tap_slots(pl);
  const int pack_threads = weight_elements(p) >= blocking::kParallelPackMinElements ? threads : 1;
  // Packed in parallel, the panels are written with streaming stores (where the ISA's transposes write them). Measured
  // on Zen 5, 2 threads, separate processes run alternately, 4 rounds, plain -> streaming: DCGAN 512->256 on 4x4
  // (8 MiB of weights) 3.63-3.72 -> 3.30-3.44 ms, HiFi-GAN 512->256 13.2-13.4 -> 12.9-13.2, U-Net 1024->512 level;
  // calls alternating in one process: DCGAN 256->128 -1.7 %, float64 level. (Why is not established: the panels then
  // bypass the caches, and each thread reads from memory also those the other core wrote.) At 1 thread streaming
  // gave nothing (DCGAN 512->256 +0.8 %), so one thread keeps plain stores.
  const bool stream = pack_threads > 1;
  auto pack_unit = [&](int64_t u) {
    const int64_t ct = u % pl.ntile_c, g = u / pl.ntile_c;
    std::vector<T*> dst(slots.size());
    pack_b_unit(pl, ks, slots, w, B, g, ct, dst.data(), stream);
  };
  if (!threading::parallel_for(units, pack_threads, pack_unit, cancel)) throw Cancelled();
}

// Packed weights of small layers, kept per thread between calls: a call with the same problem, kernels and weight
// bits (compared in full, so weights changed in place are packed again) reuses them. Besides the packing itself, a
// 2-thread call then no longer rewrites memory the other core read in the previous call (measured, 16->16 on 32x32,
// 2 threads: the packing took ~3.4 us of a 32 us call). Only for small weights (blocking::kPackCacheMaxElements).
template <class T>
const T* small_packed_weights(const Plan<T>& pl, const kernels::TypedSet<T>& ks, const T* w,
                              const std::atomic<bool>* cancel) {
  struct Entry {
    Problem key{};
    const kernels::TypedSet<T>* ks = nullptr;  // nullptr: empty (or a packing that did not finish)
    int64_t nr = 0;
    std::vector<T> raw, packed;
  };
  thread_local Entry e;
  const Problem& p = *pl.p;
  const size_t nw = static_cast<size_t>(weight_elements(p));
  if (e.ks == &ks && e.nr == pl.var.nr && same_problem(e.key, p) && std::memcmp(e.raw.data(), w, nw * sizeof(T)) == 0)
    return e.packed.data();
  e.ks = nullptr;
  e.packed.resize(static_cast<size_t>(p.groups * pl.bgroup));
  pack_b(pl, ks, w, e.packed.data(), 1, cancel);
  e.raw.assign(w, w + nw);
  e.key = p;
  e.nr = pl.var.nr;
  e.ks = &ks;
  return e.packed.data();
}

// B == nullptr: pack the weights w now, into the caller's scratch; otherwise B holds them packed for
// a plan with the same tile shape.
template <class T>
void gemm_path(const Problem& p, const T* x, const T* w, const T* Bpre, int forced_nr, const T* bias, T* y,
               int threads, const kernels::TypedSet<T>& ks, const std::atomic<bool>* cancel, bool cold_output) {
  const Plan<T>& pl = cached_plan(p, ks, forced_nr);
  const Geometry& geo = pl.geo;
  const int64_t mr = pl.var.mr, nr = pl.var.nr;

  // Packed weights + padded bias in the caller's scratch (reused across calls).
  const bool small_weights = !Bpre && weight_elements(p) <= blocking::kPackCacheMaxElements;
  const int64_t belems = Bpre || small_weights ? 0 : p.groups * pl.bgroup;
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
  if (small_weights) {
    B = small_packed_weights(pl, ks, w, cancel);
  } else if (!B) {
    pack_b(pl, ks, w, mem, threads, cancel);
    B = mem;
  }

  // Tasks. The tiling is fixed by the plan; the thread count only changes how tiles are grouped.
  const int64_t target = int64_t{threads} * blocking::kTasksPerThread;
  const int64_t max_tasks = std::max<int64_t>(1, static_cast<int64_t>(flops / static_cast<double>(blocking::kMinTaskFlops)));
  const int64_t want = threads > 1 ? std::min(target, max_tasks) : 1;
  // Big problems get up to one task per kBalanceTaskFlops, so that a thread slowed down for a while (a
  // shared VM) leaves a short tail; only by splits that repeat little copying (pixel tiles in im2col
  // mode, channel tiles in direct mode: an im2col panel re-packed per channel split costs more).
  const int64_t balance =
      threads > 1 ? std::max(want, static_cast<int64_t>(flops / static_cast<double>(blocking::kBalanceTaskFlops))) : 1;
  std::vector<Task> tasks;
  if (pl.direct) {
    const int64_t ncb = (pl.maxWj + pl.Cb - 1) / pl.Cb;
    auto count_blocks = [&](int64_t rows) { return p.groups * p.N * ((pl.maxHj + rows - 1) / rows) * ncb; };
    // Lanes the tiles of one column block cover when blocks have `rows` rows (each block's grid is cut into MR-lane
    // tiles, see cost_direct).
    auto lanes_for = [&](int64_t rows) {
      int64_t lanes = 0;
      const int64_t wblk = block_width(pl, std::min(pl.Cb, pl.maxWj));
      for (int64_t j0 = 0; j0 < pl.maxHj; j0 += rows)
        for (const Phase& ph : geo.phases) {
          const int64_t r = std::min(ph.Hj, j0 + rows) - j0, c = std::min(ph.Wj, pl.Cb);
          if (r > 0 && c > 0) lanes += ((r - 1) * wblk + c + mr - 1) / mr * mr;
        }
      return lanes;
    };
    // For parallelism (want), blocks are split into fewer rows first, while that adds at most 5 % of lanes: the
    // tasks then share the copy and the tile setup instead of each repeating them for its channel tiles (2 threads,
    // calls alternating: 16->16 on 32x32 27.6 -> 26.1 us, dilated 64->64 on 56x56 -4 %; separate processes, reused
    // output: 16->16 30 -> 22 us in 2 rounds of 3 (28 -> 38 in the third), dilated -2 %. U-Net 1024->512, whose
    // 8-row blocks tile exactly, would waste 14 % of its lanes with 4-row blocks, and keeps them).
    int64_t rows_per = pl.R;
    while (count_blocks(rows_per) < want && rows_per > 1 + pl.ymax - pl.ymin &&
           lanes_for((rows_per + 1) / 2) * 20 <= lanes_for(rows_per) * 21)
      rows_per = (rows_per + 1) / 2;
    const int64_t blocks = count_blocks(rows_per);
    int64_t ct_per = pl.ntile_c;
    // Each task copies its input block (Cin/G per pixel, ~kCopyCost lane-FMAs per element) and computes
    // taps x ct_per x NR lane-FMAs per pixel and input channel: split channel tiles for balance only while
    // that keeps the copy under ~1/4 of the task, and while tasks number under 90 % of `balance` (a split that
    // doubles them repeats each block's copy: stride-1 64->64 on 112x112 with 9-row blocks, 13 blocks, was 6-8 %
    // slower as 52 tasks than as 26); for parallelism (want) regardless.
    const double taps = static_cast<double>(p.kH * p.kW) / static_cast<double>(std::max<size_t>(1, geo.phases.size()));
    const int64_t min_ct_per =
        std::max<int64_t>(1, static_cast<int64_t>(4.0 * blocking::kCopyCost / (taps * static_cast<double>(nr))));
    auto ntask = [&](int64_t ctp) { return blocks * ((pl.ntile_c + ctp - 1) / ctp); };
    while (ct_per > 1 &&
           (ntask(ct_per) < want || (ntask(ct_per) * 10 < balance * 9 && (ct_per + 1) / 2 >= min_ct_per)))
      ct_per = (ct_per + 1) / 2;
    tasks.reserve(static_cast<size_t>(blocks * ((pl.ntile_c + ct_per - 1) / ct_per)));
    for (int64_t g = 0; g < p.groups; ++g)
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t j0 = 0; j0 < pl.maxHj; j0 += rows_per)
          for (int64_t i0 = 0; i0 < pl.maxWj; i0 += pl.Cb)
            for (int64_t ct = 0; ct < pl.ntile_c; ct += ct_per)
              tasks.push_back({g, n, j0, std::min(pl.maxHj, j0 + rows_per), i0, std::min(pl.maxWj, i0 + pl.Cb), ct,
                               std::min(pl.ntile_c, ct + ct_per)});
  } else {
    // Tiles that read xt need no pixel panel, so a task may take all the tiles of a phase, and the channel tiles
    // are split first: each weight panel is then read once per call (with 2-tile tasks, DCGAN 512->256 on 4x4
    // read its 8 MiB of packed weights 8 times, and slowed down whenever the shared L3 could not hold them).
    // Unless the input is the larger of the two: then pixels are split first, so that each task's part of xt is
    // read once per call (DCGAN 128->64 on 16x16, 16 images, 2 MiB input and 0.5 MiB of weights: 2-4 % faster).
    // (The task's C tiles, kept between reduction blocks, stay within the same budget as a pixel panel.) Pixels
    // first whatever the sizes looked 1.5-3.5 % faster for DCGAN 512->256 and 256->128 in calls alternating within
    // one process, but in separate processes run alternately 512->256 was ~2 % slower, so this rule stays.
    const bool from_xt = tiles_read_xt(pl);
    int64_t max_mtiles = 1;
    for (const Phase& ph : geo.phases) max_mtiles = std::max(max_mtiles, ph.mtiles);
    int64_t mt_per = from_xt ? std::clamp<int64_t>(blocking::kABlockBytes / (mr * nr * int64_t(sizeof(T))), 1, max_mtiles)
                             : std::max<int64_t>(1, blocking::kABlockBytes /
                                                        std::max<int64_t>(1, pl.maxK * mr * int64_t(sizeof(T))));
    int64_t ct_per = pl.ntile_c;
    auto count_tasks = [&](int64_t mtp, int64_t ctp) {
      int64_t k = 0;
      for (const Phase& ph : geo.phases) k += ((ph.mtiles + mtp - 1) / mtp) * ((pl.ntile_c + ctp - 1) / ctp);
      return k * p.groups;
    };
    if (from_xt && weight_elements(p) >= input_elements(p))
      while (count_tasks(mt_per, ct_per) < balance && ct_per > 1) ct_per = (ct_per + 1) / 2;
    while (count_tasks(mt_per, ct_per) < balance && mt_per > 1) mt_per = (mt_per + 1) / 2;
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
  // Staged batch-inner output (see blocking::kBatchInnerStageMaxBytes); the bias-only outputs are filled
  // after it is copied out, since the copy covers every position.
  T* yt = nullptr;
  const size_t y_bytes = static_cast<size_t>(output_elements(p)) * sizeof(T);
  if (pl.batch_inner && y_bytes <= static_cast<size_t>(blocking::kBatchInnerStageMaxBytes))
    yt = static_cast<T*>(scratch(kSlotYT, y_bytes));
  if (geo.bias_only_outputs && !yt) fill_bias_only_outputs(p, geo, bias, y, threads, cancel);
  // Batch-inner tiles take one pixel of consecutive images per run: copy x once with the batch innermost
  // (a strided pass over x), so that the panels copy contiguous runs instead of gathering with a stride
  // of a whole image for every tap of every phase.
  T* xt = nullptr;
  if (pl.batch_inner) {
    xt = static_cast<T*>(scratch(kSlotXT, static_cast<size_t>(input_elements(p)) * sizeof(T)));
    const int64_t HW = geo.HW, N = p.N;
    auto transpose = [&](int64_t ci) {
      // 16 pixels at a time through the ISA's register transposes (whole blocks of images), the rest here
      int64_t q = 0;
      if (ks.transpose) {
        T* dst[16];
        for (; q + 16 <= HW; q += 16) {
          for (int64_t t = 0; t < 16; ++t) dst[t] = xt + ((q + t) * p.Cin + ci) * N;
          const int64_t done = ks.transpose(x + ci * HW + q, p.Cin * HW, 1, N, 16, dst, false);
          for (int64_t t = 0; t < 16; ++t)
            for (int64_t n = done; n < N; ++n) dst[t][n] = x[(n * p.Cin + ci) * HW + q + t];
        }
      }
      for (; q < HW; ++q)
        for (int64_t n = 0; n < N; ++n) xt[(q * p.Cin + ci) * N + n] = x[(n * p.Cin + ci) * HW + q];
    };
    if (!threading::parallel_for(p.Cin, input_elements(p) >= blocking::kParallelFillMinElements ? threads : 1, transpose,
                                 cancel))
      throw Cancelled();
  }
  const kernels::Interleave2Fn<T> interleave = output_interleave2(ks, p, cold_output);
  GemmCtx<T> ctx{&pl, x, B, biasp, y, ks.store_stride2, xt, interleave, yt,
                 interleave != ks.interleave2 ? ks.stream_fence : nullptr};
  bool done;
  if (pl.direct)
    done = threading::parallel_for(
        static_cast<int64_t>(tasks.size()), threads,
        [&](int64_t t) { run_task_direct(ctx, tasks[static_cast<size_t>(t)]); }, cancel);
  else
    done = threading::parallel_for(
        static_cast<int64_t>(tasks.size()), threads,
        [&](int64_t t) { run_task_im2col(ctx, tasks[static_cast<size_t>(t)]); }, cancel);
  if (!done) throw Cancelled();
  if (yt) {
    // y[n][co][q] = yt[co][q][n]: per channel, each output plane written sequentially; the channel's staged
    // block (HWo*N elements, small: batch-inner phases are tiny) serves the strided reads from L1/L2.
    const int64_t N = p.N, HWo = geo.HWo;
    auto unstage = [&](int64_t co) {
      const T* src = yt + co * HWo * N;
      int64_t q0 = 0;  // positions done by the ISA's register transposes (16 or 4 images; else none)
      if (ks.transpose && N <= 16) {
        T* dst[16];
        for (int64_t n = 0; n < N; ++n) dst[n] = y + (n * p.Cout + co) * HWo;
        q0 = ks.transpose(src, N, 1, HWo, N, dst, false);
      }
      for (int64_t n = 0; n < N; ++n) {
        T* dst = y + (n * p.Cout + co) * HWo;
        for (int64_t q = q0; q < HWo; ++q) dst[q] = src[q * N + n];
      }
    };
    const int fill_threads = output_elements(p) >= blocking::kParallelFillMinElements ? threads : 1;
    if (!threading::parallel_for(p.Cout, fill_threads, unstage, cancel)) throw Cancelled();
    if (geo.bias_only_outputs) fill_bias_only_outputs(p, geo, bias, y, threads, cancel);
  }
}



// ------------------------------------------------------------------------------------------------
// Scatter path, for few output channels per group (the phase GEMM would have 1-3 channels per tile
// and be load-bound: one pixel-vector load per FMA). A GEMM over input pixels instead:
//   Z[pixel][col] = sum_ci x[ci][pixel] * w[ci][col],   col = (ky, co, kx): Cout_g * kH * kW columns
// with the micro-kernel reading its lanes straight from x (MR pixels of one input row, lda = H*W), then
// each MR x NR tile of Z is added into the output at (iy*sH - pH + ky*dH, ix*sW - pW + kx*dW) (col2im,
// one register tile at a time: no column buffer). A task is (n, g, block of output rows): it fills the
// block with the bias, then walks the input rows that reach it, and per row only the column tiles
// whose ky lands in the block (columns are ky-major for that). Each output element receives its
// terms in an order fixed by the plan (input row, column tile, column), whatever the thread count.
// ------------------------------------------------------------------------------------------------
int64_t ceildiv(int64_t a, int64_t b) { return -floordiv(-a, b); }  // b > 0

template <class T>
struct ScatterPlan {
  kernels::GemmVariant<T> var;
  int64_t cols = 0, ntile_c = 0;  // columns Cout_g*kH*kW and NR-tiles of them
  int64_t rows_per_task = 1;      // output rows per task
};

// forced_nr > 0: the tile width the weights were packed for.
template <class T>
ScatterPlan<T> make_scatter_plan(const Problem& p, const kernels::TypedSet<T>& ks, int forced_nr) {
  ScatterPlan<T> sp;
  const int64_t Cout_g = p.Cout / p.groups;
  sp.cols = Cout_g * p.kH * p.kW;
  double best = -1;
  for (int v = 0; v < kernels::kMaxVariants && ks.gemm[v].fn; ++v) {
    const kernels::GemmVariant<T>& g = ks.gemm[v];
    if (forced_nr > 0 && g.nr != forced_nr) continue;
    const double lane_use = static_cast<double>(p.W) / static_cast<double>((p.W + g.mr - 1) / g.mr * g.mr);
    const double col_use = static_cast<double>(sp.cols) / static_cast<double>((sp.cols + g.nr - 1) / g.nr * g.nr);
    const double e = lane_use * col_use * tile_eff(g.nr);
    if (e > best) {
      best = e;
      sp.var = g;
    }
  }
  sp.ntile_c = (sp.cols + sp.var.nr - 1) / sp.var.nr;
  // A block of output rows: about kScatterBlockElements outputs of the group, at least one row.
  sp.rows_per_task = std::max<int64_t>(1, blocking::kScatterBlockElements / std::max<int64_t>(1, Cout_g * p.Wout));
  return sp;
}

// Scatter or phase GEMM for a non-depthwise problem (automatic choice, or forced for testing).
template <class T>
bool prefer_scatter(const Problem& p, const kernels::TypedSet<T>& ks) {
  const int forced = g_force_mode.load(std::memory_order_relaxed);
  if (forced >= 0) return forced == 3;
  const int64_t Cout_g = p.Cout / p.groups, Cin_g = p.Cin / p.groups;
  if (Cout_g > blocking::kScatterMaxCoutPerGroup || Cin_g < blocking::kScatterMinCinPerGroup) return false;
  const ScatterPlan<T> sp = make_scatter_plan(p, ks, 0);
  return 2 * p.W >= sp.var.mr;  // at least half the lanes of a row tile used
}

// B for the scatter path: [g][column tile][ci][NR], zero-padded columns.
template <class T>
void pack_scatter_b(const Problem& p, const ScatterPlan<T>& sp, const T* w, T* B) {
  const int64_t Cin_g = p.Cin / p.groups, Cout_g = p.Cout / p.groups, kHW = p.kH * p.kW, nr = sp.var.nr;
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t ct = 0; ct < sp.ntile_c; ++ct)
      for (int64_t ci = 0; ci < Cin_g; ++ci) {
        T* d = B + ((g * sp.ntile_c + ct) * Cin_g + ci) * nr;
        const T* src = w + (g * Cin_g + ci) * Cout_g * kHW;
        for (int64_t cc = 0; cc < nr; ++cc) {
          const int64_t c = ct * nr + cc;
          if (c >= sp.cols) {
            d[cc] = T(0);
            continue;
          }
          const int64_t kx = c % p.kW, co = (c / p.kW) % Cout_g, ky = c / (p.kW * Cout_g);
          d[cc] = src[co * kHW + ky * p.kW + kx];
        }
      }
}

template <class T>
void scatter_task(const Problem& p, const ScatterPlan<T>& sp, const T* x, const T* B, const T* bias, T* y, int64_t task,
                  kernels::AddPairsFn<T> add_pairs) {
  const int64_t Cin_g = p.Cin / p.groups, Cout_g = p.Cout / p.groups;
  const int64_t HW = p.H * p.W, HWo = p.Hout * p.Wout, mr = sp.var.mr, nr = sp.var.nr;
  const int64_t nblk = (p.Hout + sp.rows_per_task - 1) / sp.rows_per_task;
  const int64_t blk = task % nblk, ng = task / nblk, g = ng % p.groups, n = ng / p.groups;
  const int64_t oy0 = blk * sp.rows_per_task, oy1 = std::min(p.Hout, oy0 + sp.rows_per_task);
  T* yg = y + (n * p.Cout + g * Cout_g) * HWo;  // output channel 0 of the group
  for (int64_t co = 0; co < Cout_g; ++co)
    std::fill(yg + co * HWo + oy0 * p.Wout, yg + co * HWo + oy1 * p.Wout, bias ? bias[g * Cout_g + co] : T(0));

  const T* xg = x + (n * p.Cin + g * Cin_g) * HW;
  const T* Bg = B + g * sp.ntile_c * Cin_g * nr;
  T* z = static_cast<T*>(scratch(kSlotTile, static_cast<size_t>(mr * nr) * sizeof(T)));
  T* tail = nullptr;  // a row tile that would read past the input plane, copied and zero-padded
  const T zeros[kernels::kMaxNr] = {};
  const int64_t boff0 = 0;
  const int64_t iylo = std::max<int64_t>(0, ceildiv(oy0 + p.pH - (p.kH - 1) * p.dH, p.sH));
  const int64_t iyhi = std::min(p.H - 1, floordiv(oy1 - 1 + p.pH, p.sH));
  for (int64_t iy = iylo; iy <= iyhi; ++iy) {
    const int64_t kylo = std::max<int64_t>(0, ceildiv(oy0 + p.pH - iy * p.sH, p.dH));
    const int64_t kyhi = std::min(p.kH - 1, floordiv(oy1 - 1 + p.pH - iy * p.sH, p.dH));
    if (kylo > kyhi) continue;
    const int64_t c0 = kylo * Cout_g * p.kW, c1 = (kyhi + 1) * Cout_g * p.kW;  // columns reaching the block
    for (int64_t ix0 = 0; ix0 < p.W; ix0 += mr) {
      const int64_t nl = std::min(mr, p.W - ix0);
      const T* a = xg + iy * p.W + ix0;
      int64_t lda = HW;
      if (iy * p.W + ix0 + mr > HW) {
        if (!tail) tail = static_cast<T*>(scratch(kSlotA, static_cast<size_t>(Cin_g * mr) * sizeof(T)));
        for (int64_t ci = 0; ci < Cin_g; ++ci) {
          std::memcpy(tail + ci * mr, a + ci * HW, static_cast<size_t>(nl) * sizeof(T));
          std::fill(tail + ci * mr + nl, tail + (ci + 1) * mr, T(0));
        }
        a = tail;
        lda = mr;
      }
      for (int64_t ct = c0 / nr; ct * nr < c1; ++ct) {
        sp.var.fn(Cin_g, 1, &a, lda, Bg + ct * Cin_g * nr, &boff0, zeros, z, mr);
        for (int64_t cc = 0; cc < nr; ++cc) {
          const int64_t c = ct * nr + cc;
          if (c < c0 || c >= c1) continue;
          const int64_t kx = c % p.kW, co = (c / p.kW) % Cout_g, ky = c / (p.kW * Cout_g);
          const int64_t oy = iy * p.sH - p.pH + ky * p.dH;  // in [oy0, oy1) by the ky range
          const int64_t ox0 = ix0 * p.sW - p.pW + kx * p.dW;
          const int64_t llo = std::max<int64_t>(0, ceildiv(-ox0, p.sW));
          const int64_t lhi = std::min(nl, floordiv(p.Wout - 1 - ox0, p.sW) + 1);
          T* row = yg + co * HWo + oy * p.Wout;
          const T* zc = z + cc * mr;
          if (p.sW == 1) {
            T* d = row + ox0;
            for (int64_t l = llo; l < lhi; ++l) d[l] += zc[l];
            continue;
          }
          if (p.sW == 2 && p.dW == 1 && kx + 1 < p.kW && cc + 1 < nr && c + 1 < c1) {
            // columns kx, kx+1 fill the even and odd outputs of the same row: one interleaved pass (each
            // output still receives one term from the pair, so the order of its terms is unchanged)
            const int64_t lhi1 = std::min(nl, floordiv(p.Wout - 2 - ox0, p.sW) + 1);  // lanes of kx+1
            const int64_t llo1 = std::max<int64_t>(0, ceildiv(-ox0 - 1, p.sW));
            const int64_t a0 = std::max(llo, llo1), a1 = std::max(a0, std::min(lhi, lhi1));  // common lanes
            const T* zc1 = zc + mr;
            for (int64_t l = llo; l < std::min(a0, lhi); ++l) row[ox0 + 2 * l] += zc[l];
            for (int64_t l = llo1; l < std::min(a0, lhi1); ++l) row[ox0 + 1 + 2 * l] += zc1[l];
            if (a1 > a0) add_pairs(row + ox0 + 2 * a0, zc + a0, zc1 + a0, a1 - a0);
            for (int64_t l = std::max(a1, llo); l < lhi; ++l) row[ox0 + 2 * l] += zc[l];
            for (int64_t l = std::max(a1, llo1); l < lhi1; ++l) row[ox0 + 1 + 2 * l] += zc1[l];
            ++cc;
            continue;
          }
          for (int64_t l = llo; l < lhi; ++l) row[ox0 + l * p.sW] += zc[l];
        }
      }
    }
  }
}

// B == nullptr: pack w now; otherwise Bpre holds it packed by pack_scatter_b for tile width forced_nr.
template <class T>
void scatter_path(const Problem& p, const T* x, const T* w, const T* Bpre, int forced_nr, const T* bias, T* y,
                  int threads, const kernels::TypedSet<T>& ks, const std::atomic<bool>* cancel) {
  const ScatterPlan<T> sp = make_scatter_plan(p, ks, forced_nr);
  const T* B = Bpre;
  if (!B) {
    const int64_t belems = p.groups * sp.ntile_c * (p.Cin / p.groups) * sp.var.nr;
    T* mem = static_cast<T*>(scratch(kSlotWeights, static_cast<size_t>(belems) * sizeof(T)));
    pack_scatter_b(p, sp, w, mem);
    B = mem;
  }
  const double flops = 2.0 * static_cast<double>(p.N) * static_cast<double>(p.Cin) * static_cast<double>(p.H * p.W) *
                       static_cast<double>(p.Cout / p.groups) * static_cast<double>(p.kH * p.kW);
  if (flops < static_cast<double>(blocking::kParallelMinFlops)) threads = 1;
  const int64_t ntasks = p.N * p.groups * ((p.Hout + sp.rows_per_task - 1) / sp.rows_per_task);
  if (!threading::parallel_for(ntasks, threads, [&](int64_t t) { scatter_task(p, sp, x, B, bias, y, t, ks.add_pairs); }, cancel))
    throw Cancelled();
}


// ------------------------------------------------------------------------------------------------
// Single-pixel path (1x1 input, no padding, dilation or output padding: e.g. a generator's first layer).
// Then out[n][co][ky][kx] = bias[co] + sum_ci x[n][ci] * w[ci][co][ky][kx], i.e. per group a plain GEMM
//   Y[n][col] = sum_ci x[n][ci] * w[ci][col],  col = (co, ky, kx)
// whose columns are contiguous both in w and in y. The micro-kernel runs with its roles swapped:
// lanes = MR columns read straight from w (lda = Cout_g*kH*kW, no weight packing), broadcast = NR
// images (x, packed as [ci][NR]), and stores straight into y (ldc = Cout*kH*kW). The bias is added
// after the reduction (the kernel's initial value is per broadcast entry, here an image).
// ------------------------------------------------------------------------------------------------
bool single_pixel(const Problem& p) {
  return p.H == 1 && p.W == 1 && p.pH == 0 && p.pW == 0 && p.dH == 1 && p.dW == 1 && p.Hout == p.kH &&
         p.Wout == p.kW && p.Cin / p.groups > 1;
}

template <class T>
void single_pixel_path(const Problem& p, const T* x, const T* w, const T* bias, T* y, int threads,
                       const kernels::TypedSet<T>& ks, const std::atomic<bool>* cancel) {
  const int64_t Cin_g = p.Cin / p.groups, Cout_g = p.Cout / p.groups, kHW = p.kH * p.kW;
  const int64_t cols = Cout_g * kHW, ldc = p.Cout * kHW;
  // tile: the widest-lane variant with at least kSinglePixelMinNr images (or all of them)
  kernels::GemmVariant<T> var = ks.gemm[0];
  for (int v = 0; v < kernels::kMaxVariants && ks.gemm[v].fn; ++v) {
    var = ks.gemm[v];
    if (var.nr >= std::min<int64_t>(p.N, blocking::kSinglePixelMinNr)) break;
  }
  const int64_t mr = var.mr, nr = var.nr;
  const int64_t ntile_n = (p.N + nr - 1) / nr, ntile_col = (cols + mr - 1) / mr;
  const int64_t tiles_per_task = std::max<int64_t>(1, blocking::kSinglePixelColsPerTask / mr);
  const int64_t ncb = (ntile_col + tiles_per_task - 1) / tiles_per_task;
  const double flops = 2.0 * static_cast<double>(p.N * p.Cin) * static_cast<double>(cols);
  if (flops < static_cast<double>(blocking::kParallelMinFlops)) threads = 1;
  auto task = [&](int64_t t) {  // t = (g, image tile, column block)
    const int64_t cb = t % ncb, gn = t / ncb, nt = gn % ntile_n, g = gn / ntile_n;
    const int64_t n0 = nt * nr, nn = std::min(nr, p.N - n0);
    const size_t xb_bytes = static_cast<size_t>(Cin_g * nr) * sizeof(T);
    char* mem = static_cast<char*>(scratch(kSlotA, xb_bytes + static_cast<size_t>(mr * (nr + Cin_g)) * sizeof(T) + 128));
    T* xb = reinterpret_cast<T*>(mem);                    // x of the tile's images, [ci][NR], zero-padded
    T* ctile = xb + Cin_g * nr + 16;                      // partial tiles (last column tile, or nn < NR)
    T* wtail = ctile + mr * nr;                           // the last column tile's weights, zero-padded
    for (int64_t ci = 0; ci < Cin_g; ++ci)
      for (int64_t c = 0; c < nr; ++c) xb[ci * nr + c] = c < nn ? x[(n0 + c) * p.Cin + g * Cin_g + ci] : T(0);
    const T zeros[kernels::kMaxNr] = {};
    const int64_t boff0 = 0;
    const T* wg = w + g * Cin_g * cols;
    T* yg = y + n0 * ldc + g * cols;
    for (int64_t tc = cb * tiles_per_task; tc < std::min(ntile_col, (cb + 1) * tiles_per_task); ++tc) {
      const int64_t col0 = tc * mr, ncol = std::min(mr, cols - col0);
      const T* a = wg + col0;
      int64_t lda = cols;
      if (ncol < mr) {  // would read past the last weight row
        for (int64_t ci = 0; ci < Cin_g; ++ci) {
          std::memcpy(wtail + ci * mr, wg + ci * cols + col0, static_cast<size_t>(ncol) * sizeof(T));
          std::fill(wtail + ci * mr + ncol, wtail + (ci + 1) * mr, T(0));
        }
        a = wtail;
        lda = mr;
      }
      T* dst = yg + col0;
      if (ncol == mr && nn == nr) {
        var.fn(Cin_g, 1, &a, lda, xb, &boff0, zeros, dst, ldc);
      } else {
        var.fn(Cin_g, 1, &a, lda, xb, &boff0, zeros, ctile, mr);
        for (int64_t c = 0; c < nn; ++c)
          std::memcpy(dst + c * ldc, ctile + c * mr, static_cast<size_t>(ncol) * sizeof(T));
      }
      if (bias)
        for (int64_t c = 0; c < nn; ++c)
          for (int64_t l = 0; l < ncol; ++l) dst[c * ldc + l] += bias[g * Cout_g + (col0 + l) / kHW];
    }
  };
  if (!threading::parallel_for(p.groups * ntile_n * ncb, threads, task, cancel)) throw Cancelled();
}

}  // namespace

void set_scratch_limit_for_testing(int64_t bytes) { g_scratch_limit.store(bytes < 0 ? -1 : bytes); }

void force_plan_mode_for_testing(int mode) { g_force_mode.store(mode < 0 || mode > 3 ? -1 : mode); }
void set_experiment_knob_for_testing(int64_t v) { g_experiment_knob.store(v); }
int64_t experiment_knob() { return g_experiment_knob.load(std::memory_order_relaxed); }

namespace {
template <class T>
std::string describe_plan_for(const Problem& p, const kernels::TypedSet<T>& ks) {
  if (!check(p).empty()) return "invalid problem";
  if (p.Cin / p.groups == 1) return "depthwise";
  if (g_force_mode.load() < 0 && single_pixel(p)) return "single-pixel";
  if (prefer_scatter(p, ks)) {
    const ScatterPlan<T> sp = make_scatter_plan(p, ks, 0);
    return "scatter tile " + std::to_string(sp.var.mr) + "x" + std::to_string(sp.var.nr) + " rows/task " +
           std::to_string(sp.rows_per_task);
  }
  const Plan<T> pl = make_plan(p, ks);
  std::string s = pl.direct ? "direct" : pl.batch_inner ? "im2col-batch-inner" : "im2col";
  s += " tile " + std::to_string(pl.var.mr) + "x" + std::to_string(pl.var.nr);
  if (pl.direct)
    s += std::string(pl.masked ? " masked" : "") + " block rows " + std::to_string(pl.R) + " cols " + std::to_string(pl.Cb);
  return s;
}
}  // namespace

std::string describe_plan(const Problem& p, bool f64) {
  return f64 ? describe_plan_for(p, active_set()->f64) : describe_plan_for(p, active_set()->f32);
}

namespace {

// ------------------------------------------------------------------------------------------------
// Depthwise path (Cin/G == 1): out[n, co] = bias + sum_taps x[n, g] * w[g, co % Cout_g]; no reduction
// over channels. A task is (n, co, block of output rows). It copies the input rows the block reads into
// zero-padded rows (zero rows above and below, zero columns left and right: no border cases), computes
// each phase of the block with one call of the plane kernel (rows x whole vectors of pixels, taps as
// offsets into the padded rows), and interleaves the phases into the output rows.
// ------------------------------------------------------------------------------------------------
template <class T>
void depthwise_path(const Problem& p, const T* x, const T* w, const T* bias, T* y, int threads,
                    const kernels::TypedSet<T>& ks, const std::atomic<bool>* cancel, bool cold_output) {
  const Geometry geo = make_geometry(p);
  const int64_t Cout_g = geo.Cout_g, kHW = p.kH * p.kW;
  constexpr int64_t kLanes = blocking::kDwLanes;
  const int64_t rows_per = std::max<int64_t>(1, blocking::kDepthwiseOutputsPerTask / p.Wout);
  const int64_t rblocks = (p.Hout + rows_per - 1) / rows_per;
  const int64_t ntasks = p.N * p.Cout * rblocks;
  const double flops = 2.0 * static_cast<double>(p.N * p.Cout) * static_cast<double>(p.H * p.W) * static_cast<double>(kHW);
  if (flops < static_cast<double>(blocking::kParallelMinFlops)) threads = 1;
  const int64_t nph_x = std::min(p.sW, p.Wout);
  const int64_t maxWj = (p.Wout + p.sW - 1) / p.sW;  // residue 0 has the most columns
  const int64_t accw = (maxWj + kLanes - 1) / kLanes * kLanes;  // a phase row, in whole vectors
  // residue -> index among the residues with taps (-1: bias only); phases are row-major over them
  std::vector<int64_t> ycls(static_cast<size_t>(std::min(p.sH, p.Hout)), -1), xcls(static_cast<size_t>(nph_x), -1);
  int64_t nxc = 0;  // x residues with taps (kW >= 1, so there is at least one, and one y residue)
  while (nxc < static_cast<int64_t>(geo.phases.size()) && geo.phases[static_cast<size_t>(nxc)].ry == geo.phases[0].ry)
    ++nxc;
  // Only taps that reach the input from some pixel of their phase matter (the others add zeros); their
  // offsets bound the padding: off in [-(Wj-1), W-1], so the padded rows stay O(W + Wout).
  int64_t xoffmin = 0, xoffmax = 0, yoffmin = 0, yoffmax = 0, maxtaps = 1;
  for (size_t pi = 0; pi < geo.phases.size(); ++pi) {
    const Phase& ph = geo.phases[pi];
    if (ph.ry < static_cast<int64_t>(ycls.size())) ycls[static_cast<size_t>(ph.ry)] = static_cast<int64_t>(pi) / nxc;
    if (ph.rx < nph_x) xcls[static_cast<size_t>(ph.rx)] = static_cast<int64_t>(pi) % nxc;
    maxtaps = std::max<int64_t>(maxtaps, static_cast<int64_t>(ph.ty.size() * ph.tx.size()));
    if (ph.Wj == 0 || ph.Hj == 0) continue;
    for (const Tap& t : ph.tx)
      if (tap_hits(t, 0, ph.Wj - 1, p.W)) xoffmin = std::min(xoffmin, t.off), xoffmax = std::max(xoffmax, t.off);
    for (const Tap& t : ph.ty)
      if (tap_hits(t, 0, ph.Hj - 1, p.H)) yoffmin = std::min(yoffmin, t.off), yoffmax = std::max(yoffmax, t.off);
  }
  const kernels::Interleave2Fn<T> interleave = output_interleave2(ks, p, cold_output);
  const bool stream = interleave != ks.interleave2;
  // Stride 2 in width: both column phases of an output row in one pass, interleaved in registers, where the ISA has
  // it (AVX-512 float32; measured, depthwise 256 channels 64x64 -> 128x128, min of 5: 1 thread 1.92 -> 1.18 ms,
  // 2 threads 1.02 -> 0.63 ms): no phase rows written and read back.
  const bool pair_rows = ks.dw_pair_rows != nullptr && p.sW == 2 && nph_x == 2;
  const int64_t lpad = -xoffmin;                              // padded column c <-> input column c - lpad
  const int64_t wpad = lpad + std::max(p.W, accw + xoffmax);  // every window [off + lpad, + accw) fits
  auto task = [&](int64_t t) {
    const int64_t rb = t % rblocks, nc = t / rblocks, co = nc % p.Cout, n = nc / p.Cout, g = co / Cout_g;
    const int64_t oy0 = rb * rows_per, oy1 = std::min(p.Hout, oy0 + rows_per);
    const T* xp = x + (n * p.Cin + g) * geo.HW;
    const T* wp = w + (g * Cout_g + (co % Cout_g)) * kHW;
    T* yp = y + nc * geo.HWo;
    const T b = bias ? bias[co] : T(0);
    // phase rows of the block (oy = sH * j + ry): j in [jlo, jhi) over all residues; input rows read
    const int64_t jlo = oy0 / p.sH, jhi = (oy1 - 1) / p.sH + 1;
    const int64_t r0 = jlo + yoffmin, nrows = (jhi - 1 + yoffmax) - r0 + 1;  // padded row q <-> input row r0 + q
    const size_t acc_elems = pair_rows ? 0 : static_cast<size_t>((oy1 - oy0) * nph_x * accw);
    const size_t rows_elems = static_cast<size_t>(nrows * wpad);
    // taps of up to two phases (pair_rows), then the phase rows (plane kernel only) and the padded input rows
    const size_t taps_bytes = (static_cast<size_t>(2 * maxtaps) * (sizeof(int64_t) + sizeof(T)) + 63) & ~size_t{63};
    char* mem = static_cast<char*>(scratch(kSlotDw, taps_bytes + (acc_elems + rows_elems) * sizeof(T)));
    int64_t* toff = reinterpret_cast<int64_t*>(mem);  // scratch is 64-byte aligned
    T* wt = reinterpret_cast<T*>(toff + 2 * maxtaps);
    T* accs = reinterpret_cast<T*>(mem + taps_bytes);  // row (oy - oy0, rx) at ((oy - oy0) * nph_x + rx) * accw
    T* rows = accs + acc_elems;
    for (int64_t q = 0; q < nrows; ++q) {
      T* d = rows + q * wpad;
      const int64_t iy = r0 + q;
      if (iy < 0 || iy >= p.H) {
        std::fill(d, d + wpad, T(0));
        continue;
      }
      std::fill(d, d + lpad, T(0));
      std::memcpy(d + lpad, xp + iy * p.W, static_cast<size_t>(p.W) * sizeof(T));
      std::fill(d + lpad + p.W, d + wpad, T(0));
    }
    // taps of phase (yc, xc) that reach the input: offsets into the padded rows, weights; none for xc < 0
    auto phase_taps = [&](int64_t yc, int64_t xc, int64_t* offs, T* wts) {
      int ntap = 0;
      if (xc < 0) return ntap;
      const Phase& ph = geo.phases[static_cast<size_t>(yc * nxc + xc)];
      for (const Tap& ty : ph.ty) {
        if (!tap_hits(ty, 0, ph.Hj - 1, p.H)) continue;
        for (const Tap& tx : ph.tx) {
          if (!tap_hits(tx, 0, ph.Wj - 1, p.W)) continue;
          offs[ntap] = ty.off * wpad + tx.off;
          wts[ntap] = wp[ty.k * p.kW + tx.k];
          ++ntap;
        }
      }
      return ntap;
    };
    if (pair_rows) {
      // stride 2 in width: each output row computed with its two column phases interleaved in registers
      for (int64_t oy = oy0; oy < oy1; ++oy)
        if (ycls[static_cast<size_t>(oy % p.sH)] < 0) std::fill(yp + oy * p.Wout, yp + (oy + 1) * p.Wout, b);
      for (int64_t ry = 0; ry < static_cast<int64_t>(ycls.size()); ++ry) {
        const int64_t yc = ycls[static_cast<size_t>(ry)];
        const int64_t ja = std::max<int64_t>(0, ceildiv(oy0 - ry, p.sH)), jb = ceildiv(oy1 - ry, p.sH);
        if (yc < 0 || jb <= ja) continue;
        const int n0 = phase_taps(yc, xcls[0], toff, wt);
        const int n1 = phase_taps(yc, xcls[1], toff + maxtaps, wt + maxtaps);
        const T* in = rows + (ja - r0) * wpad + lpad;
        T* d = yp + (p.sH * ja + ry) * p.Wout;
        const int64_t half = p.Wout / 2;
        ks.dw_pair_rows(d, p.sH * p.Wout, in, wpad, toff, wt, n0, toff + maxtaps, wt + maxtaps, n1, jb - ja, half,
                        b, stream);
        if (p.Wout & 1)  // the last column (phase 0 only)
          for (int64_t j = ja; j < jb; ++j) {
            T v = b;
            for (int t = 0; t < n0; ++t) v += wt[t] * in[(j - ja) * wpad + toff[t] + half];
            yp[(p.sH * j + ry) * p.Wout + p.Wout - 1] = v;
          }
      }
      if (stream) ks.stream_fence();
      return;
    }
    // every phase of the block in one plane-kernel call
    for (int64_t ry = 0; ry < static_cast<int64_t>(ycls.size()); ++ry) {
      const int64_t yc = ycls[static_cast<size_t>(ry)];
      if (yc < 0) continue;
      const int64_t ja = std::max<int64_t>(0, ceildiv(oy0 - ry, p.sH)), jb = ceildiv(oy1 - ry, p.sH);
      if (jb <= ja) continue;
      for (int64_t rx = 0; rx < nph_x; ++rx) {
        T* acc = accs + ((p.sH * ja + ry - oy0) * nph_x + rx) * accw;
        const int64_t ldacc = p.sH * nph_x * accw;
        const int ntap = phase_taps(yc, xcls[static_cast<size_t>(rx)], toff, wt);
        // row j of the phase reads padded rows j - r0 + off
        ks.dw_plane(acc, ldacc, rows + (ja - r0) * wpad + lpad, wpad, toff, wt, ntap, jb - ja, accw, b);
      }
    }
    // output rows, phases interleaved (the bias is in the phase rows already)
    for (int64_t oy = oy0; oy < oy1; ++oy) {
      T* dst = yp + oy * p.Wout;
      if (ycls[static_cast<size_t>(oy % p.sH)] < 0) {  // no tap reaches this row
        std::fill(dst, dst + p.Wout, b);
        continue;
      }
      const T* a = accs + (oy - oy0) * nph_x * accw;
      if (nph_x == 1) {
        std::memcpy(dst, a, static_cast<size_t>(p.Wout) * sizeof(T));
      } else if (nph_x == 2) {
        const int64_t half = p.Wout / 2;
        interleave(dst, a, a + accw, half);
        if (p.Wout & 1) dst[p.Wout - 1] = a[half];
      } else {
        for (int64_t ox = 0; ox < p.Wout; ++ox) dst[ox] = a[(ox % p.sW) * accw + ox / p.sW];
      }
    }
    if (stream) ks.stream_fence();
  };
  if (!threading::parallel_for(ntasks, threads, task, cancel)) throw Cancelled();
}

const kernels::TypedSet<float>& typed(const kernels::KernelSet& k, float*) { return k.f32; }
const kernels::TypedSet<double>& typed(const kernels::KernelSet& k, double*) { return k.f64; }

// The paths that compute from the caller's weight layout: depthwise, and a 1x1 input without padding.
bool reads_raw_weights(const Problem& p) {
  return p.Cin / p.groups == 1 || (g_force_mode.load(std::memory_order_relaxed) < 0 && single_pixel(p));
}

// How weights are laid out for a path: raw (the caller's layout: depthwise, single pixel; kept raw when
// packed, so that they still serve any other size), phase GEMM panels, scatter panels.
enum class Layout { kRaw, kPhase, kScatter };

template <class T>
Layout choose_layout(const Problem& p, const kernels::TypedSet<T>& ts) {
  if (reads_raw_weights(p)) return Layout::kRaw;
  return prefer_scatter(p, ts) ? Layout::kScatter : Layout::kPhase;
}

// Bpre == nullptr: w in the caller's layout (the path packs it); else Bpre packed in `layout` for tile
// width forced_nr.
template <class T>
void run(const Problem& p, const T* x, const T* w, const T* Bpre, Layout layout, int forced_nr,
         const kernels::KernelSet* ks, const T* bias, T* y, int threads, const std::atomic<bool>* cancel,
         bool cold_output) {
  if (cancel && cancel->load(std::memory_order_relaxed)) throw Cancelled();
  if (output_elements(p) == 0) return;
  if (threads < 1) threads = 1;
  const kernels::TypedSet<T>& ts = typed(*ks, static_cast<T*>(nullptr));
  if (layout == Layout::kRaw && Bpre) {  // packed raw: as unpacked
    w = Bpre;
    Bpre = nullptr;
  }
  if (!Bpre) layout = choose_layout(p, ts);
  if (layout == Layout::kRaw && p.Cin / p.groups == 1)
    depthwise_path(p, x, w, bias, y, threads, ts, cancel, cold_output);
  else if (layout == Layout::kRaw)
    single_pixel_path(p, x, w, bias, y, threads, ts, cancel);
  else if (layout == Layout::kScatter)
    scatter_path(p, x, w, Bpre, forced_nr, bias, y, threads, ts, cancel);
  else
    gemm_path(p, x, w, Bpre, forced_nr, bias, y, threads, ts, cancel, cold_output);
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
  Layout layout = Layout::kRaw;
  int nr = 0;                 // tile width the GEMM panels were packed for
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
  const kernels::TypedSet<T>& ts = typed(*im.ks, static_cast<T*>(nullptr));
  im.layout = choose_layout(p, ts);
  if (im.layout == Layout::kRaw) {
    const int64_t n = weight_elements(p);
    im.store.resize(static_cast<size_t>((n * int64_t(sizeof(T)) + 7) / 8));
    std::memcpy(im.store.data(), w, static_cast<size_t>(n) * sizeof(T));
    return pw;
  }
  if (im.layout == Layout::kScatter) {
    const ScatterPlan<T> sp = make_scatter_plan(p, ts, 0);
    im.nr = sp.var.nr;
    const int64_t n = p.groups * sp.ntile_c * (p.Cin / p.groups) * sp.var.nr;
    im.store.resize(static_cast<size_t>((n * int64_t(sizeof(T)) + 7) / 8 + 1));
    pack_scatter_b(p, sp, w, reinterpret_cast<T*>(im.store.data()));
    return pw;
  }
  // Plan for this problem; the layout depends only on the weight geometry and the tile's NR.
  const Plan<T> pl = make_plan(p, ts);
  im.nr = pl.var.nr;
  const int64_t n = p.groups * pl.bgroup;
  im.store.resize(static_cast<size_t>((n * int64_t(sizeof(T)) + 7) / 8 + 1));
  pack_b(pl, ts, w, reinterpret_cast<T*>(im.store.data()), threads, nullptr);
  return pw;
}

template <class T>
std::string run_packed(const Problem& p, const T* x, const PackedWeights& pw, const T* bias, T* y, int threads,
                       const std::atomic<bool>* cancel, bool cold_output) {
  std::string why = check_packed(p, pw, sizeof(T) == 8);
  if (!why.empty()) return why;
  const PackedWeights::Impl& im = PackedWeightsAccess::impl(pw);
  const T* wp = reinterpret_cast<const T*>(im.data());
  run(p, x, static_cast<const T*>(nullptr), wp, im.layout, im.nr, im.ks, bias, y, threads, cancel, cold_output);
  return std::string();
}

}  // namespace

bool packing_saves_work(const Problem& p) { return check(p).empty() && !reads_raw_weights(p); }

std::string check_packed(const Problem& p, const PackedWeights& w, bool f64) {
  const PackedWeights::Impl& im = PackedWeightsAccess::impl(w);
  if (im.f64 != f64) return im.f64 ? "the weights were packed from float64 data" : "the weights were packed from float32 data";
  if (!same_weight_geometry(p, im.key))
    return "the weights were packed for other channels, groups, kernel, stride, padding or dilation";
  return std::string();
}

std::shared_ptr<const PackedWeights> pack_weights(const Problem& p, const float* w, int threads) {
  return pack_impl(p, w, threads);
}
std::shared_ptr<const PackedWeights> pack_weights(const Problem& p, const double* w, int threads) {
  return pack_impl(p, w, threads);
}
std::string conv_transpose2d_packed(const Problem& p, const float* x, const PackedWeights& w, const float* bias,
                                    float* y, int threads) {
  return run_packed(p, x, w, bias, y, threads, nullptr, false);
}
std::string conv_transpose2d_packed(const Problem& p, const double* x, const PackedWeights& w, const double* bias,
                                    double* y, int threads) {
  return run_packed(p, x, w, bias, y, threads, nullptr, false);
}
std::string conv_transpose2d_packed(const Problem& p, const float* x, const PackedWeights& w, const float* bias,
                                    float* y, int threads, const std::atomic<bool>* cancel, bool cold_output) {
  return run_packed(p, x, w, bias, y, threads, cancel, cold_output);
}
std::string conv_transpose2d_packed(const Problem& p, const double* x, const PackedWeights& w, const double* bias,
                                    double* y, int threads, const std::atomic<bool>* cancel, bool cold_output) {
  return run_packed(p, x, w, bias, y, threads, cancel, cold_output);
}

void conv_transpose2d(const Problem& p, const float* x, const float* w, const float* bias, float* y, int threads) {
  run(p, x, w, static_cast<const float*>(nullptr), Layout::kRaw, 0, active_set(), bias, y, threads, nullptr, false);
}
void conv_transpose2d(const Problem& p, const double* x, const double* w, const double* bias, double* y,
                      int threads) {
  run(p, x, w, static_cast<const double*>(nullptr), Layout::kRaw, 0, active_set(), bias, y, threads, nullptr, false);
}
void conv_transpose2d(const Problem& p, const float* x, const float* w, const float* bias, float* y, int threads,
                      const std::atomic<bool>* cancel, bool cold_output) {
  run(p, x, w, static_cast<const float*>(nullptr), Layout::kRaw, 0, active_set(), bias, y, threads, cancel,
      cold_output);
}
void conv_transpose2d(const Problem& p, const double* x, const double* w, const double* bias, double* y,
                      int threads, const std::atomic<bool>* cancel, bool cold_output) {
  run(p, x, w, static_cast<const double*>(nullptr), Layout::kRaw, 0, active_set(), bias, y, threads, cancel,
      cold_output);
}

}  // namespace convt
