// The core's own test executable (no Node).
//   convt_core_test            correctness: every ISA x both dtypes vs a float64 reference, thread-count
//                              invariance, concurrent callers, check() rejections
//   convt_core_test --bench [--isa ISA] [--mode M] [--f64] [--threads T] [SHAPE]
//                              the 15 shapes of bench/shapes.json at 1 and 2 threads (reused output); --mode
//                              forces a plan mode (force_plan_mode_for_testing), SHAPE picks one shape, --threads
//                              times only T threads, for 2 s (for a profiler)
//   convt_core_test --ab SHAPE THREADS SECONDS A B [--f64]
//                              A/B of a rule that reads experiment_knob(), calls interleaved (see ab below)
//   convt_core_test --fma-peak the machine's FMA peak on the best ISA at 1 and 2 threads
// Prints a final line "N passed, N failed"; exit code is non-zero on any failure.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/conv_transpose.h"
#include "core/large_alloc.h"
#include "threading/thread_pool.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define CONVT_TEST_X86_PEAK 1
#endif

using convt::Problem;

namespace {

int g_pass = 0, g_fail = 0;

void report(bool ok, const std::string& what) {
  if (ok) {
    ++g_pass;
  } else {
    ++g_fail;
    if (g_fail <= 40) std::printf("FAIL: %s\n", what.c_str());
  }
}

std::string describe(const Problem& p) {
  char b[256];
  std::snprintf(b, sizeof b, "N%lld Cin%lld %lldx%lld Cout%lld k%lldx%lld s%lldx%lld p%lldx%lld d%lldx%lld g%lld -> %lldx%lld",
                (long long)p.N, (long long)p.Cin, (long long)p.H, (long long)p.W, (long long)p.Cout, (long long)p.kH,
                (long long)p.kW, (long long)p.sH, (long long)p.sW, (long long)p.pH, (long long)p.pW, (long long)p.dH,
                (long long)p.dW, (long long)p.groups, (long long)p.Hout, (long long)p.Wout);
  return b;
}

int64_t base_extent(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d) { return (in - 1) * s - 2 * pad + d * (k - 1) + 1; }

Problem make_problem(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t kH, int64_t kW, int64_t sH,
                     int64_t sW, int64_t pH, int64_t pW, int64_t dH, int64_t dW, int64_t G, int64_t opH, int64_t opW) {
  Problem p{N, Cin, H, W, Cout, kH, kW, sH, sW, pH, pW, dH, dW, G, 0, 0};
  p.Hout = base_extent(H, kH, sH, pH, dH) + opH;
  p.Wout = base_extent(W, kW, sW, pW, dW) + opW;
  return p;
}

// Naive float64 reference; also returns per-element sum |x||w| for error bounds.
void reference(const Problem& p, const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>* bias,
               std::vector<double>& y, std::vector<double>& mag) {
  const int64_t Cin_g = p.Cin / p.groups, Cout_g = p.Cout / p.groups;
  y.assign(static_cast<size_t>(convt::output_elements(p)), 0.0);
  mag.assign(y.size(), 0.0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t co = 0; co < p.Cout; ++co) {
      const int64_t g = co / Cout_g;
      double* yp = y.data() + (n * p.Cout + co) * p.Hout * p.Wout;
      double* mp = mag.data() + (n * p.Cout + co) * p.Hout * p.Wout;
      for (int64_t cig = 0; cig < Cin_g; ++cig) {
        const int64_t ci = g * Cin_g + cig;
        for (int64_t iy = 0; iy < p.H; ++iy)
          for (int64_t ix = 0; ix < p.W; ++ix) {
            const double xv = x[static_cast<size_t>(((n * p.Cin + ci) * p.H + iy) * p.W + ix)];
            for (int64_t ky = 0; ky < p.kH; ++ky) {
              const int64_t oy = iy * p.sH - p.pH + ky * p.dH;
              if (oy < 0 || oy >= p.Hout) continue;
              for (int64_t kx = 0; kx < p.kW; ++kx) {
                const int64_t ox = ix * p.sW - p.pW + kx * p.dW;
                if (ox < 0 || ox >= p.Wout) continue;
                const double wv = w[static_cast<size_t>(((ci * Cout_g + co % Cout_g) * p.kH + ky) * p.kW + kx)];
                yp[oy * p.Wout + ox] += xv * wv;
                mp[oy * p.Wout + ox] += std::fabs(xv * wv);
              }
            }
          }
      }
      if (bias)
        for (int64_t i = 0; i < p.Hout * p.Wout; ++i) {
          yp[i] += (*bias)[static_cast<size_t>(co)];
          mp[i] += std::fabs((*bias)[static_cast<size_t>(co)]);
        }
    }
}

struct Data {
  std::vector<double> x, w, b;
};

Data random_data(const Problem& p, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Data d;
  d.x.resize(static_cast<size_t>(convt::input_elements(p)));
  d.w.resize(static_cast<size_t>(convt::weight_elements(p)));
  d.b.resize(static_cast<size_t>(p.Cout));
  for (auto& v : d.x) v = u(rng);
  for (auto& v : d.w) v = u(rng);
  for (auto& v : d.b) v = u(rng);
  return d;
}

constexpr int64_t kGuard = 67;  // sentinel elements on each side of the output

// Runs the core on type T; output pre-filled with NaN (garbage) and guarded.
template <class T>
std::vector<T> run_core(const Problem& p, const Data& d, bool with_bias, int threads, bool* guard_ok,
                        bool cold_output = false) {
  std::vector<T> x(d.x.begin(), d.x.end()), w(d.w.begin(), d.w.end()), b(d.b.begin(), d.b.end());
  const int64_t n = convt::output_elements(p);
  std::vector<T> y(static_cast<size_t>(n + 2 * kGuard), std::numeric_limits<T>::quiet_NaN());
  for (int64_t i = 0; i < kGuard; ++i) y[static_cast<size_t>(i)] = y[static_cast<size_t>(n + kGuard + i)] = T(12345);
  convt::conv_transpose2d(p, x.data(), w.data(), with_bias ? b.data() : nullptr, y.data() + kGuard, threads, nullptr,
                          cold_output);
  bool ok = true;
  for (int64_t i = 0; i < kGuard; ++i) ok &= y[static_cast<size_t>(i)] == T(12345) && y[static_cast<size_t>(n + kGuard + i)] == T(12345);
  *guard_ok = ok;
  return std::vector<T>(y.begin() + kGuard, y.end() - kGuard);
}

template <class T>
bool compare(const Problem& p, const std::vector<T>& got, const std::vector<double>& ref, const std::vector<double>& mag,
             std::string* why) {
  double maxref = 0;
  for (double v : ref) maxref = std::max(maxref, std::fabs(v));
  const bool f32 = sizeof(T) == 4;
  const double tol_abs = (f32 ? 1e-5 : 1e-12) * std::max(1.0, maxref);
  (void)p;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    const double err = std::fabs(g - ref[i]);
    // per element: the contract's bound, or (fp32, long reductions) a bound scaled by sum |x||w|
    const double tol = std::max(tol_abs, (f32 ? 2e-6 : 1e-14) * mag[i]);
    if (!(err <= tol)) {
      char b[200];
      std::snprintf(b, sizeof b, "element %zu: got %.9g ref %.9g (tol %.3g)", i, g, ref[i], tol);
      *why = b;
      return false;
    }
  }
  return true;
}

