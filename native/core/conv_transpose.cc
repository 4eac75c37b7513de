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
  if (f.avx512f && kernels::avx512_kernels()) v.push_back(kernels::avx512_kernels());
  if (f.avx2_fma && kernels::avx2_kernels()) v.push_back(kernels::avx2_kernels());
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
  for (int64_t ry = 0; ry < std::min(p.sH, p.Hout); ++ry)
    for (int64_t rx = 0; rx < std::min(p.sW, p.Wout); ++rx) {
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

template <class T>
struct Plan {
  const Problem* p;
  Geometry geo;
  kernels::GemmVariant<T> var;
  bool batch_inner = false;
  int64_t ntile_c = 0;   // channel tiles per group
  int64_t bgroup = 0;    // B elements per group
  int64_t maxK = 0;      // largest taps * Cin_g over phases
};

// Lanes of tile [m0, m0 + MR) of a phase, as runs.
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

// Estimated cost (in MR x NR x k micro-kernel steps weighted by kernel efficiency) of a variant and
// an ordering; exact tap counting for small phases.
template <class T>
double plan_cost(Plan<T>& pl) {
  const Problem& p = *pl.p;
  const int64_t mr = pl.var.mr, nr = pl.var.nr;
  const int64_t ntile_c = (pl.geo.Cout_g + nr - 1) / nr;
  // Rough efficiency of a tile shape: low NR tiles are load-bound.
  const double eff = nr >= 6 ? 1.0 : nr >= 4 ? 0.93 : nr == 3 ? 0.85 : nr == 2 ? 0.7 : 0.5;
  std::vector<Run> runs(static_cast<size_t>(mr));
  double steps = 0;
  for (Phase& ph : pl.geo.phases) {
    ph.M = p.N * ph.Hj * ph.Wj;
    ph.mtiles = (ph.M + mr - 1) / mr;
    const int64_t T_all = static_cast<int64_t>(ph.ty.size() * ph.tx.size());
    if (ph.Hj * ph.Wj * p.N > blocking::kExactCostMaxPixels) {
      steps += static_cast<double>(ph.mtiles) * static_cast<double>(T_all * pl.geo.Cin_g + 4);
      continue;
    }
    for (int64_t mt = 0; mt < ph.mtiles; ++mt) {
      const int nrun = make_runs(pl, ph, mt * mr, runs.data());
      const Bounds b = run_bounds(runs.data(), nrun);
      int64_t cy = 0, cx = 0;
      for (const Tap& t : ph.ty) cy += tap_hits(t, b.jmin, b.jmax, p.H);
      for (const Tap& t : ph.tx) cx += tap_hits(t, b.imin, b.imax, p.W);
      steps += static_cast<double>(cy * cx * pl.geo.Cin_g + 4);  // +4: per-tile store/overhead
    }
  }
  return steps * static_cast<double>(ntile_c * nr * mr) / eff;
}

template <class T>
Plan<T> make_plan(const Problem& p, const kernels::TypedSet<T>& ks) {
  Plan<T> best;
  best.p = &p;
  best.geo = make_geometry(p);
  double best_cost = -1;
  for (int bi = 0; bi < 2; ++bi) {
    if (bi == 1) {
      bool any_small = false;
      for (const Phase& ph : best.geo.phases) any_small |= ph.Hj * ph.Wj < blocking::kBatchInnerMaxPhasePixels;
      if (p.N <= 1 || !any_small) break;
    }
    for (int v = 0; v < kernels::kMaxVariants && ks.gemm[v].fn; ++v) {
      Plan<T> cand;
      cand.p = &p;
      cand.geo = best.geo;
      cand.var = ks.gemm[v];
      cand.batch_inner = bi == 1;
      const double c = plan_cost(cand);
      if (best_cost < 0 || c < best_cost) {
        best_cost = c;
        best.var = cand.var;
        best.batch_inner = cand.batch_inner;
        best.geo = std::move(cand.geo);
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
  int64_t aofs;   // offset of the tile's packed A in the task's A block
  int32_t nseg;   // valid taps
  int32_t run0, nrun;
  int32_t seg0;   // first entry in the task's segment-offset array
};

struct Task {
  int64_t g, phase, mt0, mt1, ct0, ct1;
};

template <class T>
struct GemmCtx {
  const Plan<T>* pl;
  const T* x;
  const T* B;
  const T* biasp;  // padded bias, G * ntile_c * NR
  T* y;
  const Task* tasks;
};

template <class T>
void run_task(const GemmCtx<T>& c, const Task& tk) {
  const Plan<T>& pl = *c.pl;
  const Problem& p = *pl.p;
  const Geometry& geo = pl.geo;
  const Phase& ph = geo.phases[static_cast<size_t>(tk.phase)];
  const int64_t mr = pl.var.mr, nr = pl.var.nr, Cin_g = geo.Cin_g, Cout_g = geo.Cout_g;
  const int64_t ntx = static_cast<int64_t>(ph.tx.size());
  const int64_t Kfull = static_cast<int64_t>(ph.ty.size()) * ntx * Cin_g;
  const int64_t ntiles = tk.mt1 - tk.mt0;

  // Per-task scratch: A block, tile infos + runs + segment offsets, one C tile.
  T* A = static_cast<T*>(scratch(kSlotA, static_cast<size_t>(std::max<int64_t>(1, ntiles * Kfull * mr)) * sizeof(T)));
  const size_t info_bytes = static_cast<size_t>(ntiles) * (sizeof(TileInfo) + static_cast<size_t>(mr) * sizeof(Run) +
                                                           (ph.ty.size() * ph.tx.size() + 1) * sizeof(int64_t));
  char* info_mem = static_cast<char*>(scratch(kSlotInfo, info_bytes + 64));
  TileInfo* infos = reinterpret_cast<TileInfo*>(info_mem);
  Run* runs = reinterpret_cast<Run*>(info_mem + static_cast<size_t>(ntiles) * sizeof(TileInfo));
  int64_t* segs = reinterpret_cast<int64_t*>(info_mem + static_cast<size_t>(ntiles) * (sizeof(TileInfo) + mr * sizeof(Run)));
  T* ctile = static_cast<T*>(scratch(kSlotTile, static_cast<size_t>(mr * nr) * sizeof(T) +
                                                   (ph.ty.size() * ph.tx.size() + 1) * sizeof(T*)));
  const T** aptr = reinterpret_cast<const T**>(ctile + mr * nr);

  const T* xg = c.x + tk.g * Cin_g * geo.HW;  // channel 0 of the group, image 0

  // ---- pack A for every tile of the task
  int64_t aofs = 0;
  int32_t nrun_total = 0, nseg_total = 0;
  struct RunSrc {
    const T* src;     // element for ci = 0, lane 0 of the run (may point outside; only [lo,hi) used)
    int32_t lo, hi;   // lanes [lo, hi) of the run are valid for this tap
  };
  RunSrc rs[256];  // mr <= 256
  for (int64_t t = 0; t < ntiles; ++t) {
    TileInfo& ti = infos[t];
    Run* tr = runs + nrun_total;
    const int nrun = make_runs(pl, ph, (tk.mt0 + t) * mr, tr);
    const int64_t used = tr[nrun - 1].lane0 + tr[nrun - 1].len;
    const Bounds b = run_bounds(tr, nrun);
    ti.aofs = aofs;
    ti.run0 = nrun_total;
    ti.nrun = nrun;
    ti.seg0 = nseg_total;
    int32_t nseg = 0;
    T* a = A + aofs;
    for (size_t iy = 0; iy < ph.ty.size(); ++iy) {
      const Tap& ty = ph.ty[iy];
      if (!tap_hits(ty, b.jmin, b.jmax, p.H)) continue;
      for (size_t ix = 0; ix < ph.tx.size(); ++ix) {
        const Tap& tx = ph.tx[ix];
        if (!tap_hits(tx, b.imin, b.imax, p.W)) continue;
        segs[nseg_total + nseg] = (static_cast<int64_t>(iy) * ntx + static_cast<int64_t>(ix)) * Cin_g * nr;
        ++nseg;
        for (int r = 0; r < nrun; ++r) {
          const Run& ru = tr[r];
          const int64_t iy_in = ru.j + ty.off, ix_in = ru.i + tx.off;
          RunSrc& s = rs[r];
          if (iy_in < 0 || iy_in >= p.H) {
            s.lo = s.hi = 0;
            s.src = xg;
          } else if (ru.batch) {
            const bool ok = ix_in >= 0 && ix_in < p.W;
            s.lo = 0;
            s.hi = ok ? ru.len : 0;
            s.src = xg + ru.n * geo.CinHW + iy_in * p.W + (ok ? ix_in : 0);
          } else {
            s.lo = static_cast<int32_t>(std::min<int64_t>(ru.len, std::max<int64_t>(0, -ix_in)));
            s.hi = static_cast<int32_t>(std::max<int64_t>(s.lo, std::min<int64_t>(ru.len, p.W - ix_in)));
            s.src = xg + ru.n * geo.CinHW + iy_in * p.W + ix_in;  // lane l reads src[l] (l in [lo,hi))
          }
        }
        for (int64_t ci = 0; ci < Cin_g; ++ci) {
          const int64_t cofs = ci * geo.HW;
          for (int r = 0; r < nrun; ++r) {
            const Run& ru = tr[r];
            const RunSrc& s = rs[r];
            T* d = a + ru.lane0;
            int32_t l = 0;
            for (; l < s.lo; ++l) d[l] = T(0);
            if (ru.batch) {
              const T* src = s.src + cofs;
              for (; l < s.hi; ++l) d[l] = src[l * geo.CinHW];
            } else {
              const T* src = s.src + cofs;
              for (; l < s.hi; ++l) d[l] = src[l];
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
    aofs += static_cast<int64_t>(nseg) * Cin_g * mr;
  }

  // ---- compute: channel tiles outer (B panel reused across the task's pixel tiles), pixel tiles inner
  const kernels::GemmFn<T> fn = pl.var.fn;
  const int64_t Kstride = Kfull * nr;  // B elements per channel tile of this phase
  for (int64_t ct = tk.ct0; ct < tk.ct1; ++ct) {
    const T* Bp = c.B + tk.g * pl.bgroup + ph.bofs + ct * Kstride;
    const T* bias = c.biasp + (tk.g * pl.ntile_c + ct) * nr;
    const int64_t co0 = ct * nr, nc = std::min(nr, Cout_g - co0);
    const int64_t cog0 = tk.g * Cout_g + co0;  // absolute output channel of the tile's first channel
    for (int64_t t = 0; t < ntiles; ++t) {
      const TileInfo& ti = infos[t];
      const Run* tr = runs + ti.run0;
      const int64_t* sg = segs + ti.seg0;
      const Run& r0 = tr[0];
      for (int32_t sidx = 0; sidx < ti.nseg; ++sidx) aptr[sidx] = A + ti.aofs + sidx * Cin_g * mr;
      if (p.sW == 1 && ti.nrun == 1 && !r0.batch && r0.len == mr && nc == nr) {
        T* dst = c.y + (r0.n * p.Cout + cog0) * geo.HWo + (p.sH * r0.j + ph.ry) * p.Wout + r0.i;
        fn(Cin_g, ti.nseg, aptr, mr, Bp, sg, bias, dst, geo.HWo);
        continue;
      }
      fn(Cin_g, ti.nseg, aptr, mr, Bp, sg, bias, ctile, mr);
      for (int r = 0; r < ti.nrun; ++r) {
        const Run& ru = tr[r];
        const int64_t oy = p.sH * ru.j + ph.ry, ox = p.sW * ru.i + ph.rx;
        if (ru.batch) {
          T* dst = c.y + (ru.n * p.Cout + cog0) * geo.HWo + oy * p.Wout + ox;
          for (int64_t cc = 0; cc < nc; ++cc) {
            const T* s = ctile + cc * mr + ru.lane0;
            T* d = dst + cc * geo.HWo;
            for (int32_t l = 0; l < ru.len; ++l) d[l * geo.CoutHWo] = s[l];
          }
        } else {
          T* dst = c.y + (ru.n * p.Cout + cog0) * geo.HWo + oy * p.Wout + ox;
          const int64_t sw = p.sW;
          for (int64_t cc = 0; cc < nc; ++cc) {
            const T* s = ctile + cc * mr + ru.lane0;
            T* d = dst + cc * geo.HWo;
            if (sw == 1) {
              std::memcpy(d, s, static_cast<size_t>(ru.len) * sizeof(T));
            } else {
              for (int32_t l = 0; l < ru.len; ++l) d[l * sw] = s[l];
            }
          }
        }
      }
    }
  }
}

template <class T>
void gemm_path(const Problem& p, const T* x, const T* w, const T* bias, T* y, int threads,
               const kernels::TypedSet<T>& ks) {
  Plan<T> pl = make_plan(p, ks);
  const Geometry& geo = pl.geo;
  const int64_t mr = pl.var.mr, nr = pl.var.nr;

  // Packed weights + padded bias in the caller's scratch (reused across calls).
  const int64_t belems = p.groups * pl.bgroup;
  const int64_t bias_elems = p.groups * pl.ntile_c * nr;
  T* mem = static_cast<T*>(scratch(kSlotWeights, static_cast<size_t>(belems + bias_elems + 16) * sizeof(T)));
  T* B = mem;
  T* biasp = mem + belems;
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t c = 0; c < pl.ntile_c * nr; ++c)
      biasp[g * pl.ntile_c * nr + c] = (bias && c < geo.Cout_g) ? bias[g * geo.Cout_g + c] : T(0);

  // Pack B: units = (group, phase, channel tile).
  const int64_t nph = static_cast<int64_t>(geo.phases.size());
  const int64_t units = p.groups * nph * pl.ntile_c;
  auto pack_unit = [&](int64_t u) {
    const int64_t ct = u % pl.ntile_c, q = u / pl.ntile_c, ph = q % nph, g = q / nph;
    pack_b_unit(pl, w, B, g, geo.phases[static_cast<size_t>(ph)], ct);
  };
  threading::parallel_for(units, weight_elements(p) >= blocking::kParallelPackMinElements ? threads : 1, pack_unit);

  // Tasks.
  const double flops = 2.0 * static_cast<double>(p.N) * static_cast<double>(p.Cin) * static_cast<double>(p.H * p.W) *
                       static_cast<double>(geo.Cout_g) * static_cast<double>(p.kH * p.kW);
  if (flops < static_cast<double>(blocking::kParallelMinFlops)) threads = 1;
  int64_t mt_per = std::max<int64_t>(1, blocking::kABlockBytes / std::max<int64_t>(1, pl.maxK * mr * int64_t(sizeof(T))));
  int64_t ct_per = pl.ntile_c;
  auto count_tasks = [&](int64_t mtp, int64_t ctp) {
    int64_t n = 0;
    for (const Phase& ph : geo.phases) n += ((ph.mtiles + mtp - 1) / mtp) * ((pl.ntile_c + ctp - 1) / ctp);
    return n * p.groups;
  };
  if (threads > 1) {
    const int64_t target = int64_t{threads} * blocking::kTasksPerThread;
    const int64_t max_tasks = std::max<int64_t>(1, static_cast<int64_t>(flops / static_cast<double>(blocking::kMinTaskFlops)));
    while (count_tasks(mt_per, ct_per) < std::min(target, max_tasks) && mt_per > 1) mt_per = (mt_per + 1) / 2;
    while (count_tasks(mt_per, ct_per) < std::min(target, max_tasks) && ct_per > 1) ct_per = (ct_per + 1) / 2;
  }
  std::vector<Task> tasks;
  tasks.reserve(static_cast<size_t>(count_tasks(mt_per, ct_per)));
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t ph = 0; ph < nph; ++ph) {
      const Phase& P = geo.phases[static_cast<size_t>(ph)];
      for (int64_t mt = 0; mt < P.mtiles; mt += mt_per)
        for (int64_t ct = 0; ct < pl.ntile_c; ct += ct_per)
          tasks.push_back({g, ph, mt, std::min(P.mtiles, mt + mt_per), ct, std::min(pl.ntile_c, ct + ct_per)});
    }
  GemmCtx<T> ctx{&pl, x, B, biasp, y, tasks.data()};
  threading::parallel_for(static_cast<int64_t>(tasks.size()), threads,
                          [&](int64_t t) { run_task(ctx, tasks[static_cast<size_t>(t)]); });
}

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
  const int64_t accw = maxWj + 16;  // one accumulator row per x phase
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
        const Phase& ph = geo.phases[static_cast<size_t>(ry * nph_x + rx)];
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
void run(const Problem& p, const T* x, const T* w, const T* bias, T* y, int threads) {
  if (output_elements(p) == 0) return;
  if (threads < 1) threads = 1;
  const kernels::KernelSet* ks = active_set();
  const kernels::TypedSet<T>& ts = typed(*ks, static_cast<T*>(nullptr));
  if (p.Cin / p.groups == 1)
    depthwise_path(p, x, w, bias, y, threads, ts);
  else
    gemm_path(p, x, w, bias, y, threads, ts);
}

}  // namespace

void conv_transpose2d(const Problem& p, const float* x, const float* w, const float* bias, float* y, int threads) {
  run(p, x, w, bias, y, threads);
}
void conv_transpose2d(const Problem& p, const double* x, const double* w, const double* bias, double* y,
                      int threads) {
  run(p, x, w, bias, y, threads);
}

}  // namespace convt
