// Core driver of conv_transpose2d (naive first version: correct, scalar).
#include "core/conv_transpose.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "threading/thread_pool.h"

namespace convt {
namespace {

constexpr int64_t kMaxParam = (int64_t{1} << 31) - 1;   // every single size/stride/... fits in int32
constexpr int64_t kMaxElements = int64_t{1} << 53;       // exact in a JS number / double

bool mul_ok(int64_t a, int64_t b, int64_t* r) {  // a, b >= 0
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return false;
  *r = a * b;
  return true;
}

bool count_ok(std::initializer_list<int64_t> dims, int64_t* out) {
  int64_t r = 1;
  for (int64_t d : dims)
    if (!mul_ok(r, d, &r)) return false;
  *out = r;
  return r <= kMaxElements;
}

std::string S(int64_t v) { return std::to_string(v); }

}  // namespace

std::string check(const Problem& p) {
  struct NV { const char* name; int64_t v; int64_t min; };
  const bool empty_batch = p.N == 0;
  const NV fields[] = {
      {"N", p.N, 0},          {"Cin", p.Cin, 1},      {"H", p.H, empty_batch ? 0 : 1},
      {"W", p.W, empty_batch ? 0 : 1},                {"Cout", p.Cout, 1},
      {"kH", p.kH, 1},        {"kW", p.kW, 1},        {"sH", p.sH, 1},
      {"sW", p.sW, 1},        {"pH", p.pH, 0},        {"pW", p.pW, 0},
      {"dH", p.dH, 1},        {"dW", p.dW, 1},        {"groups", p.groups, 1},
      {"Hout", p.Hout, empty_batch ? 0 : 1},          {"Wout", p.Wout, empty_batch ? 0 : 1},
  };
  for (const NV& f : fields) {
    if (f.v < f.min) return std::string(f.name) + " must be >= " + S(f.min) + ", got " + S(f.v);
    if (f.v > kMaxParam) return std::string(f.name) + " is too large (" + S(f.v) + " > " + S(kMaxParam) + ")";
  }
  if (p.Cin % p.groups != 0) return "groups (" + S(p.groups) + ") must divide in_channels (" + S(p.Cin) + ")";
  if (p.Cout % p.groups != 0) return "groups (" + S(p.groups) + ") must divide out_channels (" + S(p.Cout) + ")";

  // Output extent: base = (H-1)*s - 2*p + d*(k-1) + 1 (output padding 0); legal output padding
  // op satisfies 0 <= op < max(s, d). All terms < 2^62 since every parameter < 2^31.
  struct Dim { const char* name; int64_t in, k, s, pad, d, out; };
  const Dim dims[] = {{"height", p.H, p.kH, p.sH, p.pH, p.dH, p.Hout}, {"width", p.W, p.kW, p.sW, p.pW, p.dW, p.Wout}};
  for (const Dim& d : dims) {
    if (d.in == 0) continue;  // only possible with N == 0: nothing is computed
    const int64_t base = (d.in - 1) * d.s - 2 * d.pad + d.d * (d.k - 1) + 1;
    const int64_t maxop = std::max(d.s, d.d) - 1;
    if (empty_batch && d.out == 0 && base + maxop < 1) continue;
    if (base + maxop < 1)
      return std::string("output ") + d.name + " would be " + S(base) + " (must be >= 1)";
    if (d.out < base || d.out > base + maxop)
      return std::string("output ") + d.name + " " + S(d.out) + " is not in [" + S(base) + ", " + S(base + maxop) +
             "] (output padding must be smaller than stride or dilation)";
    if (d.out < 1) return std::string("output ") + d.name + " must be >= 1, got " + S(d.out);
  }
  int64_t c;
  if (!count_ok({p.N, p.Cin, p.H, p.W}, &c)) return "input has too many elements";
  if (!count_ok({p.Cin, p.Cout / p.groups, p.kH, p.kW}, &c)) return "weight has too many elements";
  if (!count_ok({p.N, p.Cout, p.Hout, p.Wout}, &c)) return "output has too many elements";
  return std::string();
}

int64_t input_elements(const Problem& p) { return p.N * p.Cin * p.H * p.W; }
int64_t weight_elements(const Problem& p) { return p.Cin * (p.Cout / p.groups) * p.kH * p.kW; }
int64_t output_elements(const Problem& p) { return p.N * p.Cout * p.Hout * p.Wout; }

namespace {

template <class T>
void naive(const Problem& p, const T* x, const T* w, const T* bias, T* y, int threads) {
  const int64_t cin_g = p.Cin / p.groups, cout_g = p.Cout / p.groups;
  const int64_t plane = p.Hout * p.Wout;
  // one task per (n, co): writes exactly that output plane
  threading::parallel_for(p.N * p.Cout, threads, [&](int64_t t) {
    const int64_t n = t / p.Cout, co = t % p.Cout, g = co / cout_g, col = co % cout_g;
    T* yp = y + t * plane;
    const T b = bias ? bias[co] : T(0);
    for (int64_t i = 0; i < plane; ++i) yp[i] = b;
    for (int64_t cig = 0; cig < cin_g; ++cig) {
      const int64_t ci = g * cin_g + cig;
      const T* xp = x + (n * p.Cin + ci) * p.H * p.W;
      const T* wp = w + (ci * cout_g + col) * p.kH * p.kW;
      for (int64_t iy = 0; iy < p.H; ++iy)
        for (int64_t ky = 0; ky < p.kH; ++ky) {
          const int64_t oy = iy * p.sH - p.pH + ky * p.dH;
          if (oy < 0 || oy >= p.Hout) continue;
          for (int64_t ix = 0; ix < p.W; ++ix) {
            const T xv = xp[iy * p.W + ix];
            for (int64_t kx = 0; kx < p.kW; ++kx) {
              const int64_t ox = ix * p.sW - p.pW + kx * p.dW;
              if (ox < 0 || ox >= p.Wout) continue;
              yp[oy * p.Wout + ox] += xv * wp[ky * p.kW + kx];
            }
          }
        }
    }
  });
}

std::string g_isa;  // empty: best

}  // namespace

void conv_transpose2d(const Problem& p, const float* x, const float* w, const float* bias, float* y, int threads) {
  if (output_elements(p) == 0) return;
  naive(p, x, w, bias, y, threads);
}
void conv_transpose2d(const Problem& p, const double* x, const double* w, const double* bias, double* y, int threads) {
  if (output_elements(p) == 0) return;
  naive(p, x, w, bias, y, threads);
}

std::vector<std::string> available_isas() {
#if defined(__x86_64__) || defined(_M_X64)
  return {"sse2"};
#elif defined(__aarch64__) || defined(_M_ARM64)
  return {"neon"};
#else
  return {"scalar"};
#endif
}
std::string active_isa() { return available_isas().front(); }
bool set_isa(const std::string& isa) {
  for (auto& s : available_isas())
    if (s == isa) return true;
  return false;
}

}  // namespace convt
