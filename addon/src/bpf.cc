#include <napi.h>
namespace ferry {
void InitBpf(Napi::Env env, Napi::Object exports) {}
}
