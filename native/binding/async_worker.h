// convTranspose2dAsync: the computation on a libuv thread, settled as a Promise.
#pragma once

#include <node_api.h>

namespace convt_binding {

// JS entry point (raw callback). Always returns a Promise: argument errors reject it rather than throw.
napi_value ConvTranspose2dAsync(napi_env env, napi_callback_info info);

}  // namespace convt_binding
