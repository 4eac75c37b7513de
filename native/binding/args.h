// JS arguments of convTranspose2d / convTranspose2dAsync -> plain, fully checked data (see binding.d.ts).
#pragma once

#include <node_api.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "binding/errors.h"
#include "core/conv_transpose.h"

namespace convt_binding {

enum class DType { kFloat32, kFloat64 };

inline size_t ElementSize(DType t) { return t == DType::kFloat32 ? sizeof(float) : sizeof(double); }

// The six arguments after every check. Pointers come from TypedArray data (byteOffset included) and are
// only valid until JS runs again: the sync path uses them at once, the async path copies them.
struct ConvArgs {
  convt::Problem problem;
  DType dtype;
  const void* x;      // x_len elements (nullptr when 0)
  const void* w;      // w_len elements
  std::shared_ptr<const convt::PackedWeights> packed;  // w packed, from the call's weight cache (or null)
  const void* bias;   // Cout elements, or nullptr when absent
  void* out;          // out_len elements, or nullptr when absent (or empty)
  napi_value out_value;  // the `out` argument, nullptr when absent
  size_t x_len, w_len, out_len;  // out_len: N*Cout*Hout*Wout, whether or not `out` was given
  int threads;
};

inline constexpr size_t kProblemLength = 16;  // binding.d.ts PROBLEM_LENGTH
inline constexpr size_t kConvArgCount = 6;   // problem, x, w, bias, out, threads (then an optional weightCache)
inline constexpr int kMaxThreads = 256;      // larger requests are clamped

// Reads and checks the call's arguments: counts, types, problem values (finite integers, convt::check),
// element types, lengths, `out` not overlapping an input. Throws nothing: on failure fills *err and
// returns false, so the caller can throw (sync) or reject (async).
bool ParseConvArgs(napi_env env, napi_callback_info info, ConvArgs* args, ErrorInfo* err);

// Runs the core on plain pointers of the given element type, with `w` or, when given, the packed weights
// (already checked to fit). May throw std::bad_alloc, and convt::Cancelled once *cancel (optional) reads true.
// cold_output: y is a recycled pool block (see convt::conv_transpose2d).
void RunConv(const convt::Problem& p, DType t, const void* x, const void* w, const convt::PackedWeights* packed,
             const void* bias, void* y, int threads, const std::atomic<bool>* cancel, bool cold_output);

}  // namespace convt_binding
