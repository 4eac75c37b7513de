// Async convolution on raw napi_async_work rather than Napi::AsyncWorker: node-addon-api's completion path
// opens scopes and builds errors through NAPI_FATAL_IF_FAILED, which aborts the process when a worker_thread
// is terminated mid-call. Here every Node-API status in the completion is checked and failures only leak.
//
// Copy rule: x, w (unless packed: immutable, so shared) and bias are copied in the JS entry (main thread) into C++ blocks, so the caller may
// mutate, transfer or drop them as soon as the call returns (a napi_ref does not stop a transfer/detach).
// The result is computed into a C++ block in Execute (no Node-API there). On completion, `out` (held by a
// napi_ref) is re-checked, since it may have been detached or resized meanwhile, then filled by memcpy;
// without `out`, the block itself becomes the result's external ArrayBuffer (zero copy).
//
// Early exit: Execute hands the core this env's 'exit' flag (env_state.h), which the core polls between its
// tasks (each at most a few milliseconds); once the process 'exit' listener fired, the call stops there and
// the promise rejects, so process.exit() does not wait for whole calls.
#include "binding/async_worker.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "binding/args.h"
#include "binding/env_state.h"
#include "binding/errors.h"
#include "binding/result_buffer.h"

namespace convt_binding {
namespace {

class ConvJob {
 public:
  // Copies the inputs; throws std::bad_alloc.
  ConvJob(const ConvArgs& a, std::shared_ptr<std::atomic<bool>> exiting)
      : problem_(a.problem),
        dtype_(a.dtype),
        threads_(a.threads),
        out_len_(a.out_len),
        exiting_(std::move(exiting)),
        packed_(a.packed) {
    const size_t es = ElementSize(a.dtype);
    if (out_len_ == 0) return;  // N == 0: nothing to read
    x_ = CopyOf(a.x, a.x_len * es);
    if (packed_ == nullptr) w_ = CopyOf(a.w, a.w_len * es);  // packed weights are immutable: shared, not copied
    if (a.bias != nullptr) bias_ = CopyOf(a.bias, size_t(a.problem.Cout) * es);
  }

  ~ConvJob() = default;  // blocks go back to the pool; napi handles were released by ReleaseHandles()