std::vector<Problem> sweep_problems(std::mt19937_64& rng, int count) {
  std::vector<Problem> v;
  auto pick = [&](std::initializer_list<int64_t> l) {
    std::uniform_int_distribution<size_t> u(0, l.size() - 1);
    return *(l.begin() + u(rng));
  };
  auto uni = [&](int64_t a, int64_t b) { return std::uniform_int_distribution<int64_t>(a, b)(rng); };
  // hand-picked edge cases
  v.push_back(make_problem(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0));          // 1x1
  v.push_back(make_problem(0, 3, 4, 4, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1));          // N = 0
  v.push_back(make_problem(2, 4, 1, 1, 6, 5, 5, 1, 1, 0, 0, 1, 1, 1, 0, 0));          // kernel > input
  v.push_back(make_problem(3, 5, 2, 1, 7, 4, 6, 3, 2, 1, 2, 2, 1, 1, 2, 1));          // kernel > input, stride+dil
  v.push_back(make_problem(1, 3, 3, 3, 4, 1, 1, 3, 3, 0, 0, 1, 1, 1, 2, 2));          // phases with no taps
  v.push_back(make_problem(2, 6, 5, 7, 6, 3, 3, 1, 1, 2, 2, 2, 2, 3, 1, 1));          // dilation output padding
  v.push_back(make_problem(1, 8, 6, 6, 8, 4, 4, 2, 2, 1, 1, 1, 1, 8, 0, 0));          // depthwise
  v.push_back(make_problem(2, 4, 5, 9, 12, 3, 5, 2, 3, 1, 2, 1, 1, 4, 1, 2));         // depthwise, multiplier 3
  v.push_back(make_problem(1, 2, 1, 63, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0));         // row length 63
  v.push_back(make_problem(1, 2, 1, 65, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0));        // 65
  v.push_back(make_problem(2, 3, 2, 129, 25, 1, 3, 1, 2, 0, 1, 1, 1, 1, 0, 1));       // 2 phases of 64/65
  v.push_back(make_problem(1, 16, 8, 8, 27, 2, 2, 2, 2, 0, 0, 1, 1, 1, 0, 0));        // NR*2+3
  v.push_back(make_problem(5, 7, 3, 3, 11, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0));         // batch-inner small images
  // batch-inner with N a multiple of MR: tiles read straight from the batch-innermost input copy
  v.push_back(make_problem(16, 5, 3, 3, 7, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0));         // 16 images
  v.push_back(make_problem(32, 6, 2, 3, 10, 3, 3, 2, 2, 1, 0, 1, 1, 2, 1, 0));        // 32 images, groups, out pad
  v.push_back(make_problem(48, 3, 2, 2, 5, 3, 3, 1, 1, 2, 2, 2, 2, 1, 0, 0));         // 48 images, dilation
  // batch-innermost copies of input and output through the register transposes, and their tails
  v.push_back(make_problem(16, 3, 4, 5, 6, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0));         // 16 images, 20 pixels
  v.push_back(make_problem(20, 3, 5, 4, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1));         // 20 images: 16 + 4
  v.push_back(make_problem(4, 5, 3, 3, 6, 2, 2, 2, 2, 0, 0, 1, 1, 1, 0, 0));          // 4 images
  v.push_back(make_problem(16, 10, 1, 1, 9, 4, 4, 1, 1, 0, 0, 1, 1, 1, 0, 0));        // DCGAN L1-like
  v.push_back(make_problem(5, 6, 1, 1, 4, 3, 2, 2, 3, 0, 0, 1, 1, 2, 0, 0));          // single pixel, groups, stride
  v.push_back(make_problem(13, 20, 1, 1, 7, 5, 3, 1, 1, 0, 0, 1, 1, 1, 0, 0));        // single pixel, 13 images
  v.push_back(make_problem(1, 3, 1, 1, 50, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0));         // single pixel, 1x1 kernel
  v.push_back(make_problem(1, 6, 2, 40, 5, 1, 16, 1, 8, 0, 4, 1, 1, 1, 0, 0));        // HiFi-GAN-like
  v.push_back(make_problem(1, 4, 12, 12, 1, 9, 9, 2, 2, 4, 4, 1, 1, 1, 1, 1));        // FSRCNN-like Cout=1
  v.push_back(make_problem(2, 6, 4, 4, 6, 3, 3, 2, 2, 5, 5, 3, 3, 2, 2, 1));          // big padding + dilation
  while (static_cast<int>(v.size()) < count) {
    Problem p;
    const bool dw = uni(0, 5) == 0;
    const int64_t G = dw ? pick({1, 2, 3, 5, 8}) : pick({1, 1, 1, 2, 3});
    const int64_t cin_g = dw ? 1 : pick({1, 2, 3, 4, 5, 7, 8, 13, 16, 17});
    const int64_t cout_g = pick({1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17, 23, 25});
    const int64_t kH = uni(1, 5), kW = uni(1, 5), sH = uni(1, 4), sW = uni(1, 4), dH = uni(1, 3), dW = uni(1, 3);
    const int64_t big = uni(0, 4) == 0;
    const int64_t H = big ? uni(1, 40) : uni(1, 9), W = big ? uni(1, 70) : uni(1, 9);
    const int64_t pH = uni(0, (kH - 1) * dH), pW = uni(0, (kW - 1) * dW);
    const int64_t opH = uni(0, std::max(sH, dH) - 1), opW = uni(0, std::max(sW, dW) - 1);
    const int64_t N = pick({0, 1, 1, 2, 3, 5});
    p = make_problem(N, cin_g * G, H, W, cout_g * G, kH, kW, sH, sW, pH, pW, dH, dW, G, opH, opW);
    if (!convt::check(p).empty()) continue;
    const double cost = double(std::max<int64_t>(p.N, 1)) * p.Cin * H * W * cout_g * kH * kW;
    if (cost > 3e6) continue;
    v.push_back(p);
  }
  return v;
}

