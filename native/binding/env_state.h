// Per-env state (main thread and each worker_thread load the addon separately): kept in napi instance data,
// never in C++ statics, because it holds napi references.
#pragma once

#include <node_api.h>

#include <atomic>
#include <memory>

namespace convt_binding {

struct EnvState {
  // This env's ArrayBuffer constructor (see NewV8ArrayBuffer in result_buffer.cc).
  napi_ref array_buffer_ctor = nullptr;
  // Set by a process 'exit' listener: queued and running async calls of this env stop early (between
  // batch chunks) instead of holding up process.exit(). Shared with the jobs, which may outlive a look-up.
  std::shared_ptr<std::atomic<bool>> exiting = std::make_shared<std::atomic<bool>>(false);
};

// Creates this env's state and registers its process 'exit' listener. Call once per env, at load.
void InitEnvState(napi_env env);

// This env's state, or nullptr if InitEnvState failed.
EnvState* GetEnvState(napi_env env);

}  // namespace convt_binding
