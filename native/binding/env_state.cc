// Per-env state and the process 'exit' hook.
//
// Why an 'exit' listener: on process.exit() Node joins the libuv threads, so it waits for every queued and
// running async call, and no env cleanup hook runs before that wait (napi_add_env_cleanup_hook fires only
// after all async work completed, and not at all on process.exit). The JS 'exit' event is the one signal that
// comes first. worker.terminate() runs no JS, so a terminated worker still waits for its running calls.
#include "binding/env_state.h"

namespace convt_binding {
namespace {

void FinalizeEnvState(napi_env env, void* data, void* /*hint*/) {
  EnvState* st = static_cast<EnvState*>(data);
  if (st->array_buffer_ctor != nullptr) napi_delete_reference(env, st->array_buffer_ctor);
  delete st;
}

napi_value OnProcessExit(napi_env env, napi_callback_info /*info*/) {
  if (EnvState* st = GetEnvState(env)) st->exiting->store(true, std::memory_order_relaxed);
  return nullptr;
}

// process.on('exit', OnProcessExit); best effort: an embedder without `process` just loses early cancel.
void ListenForExit(napi_env env, napi_value global) {
  napi_value process, on, args[2], ignored;
  if (napi_get_named_property(env, global, "process", &process) == napi_ok &&
      napi_get_named_property(env, process, "on", &on) == napi_ok &&
      napi_create_string_utf8(env, "exit", NAPI_AUTO_LENGTH, &args[0]) == napi_ok &&
      napi_create_function(env, "convTransposeCancelOnExit", NAPI_AUTO_LENGTH, OnProcessExit, nullptr, &args[1]) ==
          napi_ok &&
      napi_call_function(env, process, on, 2, args, &ignored) == napi_ok)
    return;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
}

}  // namespace

void InitEnvState(napi_env env) {
  EnvState* st = new EnvState();
  if (napi_set_instance_data(env, st, FinalizeEnvState, nullptr) != napi_ok) {
    delete st;
    return;
  }
  napi_value global, ctor;
  if (napi_get_global(env, &global) != napi_ok) return;
  if (napi_get_named_property(env, global, "ArrayBuffer", &ctor) == napi_ok)
    napi_create_reference(env, ctor, 1, &st->array_buffer_ctor);
  ListenForExit(env, global);
}

EnvState* GetEnvState(napi_env env) {
  void* data = nullptr;
  return napi_get_instance_data(env, &data) == napi_ok ? static_cast<EnvState*>(data) : nullptr;
}

}  // namespace convt_binding