void test_sweep() {
  std::mt19937_64 rng(20261125);
  const auto problems = sweep_problems(rng, 320);
  const auto isas = convt::available_isas();
  int64_t cases = 0;
  for (size_t pi = 0; pi < problems.size(); ++pi) {
    const Problem& p = problems[pi];
    const std::string c = convt::check(p);
    if (!c.empty()) {
      report(false, "sweep problem rejected by check(): " + describe(p) + ": " + c);
      continue;
    }
    const Data d = random_data(p, rng);
    const bool with_bias = pi % 3 != 2;
    std::vector<double> ref, mag;
    reference(p, d.x, d.w, with_bias ? &d.b : nullptr, ref, mag);
    const int threads = 1 + static_cast<int>(pi % 3);
    for (const std::string& isa : isas)
      for (int mode = -1; mode <= 3; ++mode) {  // automatic plan, then each GEMM feeding mode forced
        convt::set_isa(isa);
        convt::force_plan_mode_for_testing(mode);
        const std::string tag = isa + " mode " + std::to_string(mode) + " " + describe(p);
        bool guard = false;
        std::string why;
        const auto yf = run_core<float>(p, d, with_bias, threads, &guard);
        report(guard && compare(p, yf, ref, mag, &why), "f32 " + tag + (guard ? " " + why : " guard overwritten"));
        const auto yd = run_core<double>(p, d, with_bias, threads, &guard);
        why.clear();
        report(guard && compare(p, yd, ref, mag, &why), "f64 " + tag + (guard ? " " + why : " guard overwritten"));
        cases += 2;
      }
  }
  convt::force_plan_mode_for_testing(-1);
  convt::set_isa(isas.front());
  std::printf("sweep: %zu problems x %zu ISAs x 5 plan modes x 2 dtypes = %lld cases\n", problems.size(), isas.size(),
              (long long)cases);
}

std::vector<Problem> larger_problems() {
  return {
      make_problem(2, 32, 20, 20, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1),
      make_problem(1, 64, 17, 23, 40, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0),
      make_problem(3, 24, 9, 9, 30, 3, 3, 1, 1, 2, 2, 2, 2, 2, 0, 0),
      make_problem(1, 64, 32, 32, 64, 4, 4, 2, 2, 1, 1, 1, 1, 64, 0, 0),  // depthwise
      make_problem(16, 64, 4, 4, 32, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0),
      make_problem(1, 32, 1, 256, 16, 1, 16, 1, 8, 0, 4, 1, 1, 1, 0, 0),
      make_problem(16, 100, 1, 1, 64, 4, 4, 1, 1, 0, 0, 1, 1, 1, 0, 0),   // single pixel (DCGAN L1)
      make_problem(2, 56, 24, 20, 1, 9, 9, 2, 2, 4, 4, 1, 1, 1, 1, 1),    // scatter (FSRCNN-like)
      // weights above blocking::kParallelPackMinElements, 16 and 4 taps: packed in parallel from 2 threads on, with
      // the transposes' streaming stores
      make_problem(1, 256, 6, 6, 64, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0),
      make_problem(1, 512, 5, 5, 160, 2, 2, 2, 2, 0, 0, 1, 1, 1, 0, 0),
  };
}

void test_thread_invariance() {
  std::mt19937_64 rng(7);
  const auto isas = convt::available_isas();
  for (const Problem& p : larger_problems()) {
    const Data d = random_data(p, rng);
    std::vector<double> ref, mag;
    reference(p, d.x, d.w, &d.b, ref, mag);
    for (const std::string& isa : isas)
    for (int mode = -1; mode <= 3; ++mode) {
      convt::set_isa(isa);
      convt::force_plan_mode_for_testing(mode);
      bool guard = false;
      std::string why;
      const auto f1 = run_core<float>(p, d, true, 1, &guard);
      report(guard && compare(p, f1, ref, mag, &why), "larger f32 " + isa + " " + describe(p) + " " + why);
      const auto d1 = run_core<double>(p, d, true, 1, &guard);
      report(guard && compare(p, d1, ref, mag, &why), "larger f64 " + isa + " " + describe(p) + " " + why);
      for (int t : {2, 3, 8}) {
        const auto ft = run_core<float>(p, d, true, t, &guard);
        report(guard && std::memcmp(ft.data(), f1.data(), f1.size() * sizeof(float)) == 0,
               "thread invariance f32 " + isa + " threads=" + std::to_string(t) + " " + describe(p));
        const auto dt = run_core<double>(p, d, true, t, &guard);
        report(guard && std::memcmp(dt.data(), d1.data(), d1.size() * sizeof(double)) == 0,
               "thread invariance f64 " + isa + " threads=" + std::to_string(t) + " " + describe(p));
      }
    }
  }
  convt::force_plan_mode_for_testing(-1);
  convt::set_isa(isas.front());
}

// Prepacked weights: same bytes as the unpacked call for the problem they were packed for; correct
// for other batch and spatial sizes; refused for another weight geometry or dtype.
// Outputs of 16 MiB and more are written with streaming stores (blocking::kStreamOutputMinBytes) on the paths that
// interleave stride-2 rows: depthwise and direct. Checked against the reference at 1 and 2 threads, both dtypes.
void test_streamed_outputs() {
  std::mt19937_64 rng(16);
  const Problem problems[] = {
      make_problem(1, 256, 64, 64, 256, 4, 4, 2, 2, 1, 1, 1, 1, 256, 0, 0),  // depthwise, 16 MiB of float32
      make_problem(1, 4, 128, 256, 64, 2, 2, 2, 2, 0, 0, 1, 1, 1, 0, 0),     // direct, 32 MiB of float32
  };
  const auto isas = convt::available_isas();
  for (const Problem& p : problems) {
    const Data d = random_data(p, rng);
    std::vector<double> ref, mag;
    reference(p, d.x, d.w, &d.b, ref, mag);
    for (const std::string& isa : isas) {
      convt::set_isa(isa);
      for (int threads = 1; threads <= 2; ++threads) {
        const std::string tag = isa + " threads " + std::to_string(threads) + " " + describe(p);
        bool guard = false;
        std::string why;
        const auto yf = run_core<float>(p, d, true, threads, &guard);
        report(guard && compare(p, yf, ref, mag, &why), "streamed output f32 " + tag + " " + why);
        why.clear();
        const auto yd = run_core<double>(p, d, true, threads, &guard);
        report(guard && compare(p, yd, ref, mag, &why), "streamed output f64 " + tag + " " + why);
      }
    }
  }
  convt::set_isa(isas.front());
}

// Outputs marked cold are written with streaming stores where a path has them, whatever their size: the same bytes
// as a warm write, and nothing outside y (every ISA, 1 and 2 threads, both dtypes).
void test_cold_outputs() {
  std::mt19937_64 rng(17);
  std::vector<Problem> problems = sweep_problems(rng, 60);
  for (const Problem& q : larger_problems()) problems.push_back(q);
  const auto isas = convt::available_isas();
  int differ = 0, checked = 0;
  for (const Problem& p : problems) {
    const Data d = random_data(p, rng);
    for (const std::string& isa : isas) {
      convt::set_isa(isa);
      for (int threads = 1; threads <= 2; ++threads) {
        bool g1 = false, g2 = false, g3 = false, g4 = false;
        const bool same_f = run_core<float>(p, d, true, threads, &g1) == run_core<float>(p, d, true, threads, &g2, true);
        const bool same_d =
            run_core<double>(p, d, true, threads, &g3) == run_core<double>(p, d, true, threads, &g4, true);
        differ += !(same_f && same_d && g1 && g2 && g3 && g4);
        ++checked;
      }
    }
  }
  convt::set_isa(isas.front());
  report(differ == 0, "cold outputs: same bytes as warm ones, " + std::to_string(differ) + " of " +
                          std::to_string(checked) + " runs differ");
}

