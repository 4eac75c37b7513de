// libFuzzer target for the plain-C++ core (no Node). Built by CMake with -DCONVT_FUZZ=ON (clang only) and run by
// scripts/fuzz.js:   node scripts/fuzz.js [--seconds 60] [--update-corpus]
//
// Each input is decoded into one of four kinds of case (the first byte chooses):
//   valid   a small legal problem (bounded sizes, so one execution stays in the milliseconds) and its data;
//           run for float and double, on a random ISA, GEMM feeding mode and thread count; the output must match
//           a scalar float64 reference written here, and must be fully overwritten (pre-filled with NaN).
//   huge    legal problems whose strides, paddings and dilations are near 2^31 but whose output is tiny
//           (index arithmetic that would overflow 32 bits, phases without taps).
//   raw     sixteen arbitrary int64 fields (biased towards boundary values) given to convt::check().
//   mutant  a valid problem with one field replaced by a boundary value, given to convt::check().
// For raw and mutant cases, check() must never crash (UBSan watches its arithmetic); whatever it accepts must agree
// with an independent legality oracle computed in 128-bit integers, and is then run (when small enough to allocate)
// and compared with the reference. Conversely a legal, small problem must be accepted.
// Data values are multiples of 1/16 in [-2, 2], so every product and every partial sum the problems here can form
// is exact in float32 and float64: any difference from the reference beyond rounding of the contract is a real bug.
// Any failure prints the problem and calls abort(), which libFuzzer reports as a crash and saves the input.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/conv_transpose.h"

