// Where results (and the async path's input copies) live.
//
// Fresh memory costs milliseconds per MiB in page faults on small VMs, often more than the arithmetic of
// a large call, so large blocks come from a process-wide pool of recycled, already-touched blocks. A result
// handed to JS from the pool is an external ArrayBuffer whose finalizer gives the block back.
//
// Caveat that shapes the policy: Node runs external-buffer finalizers from the event loop (SetImmediate),
// not during GC, so a tight synchronous loop returns nothing to the pool and would grow without bound.
// Hence sync results are external only while the pooled bytes held by JS stay under a limit; past it they
// are ordinary V8 ArrayBuffers, which GC frees by itself. Small blocks never touch the pool.
#pragma once

#include <node_api.h>

#include <cstddef>

#include "binding/args.h"

namespace convt_binding {

// Blocks of at least this many bytes are pooled; below it V8/malloc are cheap enough.
inline constexpr size_t kMinPooledBytes = size_t{64} << 10;
// Default cap on idle pooled memory; CONV_TRANSPOSE_POOL_MB overrides it (0 turns the pool off).
// Sync results stop being pooled while JS holds more than the cap in pooled results.
inline constexpr size_t kDefaultPoolCapBytes = size_t{256} << 20;

// C++-owned memory: pooled when large, plain heap otherwise. Move-only; contents start unspecified.
// Safe to create and destroy on any thread.
class Block {
 public:
  Block() = default;
  explicit Block(size_t bytes);  // throws std::bad_alloc
  Block(Block&& o) noexcept : data_(o.data_), bytes_(o.bytes_), cls_(o.cls_) { o.Forget(); }
  Block& operator=(Block&& o) noexcept;
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  ~Block() { Reset(); }

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  void Reset();  // gives the memory back (to the pool when pooled)

 private:
  friend napi_status AdoptAsTypedArray(napi_env, DType, size_t, Block*, napi_value*);
  void Forget() { data_ = nullptr; bytes_ = 0; cls_ = -1; }
  void* data_ = nullptr;
  size_t bytes_ = 0;  // as requested; the pooled capacity may be larger
  int cls_ = -1;      // pool size class; -1: plain heap
};

// The one place sync results are allocated: a new Float32Array/Float64Array of n elements. *data receives
// its memory (nullptr when n == 0), *pooled whether it is a pool block (recycled memory, likely not in cache).
// Returns napi_ok, or a failure with no JS exception pending when memory is exhausted (napi_generic_failure) or
// the env is unusable. Throws std::bad_alloc.
napi_status NewResultArray(napi_env env, DType t, size_t n, napi_value* result, void** data, bool* pooled);

// Hands a block holding n elements to JS as a typed array: zero copy through an external ArrayBuffer when
// the block is pooled and Node allows it, else copied into a V8 buffer. On success *block is empty; on
// failure it still owns its memory. Failure statuses as NewResultArray's.
napi_status AdoptAsTypedArray(napi_env env, DType t, size_t n, Block* block, napi_value* result);

// Creates the process-wide pool (idempotent); call at load. Large V8 allocations use EnvState (env_state.h).
void InitResultBuffers();

}  // namespace convt_binding