void test_packed() {
  // packed weights only where the path reads a packed layout (not depthwise, not a 1x1 input without padding)
  report(convt::packing_saves_work(make_problem(16, 64, 4, 4, 32, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0)), "packing saves work: GEMM");
  report(!convt::packing_saves_work(make_problem(1, 64, 32, 32, 64, 4, 4, 2, 2, 1, 1, 1, 1, 64, 0, 0)),
         "packing saves no work: depthwise");
  report(!convt::packing_saves_work(make_problem(16, 100, 1, 1, 64, 4, 4, 1, 1, 0, 0, 1, 1, 1, 0, 0)),
         "packing saves no work: single pixel");
  std::mt19937_64 rng(99);
  auto problems = sweep_problems(rng, 120);
  for (const Problem& q : larger_problems()) problems.push_back(q);
  int checked = 0;
  for (size_t i = 0; i < problems.size(); ++i) {
    const Problem& p = problems[i];
    if (p.N == 0) continue;
    const Data d = random_data(p, rng);
    std::vector<float> wf(d.w.begin(), d.w.end()), xf(d.x.begin(), d.x.end()), bf(d.b.begin(), d.b.end());
    auto pw = convt::pack_weights(p, wf.data(), 2);
    if (!pw) {
      report(false, "pack_weights failed: " + describe(p));
      continue;
    }
    bool guard = false;
    const auto plain = run_core<float>(p, d, true, 2, &guard);
    std::vector<float> y(plain.size(), std::numeric_limits<float>::quiet_NaN());
    const std::string e = convt::conv_transpose2d_packed(p, xf.data(), *pw, bf.data(), y.data(), 1 + int(i % 3));
    report(e.empty() && std::memcmp(y.data(), plain.data(), y.size() * sizeof(float)) == 0,
           "packed == unpacked bytes: " + describe(p) + " " + e);
    // other batch / spatial size, same weight geometry
    Problem q = p;
    q.N = 1 + int64_t(i % 3);
    q.H = p.H + int64_t(i % 4);
    q.W = p.W + int64_t((i / 2) % 5);
    q.Hout = p.Hout + (q.H - p.H) * p.sH;
    q.Wout = p.Wout + (q.W - p.W) * p.sW;
    if (convt::check(q).empty()) {
      const Data dq = random_data(q, rng);
      std::vector<float> xq(dq.x.begin(), dq.x.end());
      std::vector<double> ref, mag;
      reference(q, dq.x, d.w, &d.b, ref, mag);
      std::vector<float> yq(static_cast<size_t>(convt::output_elements(q)), std::numeric_limits<float>::quiet_NaN());
      const std::string e2 = convt::conv_transpose2d_packed(q, xq.data(), *pw, bf.data(), yq.data(), 2);
      std::string why;
      report(e2.empty() && compare(q, yq, ref, mag, &why), "packed, other size: " + describe(q) + " " + e2 + why);
      ++checked;
    }
    Problem bad = p;
    bad.Cout += p.groups;
    report(!convt::conv_transpose2d_packed(bad, xf.data(), *pw, bf.data(), y.data(), 1).empty(),
           "packed weights refused for another Cout");
    std::vector<double> yd(plain.size());
    report(!convt::conv_transpose2d_packed(p, d.x.data(), *pw, d.b.data(), yd.data(), 1).empty(),
           "float32 packed weights refused for float64 data");
  }
  // float64 packing, one larger problem, shared by concurrent callers
  const Problem p = larger_problems()[0];
  const Data d = random_data(p, rng);
  auto pw = convt::pack_weights(p, d.w.data(), 1);
  bool guard = false;
  const auto plain = run_core<double>(p, d, true, 1, &guard);
  std::atomic<int> bad{0};
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      for (int it = 0; it < 4; ++it) {
        std::vector<double> y(plain.size());
        const std::string e = convt::conv_transpose2d_packed(p, d.x.data(), *pw, d.b.data(), y.data(), 1 + (t + it) % 3);
        if (!e.empty() || std::memcmp(y.data(), plain.data(), y.size() * sizeof(double)) != 0) bad.fetch_add(1);
      }
    });
  for (auto& t : th) t.join();
  report(pw && pw->is_double() && bad.load() == 0, "float64 packed weights shared by concurrent callers");
  std::printf("packed: %zu problems, %d with other sizes\n", problems.size(), checked);
}

// Small weights are packed once per thread and kept (blocking::kPackCacheMaxElements): weights changed in place
// between calls, in the same buffer, must be packed again; both dtypes, 1 and 2 threads.
template <class T>
void small_weight_cache_case(const Problem& p, Data d, int threads) {
  std::vector<T> x(d.x.begin(), d.x.end()), w(d.w.begin(), d.w.end()), b(d.b.begin(), d.b.end());
  std::vector<T> y(static_cast<size_t>(convt::output_elements(p)));
  for (int round = 0; round < 3; ++round) {
    if (round > 0)
      for (size_t i = 0; i < w.size(); ++i) {
        w[i] = round == 1 ? T(-0.5) * w[i] + T(0.25) : (i % 7 == 0 ? T(0) : w[i]);
        d.w[i] = static_cast<double>(w[i]);
      }
    convt::conv_transpose2d(p, x.data(), w.data(), b.data(), y.data(), threads);
    std::vector<double> ref, mag;
    reference(p, d.x, d.w, &d.b, ref, mag);
    std::string why;
    report(compare(p, y, ref, mag, &why), std::string("small weights changed in place, ") +
                                             (sizeof(T) == 4 ? "f32" : "f64") + " threads=" + std::to_string(threads) +
                                             " round " + std::to_string(round) + " " + why);
  }
}

void test_small_weight_cache() {
  std::mt19937_64 rng(11);
  const Problem p = make_problem(1, 16, 32, 32, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1);
  const Data d = random_data(p, rng);
  for (int threads : {1, 2}) {
    small_weight_cache_case<float>(p, d, threads);
    small_weight_cache_case<double>(p, d, threads);
  }
}

void test_concurrent_callers() {
  std::mt19937_64 rng(11);
  const auto problems = larger_problems();
  std::vector<Data> data;
  std::vector<std::vector<float>> expect;
  for (const Problem& p : problems) {
    data.push_back(random_data(p, rng));
    bool guard;
    expect.push_back(run_core<float>(p, data.back(), true, 1, &guard));
  }
  std::atomic<int> bad{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 6; ++c)
    callers.emplace_back([&, c] {
      for (int it = 0; it < 8; ++it) {
        const size_t k = static_cast<size_t>(c + it) % problems.size();
        bool guard = false;
        const auto y = run_core<float>(problems[k], data[k], true, 1 + (c + it) % 3, &guard);
        if (!guard || std::memcmp(y.data(), expect[k].data(), y.size() * sizeof(float)) != 0) bad.fetch_add(1);
      }
    });
  for (auto& t : callers) t.join();
  report(bad.load() == 0, "concurrent callers: " + std::to_string(bad.load()) + " wrong results");
}

