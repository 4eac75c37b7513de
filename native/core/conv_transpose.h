// Public interface of the plain-C++ core: no Node here, so it can be tested and fuzzed on its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace convt {

// Every integer of one 2-D transposed convolution, PyTorch semantics, NCHW, batch explicit (N >= 0).
// Weight layout (Cin, Cout/groups, kH, kW); output (N, Cout, Hout, Wout).
struct Problem {
  int64_t N, Cin, H, W, Cout, kH, kW, sH, sW, pH, pW, dH, dW, groups, Hout, Wout;
};

// Defensive re-check of what the TypeScript layer validated (positive sizes, divisibility, Hout/Wout within
// the range the formula allows for some legal output padding, element counts that fit in memory).
// Returns an empty string when the problem is consistent, else a description.
std::string check(const Problem& p);

// Element counts of the three tensors of p (already checked, so no overflow).
int64_t input_elements(const Problem& p);
int64_t weight_elements(const Problem& p);
int64_t output_elements(const Problem& p);

// Thrown by the calls below when their `cancel` flag was seen set before all the work was done. Tasks that
// had started finish; the rest are skipped, so y is then partly written (its contents are unspecified).
struct Cancelled : std::exception {
  const char* what() const noexcept override { return "conv_transpose2d was cancelled"; }
};

// y = conv_transpose2d(x, w, bias). bias may be nullptr. y is fully overwritten (no need to zero it).
// At most `threads` threads work, the caller's included; the result's bytes do not depend on `threads`.
// Safe to call from several threads at once. Never terminates the process: a failure anywhere, on any
// of the pool's threads (std::bad_alloc when per-thread scratch cannot grow), is rethrown to the caller
// once every thread has left the call, and the pool stays usable.
// cancel (optional, may be nullptr) is polled between tasks (each a small fraction of the call, at most
// a few milliseconds): once it reads true the call stops early and throws Cancelled. Meant for process or
// worker shutdown (e.g. set from a napi env cleanup hook).
// cold_output: y's memory has not been touched for a while (e.g. recycled from a pool after a garbage collection),
// so its lines are not in cache: paths that can then write it with streaming stores (skipping the read of each line
// before its write). Only speed depends on it. For a buffer reused call after call, leave it false.
void conv_transpose2d(const Problem& p, const float* x, const float* w, const float* bias, float* y, int threads);
void conv_transpose2d(const Problem& p, const double* x, const double* w, const double* bias, double* y, int threads);
void conv_transpose2d(const Problem& p, const float* x, const float* w, const float* bias, float* y, int threads,
                      const std::atomic<bool>* cancel, bool cold_output = false);
void conv_transpose2d(const Problem& p, const double* x, const double* w, const double* bias, double* y, int threads,
                      const std::atomic<bool>* cancel, bool cold_output = false);

// Weights packed once for the micro-kernels, for repeated calls (e.g. a module's forward). Valid for
// every problem with the same Cin, Cout, groups, kernel, stride, padding and dilation as the one it
// was packed for (batch and spatial sizes may differ), with the dtype and the instruction set that
// were active when it was packed. Immutable, so one object may serve concurrent calls.
class PackedWeights {
 public:
  ~PackedWeights();
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;
  int64_t bytes() const;   // memory held
  bool is_double() const;  // packed from float64 weights
  struct Impl;

 private:
  PackedWeights();
  std::unique_ptr<Impl> impl_;
  friend struct PackedWeightsAccess;
};

// Packs w (layout as for conv_transpose2d) for problems like p; nullptr if check(p) fails. Uses up to
// `threads` threads. The packed size is O(weight elements), whatever the stride (only the phases that
// some tap reaches are stored). May throw std::bad_alloc.
std::shared_ptr<const PackedWeights> pack_weights(const Problem& p, const float* w, int threads = 1);
std::shared_ptr<const PackedWeights> pack_weights(const Problem& p, const double* w, int threads = 1);
// Whether weights packed once save work for problems like p: false for the paths that read the caller's weights
// as they are (depthwise; a 1x1 input without padding), where a packed copy would only add a copy.
bool packing_saves_work(const Problem& p);
// Why w cannot serve problem p with the given dtype (f64: double), or an empty string when it can.
std::string check_packed(const Problem& p, const PackedWeights& w, bool f64);
// conv_transpose2d with prepacked weights; same results as the unpacked call (the reduction order per
// output element is the same). Returns an empty string, or why w does not fit p (then y is untouched).
std::string conv_transpose2d_packed(const Problem& p, const float* x, const PackedWeights& w, const float* bias,
                                    float* y, int threads);
std::string conv_transpose2d_packed(const Problem& p, const double* x, const PackedWeights& w, const double* bias,
                                    double* y, int threads);
// The same with a cancel flag and the output hint (see conv_transpose2d: throws Cancelled).
std::string conv_transpose2d_packed(const Problem& p, const float* x, const PackedWeights& w, const float* bias,
                                    float* y, int threads, const std::atomic<bool>* cancel, bool cold_output = false);
std::string conv_transpose2d_packed(const Problem& p, const double* x, const PackedWeights& w, const double* bias,
                                    double* y, int threads, const std::atomic<bool>* cancel,
                                    bool cold_output = false);

// Instruction sets the kernels can use on this CPU and build, best first (e.g. {"avx512","avx2","sse2"}).
std::vector<std::string> available_isas();
// The one in use (the best available unless set_isa chose another).
std::string active_isa();
// Chooses the kernels' instruction set for all later calls; false if `isa` is not available.
bool set_isa(const std::string& isa);

// Testing aid: forces how the GEMM path feeds its micro-kernel for all later calls
// (-1 automatic, the default; 0 im2col batch-outer; 1 im2col batch-inner; 2 direct padded block;
// 3 the scatter path: GEMM over input pixels with col2im per register tile).
// Results stay correct in every mode; only speed (and FMA rounding order) changes.
void force_plan_mode_for_testing(int mode);
// Testing aid: per-thread scratch requests above `bytes` throw std::bad_alloc as if memory were exhausted
// (negative: no limit, the default). For testing that failures inside pool tasks reach the caller.
void set_scratch_limit_for_testing(int64_t bytes);
// Development aid for A/B measurements on a noisy machine: a value no released code reads. To compare two variants
// of a rule, make it read experiment_knob() for the experiment only; `convt_core_test --ab` then alternates the
// knob between two values call by call and prints the timings of each (plans are cached apart for 0, odd and even
// values, so compare 0, the released rule, with one other value, or an odd value with an even one).
void set_experiment_knob_for_testing(int64_t v);
int64_t experiment_knob();
// Testing aid: a one-line description of the plan the next call with p would use (f64: dtype double, else float).
std::string describe_plan(const Problem& p, bool f64 = false);

}  // namespace convt