  // Queues the work. On failure returns false with *err set (nothing queued, the caller deletes the job).
  bool Start(napi_env env, napi_deferred deferred, napi_value out, ErrorInfo* err) {
    if (out != nullptr && napi_create_reference(env, out, 1, &out_ref_) != napi_ok)
      return Internal(err, "cannot reference out");
    napi_value name;
    if (napi_create_string_utf8(env, "convTranspose2dAsync", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_async_work(env, nullptr, name, Execute, Complete, this, &work_) != napi_ok) {
      ReleaseHandles(env);
      return Internal(err, "cannot create the async work");
    }
    if (napi_queue_async_work(env, work_) != napi_ok) {
      ReleaseHandles(env);
      return Internal(err, "cannot queue the async work");
    }
    deferred_ = deferred;  // settled by Complete from now on
    return true;
  }

 private:
  static Block CopyOf(const void* src, size_t bytes) {
    Block b(bytes);
    if (bytes > 0) std::memcpy(b.data(), src, bytes);
    return b;
  }

  static bool Internal(ErrorInfo* err, const char* what) {
    err->cls = ErrorClass::kError;
    err->code = kErrInternal;
    err->message = what;
    return false;
  }

  // libuv thread: no Node-API calls here.
  static void Execute(napi_env /*env*/, void* data) {
    ConvJob* job = static_cast<ConvJob*>(data);
    try {
      job->Compute();
    } catch (const convt::Cancelled&) {
      job->Fail("convTranspose2dAsync was cancelled: the process is exiting");
    } catch (const std::bad_alloc&) {
      job->Fail("out of memory while computing convTranspose2dAsync");
    } catch (const std::exception& e) {
      job->Fail("convTranspose2dAsync failed: ", e.what());
    } catch (...) {
      job->Fail("convTranspose2dAsync failed");
    }
    // Inputs are no longer needed: return their blocks to the pool now rather than on the JS thread.
    job->x_.Reset();
    job->w_.Reset();
    job->bias_.Reset();
  }

  void Compute() {
    if (out_len_ == 0) return;
    y_ = Block(out_len_ * ElementSize(dtype_));
    // A pooled block that becomes the result is written cold (see RunConv); one copied into `out` next is not.
    const bool cold = out_ref_ == nullptr && y_.bytes() >= kMinPooledBytes;
    RunConv(problem_, dtype_, x_.data(), w_.data(), packed_.get(), bias_.data(), y_.data(), threads_, exiting_.get(),
            cold);
  }

  void Fail(const char* message, const char* detail = "") noexcept {
    failed_ = true;
    error_.cls = ErrorClass::kError;
    error_.code = kErrInternal;
    try {  // may run right after a bad_alloc: never let a second one escape Execute
      error_.message = std::string(message) + detail;
    } catch (...) {
    }
  }

  // JS thread (Node opened a handle scope). Also runs when a worker is terminated after Execute: then most
  // calls fail, which is fine as long as nothing aborts.
  static void Complete(napi_env env, napi_status status, void* data) {
    std::unique_ptr<ConvJob> job(static_cast<ConvJob*>(data));
    try {
      job->Settle(env, status);
    } catch (...) {  // bad_alloc while building a message: C++ exceptions must not cross into Node
      job->Reject(env, ErrorInfo{ErrorClass::kError, kErrInternal, std::string()});
    }
    job->ReleaseHandles(env);
  }

  // Resolves or rejects the promise; may throw std::bad_alloc while building a message.
  void Settle(napi_env env, napi_status status) {
    if (status != napi_ok && !failed_)
      Fail(status == napi_cancelled ? "convTranspose2dAsync was cancelled" : "convTranspose2dAsync failed");
    if (failed_) {
      Reject(env, error_);
    } else if (out_ref_ != nullptr) {
      FillOut(env);
    } else {
      napi_value result = nullptr;
      if (AdoptAsTypedArray(env, dtype_, out_len_, &y_, &result) == napi_ok)
        napi_resolve_deferred(env, deferred_, result);
      else
        Reject(env, ErrorInfo{ErrorClass::kError, kErrInternal,
                              "cannot allocate the result (" + std::to_string(out_len_ * ElementSize(dtype_)) +
                                  " bytes): out of memory"});
    }
  }

  // `out` may have been detached, or its buffer resized, while Execute ran: check again before writing.
  void FillOut(napi_env env) {
    napi_value out = nullptr;
    napi_typedarray_type type;
    size_t length = 0;
    void* dst = nullptr;
    const napi_typedarray_type want = dtype_ == DType::kFloat32 ? napi_float32_array : napi_float64_array;
    if (napi_get_reference_value(env, out_ref_, &out) != napi_ok || out == nullptr ||
        napi_get_typedarray_info(env, out, &type, &length, &dst, nullptr, nullptr) != napi_ok) {
      return Reject(env, ErrorInfo{ErrorClass::kError, kErrInternal, "cannot read out"});
    }
    if (type != want || length != out_len_ || (out_len_ > 0 && dst == nullptr)) {
      return Reject(env, ErrorInfo{ErrorClass::kError, kErrOut,
                                   "out was detached or resized while convTranspose2dAsync ran (it has " +
                                       std::to_string(length) + " elements, " + std::to_string(out_len_) +
                                       " are needed); keep out untouched until the promise settles"});
    }
    if (out_len_ > 0) std::memcpy(dst, y_.data(), out_len_ * ElementSize(dtype_));
    napi_resolve_deferred(env, deferred_, out);
  }

  void Reject(napi_env env, const ErrorInfo& e) noexcept {
    napi_value err = MakeError(env, e);
    if (err == nullptr && napi_get_undefined(env, &err) != napi_ok) return;  // env is gone: nothing to settle
    napi_reject_deferred(env, deferred_, err);
  }

  void ReleaseHandles(napi_env env) {
    if (out_ref_ != nullptr) napi_delete_reference(env, out_ref_);
    if (work_ != nullptr) napi_delete_async_work(env, work_);
    out_ref_ = nullptr;
    work_ = nullptr;
  }

  const convt::Problem problem_;
  const DType dtype_;
  const int threads_;
  const size_t out_len_;
  const std::shared_ptr<std::atomic<bool>> exiting_;  // this env's process 'exit' flag (may be null)
  const std::shared_ptr<const convt::PackedWeights> packed_;  // instead of w_, from the call's weight cache
  Block x_, w_, bias_, y_;
  napi_ref out_ref_ = nullptr;
  napi_async_work work_ = nullptr;
  napi_deferred deferred_ = nullptr;
  bool failed_ = false;
  ErrorInfo error_;
};

void RejectNow(napi_env env, napi_deferred deferred, const ErrorInfo& e) {
  napi_value err = MakeError(env, e);
  if (err == nullptr) napi_get_undefined(env, &err);
  napi_reject_deferred(env, deferred, err);
}

}  // namespace

napi_value ConvTranspose2dAsync(napi_env env, napi_callback_info info) {
  napi_deferred deferred;
  napi_value promise;
  if (napi_create_promise(env, &deferred, &promise) != napi_ok) return nullptr;

  ConvArgs args;
  ErrorInfo err;
  if (!ParseConvArgs(env, info, &args, &err)) {
    RejectNow(env, deferred, err);
    return promise;
  }
  std::unique_ptr<ConvJob> job;
  try {
    EnvState* st = GetEnvState(env);
    job.reset(new ConvJob(args, st != nullptr ? st->exiting : nullptr));
  } catch (const std::bad_alloc&) {
    RejectNow(env, deferred, ErrorInfo{ErrorClass::kError, kErrInternal,
                                       "out of memory while copying the inputs of convTranspose2dAsync"});
    return promise;
  }
  if (!job->Start(env, deferred, args.out_value, &err)) {
    RejectNow(env, deferred, err);
    return promise;
  }
  job.release();  // owned by the queued work; deleted in Complete
  return promise;
}

}  // namespace convt_binding
