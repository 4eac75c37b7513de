// conv-transpose native addon: registers the exports (see native/binding/ and binding.d.ts).
#include <napi.h>

#include "binding/exports.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) { return convt_binding::Init(env, exports); }
}  // namespace

NODE_API_MODULE(conv_transpose, Init)
