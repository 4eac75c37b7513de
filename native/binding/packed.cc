// Weight caches (see packed.h). The cache is a plain object wrapping a heap WeightCache and marked with a type
// tag, so no other object (even one wrapped by another addon) is mistaken for one. The packed data is
// immutable and shared: an async call takes its own reference, so a later repack (or the cache being
// collected) never changes what a running call reads.
#include "binding/packed.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "binding/errors.h"
#include "threading/thread_pool.h"

namespace convt_binding {

struct WeightCache {
  std::shared_ptr<const convt::PackedWeights> packed;
  std::vector<unsigned char> source;  // the bytes `packed` was made from
  DType dtype = DType::kFloat32;
  int64_t accounted = 0;  // bytes reported to V8 with napi_adjust_external_memory
};

namespace {

constexpr napi_type_tag kWeightCacheTag = {0x9c1f3a5be2d84c71ULL, 0x5a0e6b2d7c3f9184ULL};

void Finalize(napi_env env, void* data, void* /*hint*/) {
  WeightCache* c = static_cast<WeightCache*>(data);
  int64_t ignored = 0;
  if (c->accounted != 0) napi_adjust_external_memory(env, -c->accounted, &ignored);
  delete c;
}

// memcmp(a, b, bytes) == 0, over up to `threads` threads for large blocks: the check reads twice the weight's
// bytes, mostly from memory (the weights of a large layer leave the cache between calls).
bool SameBytes(const unsigned char* a, const unsigned char* b, size_t bytes, int threads) {
  constexpr size_t kChunk = size_t{1} << 20;
  const int64_t chunks = static_cast<int64_t>((bytes + kChunk - 1) / kChunk);
  if (chunks <= 1 || threads <= 1) return std::memcmp(a, b, bytes) == 0;
  std::atomic<bool> differ{false};
  convt::threading::parallel_for(chunks, threads, [&](int64_t c) {
    const size_t off = size_t(c) * kChunk;
    if (!differ.load(std::memory_order_relaxed) && std::memcmp(a + off, b + off, std::min(kChunk, bytes - off)) != 0)
      differ.store(true, std::memory_order_relaxed);
  });
  return !differ.load();
}

}  // namespace

napi_value CreateWeightCache(napi_env env, napi_callback_info /*info*/) {
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok)
    return Throw(env, ErrorInfo{ErrorClass::kError, kErrInternal, "cannot create a weight cache"});
  WeightCache* cache = new (std::nothrow) WeightCache();
  if (cache == nullptr) return Throw(env, ErrorInfo{ErrorClass::kError, kErrInternal, "out of memory"});
  if (napi_wrap(env, obj, cache, Finalize, nullptr, nullptr) != napi_ok) {
    delete cache;
    return Throw(env, ErrorInfo{ErrorClass::kError, kErrInternal, "cannot wrap a weight cache"});
  }
  if (napi_type_tag_object(env, obj, &kWeightCacheTag) != napi_ok)
    return Throw(env, ErrorInfo{ErrorClass::kError, kErrInternal, "cannot tag a weight cache"});
  return obj;
}

bool UnwrapWeightCache(napi_env env, napi_value v, WeightCache** cache) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_object) return false;
  bool tagged = false;
  if (napi_check_object_type_tag(env, v, &kWeightCacheTag, &tagged) != napi_ok || !tagged) return false;
  void* data = nullptr;
  if (napi_unwrap(env, v, &data) != napi_ok || data == nullptr) return false;
  *cache = static_cast<WeightCache*>(data);
  return true;
}

std::shared_ptr<const convt::PackedWeights> PackedFromCache(napi_env env, WeightCache* cache, const convt::Problem& p,
                                                            DType t, const void* w, size_t w_len, int threads) {
  const size_t bytes = w_len * ElementSize(t);
  if (cache->packed != nullptr && cache->dtype == t && cache->source.size() == bytes &&
      convt::check_packed(p, *cache->packed, t == DType::kFloat64).empty() &&
      SameBytes(cache->source.data(), static_cast<const unsigned char*>(w), bytes, threads))
    return cache->packed;
  try {
    cache->packed.reset();  // free the old data before allocating the new
    cache->source.assign(static_cast<const unsigned char*>(w), static_cast<const unsigned char*>(w) + bytes);
    cache->packed = t == DType::kFloat32 ? convt::pack_weights(p, static_cast<const float*>(w), threads)
                                         : convt::pack_weights(p, static_cast<const double*>(w), threads);
    cache->dtype = t;
  } catch (const std::bad_alloc&) {
    cache->packed.reset();
  }
  if (cache->packed == nullptr) std::vector<unsigned char>().swap(cache->source);
  // Tell V8 what the cache holds, so that dropping many caches (modules) triggers collections.
  const int64_t held = cache->packed == nullptr ? 0 : cache->packed->bytes() + int64_t(cache->source.size());
  int64_t ignored = 0;
  if (held != cache->accounted && napi_adjust_external_memory(env, held - cache->accounted, &ignored) == napi_ok)
    cache->accounted = held;
  return cache->packed;
}

}  // namespace convt_binding