namespace {

using convt::Problem;
using i128 = __int128;

constexpr int64_t kMaxElementsRun = int64_t{1} << 18;  // per tensor, for cases that are actually computed
constexpr double kMaxMacsRun = 4e6;                      // reference multiply-adds per computed case

std::string describe(const Problem& p) {
  char b[400];
  std::snprintf(b, sizeof b,
                "N=%lld Cin=%lld H=%lld W=%lld Cout=%lld kH=%lld kW=%lld sH=%lld sW=%lld pH=%lld pW=%lld dH=%lld dW=%lld "
                "groups=%lld Hout=%lld Wout=%lld",
                (long long)p.N, (long long)p.Cin, (long long)p.H, (long long)p.W, (long long)p.Cout, (long long)p.kH,
                (long long)p.kW, (long long)p.sH, (long long)p.sW, (long long)p.pH, (long long)p.pW, (long long)p.dH,
                (long long)p.dW, (long long)p.groups, (long long)p.Hout, (long long)p.Wout);
  return b;
}

[[noreturn]] void die(const char* what, const Problem& p, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz_core: %s\n  problem: %s\n  %s\n", what, describe(p).c_str(), detail.c_str());
  std::fflush(stderr);
  std::abort();
}

int64_t* field(Problem& p, int i) {
  int64_t* f[16] = {&p.N,  &p.Cin, &p.H,  &p.W,  &p.Cout, &p.kH,     &p.kW,   &p.sH,
                    &p.sW, &p.pH,  &p.pW, &p.dH, &p.dW,   &p.groups, &p.Hout, &p.Wout};
  return f[i];
}

// ---- independent legality oracle (PyTorch's rules, DESIGN section 3), exact in 128-bit integers ----------------
i128 extent(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d) {
  return (i128(in) - 1) * s - i128(2) * pad + i128(d) * (k - 1) + 1;
}

bool count_fits(std::initializer_list<int64_t> dims) {  // product <= 2^53 (the core's own limit)
  i128 r = 1;
  for (int64_t d : dims) {
    r *= d;
    if (r > (i128(1) << 53)) return false;
  }
  return true;
}

// Legal for N > 0 (an empty batch has extra allowances that only matter when nothing is computed).
bool legal(const Problem& p) {
  if (p.N < 1 || p.Cin < 1 || p.H < 1 || p.W < 1 || p.Cout < 1 || p.kH < 1 || p.kW < 1 || p.sH < 1 || p.sW < 1 ||
      p.pH < 0 || p.pW < 0 || p.dH < 1 || p.dW < 1 || p.groups < 1)
    return false;
  if (p.Cin % p.groups != 0 || p.Cout % p.groups != 0) return false;
  const i128 bh = extent(p.H, p.kH, p.sH, p.pH, p.dH), bw = extent(p.W, p.kW, p.sW, p.pW, p.dW);
  const i128 oph = i128(p.Hout) - bh, opw = i128(p.Wout) - bw;
  if (oph < 0 || oph >= std::max(p.sH, p.dH) || opw < 0 || opw >= std::max(p.sW, p.dW)) return false;
  if (p.Hout < 1 || p.Wout < 1) return false;
  return count_fits({p.N, p.Cin, p.H, p.W}) && count_fits({p.Cin, p.Cout / p.groups, p.kH, p.kW}) &&
         count_fits({p.N, p.Cout, p.Hout, p.Wout});
}

bool within_int32(const Problem& p) {  // the core's documented per-field limit
  Problem q = p;
  for (int i = 0; i < 16; ++i)
    if (*field(q, i) > std::numeric_limits<int32_t>::max()) return false;
  return true;
}

// ---- data and reference ----------------------------------------------------------------------------------------
struct Rng {  // splitmix64: data comes from a seed drawn from the input, so short inputs still give dense data
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double value() { return static_cast<double>(static_cast<int64_t>(next() % 65) - 32) / 16.0; }  // k/16, |k| <= 32
};

void reference(const Problem& p, const std::vector<double>& x, const std::vector<double>& w, const double* bias,
               std::vector<double>& y) {
  const int64_t Cin_g = p.Cin / p.groups, Cout_g = p.Cout / p.groups;
  y.assign(static_cast<size_t>(p.N * p.Cout * p.Hout * p.Wout), 0.0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t co = 0; co < p.Cout; ++co) {
      const int64_t g = co / Cout_g;
      double* yp = y.data() + (n * p.Cout + co) * p.Hout * p.Wout;
      for (int64_t cig = 0; cig < Cin_g; ++cig) {
        const int64_t ci = g * Cin_g + cig;
        for (int64_t iy = 0; iy < p.H; ++iy)
          for (int64_t ky = 0; ky < p.kH; ++ky) {
            const i128 oy = i128(iy) * p.sH - p.pH + i128(ky) * p.dH;
            if (oy < 0 || oy >= p.Hout) continue;
            for (int64_t ix = 0; ix < p.W; ++ix)
              for (int64_t kx = 0; kx < p.kW; ++kx) {
                const i128 ox = i128(ix) * p.sW - p.pW + i128(kx) * p.dW;
                if (ox < 0 || ox >= p.Wout) continue;
                const double xv = x[static_cast<size_t>(((n * p.Cin + ci) * p.H + iy) * p.W + ix)];
                const double wv = w[static_cast<size_t>(((ci * Cout_g + co % Cout_g) * p.kH + ky) * p.kW + kx)];
                yp[static_cast<int64_t>(oy) * p.Wout + static_cast<int64_t>(ox)] += xv * wv;
              }
          }
      }
      if (bias)
        for (int64_t i = 0; i < p.Hout * p.Wout; ++i) yp[i] += bias[co];
    }
}

template <class T>
void run_and_compare(const Problem& p, const std::vector<double>& xd, const std::vector<double>& wd,
                     const std::vector<double>* bd, const std::vector<double>& ref, int threads, const char* tag) {
  const size_t nx = xd.size(), nw = wd.size(), ny = ref.size();
  // exact-size heap blocks (not vectors with spare capacity) so that AddressSanitizer sees any overrun
  std::unique_ptr<T[]> x(new T[std::max<size_t>(nx, 1)]), w(new T[nw]), y(new T[std::max<size_t>(ny, 1)]);
  std::unique_ptr<T[]> b(bd ? new T[bd->size()] : nullptr);
  for (size_t i = 0; i < nx; ++i) x[i] = static_cast<T>(xd[i]);
  for (size_t i = 0; i < nw; ++i) w[i] = static_cast<T>(wd[i]);
  if (bd)
    for (size_t i = 0; i < bd->size(); ++i) b[i] = static_cast<T>((*bd)[i]);
  for (size_t i = 0; i < ny; ++i) y[i] = std::numeric_limits<T>::quiet_NaN();
  convt::conv_transpose2d(p, x.get(), w.get(), b.get(), y.get(), threads);
  double maxref = 0;
  for (double v : ref) maxref = std::max(maxref, std::fabs(v));
  // data are exact (see the header), so this is the contract's bound with no allowance for long reductions
  const double tol = (sizeof(T) == 4 ? 1e-5 : 1e-12) * std::max(1.0, maxref);
  for (size_t i = 0; i < ny; ++i) {
    const double g = static_cast<double>(y[i]);
    if (!(std::fabs(g - ref[i]) <= tol)) {
      char d[300];
      std::snprintf(d, sizeof d, "%s threads=%d isa=%s: element %zu of %zu is %.17g, reference %.17g (tol %.3g); plan: %s",
                    tag, threads, convt::active_isa().c_str(), i, ny, g, ref[i], tol, convt::describe_plan(p).c_str());
      die("result differs from the reference", p, d);
    }
  }
}

// Runs p (already accepted by check()) for both dtypes with the knobs chosen by the input.
void run_case(const Problem& p, FuzzedDataProvider& fdp) {
  if (std::getenv("FUZZ_CORE_VERBOSE")) std::fprintf(stderr, "fuzz_core: running %s\n", describe(p).c_str());
  const std::vector<std::string> isas = convt::available_isas();
  convt::set_isa(isas[fdp.ConsumeIntegralInRange<size_t>(0, isas.size() - 1)]);
  convt::force_plan_mode_for_testing(fdp.ConsumeIntegralInRange<int>(-1, 2));
  const int threads = fdp.ConsumeIntegralInRange<int>(1, 4);
  const bool with_bias = fdp.ConsumeBool();
  Rng rng{fdp.ConsumeIntegral<uint64_t>()};
  std::vector<double> x(static_cast<size_t>(p.N * p.Cin * p.H * p.W)), w(static_cast<size_t>(convt::weight_elements(p))),
      b(static_cast<size_t>(p.Cout));
  for (double& v : x) v = rng.value();
  for (double& v : w) v = rng.value();
  for (double& v : b) v = rng.value();
  std::vector<double> ref;
  reference(p, x, w, with_bias ? b.data() : nullptr, ref);
  run_and_compare<float>(p, x, w, with_bias ? &b : nullptr, ref, threads, "float");
  run_and_compare<double>(p, x, w, with_bias ? &b : nullptr, ref, threads, "double");
}

bool small_enough(const Problem& p) {
  if (!count_fits({p.N, p.Cin, p.H, p.W}) || !count_fits({p.N, p.Cout, p.Hout, p.Wout})) return false;
  const int64_t nx = p.N * p.Cin * p.H * p.W, ny = p.N * p.Cout * p.Hout * p.Wout;
  const int64_t nw = convt::weight_elements(p);
  const double macs = double(p.N) * double(p.Cin) * double(p.H) * double(p.W) * double(p.Cout / p.groups) *
                      double(p.kH) * double(p.kW);
  return nx <= kMaxElementsRun && nw <= kMaxElementsRun && ny <= kMaxElementsRun && macs <= kMaxMacsRun;
}

// ---- case generators --------------------------------------------------------------------------------------------
Problem valid_problem(FuzzedDataProvider& fdp) {
  Problem p{};
  const int shape = fdp.ConsumeIntegralInRange<int>(0, 7);
  const bool depthwise = shape == 0;
  p.groups = fdp.ConsumeIntegralInRange<int64_t>(1, depthwise ? 8 : 4);
  const int64_t cin_g = depthwise ? 1 : fdp.ConsumeIntegralInRange<int64_t>(1, shape == 1 ? 40 : 9);
  const int64_t cout_g = fdp.ConsumeIntegralInRange<int64_t>(1, shape == 2 ? 70 : 17);  // tile edges: NR*k +- 1
  p.Cin = cin_g * p.groups;
  p.Cout = cout_g * p.groups;
  p.N = fdp.ConsumeIntegralInRange<int64_t>(0, shape == 3 ? 9 : 3);
  const int64_t maxhw = shape == 4 ? 70 : 12;
  p.H = fdp.ConsumeIntegralInRange<int64_t>(p.N == 0 ? 0 : 1, maxhw);
  p.W = fdp.ConsumeIntegralInRange<int64_t>(p.N == 0 ? 0 : 1, maxhw);
  p.kH = fdp.ConsumeIntegralInRange<int64_t>(1, 7);
  p.kW = fdp.ConsumeIntegralInRange<int64_t>(1, 7);
  p.sH = fdp.ConsumeIntegralInRange<int64_t>(1, 5);
  p.sW = fdp.ConsumeIntegralInRange<int64_t>(1, 5);
  p.dH = fdp.ConsumeIntegralInRange<int64_t>(1, 4);
  p.dW = fdp.ConsumeIntegralInRange<int64_t>(1, 4);
  const int64_t opH = fdp.ConsumeIntegralInRange<int64_t>(0, std::max(p.sH, p.dH) - 1);
  const int64_t opW = fdp.ConsumeIntegralInRange<int64_t>(0, std::max(p.sW, p.dW) - 1);
  // the largest padding that keeps the output extent >= 1
  const int64_t fullH = static_cast<int64_t>(extent(std::max<int64_t>(p.H, 1), p.kH, p.sH, 0, p.dH)) + opH;
  const int64_t fullW = static_cast<int64_t>(extent(std::max<int64_t>(p.W, 1), p.kW, p.sW, 0, p.dW)) + opW;
  p.pH = fdp.ConsumeIntegralInRange<int64_t>(0, (fullH - 1) / 2);
  p.pW = fdp.ConsumeIntegralInRange<int64_t>(0, (fullW - 1) / 2);
  p.Hout = fullH - 2 * p.pH;
  p.Wout = fullW - 2 * p.pW;
  if (p.H == 0 || p.W == 0) {  // empty batch with an empty image: PyTorch's extent formula still applies
    p.Hout = std::max<int64_t>(0, static_cast<int64_t>(extent(p.H, p.kH, p.sH, p.pH, p.dH)) + opH);
    p.Wout = std::max<int64_t>(0, static_cast<int64_t>(extent(p.W, p.kW, p.sW, p.pW, p.dW)) + opW);
  }
  // keep one execution fast: shrink the batch, then the image, until the reference is cheap
  while (!small_enough(p) && p.N > 1) --p.N;
  return p;
}

// Strides, paddings and dilations near 2^31 with a tiny output: (in-1)*s + d*(k-1) + 1 - 2*pad + op in [1, 8].
Problem huge_problem(FuzzedDataProvider& fdp) {
  Problem p{};
  p.N = fdp.ConsumeIntegralInRange<int64_t>(1, 2);
  p.groups = fdp.ConsumeIntegralInRange<int64_t>(1, 2);
  p.Cin = p.groups * fdp.ConsumeIntegralInRange<int64_t>(1, 3);
  p.Cout = p.groups * fdp.ConsumeIntegralInRange<int64_t>(1, 5);
  const int64_t big = std::numeric_limits<int32_t>::max();
  for (int dim = 0; dim < 2; ++dim) {
    int64_t& in = dim ? p.W : p.H;
    int64_t& k = dim ? p.kW : p.kH;
    int64_t& s = dim ? p.sW : p.sH;
    int64_t& d = dim ? p.dW : p.dH;
    int64_t& pad = dim ? p.pW : p.pH;
    int64_t& out = dim ? p.Wout : p.Hout;
    in = fdp.ConsumeIntegralInRange<int64_t>(1, 3);
    k = fdp.ConsumeIntegralInRange<int64_t>(1, 3);
    s = fdp.ConsumeBool() ? big - fdp.ConsumeIntegralInRange<int64_t>(0, 3) : fdp.ConsumeIntegralInRange<int64_t>(1, 1 << 20);
    d = fdp.ConsumeBool() ? big - fdp.ConsumeIntegralInRange<int64_t>(0, 3) : fdp.ConsumeIntegralInRange<int64_t>(1, 1 << 20);
    const i128 full = extent(in, k, s, 0, d);
    const int64_t target = fdp.ConsumeIntegralInRange<int64_t>(1, 8);
    // pad = (full - target) / 2 when that is a legal padding, else no padding (a large output is then skipped)
    i128 pd = (full - target) / 2;
    if (pd < 0 || pd > big) pd = 0;
    pad = static_cast<int64_t>(pd);
    const i128 base = full - 2 * pd;
    const int64_t op = fdp.ConsumeIntegralInRange<int64_t>(0, 1);
    const i128 o = base + (op < std::max(s, d) ? op : 0);
    out = o > big ? big : static_cast<int64_t>(o);
  }
  return p;
}

int64_t boundary_value(FuzzedDataProvider& fdp) {
  static const int64_t kValues[] = {0, 1, -1, 2, 3, 7, 8, 9, 16, 17, 63, 64, 65,
                                    (int64_t{1} << 31) - 1, int64_t{1} << 31, (int64_t{1} << 32) + 1, int64_t{1} << 53,
                                    (int64_t{1} << 53) + 1, std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<int64_t>::min(), -(int64_t{1} << 31)};
  if (fdp.ConsumeIntegralInRange<int>(0, 3) == 0) return fdp.ConsumeIntegral<int64_t>();
  return kValues[fdp.ConsumeIntegralInRange<size_t>(0, sizeof(kValues) / sizeof(kValues[0]) - 1)];
}

// check() on an arbitrary problem: must not crash, must agree with the oracle, and what it accepts must run safely.
void checked_case(const Problem& p, FuzzedDataProvider& fdp) {
  const std::string why = convt::check(p);
  const bool accepted = why.empty();
  if (accepted && p.N > 0 && !legal(p)) die("check() accepted an illegal problem", p);
  if (!accepted && legal(p) && within_int32(p)) die("check() rejected a legal problem", p, why);
  if (accepted && p.N == 0) {  // nothing may be read or written: null pointers must be fine
    convt::conv_transpose2d(p, static_cast<const float*>(nullptr), nullptr, nullptr, static_cast<float*>(nullptr), 2);
    convt::conv_transpose2d(p, static_cast<const double*>(nullptr), nullptr, nullptr, static_cast<double*>(nullptr), 2);
    return;
  }
  if (accepted && small_enough(p) && convt::weight_elements(p) > 0) run_case(p, fdp);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const int kind = fdp.ConsumeIntegralInRange<int>(0, 15);
  if (kind < 9) {  // valid
    const Problem p = valid_problem(fdp);
    const std::string why = convt::check(p);
    if (!why.empty()) die("check() rejected a valid problem", p, why);
    if (!small_enough(p)) return 0;
    if (convt::output_elements(p) == 0) return 0;
    run_case(p, fdp);
  } else if (kind < 11) {  // huge
    const Problem p = huge_problem(fdp);
    checked_case(p, fdp);
  } else if (kind < 13) {  // raw
    Problem p{};
    for (int i = 0; i < 16; ++i) *field(p, i) = boundary_value(fdp);
    checked_case(p, fdp);
  } else {  // mutant
    Problem p = valid_problem(fdp);
    const int which = fdp.ConsumeIntegralInRange<int>(0, 15);
    *field(p, which) = fdp.ConsumeBool() ? boundary_value(fdp) : *field(p, which) + fdp.ConsumeIntegralInRange<int64_t>(-2, 2);
    checked_case(p, fdp);
  }
  convt::force_plan_mode_for_testing(-1);
  return 0;
}
