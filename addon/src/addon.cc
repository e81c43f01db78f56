// ferry's native addon: only what JavaScript cannot do — namespaces, netlink
// sockets bound to a namespace, BPF through libbpf, and flock(2). Policy,
// wire formats and data modelling live in TypeScript (engine/).
#include <napi.h>

#include "errors.h"
#include "netns.h"

namespace ferry {
void InitNetlink(Napi::Env env, Napi::Object exports);
void InitBpf(Napi::Env env, Napi::Object exports);
void InitFlock(Napi::Env env, Napi::Object exports);
}  // namespace ferry

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ferry::InitNetns(env, exports);
  ferry::InitNetlink(env, exports);
  ferry::InitBpf(env, exports);
  ferry::InitFlock(env, exports);
  return exports;
}

NODE_API_MODULE(ferry, Init)
