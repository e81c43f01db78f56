#include "errors.h"

#include <cerrno>
#include <cstring>

namespace ferry {

Napi::Error MakeError(Napi::Env env, const Failure& f) {
  std::string message = f.syscall;
  if (!f.object.empty()) message += " " + f.object;
  message += ": ";
  message += strerror(f.err);
  // A short reason belongs in the message; long ones (verifier logs) stay in .detail.
  if (!f.detail.empty() && f.detail.size() < 200 && f.detail.find('\n') == std::string::npos) message += " (" + f.detail + ")";
  const char* name = strerrorname_np(f.err);
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  obj.Set("errno", Napi::Number::New(env, f.err));
  std::string code = name != nullptr ? name : "E";
  if (name == nullptr) code.append(std::to_string(f.err));
  obj.Set("code", Napi::String::New(env, code));
  obj.Set("syscall", Napi::String::New(env, f.syscall));
  if (!f.object.empty()) obj.Set("object", Napi::String::New(env, f.object));
  if (!f.detail.empty()) obj.Set("detail", Napi::String::New(env, f.detail));
  return error;
}

void Throw(Napi::Env env, const Failure& f) { throw MakeError(env, f); }

void ThrowErrno(Napi::Env env, const std::string& syscall, const std::string& object) {
  Throw(env, Failure::Of(errno, syscall, object));
}

int IntArg(const Napi::CallbackInfo& info, size_t i, int fallback) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return fallback;
  return info[i].As<Napi::Number>().Int32Value();
}

}  // namespace ferry
