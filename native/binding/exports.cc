// Exported functions. The two compute entry points are raw napi_callbacks: their per-call cost matters
// (tiny problems), and raw statuses let them fail with a coded error instead of aborting.
#include "binding/exports.h"

#include <exception>
#include <new>
#include <string>
#include <thread>

#include "binding/args.h"
#include "binding/async_worker.h"
#include "binding/env_state.h"
#include "binding/errors.h"
#include "binding/packed.h"
#include "binding/result_buffer.h"
#include "core/conv_transpose.h"

namespace convt_binding {
namespace {

ErrorInfo Internal(std::string message) { return ErrorInfo{ErrorClass::kError, kErrInternal, std::move(message)}; }

// convTranspose2d(problem, x, w, bias, out, threads): computes on this thread (plus the core's pool).
napi_value ConvTranspose2dSync(napi_env env, napi_callback_info info) {
  try {
    ConvArgs a;
    ErrorInfo err;
    if (!ParseConvArgs(env, info, &a, &err)) return Throw(env, err);
    napi_value result = a.out_value;
    void* y = a.out;
    bool cold = false;  // a recycled pool block (a reused `out` is likely in cache)
    if (result == nullptr && NewResultArray(env, a.dtype, a.out_len, &result, &y, &cold) != napi_ok)
      return Throw(env, Internal("cannot allocate the result (" + std::to_string(a.out_len * ElementSize(a.dtype)) +
                                 " bytes): out of memory"));
    if (a.out_len > 0)  // N == 0: nothing to do
      RunConv(a.problem, a.dtype, a.x, a.w, a.packed.get(), a.bias, y, a.threads, nullptr, cold);
    return result;
  } catch (const std::bad_alloc&) {
    return Throw(env, Internal("out of memory in convTranspose2d"));
  } catch (const std::exception& e) {
    return Throw(env, Internal(std::string("convTranspose2d failed: ") + e.what()));
  } catch (...) {
    return Throw(env, Internal("convTranspose2d failed"));
  }
}

napi_value ConvTranspose2dAsyncEntry(napi_env env, napi_callback_info info) {
  try {
    return ConvTranspose2dAsync(env, info);
  } catch (...) {  // only bad_alloc is possible here; C++ exceptions must not cross into Node
    return Throw(env, Internal("out of memory in convTranspose2dAsync"));
  }
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const std::vector<std::string> isas = convt::available_isas();
    Napi::Array available = Napi::Array::New(env, isas.size());
    for (size_t i = 0; i < isas.size(); ++i) available.Set(uint32_t(i), isas[i]);
    Napi::Object o = Napi::Object::New(env);
    o.Set("isa", convt::active_isa());
    o.Set("isaAvailable", available);
    const unsigned hc = std::thread::hardware_concurrency();
    o.Set("hardwareConcurrency", double(hc > 0 ? hc : 1));  // 0 means "unknown"
    o.Set("napiVersion", double(NAPI_VERSION));
    return o;
  } catch (...) {
    Throw(env, Internal("info() failed"));
    return Napi::Value();
  }
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() != 1 || !info[0].IsString()) {
      Throw(env, ErrorInfo{ErrorClass::kTypeError, kErrInvalidArgument, "setIsa expects one string argument"});
      return Napi::Value();
    }
    const std::string isa = info[0].As<Napi::String>().Utf8Value();
    if (!convt::set_isa(isa)) {
      std::string list;
      for (const std::string& s : convt::available_isas()) list += (list.empty() ? "" : ", ") + s;
      Throw(env, ErrorInfo{ErrorClass::kRangeError, kErrInvalidArgument,
                           "setIsa: '" + isa + "' is not available on this CPU and build (available: " + list + ")"});
      return Napi::Value();
    }
    return env.Undefined();
  } catch (...) {
    Throw(env, Internal("setIsa() failed"));
    return Napi::Value();
  }
}

void SetRawFunction(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn) == napi_ok) exports.Set(name, fn);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitEnvState(env);
  InitResultBuffers();
  exports.Set("PROBLEM_LENGTH", Napi::Number::New(env, double(kProblemLength)));
  exports.Set("POOLED_RESULT_MIN_BYTES", Napi::Number::New(env, double(kMinPooledBytes)));
  SetRawFunction(env, exports, "convTranspose2d", ConvTranspose2dSync);
  SetRawFunction(env, exports, "convTranspose2dAsync", ConvTranspose2dAsyncEntry);
  SetRawFunction(env, exports, "createWeightCache", CreateWeightCache);
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  return exports;
}

}  // namespace convt_binding