void test_check() {
  const Problem good = make_problem(2, 4, 5, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2, 1, 1);
  report(convt::check(good).empty(), "check accepts a good problem: " + convt::check(good));
  struct Bad {
    const char* what;
    Problem p;
  };
  std::vector<Bad> bad;
  auto mod = [&](const char* what, auto f) {
    Problem p = good;
    f(p);
    bad.push_back({what, p});
  };
  mod("negative N", [](Problem& p) { p.N = -1; });
  mod("zero Cin", [](Problem& p) { p.Cin = 0; });
  mod("zero H", [](Problem& p) { p.H = 0; });
  mod("zero W", [](Problem& p) { p.W = 0; });
  mod("zero Cout", [](Problem& p) { p.Cout = 0; });
  mod("zero kernel", [](Problem& p) { p.kH = 0; });
  mod("zero stride", [](Problem& p) { p.sW = 0; });
  mod("negative padding", [](Problem& p) { p.pH = -1; });
  mod("zero dilation", [](Problem& p) { p.dH = 0; });
  mod("zero groups", [](Problem& p) { p.groups = 0; });
  mod("groups not dividing Cin", [](Problem& p) { p.groups = 3; p.Cout = 6; });
  mod("groups not dividing Cout", [](Problem& p) { p.Cout = 5; });
  mod("Hout too small", [](Problem& p) { p.Hout -= 2; });
  mod("Hout too large (op >= stride)", [](Problem& p) { p.Hout += 1; });
  mod("Wout too large", [](Problem& p) { p.Wout += 5; });
  mod("Hout zero", [](Problem& p) { p.Hout = 0; });
  mod("padding too large", [](Problem& p) { p.pH = 10; p.Hout = 1; });
  mod("huge H", [](Problem& p) { p.H = int64_t{1} << 40; });
  mod("element count overflow", [](Problem& p) {
    p.N = 2000000000; p.Cin = 2000000000; p.groups = 1; p.Cout = 1; p.H = 2000; p.W = 2000;
    p.Hout = (p.H - 1) * 2 - 2 + 3; p.Wout = p.Hout;
  });
  mod("output above 2^53", [](Problem& p) {
    p.N = 1 << 20; p.Cout = 1 << 20; p.groups = 1; p.Cin = 4; p.H = 1 << 7; p.W = 1 << 7; p.Hout = 2 * 127 + 1 - 2 + 2; p.Wout = p.Hout;
  });
  for (const Bad& b : bad) {
    const std::string m = convt::check(b.p);
    report(!m.empty(), std::string("check() must reject: ") + b.what + " " + describe(b.p));
  }
  // N = 0 with zero spatial size is accepted (PyTorch accepts empty batches)
  Problem empty = good;
  empty.N = 0;
  report(convt::check(empty).empty(), "check accepts N = 0");
  // the ISA API
  const auto isas = convt::available_isas();
  report(!isas.empty() && convt::active_isa() == isas.front(), "active ISA is the best available");
  report(!convt::set_isa("no-such-isa"), "set_isa rejects unknown ISA");
}


// ------------------------------------------------------------------------------------------------
// Regression checks for bugs found by hardening (each names its bug)
// ------------------------------------------------------------------------------------------------

// Huge strides: the work must be O(min(s, out) per axis + taps), never O(sH * sW) (was: stride 4096x4096
// on a 1x2 input took 4 s; stride 2^31-1 ran out of memory). Outputs no tap reaches get the bias.
void test_huge_strides() {
  const int64_t M = (int64_t{1} << 31) - 1;
  std::vector<Problem> probs = {
      make_problem(1, 1, 1, 2, 1, 3, 3, 4096, 4096, 0, 0, 1, 1, 1, 0, 0),
      make_problem(1, 1, 1, 2, 1, 3, 3, 4096, 4096, 0, 0, 1, 1, 1, 5, 7),    // bias-only rows and columns
      make_problem(1, 1, 1, 2, 1, 3, 3, M, 1, 0, 0, 1, 1, 1, 0, 0),
      make_problem(1, 1, 1, 2, 1, 3, 3, M, 1, 0, 0, 1, 1, 1, 4, 0),
      make_problem(2, 3, 1, 1, 5, 2, 3, M, M, 1, 1, 1, 1, 1, 3, 2),
      make_problem(1, 2, 1, 2, 4, 3, 2, M, 4096, 0, 0, 2, 3, 2, 1, 9),      // depthwise, multiplier 2
      make_problem(2, 4, 2, 2, 6, 2, 2, 5, 7, 0, 0, 1, 1, 1, 3, 4),          // small, stride > kernel
      make_problem(1, 2, 1, 1, 3, 1, 1, M, M, 0, 0, M, M, 1, 6, 9),          // huge dilation too
  };
  const auto isas = convt::available_isas();
  std::mt19937_64 rng(4096);
  int n = 0;
  for (const Problem& p : probs) {
    if (!convt::check(p).empty()) {
      report(false, "huge-stride problem rejected: " + describe(p) + ": " + convt::check(p));
      continue;
    }
    const Data d = random_data(p, rng);
    std::vector<double> ref, mag;
    reference(p, d.x, d.w, &d.b, ref, mag);
    for (const std::string& isa : isas)
      for (int mode = -1; mode <= 3; ++mode) {
        convt::set_isa(isa);
        convt::force_plan_mode_for_testing(mode);
        bool guard = false;
        std::string why;
        const auto t0 = std::chrono::steady_clock::now();
        const auto yf = run_core<float>(p, d, true, 2, &guard);
        const auto yd = run_core<double>(p, d, true, 2, &guard);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        report(guard && compare(p, yf, ref, mag, &why) && compare(p, yd, ref, mag, &why),
               "huge stride " + isa + " mode " + std::to_string(mode) + " " + describe(p) + " " + why);
        report(ms < 250, "huge stride must be fast (" + std::to_string(ms) + " ms): " + describe(p));
        ++n;
      }
    convt::force_plan_mode_for_testing(-1);
    convt::set_isa(isas.front());
    std::vector<float> wf(d.w.begin(), d.w.end()), xf(d.x.begin(), d.x.end()), bf(d.b.begin(), d.b.end());
    auto pw = convt::pack_weights(p, wf.data(), 2);
    report(pw && pw->bytes() <= 64 * 1024 + 16 * convt::weight_elements(p),
           "packed weights O(weight elements) for huge strides: " + describe(p));
    if (pw) {
      bool guard = false;
      const auto plain = run_core<float>(p, d, true, 1, &guard);
      std::vector<float> y(plain.size());
      const std::string e = convt::conv_transpose2d_packed(p, xf.data(), *pw, bf.data(), y.data(), 2);
      report(e.empty() && std::memcmp(y.data(), plain.data(), y.size() * sizeof(float)) == 0,
             "packed == unpacked, huge stride: " + describe(p) + " " + e);
    }
  }
  std::printf("huge strides: %d runs\n", n);
}

