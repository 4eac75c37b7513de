// The addon's exports, exactly as binding.d.ts declares them.
#pragma once

#include <napi.h>

namespace convt_binding {

// Adds PROBLEM_LENGTH, convTranspose2d, convTranspose2dAsync, info and setIsa to exports. Runs once per
// env (main thread and each worker_thread); per-env state lives in instance data (env_state.h).
Napi::Object Init(Napi::Env env, Napi::Object exports);

}  // namespace convt_binding
