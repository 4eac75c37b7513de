// The block pool behind result_buffer.h.
//
// Size classes: 4 per power of two (at most 25% slack), from 64 KiB to 1 TiB. Idle blocks wait in per-class
// LIFO stacks (the most recently used block is the warmest); idle memory is capped and the least recently
// released blocks are freed first when a release would exceed the cap. A block is in exactly one place at a
// time: owned by one Block / one JS ArrayBuffer, or idle in a stack, so two live results never share memory.
// Per-process and mutex-protected: finalizers run on each env's thread (main and workers), Execute() on
// libuv threads. The pool holds no napi values and is never destroyed (finalizers may run during teardown).
#include "binding/result_buffer.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "binding/env_state.h"
#include "core/large_alloc.h"

namespace convt_binding {
namespace {

constexpr int kMinLog2 = 16;            // kMinPooledBytes
constexpr int kMaxLog2 = 40;
constexpr int kNumClasses = (kMaxLog2 - kMinLog2) * 4 + 1;
static_assert(kMinPooledBytes == size_t{1} << kMinLog2, "pool classes start at kMinPooledBytes");

int FloorLog2(uint64_t v) {
  int k = 0;
  while (v >>= 1) ++k;
  return k;
}

// Class of a request of n >= kMinPooledBytes bytes, or -1 when too large to pool.
int ClassOf(size_t n) {
  if (n > (size_t{1} << kMaxLog2)) return -1;
  const int k = FloorLog2(n);
  const size_t step = size_t{1} << (k - 2);  // a quarter of 2^k
  const size_t m = (n + step - 1) / step;    // 4..8
  return (k - kMinLog2) * 4 + int(m - 4);
}

size_t ClassBytes(int cls) { return (size_t{1} << (kMinLog2 + cls / 4 - 2)) * size_t(4 + cls % 4); }

// Blocks of 2 MiB and more are mapped for transparent huge pages (core/large_alloc.h): a large result that misses
// the pool (the first calls, before finalizers return blocks) then costs ~0.07 ms per MiB in page faults, not 3.
void* HeapAlloc(size_t bytes) {  // throws std::bad_alloc
  void* p = convt::alloc_large(bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void HeapFree(void* p, size_t bytes) { convt::free_large(p, bytes); }

class Pool {
 public:
  explicit Pool(size_t cap) : cap_(cap) {}

  size_t cap() const { return cap_; }

  // An idle block of class cls, or nullptr.
  void* Take(int cls) {
    std::lock_guard<std::mutex> lock(mu_);
    std::deque<Idle>& q = idle_[cls];
    if (q.empty()) return nullptr;
    void* p = q.back().p;
    q.pop_back();
    idle_bytes_ -= ClassBytes(cls);
    return p;
  }

  // Takes a block back: keeps it if the cap allows (evicting older idle blocks), else frees it.
  void Put(void* p, int cls) {
    const size_t size = ClassBytes(cls);
    if (size > cap_) return HeapFree(p, size);
    // (block, bytes) to free after unlocking: unmapping large blocks is slow
    std::vector<std::pair<void*, size_t>> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (idle_bytes_ + size > cap_) {
        int oldest = -1;
        for (int c = 0; c < kNumClasses; ++c)
          if (!idle_[c].empty() && (oldest < 0 || idle_[c].front().seq < idle_[oldest].front().seq)) oldest = c;
        evicted.emplace_back(idle_[oldest].front().p, ClassBytes(oldest));  // idle_bytes_ > 0: a class is non-empty
        idle_[oldest].pop_front();
        idle_bytes_ -= ClassBytes(oldest);
      }
      idle_[cls].push_back(Idle{p, ++seq_});
      idle_bytes_ += size;
    }
    for (const auto& e : evicted) HeapFree(e.first, e.second);
  }

  // Pooled bytes currently owned by JS ArrayBuffers (not yet finalized).
  std::atomic<size_t> in_js{0};

 private:
  struct Idle {
    void* p;
    uint64_t seq;  // release order, for least-recently-released eviction
  };
  std::mutex mu_;
  std::deque<Idle> idle_[kNumClasses];
  size_t idle_bytes_ = 0;
  const size_t cap_;
  uint64_t seq_ = 0;
};

// Intentionally leaked: finalizers may return blocks during process teardown, after static destructors.
Pool& GetPool() {
  static Pool* pool = [] {
    size_t cap = kDefaultPoolCapBytes;
    if (const char* s = std::getenv("CONV_TRANSPOSE_POOL_MB")) {
      char* end = nullptr;
      const unsigned long long mb = std::strtoull(s, &end, 10);
      if (end != s && *end == '\0' && mb < (1ull << 24)) cap = size_t(mb) << 20;
    }
    return new Pool(cap);
  }();
  return *pool;
}

// bytes: the block's size when it is not pooled (cls < 0)
void ReleaseMemory(void* p, int cls, size_t bytes) {
  if (p == nullptr) return;
  if (cls < 0)
    HeapFree(p, bytes);
  else
    GetPool().Put(p, cls);
}

// Ownership of a block handed to napi_create_external_arraybuffer. If the creation fails (e.g. a length above
// buffer.kMaxLength, 4 GiB in Node 20), Node still calls the finalizer: synchronously in Node 20, maybe later
// elsewhere. The Block then keeps the memory, and whichever of creator and finalizer comes last deletes this.
struct Ticket {
  enum State { kCreating, kSucceeded, kFailed, kFinalized };
  explicit Ticket(int c) : cls(c) {}
  const int cls;
  std::atomic<int> state{kCreating};
};

// Finalizer of external ArrayBuffers made from pooled blocks: plain C++, no JS (it may run at env teardown).
void FinalizeBlock(napi_env /*env*/, void* data, void* hint) {
  Ticket* t = static_cast<Ticket*>(hint);
  switch (t->state.exchange(Ticket::kFinalized)) {
    case Ticket::kSucceeded:  // the normal case: JS dropped the result
      GetPool().in_js.fetch_sub(ClassBytes(t->cls), std::memory_order_relaxed);
      ReleaseMemory(data, t->cls, 0);
      delete t;
      break;
    case Ticket::kFailed:  // creation failed earlier: the creator kept the memory and left us the ticket
      delete t;
      break;
    default:  // kCreating: failing right now; the creator deletes the ticket
      break;
  }
}

napi_typedarray_type ArrayType(DType t) { return t == DType::kFloat32 ? napi_float32_array : napi_float64_array; }

bool ExceptionPending(napi_env env) {
  bool pending = false;
  return napi_is_exception_pending(env, &pending) != napi_ok || pending;
}

// A V8-owned ArrayBuffer. Large ones go through the JS constructor: napi_create_arraybuffer (v8::ArrayBuffer::New)
// aborts the process when the allocation fails, the constructor throws a RangeError, which is cleared here.
napi_status NewV8ArrayBuffer(napi_env env, size_t bytes, void** data, napi_value* ab) {
  EnvState* st = bytes < kMinPooledBytes ? nullptr : GetEnvState(env);
  if (st == nullptr || st->array_buffer_ctor == nullptr) return napi_create_arraybuffer(env, bytes, data, ab);
  napi_value ctor, len;
  napi_status s = napi_get_reference_value(env, st->array_buffer_ctor, &ctor);
  if (s == napi_ok) s = napi_create_double(env, double(bytes), &len);
  if (s == napi_ok) s = napi_new_instance(env, ctor, 1, &len, ab);
  bool is_ab = false;
  if (s == napi_ok && napi_is_arraybuffer(env, *ab, &is_ab) == napi_ok && is_ab)
    return napi_get_arraybuffer_info(env, *ab, data, nullptr);
  napi_value ignored;
  if (ExceptionPending(env)) napi_get_and_clear_last_exception(env, &ignored);  // "allocation failed"
  return napi_generic_failure;
}

}  // namespace

void InitResultBuffers() { GetPool(); }  // reads CONV_TRANSPOSE_POOL_MB now, on the loading thread

Block::Block(size_t bytes) {
  if (bytes == 0) return;
  const int cls = bytes >= kMinPooledBytes ? ClassOf(bytes) : -1;
  void* p = nullptr;
  if (cls >= 0) {
    p = GetPool().Take(cls);
    if (p == nullptr) p = HeapAlloc(ClassBytes(cls));
  } else {
    p = HeapAlloc(bytes);
  }
  data_ = p;
  bytes_ = bytes;
  cls_ = cls;
}

Block& Block::operator=(Block&& o) noexcept {
  if (this != &o) {
    Reset();
    data_ = o.data_;
    bytes_ = o.bytes_;
    cls_ = o.cls_;
    o.Forget();
  }
  return *this;
}

void Block::Reset() {
  ReleaseMemory(data_, cls_, bytes_);
  Forget();
}

napi_status AdoptAsTypedArray(napi_env env, DType t, size_t n, Block* block, napi_value* result) {
  const size_t bytes = n * ElementSize(t);
  napi_value ab = nullptr;
  napi_status s = napi_generic_failure;
  if (bytes > 0 && block->cls_ >= 0) {
    Ticket* ticket = new (std::nothrow) Ticket(block->cls_);
    if (ticket != nullptr)
      s = napi_create_external_arraybuffer(env, block->data_, bytes, FinalizeBlock, ticket, &ab);
    if (s == napi_ok) {  // the finalizer owns the memory now
      ticket->state.store(Ticket::kSucceeded);
      GetPool().in_js.fetch_add(ClassBytes(block->cls_), std::memory_order_relaxed);
      block->Forget();
    } else if (ticket != nullptr) {
      if (ticket->state.exchange(Ticket::kFailed) == Ticket::kFinalized) delete ticket;
      napi_value ignored;
      if (ExceptionPending(env)) napi_get_and_clear_last_exception(env, &ignored);  // e.g. ERR_BUFFER_TOO_LARGE
    }
  }
  if (s != napi_ok) {
    // Small, empty, too large for a Buffer, or a runtime that forbids external buffers (Electron's V8
    // sandbox returns napi_no_external_buffers_allowed): copy into V8 memory.
    void* dst = nullptr;
    s = NewV8ArrayBuffer(env, bytes, &dst, &ab);
    if (s != napi_ok) return s;
    if (bytes > 0) std::memcpy(dst, block->data_, bytes);
    block->Reset();
  }
  return napi_create_typedarray(env, ArrayType(t), n, ab, 0, result);
}

napi_status NewResultArray(napi_env env, DType t, size_t n, napi_value* result, void** data, bool* pooled) {
  const size_t bytes = n * ElementSize(t);
  Pool& pool = GetPool();
  const int cls = bytes >= kMinPooledBytes ? ClassOf(bytes) : -1;
  void* block = nullptr;
  if (cls >= 0 && pool.in_js.load(std::memory_order_relaxed) + ClassBytes(cls) <= pool.cap()) {
    Block b(bytes);  // recycled when possible
    block = b.data();
    napi_status s = AdoptAsTypedArray(env, t, n, &b, result);
    if (s != napi_ok) return s;
  } else {
    napi_value ab;
    void* p = nullptr;
    napi_status s = NewV8ArrayBuffer(env, bytes, &p, &ab);
    if (s == napi_ok) s = napi_create_typedarray(env, ArrayType(t), n, ab, 0, result);
    if (s != napi_ok) return s;
  }
  const napi_status s = napi_get_typedarray_info(env, *result, nullptr, nullptr, data, nullptr, nullptr);
  *pooled = s == napi_ok && block != nullptr && *data == block;  // adopted, not copied into a V8 buffer
  return s;
}

}  // namespace convt_binding