// UBSan: signed overflow in tap_hits (a bound still at its INT64_MAX start value) from the direct mode.
void test_tap_hits_overflow() {
  const Problem p{2, 6, 5, 7, 6, 3, 3, 1, 1, 2, 2, 2, 2, 3, 6, 8};
  report(convt::check(p).empty(), "tap_hits repro is a legal problem");
  std::mt19937_64 rng(2);
  const Data d = random_data(p, rng);
  std::vector<double> ref, mag;
  reference(p, d.x, d.w, &d.b, ref, mag);
  for (const std::string& isa : convt::available_isas())
    for (int mode = -1; mode <= 3; ++mode) {
      convt::set_isa(isa);
      convt::force_plan_mode_for_testing(mode);
      bool guard = false;
      std::string why;
      const auto y = run_core<float>(p, d, true, 1, &guard);
      report(guard && compare(p, y, ref, mag, &why), "tap_hits repro " + isa + " mode " + std::to_string(mode) + why);
    }
  convt::force_plan_mode_for_testing(-1);
  convt::set_isa(convt::available_isas().front());
}

// A failure inside a pool task (on any thread) reaches the caller as an exception; the process survives
// and the pool stays usable (was: std::terminate from a worker thread).
void test_task_exceptions() {
  // the pool itself: a task that throws on a worker thread, and one on the caller's thread
  const std::thread::id caller = std::this_thread::get_id();
  for (int on_worker = 0; on_worker < 2; ++on_worker) {
    bool caught = false;
    std::atomic<int> ran{0};
    try {
      convt::threading::parallel_for(64, 2, [&](int64_t) {
        ran.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        if ((std::this_thread::get_id() != caller) == (on_worker == 1)) throw std::runtime_error("task failed");
      });
    } catch (const std::runtime_error&) {
      caught = true;
    }
    report(caught && ran.load() < 64, "pool rethrows a task's exception to the caller (worker=" +
                                         std::to_string(on_worker) + ", ran " + std::to_string(ran.load()) + ")");
    std::atomic<int> count{0};
    const bool all = convt::threading::parallel_for(100, 2, [&](int64_t) { count.fetch_add(1); });
    report(all && count.load() == 100, "pool usable after a task threw");
  }
  // the core: per-thread scratch that cannot grow (std::bad_alloc inside tasks), GEMM and depthwise
  std::mt19937_64 rng(3);
  for (const Problem& p : {make_problem(2, 32, 20, 20, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1),
                           make_problem(1, 64, 32, 32, 64, 4, 4, 2, 2, 1, 1, 1, 1, 64, 0, 0)}) {
    const Data d = random_data(p, rng);
    bool guard = false;
    const auto expect = run_core<float>(p, d, true, 1, &guard);
    for (int threads : {1, 2}) {
      convt::set_scratch_limit_for_testing(256);
      bool caught = false;
      try {
        run_core<float>(p, d, true, threads, &guard);
      } catch (const std::bad_alloc&) {
        caught = true;
      }
      convt::set_scratch_limit_for_testing(-1);
      report(caught, "bad_alloc in a task reaches the caller, threads=" + std::to_string(threads) + " " + describe(p));
      const auto y = run_core<float>(p, d, true, threads, &guard);
      report(guard && std::memcmp(y.data(), expect.data(), y.size() * sizeof(float)) == 0,
             "correct results after a failed call: " + describe(p));
    }
  }
}

// Cancellation: a set flag stops a call between tasks with convt::Cancelled; the pool stays usable.
void test_cancel() {
  std::mt19937_64 rng(5);
  const Problem gemm = make_problem(1, 512, 28, 28, 256, 2, 2, 2, 2, 0, 0, 1, 1, 1, 0, 0);
  const Problem dw = make_problem(1, 64, 32, 32, 64, 4, 4, 2, 2, 1, 1, 1, 1, 64, 0, 0);
  for (const Problem& p : {gemm, dw}) {
    const Data d = random_data(p, rng);
    std::vector<float> x(d.x.begin(), d.x.end()), w(d.w.begin(), d.w.end()), b(d.b.begin(), d.b.end());
    std::vector<float> y(static_cast<size_t>(convt::output_elements(p))), y2(y.size());
    convt::conv_transpose2d(p, x.data(), w.data(), b.data(), y.data(), 2);
    for (int threads : {1, 2}) {
      std::atomic<bool> cancel{true};
      bool cancelled = false;
      try {
        convt::conv_transpose2d(p, x.data(), w.data(), b.data(), y2.data(), threads, &cancel);
      } catch (const convt::Cancelled&) {
        cancelled = true;
      }
      report(cancelled, "preset cancel flag throws Cancelled, threads=" + std::to_string(threads) + " " + describe(p));
      auto pw = convt::pack_weights(p, w.data(), threads);
      cancelled = false;
      try {
        convt::conv_transpose2d_packed(p, x.data(), *pw, b.data(), y2.data(), threads, &cancel);
      } catch (const convt::Cancelled&) {
        cancelled = true;
      }
      report(cancelled, "preset cancel flag throws Cancelled (packed) " + describe(p));
      cancel.store(false);
      std::fill(y2.begin(), y2.end(), 0.f);
      convt::conv_transpose2d(p, x.data(), w.data(), b.data(), y2.data(), threads, &cancel);
      report(std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)) == 0,
             "unset cancel flag: same bytes as the plain call " + describe(p));
    }
  }
  // set while running: a ~0.5 s call stops within a few tasks
  const Problem big = make_problem(8, 512, 28, 28, 512, 2, 2, 2, 2, 0, 0, 1, 1, 1, 0, 0);
  const Data d = random_data(big, rng);
  std::vector<float> x(d.x.begin(), d.x.end()), w(d.w.begin(), d.w.end());
  std::vector<float> y(static_cast<size_t>(convt::output_elements(big)));
  for (int threads : {1, 2}) {
    std::atomic<bool> cancel{false};
    std::thread setter([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      cancel.store(true);
    });
    bool cancelled = false;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      convt::conv_transpose2d(big, x.data(), w.data(), nullptr, y.data(), threads, &cancel);
    } catch (const convt::Cancelled&) {
      cancelled = true;
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    setter.join();
    report(cancelled, "cancel while running throws Cancelled, threads=" + std::to_string(threads));
    std::printf("cancel while running (threads=%d): returned after %.1f ms\n", threads, ms);
  }
  std::atomic<int> count{0};
  report(convt::threading::parallel_for(10, 2, [&](int64_t) { count.fetch_add(1); }) && count.load() == 10,
         "pool usable after cancellation");
}

