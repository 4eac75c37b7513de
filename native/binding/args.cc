// Argument conversion and defensive checks. Raw Node-API: one napi_get_typedarray_info per array and no
// heap allocation on the success path (the tiny-shape call overhead is dominated by these calls).
#include "binding/args.h"

#include "binding/packed.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace convt_binding {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER: exact in int64 and double

const char* const kProblemNames[] = {"N",  "Cin", "H",  "W",  "Cout", "kH",     "kW",   "sH",
                                     "sW", "pH",  "pW", "dH", "dW",   "groups", "Hout", "Wout"};
static_assert(sizeof(kProblemNames) / sizeof(kProblemNames[0]) == kProblemLength, "one name per entry");
static_assert(sizeof(convt::Problem) == kProblemLength * sizeof(int64_t), "Problem holds the vector's entries");

struct Array {
  napi_typedarray_type type;
  size_t length;
  void* data;
};

// True if v is a typed array (fills *a). Never throws or leaves an error pending.
bool GetTypedArray(napi_env env, napi_value v, Array* a) {
  return napi_get_typedarray_info(env, v, &a->type, &a->length, &a->data, nullptr, nullptr) == napi_ok;
}

bool IsNullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

bool IsFloat(napi_typedarray_type t) { return t == napi_float32_array || t == napi_float64_array; }

const char* TypedArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "a typed array";
  }
}

const char* DTypeName(DType t) { return t == DType::kFloat32 ? "Float32Array" : "Float64Array"; }

std::string Num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[48];
  if (std::trunc(v) == v && std::fabs(v) < 1e21)
    std::snprintf(buf, sizeof buf, "%.0f", v);  // integers in full, as JS prints them
  else
    std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// What a wrong argument actually was, for error messages (error path only).
std::string Describe(napi_env env, napi_value v) {
  Array a;
  if (GetTypedArray(env, v, &a)) return TypedArrayName(a.type);
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return "an unknown value";
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: {
      double d = 0;
      napi_get_value_double(env, v, &d);
      return "the number " + Num(d);
    }
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    case napi_bigint: return "a bigint";
    default: {
      bool is_array = false;
      napi_is_array(env, v, &is_array);
      return is_array ? "an Array" : "an object";
    }
  }
}

bool Fail(ErrorInfo* err, ErrorClass cls, const char* code, std::string message) {
  err->cls = cls;
  err->code = code;
  err->message = std::move(message);
  return false;
}

std::string S(int64_t v) { return std::to_string(v); }

bool Overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  if (a == nullptr || b == nullptr || a_bytes == 0 || b_bytes == 0) return false;
  const uintptr_t a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

// A float array argument that may also be null/undefined (bias, out). Returns false on a wrong type.
enum class Opt { kAbsent, kPresent, kWrongType };
Opt GetOptionalFloatArray(napi_env env, napi_value v, Array* a) {
  if (GetTypedArray(env, v, a)) return IsFloat(a->type) ? Opt::kPresent : Opt::kWrongType;
  return IsNullish(env, v) ? Opt::kAbsent : Opt::kWrongType;
}

bool WeightLengthError(const convt::Problem& p, size_t length, ErrorInfo* err) {
  return Fail(err, ErrorClass::kRangeError, kErrDataLength,
              "w has " + S(int64_t(length)) + " elements but the problem needs Cin*(Cout/groups)*kH*kW = " +
                  S(p.Cin) + "*" + S(p.Cout / p.groups) + "*" + S(p.kH) + "*" + S(p.kW) + " = " +
                  S(convt::weight_elements(p)));
}

// problem: a Float64Array of 16 finite integers, then the core's own consistency check.
bool ParseProblem(napi_env env, napi_value v, convt::Problem* out, ErrorInfo* err) {
  Array pa;
  if (!GetTypedArray(env, v, &pa) || pa.type != napi_float64_array)
    return Fail(err, ErrorClass::kTypeError, kErrInvalidArgument,
                "problem must be a Float64Array of 16 integers, got " + Describe(env, v));
  if (pa.length != kProblemLength || pa.data == nullptr)
    return Fail(err, ErrorClass::kRangeError, kErrInvalidArgument,
                "problem must have 16 entries, got " + S(int64_t(pa.length)));
  int64_t f[kProblemLength];
  const double* pv = static_cast<const double*>(pa.data);
  for (size_t i = 0; i < kProblemLength; ++i) {
    const double d = pv[i];
    if (!(std::fabs(d) <= kMaxSafeInteger) || std::trunc(d) != d)  // also rejects NaN
      return Fail(err, ErrorClass::kRangeError, kErrInvalidArgument,
                  "problem[" + S(int64_t(i)) + "] (" + kProblemNames[i] + ") must be a safe integer, got " + Num(d));
    f[i] = static_cast<int64_t>(d);
  }
  *out = convt::Problem{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13], f[14], f[15]};
  const std::string why = convt::check(*out);
  if (!why.empty()) return Fail(err, ErrorClass::kRangeError, kErrInvalidArgument, "problem is inconsistent: " + why);
  return true;
}

