// BPF through libbpf: the entry point (InitBpf) and the helpers in bpf.h.
#include "bpf.h"

#include <bpf/libbpf.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace ferry {

namespace {

// libbpf has one process-wide print callback; the capture target is per
// thread, because loads and attaches run on worker threads concurrently.
thread_local std::string* tCapture = nullptr;
bool gDebug = false;

int Print(enum libbpf_print_level level, const char* format, va_list args) {
  if (gDebug) {
    va_list copy;
    va_copy(copy, args);
    vfprintf(stderr, format, copy);
    va_end(copy);
  }
  if (tCapture == nullptr || level == LIBBPF_DEBUG) return 0;
  char line[2048];
  int n = vsnprintf(line, sizeof line, format, args);
  if (n > 0) tCapture->append(line, std::min<size_t>(n, sizeof line - 1));
  return 0;
}

constexpr int kLibbpfErrnoStart = 4000;  // LIBBPF_ERRNO__START in libbpf.h

}  // namespace

LibbpfMessages::LibbpfMessages() : previous_(tCapture) { tCapture = &text_; }
LibbpfMessages::~LibbpfMessages() { tCapture = previous_; }

Failure LibbpfFailure(int ret, std::string call, std::string object, std::string detail) {
  int err = ret < 0 ? -ret : ret;
  if (err >= kLibbpfErrnoStart) {
    char text[256];
    libbpf_strerror(err, text, sizeof text);
    detail = detail.empty() ? std::string(text) : std::string(text) + "\n" + detail;
    err = EINVAL;
  }
  return Failure::Of(err, std::move(call), std::move(object), std::move(detail));
}

std::string ProgTypeName(unsigned type) {
  const char* name = libbpf_bpf_prog_type_str(static_cast<enum bpf_prog_type>(type));
  return name != nullptr ? name : "unknown(" + std::to_string(type) + ")";
}

std::string MapTypeName(unsigned type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(type));
  return name != nullptr ? name : "unknown(" + std::to_string(type) + ")";
}

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBuffer())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

int FdArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "fd must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

std::string StringArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) return "";
  return info[i].As<Napi::String>();
}

void InitBpf(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* debug = std::getenv("FERRY_LIBBPF_DEBUG");
    gDebug = debug != nullptr && *debug != '\0' && *debug != '0';
    libbpf_set_print(Print);
  });
  InitBpfObject(env, exports);
  InitBpfMap(env, exports);
  InitBpfPin(env, exports);
  InitBpfAttach(env, exports);
  InitBpfTestRun(env, exports);
}

}  // namespace ferry