// ------------------------------------------------------------------------------------------------
// --bench
// ------------------------------------------------------------------------------------------------
struct Shape {
  const char* id;
  int64_t N, Cin, Cout, H, W, kH, kW, sH, sW, pH, pW, opH, opW, dH, dW, G;
};
const Shape kShapes[] = {
    {"A1", 16, 100, 512, 1, 1, 4, 4, 1, 1, 0, 0, 0, 0, 1, 1, 1},
    {"A2", 16, 512, 256, 4, 4, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 1},
    {"A3", 16, 256, 128, 8, 8, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 1},
    {"A4", 16, 128, 64, 16, 16, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 1},
    {"A5", 16, 64, 3, 32, 32, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 1},
    {"B1", 1, 1024, 512, 28, 28, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1},
    {"B2", 1, 512, 256, 56, 56, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1},
    {"B3", 1, 128, 64, 196, 196, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1},
    {"C", 1, 56, 1, 128, 128, 9, 9, 2, 2, 4, 4, 1, 1, 1, 1, 1},
    {"D", 1, 256, 256, 64, 64, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 256},
    {"E", 1, 64, 64, 56, 56, 3, 3, 1, 1, 2, 2, 0, 0, 2, 2, 1},
    {"F", 1, 64, 64, 112, 112, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1},
    {"G", 1, 512, 256, 1, 1024, 1, 16, 1, 8, 0, 4, 0, 0, 1, 1, 1},
    {"H", 1, 16, 16, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
    {"Z", 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
};

#if defined(__linux__)
#include <time.h>
double thread_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
#else
double thread_cpu_s() { return 0; }
#endif

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A shape's problem and its operands, filled with uniform values in [-1, 1).
template <class T>
struct ShapeData {
  Problem p;
  std::vector<T> x, w, b, y;
};
template <class T>
ShapeData<T> shape_data(const Shape& s, std::mt19937_64& rng) {
  ShapeData<T> d;
  d.p = make_problem(s.N, s.Cin, s.H, s.W, s.Cout, s.kH, s.kW, s.sH, s.sW, s.pH, s.pW, s.dH, s.dW, s.G, s.opH, s.opW);
  std::uniform_real_distribution<T> u(-1, 1);
  d.x.resize(static_cast<size_t>(convt::input_elements(d.p)));
  d.w.resize(static_cast<size_t>(convt::weight_elements(d.p)));
  d.b.resize(static_cast<size_t>(d.p.Cout));
  d.y.resize(static_cast<size_t>(convt::output_elements(d.p)));
  for (auto* v : {&d.x, &d.w, &d.b})
    for (T& e : *v) e = u(rng);
  return d;
}

template <class T>
int bench(const char* only, int only_threads) {
  std::printf("isa=%s dtype=%s\n", convt::active_isa().c_str(), sizeof(T) == 4 ? "float32" : "float64");
  std::printf("%-4s %10s | %12s %9s | %12s %9s | %12s %9s | %12s %9s\n", "id", "GFLOP", "T1 ms", "GFLOP/s", "T2 ms",
              "GFLOP/s", "T1 cpu ms", "GFLOP/s", "T2 packed ms", "GFLOP/s");
  std::mt19937_64 rng(1);
  for (const Shape& s : kShapes) {
    if (only && std::strcmp(only, s.id) != 0) continue;
    ShapeData<T> d = shape_data<T>(s, rng);
    const Problem& p = d.p;
    if (!convt::check(p).empty()) {
      std::printf("%s: bad shape %s\n", s.id, convt::check(p).c_str());
      return 1;
    }
    std::vector<T>& x = d.x, &w = d.w, &b = d.b, &y = d.y;
    const double flops = 2.0 * s.N * s.Cin * s.H * s.W * (s.Cout / s.G) * s.kH * s.kW;
    double med[2], cpu_med = 0;
    med[0] = med[1] = 0;
    const double secs = only_threads != 0 ? 2.0 : 0.4;  // one thread count: a longer loop, for profilers
    for (int t = 1; t <= 2; ++t) {
      if (only_threads != 0 && t != only_threads) continue;
      for (int i = 0; i < 3; ++i) convt::conv_transpose2d(p, x.data(), w.data(), b.data(), y.data(), t);
      std::vector<double> times, cpu;
      const double t0 = now_s();
      while (times.size() < 7 || (now_s() - t0 < secs && times.size() < 20000)) {
        const double a = now_s(), c = thread_cpu_s();
        convt::conv_transpose2d(p, x.data(), w.data(), b.data(), y.data(), t);
        times.push_back(now_s() - a);
        cpu.push_back(thread_cpu_s() - c);
      }
      std::sort(times.begin(), times.end());
      std::sort(cpu.begin(), cpu.end());
      med[t - 1] = times[times.size() / 2];
      if (t == 1) cpu_med = cpu[cpu.size() / 2];
    }
    // Prepacked weights at 2 threads (what a module's forward pays once its weights are packed).
    const auto packed = convt::pack_weights(p, w.data(), 2);
    double packed_med = 0;
    if (only_threads == 0 || only_threads == 2) {
      std::vector<double> times;
      const double t0 = now_s();
      while (times.size() < 7 || (now_s() - t0 < secs && times.size() < 20000)) {
        const double a = now_s();
        convt::conv_transpose2d_packed(p, x.data(), *packed, b.data(), y.data(), 2);
        times.push_back(now_s() - a);
      }
      std::sort(times.begin(), times.end());
      packed_med = times[times.size() / 2];
    }
    std::printf("%-4s %10.4f | %12.4f %9.1f | %12.4f %9.1f | %12.4f %9.1f | %12.4f %9.1f | %s\n", s.id, flops * 1e-9,
                med[0] * 1e3, flops / med[0] * 1e-9, med[1] * 1e3, flops / med[1] * 1e-9, cpu_med * 1e3,
                flops / cpu_med * 1e-9, packed_med * 1e3, flops / packed_med * 1e-9,
                convt::describe_plan(p, sizeof(T) == 8).c_str());
    std::fflush(stdout);
  }
  return 0;
}

// ------------------------------------------------------------------------------------------------
// --fma-peak: independent FMA chains on the best ISA
// ------------------------------------------------------------------------------------------------
#ifdef CONVT_TEST_X86_PEAK
__attribute__((target("avx512f"))) double chains512(int64_t iters, bool f64) {
  if (!f64) {
    __m512 a[12], b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
    for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(float(i));
    for (int64_t it = 0; it < iters; ++it)
      for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
    float out[16], s = 0;
    for (int i = 0; i < 12; ++i) {
      _mm512_storeu_ps(out, a[i]);
      for (float v : out) s += v;
    }
    return s;
  }
  __m512d a[12], b = _mm512_set1_pd(0.999), c = _mm512_set1_pd(1e-3);
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_pd(double(i));
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_pd(a[i], b, c);
  double out[8], s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm512_storeu_pd(out, a[i]);
    for (double v : out) s += v;
  }
  return s;
}
__attribute__((target("avx2,fma"))) double chains256(int64_t iters, bool f64) {
  if (!f64) {
    __m256 a[12], b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
    for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(float(i));
    for (int64_t it = 0; it < iters; ++it)
      for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
    float out[8], s = 0;
    for (int i = 0; i < 12; ++i) {
      _mm256_storeu_ps(out, a[i]);
      for (float v : out) s += v;
    }
    return s;
  }
  __m256d a[12], b = _mm256_set1_pd(0.999), c = _mm256_set1_pd(1e-3);
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_pd(double(i));
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_pd(a[i], b, c);
  double out[4], s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm256_storeu_pd(out, a[i]);
    for (double v : out) s += v;
  }
  return s;
}
#endif