// threads: an integer >= 1 (clamped); NaN, fractions and non-numbers are caller bugs.
bool ParseThreads(napi_env env, napi_value v, int* threads, ErrorInfo* err) {
  double t = 0;
  if (napi_get_value_double(env, v, &t) != napi_ok)
    return Fail(err, ErrorClass::kTypeError, kErrInvalidArgument, "threads must be an integer >= 1, got " + Describe(env, v));
  if (!(t >= 1) || !std::isfinite(t) || std::trunc(t) != t)
    return Fail(err, ErrorClass::kRangeError, kErrInvalidArgument, "threads must be an integer >= 1, got " + Num(t));
  *threads = t > kMaxThreads ? kMaxThreads : static_cast<int>(t);
  return true;
}

}  // namespace

bool ParseConvArgs(napi_env env, napi_callback_info info, ConvArgs* args, ErrorInfo* err) {
  size_t argc = kConvArgCount + 1;
  napi_value argv[kConvArgCount + 1];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok)
    return Fail(err, ErrorClass::kError, kErrInternal, "cannot read the call's arguments");
  if (argc != kConvArgCount && argc != kConvArgCount + 1)
    return Fail(err, ErrorClass::kTypeError, kErrInvalidArgument,
                "expected 6 or 7 arguments (problem, x, w, bias, out, threads[, weightCache]), got " + S(int64_t(argc)));
  WeightCache* cache = nullptr;
  if (argc > kConvArgCount && !IsNullish(env, argv[kConvArgCount]) && !UnwrapWeightCache(env, argv[kConvArgCount], &cache))
    return Fail(err, ErrorClass::kTypeError, kErrInvalidArgument,
                "weightCache must be a createWeightCache() object or null, got " + Describe(env, argv[kConvArgCount]));

  if (!ParseProblem(env, argv[0], &args->problem, err)) return false;
  const convt::Problem& p = args->problem;

  // x fixes the element type; w, bias and out must share it.
  Array xa, wa, ba, oa;
  if (!GetTypedArray(env, argv[1], &xa) || !IsFloat(xa.type))
    return Fail(err, ErrorClass::kTypeError, kErrInvalidArgument,
                "x must be a Float32Array or Float64Array, got " + Describe(env, argv[1]));
  args->dtype = xa.type == napi_float32_array ? DType::kFloat32 : DType::kFloat64;
  const napi_typedarray_type want = xa.type;
  if (!GetTypedArray(env, argv[2], &wa) || !IsFloat(wa.type))
    return Fail(err, ErrorClass::kTypeError, kErrInvalidArgument,
                "w must be a Float32Array or Float64Array, got " + Describe(env, argv[2]));
  if (wa.type != want)
    return Fail(err, ErrorClass::kTypeError, kErrDtype,
                std::string("w is a ") + TypedArrayName(wa.type) + " but x is a " + DTypeName(args->dtype) +
                    " (x, w, bias and out must share one element type)");
  const Opt bias_kind = GetOptionalFloatArray(env, argv[3], &ba);
  if (bias_kind == Opt::kWrongType)
    return Fail(err, ErrorClass::kTypeError, kErrInvalidArgument,
                "bias must be a Float32Array, Float64Array or null, got " + Describe(env, argv[3]));
  if (bias_kind == Opt::kPresent && ba.type != want)
    return Fail(err, ErrorClass::kTypeError, kErrDtype,
                std::string("bias is a ") + TypedArrayName(ba.type) + " but x is a " + DTypeName(args->dtype) +
                    " (x, w, bias and out must share one element type)");
  const Opt out_kind = GetOptionalFloatArray(env, argv[4], &oa);
  if (out_kind == Opt::kWrongType)
    return Fail(err, ErrorClass::kTypeError, kErrOut,
                "out must be a Float32Array, Float64Array or null, got " + Describe(env, argv[4]));
  if (out_kind == Opt::kPresent && oa.type != want)
    return Fail(err, ErrorClass::kTypeError, kErrOut,
                std::string("out is a ") + TypedArrayName(oa.type) + " but x is a " + DTypeName(args->dtype) +
                    " (out must have the inputs' element type)");

  if (!ParseThreads(env, argv[5], &args->threads, err)) return false;

  // Lengths: check() guarantees these products fit (<= 2^53), so no overflow here.
  const uint64_t x_need = uint64_t(convt::input_elements(p));
  const uint64_t y_need = uint64_t(convt::output_elements(p));
  if (xa.length != x_need)
    return Fail(err, ErrorClass::kRangeError, kErrDataLength,
                "x has " + S(int64_t(xa.length)) + " elements but the problem needs N*Cin*H*W = " + S(p.N) + "*" +
                    S(p.Cin) + "*" + S(p.H) + "*" + S(p.W) + " = " + S(int64_t(x_need)));
  if (wa.length != uint64_t(convt::weight_elements(p))) return WeightLengthError(p, wa.length, err);
  if (bias_kind == Opt::kPresent && ba.length != uint64_t(p.Cout))
    return Fail(err, ErrorClass::kRangeError, kErrDataLength,
                "bias has " + S(int64_t(ba.length)) + " elements but Cout = " + S(p.Cout));
  if (out_kind == Opt::kPresent && oa.length != y_need)
    return Fail(err, ErrorClass::kRangeError, kErrOut,
                "out has " + S(int64_t(oa.length)) + " elements but the problem needs N*Cout*Hout*Wout = " +
                    S(p.N) + "*" + S(p.Cout) + "*" + S(p.Hout) + "*" + S(p.Wout) + " = " + S(int64_t(y_need)));

  const size_t es = ElementSize(args->dtype);
  args->x = xa.data;
  args->w = wa.data;
  args->bias = bias_kind == Opt::kPresent ? ba.data : nullptr;
  args->out = out_kind == Opt::kPresent ? oa.data : nullptr;
  args->out_value = out_kind == Opt::kPresent ? argv[4] : nullptr;
  args->x_len = xa.length;
  args->w_len = wa.length;
  args->out_len = size_t(y_need);

  // The kernels read inputs while writing out: shared memory would give garbage (PyTorch refuses it too).
  if (args->out != nullptr) {
    const size_t ob = args->out_len * es;
    const char* what = Overlaps(args->out, ob, args->x, args->x_len * es)   ? "x"
                       : Overlaps(args->out, ob, args->w, args->w_len * es) ? "w"
                       : Overlaps(args->out, ob, args->bias, size_t(p.Cout) * es) ? "bias"
                                                                                   : nullptr;
    if (what != nullptr)
      return Fail(err, ErrorClass::kRangeError, kErrOut,
                  std::string("out shares memory with ") + what + " (out must not overlap x, w or bias)");
  }
  // Last, once every check passed: the cache packs (or finds) the weights, where packing saves work.
  if (cache != nullptr && args->out_len > 0 && convt::packing_saves_work(p))
    args->packed = PackedFromCache(env, cache, p, args->dtype, args->w, args->w_len, args->threads);
  return true;
}

