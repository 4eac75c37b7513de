// Coded JS errors for the binding. Raw Node-API on purpose: node-addon-api's Error helpers abort the
// process (NAPI_FATAL_IF_FAILED) when they cannot allocate, e.g. while a worker's env is being torn down.
#pragma once

#include <node_api.h>

#include <string>

namespace convt_binding {

// Stable codes; lib/ maps them to ConvTransposeError.
inline constexpr const char kErrInvalidArgument[] = "ERR_CONV_TRANSPOSE_INVALID_ARGUMENT";  // types, counts, values
inline constexpr const char kErrDataLength[] = "ERR_CONV_TRANSPOSE_DATA_LENGTH";  // array length vs problem
inline constexpr const char kErrDtype[] = "ERR_CONV_TRANSPOSE_DTYPE";                // mixed element types
inline constexpr const char kErrOut[] = "ERR_CONV_TRANSPOSE_OUT";                    // unusable `out`
inline constexpr const char kErrInternal[] = "ERR_CONV_TRANSPOSE_INTERNAL";          // out of memory, bugs

enum class ErrorClass { kError, kTypeError, kRangeError };

// What went wrong, as plain data: built off the JS thread too (async Execute), turned into a JS value later.
struct ErrorInfo {
  ErrorClass cls = ErrorClass::kError;
  const char* code = kErrInternal;
  std::string message;
};

// A new Error/TypeError/RangeError with its `code` property set; nullptr if the env cannot make one.
inline napi_value MakeError(napi_env env, const ErrorInfo& e) {
  napi_value code = nullptr, msg = nullptr, err = nullptr;
  if (napi_create_string_utf8(env, e.code, NAPI_AUTO_LENGTH, &code) != napi_ok) return nullptr;
  if (napi_create_string_utf8(env, e.message.data(), e.message.size(), &msg) != napi_ok) return nullptr;
  napi_status s;
  switch (e.cls) {
    case ErrorClass::kTypeError: s = napi_create_type_error(env, code, msg, &err); break;
    case ErrorClass::kRangeError: s = napi_create_range_error(env, code, msg, &err); break;
    default: s = napi_create_error(env, code, msg, &err); break;
  }
  return s == napi_ok ? err : nullptr;
}

// Throws e unless an exception is already pending (or the env is terminating: then nothing can be thrown).
// Returns nullptr so a callback can `return Throw(...)`.
inline napi_value Throw(napi_env env, const ErrorInfo& e) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) {
    napi_value err = MakeError(env, e);
    if (err != nullptr) napi_throw(env, err);
  }
  return nullptr;
}

}  // namespace convt_binding
