// Weight caches: a JS-held object keeping one set of weights packed for the kernels (convt::pack_weights)
// together with a byte copy of the weights they came from. A call given a cache compares its `w` with that
// copy: equal bytes reuse the packed weights (no packing), anything else packs `w` again into the cache.
// So a module's forward skips the packing, and a weight changed in place is still seen by the next call.
#pragma once

#include <node_api.h>

#include <memory>

#include "binding/args.h"
#include "core/conv_transpose.h"

namespace convt_binding {

// createWeightCache() -> an empty cache object.
napi_value CreateWeightCache(napi_env env, napi_callback_info info);

// True when v is a cache made by CreateWeightCache (fills *cache); false for anything else. Never throws.
struct WeightCache;
bool UnwrapWeightCache(napi_env env, napi_value v, WeightCache** cache);

// The packed form of w (w_len elements of dtype t) for problems like p, from the cache when it holds
// exactly these bytes for this weight geometry, else packed now (with up to `threads` threads) and kept.
// nullptr when memory for the cache cannot be had: the caller then computes from w unpacked. JS thread only.
std::shared_ptr<const convt::PackedWeights> PackedFromCache(napi_env env, WeightCache* cache, const convt::Problem& p,
                                                            DType t, const void* w, size_t w_len, int threads);

}  // namespace convt_binding