void RunConv(const convt::Problem& p, DType t, const void* x, const void* w, const convt::PackedWeights* packed,
             const void* bias, void* y, int threads, const std::atomic<bool>* cancel, bool cold_output) {
  if (packed != nullptr) {
    const std::string why =
        t == DType::kFloat32
            ? convt::conv_transpose2d_packed(p, static_cast<const float*>(x), *packed, static_cast<const float*>(bias),
                                             static_cast<float*>(y), threads, cancel, cold_output)
            : convt::conv_transpose2d_packed(p, static_cast<const double*>(x), *packed,
                                             static_cast<const double*>(bias), static_cast<double*>(y), threads, cancel,
                                             cold_output);
    if (!why.empty()) throw std::logic_error("packed weights: " + why);  // ParseConvArgs checked this already
    return;
  }
  if (t == DType::kFloat32)
    convt::conv_transpose2d(p, static_cast<const float*>(x), static_cast<const float*>(w),
                            static_cast<const float*>(bias), static_cast<float*>(y), threads, cancel, cold_output);
  else
    convt::conv_transpose2d(p, static_cast<const double*>(x), static_cast<const double*>(w),
                            static_cast<const double*>(bias), static_cast<double*>(y), threads, cancel, cold_output);
}

}  // namespace convt_binding