// --touch-memory MIB (the bench, before timing): maps MIB MiB for huge pages, writes every page, frees it. On a
// Firecracker VM the host backs guest memory lazily: a guest page's first write ever costs ~1.3-2.3 ms per MiB even
// with huge pages, later reuse ~0.07 ms per MiB; without this the first timed calls of a run pay the host's part.
int touch_memory(int64_t mib) {
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(0, mib)) << 20;
  const double t0 = now_s();
  char* p = static_cast<char*>(convt::alloc_large(bytes));
  if (p == nullptr) return std::printf("touch_memory: %lld MiB not available\n", static_cast<long long>(mib)), 1;
  for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
  convt::free_large(p, bytes);
  std::printf("touched_memory mib=%lld ms=%.1f\n", static_cast<long long>(mib), (now_s() - t0) * 1e3);
  return 0;
}

int fma_peak() {
#ifdef CONVT_TEST_X86_PEAK
  const std::string isa = convt::available_isas().front();
  const bool z = isa == "avx512";
  if (!z && isa != "avx2") {
    std::printf("fma_peak: no AVX2/AVX-512 on this CPU\n");
    return 0;
  }
  const int lanes32 = z ? 16 : 8;
  const int64_t iters = 20000000;
  for (int threads = 1; threads <= 2; ++threads) {
    double res[2];
    for (int f64 = 0; f64 < 2; ++f64) {
      double best = 0;
      // best of 8 (~35 ms each): on a shared VM a neighbour can hold one vCPU for a few hundred milliseconds, and a
      // 2-thread peak taken then (seen: 259 instead of ~430 GFLOP/s) would inflate every % of peak of the run
      for (int rep = 0; rep < 8; ++rep) {
        std::atomic<double> sink{0};
        const double t0 = now_s();
        std::vector<std::thread> th;
        for (int t = 0; t < threads; ++t)
          th.emplace_back([&] { sink.store(z ? chains512(iters, f64) : chains256(iters, f64)); });
        for (auto& t : th) t.join();
        const double dt = now_s() - t0;
        const double lanes = f64 ? lanes32 / 2 : lanes32;
        best = std::max(best, threads * double(iters) * 12 * lanes * 2 / dt * 1e-9);
      }
      res[f64] = best;
    }
    std::printf("fma_peak_gflops threads=%d fp32=%.1f fp64=%.1f\n", threads, res[0], res[1]);
  }
#else
  std::printf("fma_peak: not measured on this architecture\n");
#endif
  return 0;
}

}  // namespace

// --ab SHAPE THREADS SECONDS A B [--f64]: calls on SHAPE for SECONDS (float32 or float64, reused output),
// experiment_knob() alternating between A and B call by call, and prints each one's timings. On a shared VM whose
// speed drifts by 10-20 % within minutes, two binaries run one after the other cannot resolve a 3 % change; calls
// interleaved one by one can.
template <class T>
int ab(const char* id, int threads, double secs, int64_t va, int64_t vb) {
  for (const Shape& s : kShapes) {
    if (std::strcmp(id, s.id) != 0) continue;
    std::mt19937_64 rng(1);
    ShapeData<T> d = shape_data<T>(s, rng);
    const Problem& p = d.p;
    std::vector<T>& x = d.x, &w = d.w, &b = d.b, &y = d.y;
    std::vector<double> t[2];
    const double t0 = now_s();
    for (int i = 0; now_s() - t0 < secs || i < 24; ++i) {
      convt::set_experiment_knob_for_testing(i % 2 ? vb : va);
      const double a = now_s();
      convt::conv_transpose2d(p, x.data(), w.data(), b.data(), y.data(), threads);
      if (i >= 4) t[i % 2].push_back(now_s() - a);  // the first calls plan and warm up
    }
    convt::set_experiment_knob_for_testing(0);
    for (int k = 0; k < 2; ++k) {
      std::sort(t[k].begin(), t[k].end());
      const std::vector<double>& v = t[k];
      std::printf("%s%s T%d knob=%-10lld calls %5zu  min %.4f  p25 %.4f  median %.4f ms\n", id,
                  sizeof(T) == 8 ? " f64" : "", threads,
                  static_cast<long long>(k ? vb : va), v.size(), v[0] * 1e3, v[v.size() / 4] * 1e3, v[v.size() / 2] * 1e3);
    }
    return 0;
  }
  std::printf("no shape %s\n", id);
  return 1;
}

int main(int argc, char** argv) {
  if (argc > 6 && std::strcmp(argv[1], "--ab") == 0) {
    const bool f64 = argc > 7 && std::strcmp(argv[7], "--f64") == 0;
    return (f64 ? ab<double> : ab<float>)(argv[2], std::atoi(argv[3]), std::atof(argv[4]), std::atoll(argv[5]),
                                          std::atoll(argv[6]));
  }
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) {
    // --bench [--isa ISA] [--mode M (force_plan_mode_for_testing)] [--f64] [--threads T (only T: profiling)] [SHAPE]
    const char* only = nullptr;
    bool f64 = false;
    int only_threads = 0;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--isa") == 0 && i + 1 < argc) {
        if (!convt::set_isa(argv[++i])) return std::printf("ISA %s not available\n", argv[i]), 1;
      } else if (std::strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
        convt::force_plan_mode_for_testing(std::atoi(argv[++i]));
      } else if (std::strcmp(argv[i], "--f64") == 0) {
        f64 = true;
      } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
        only_threads = std::atoi(argv[++i]);
      } else {
        only = argv[i];
      }
    }
    return f64 ? bench<double>(only, only_threads) : bench<float>(only, only_threads);
  }
  if (argc > 1 && std::strcmp(argv[1], "--fma-peak") == 0) return fma_peak();
  if (argc > 2 && std::strcmp(argv[1], "--touch-memory") == 0) return touch_memory(std::atoll(argv[2]));
  std::string isas;
  for (auto& s : convt::available_isas()) isas += s + " ";
  std::printf("available ISAs: %s(active %s)\n", isas.c_str(), convt::active_isa().c_str());
  const double t0 = now_s();
  test_check();
  test_huge_strides();
  test_tap_hits_overflow();
  test_task_exceptions();
  test_cancel();
  test_sweep();
  test_thread_invariance();
  test_packed();
  test_streamed_outputs();
  test_cold_outputs();
  test_small_weight_cache();
  test_concurrent_callers();
  std::printf("time %.1f s\n", now_s() - t0);
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail != 0;
}
