// Errors that cross from C++ into JavaScript keep the kernel's errno, its
// symbolic code, the failing syscall and the object it was applied to, the way
// Node's own fs errors do (but with a positive errno, as the kernel returns it).
#pragma once

#include <napi.h>

#include <string>

namespace ferry {

// What failed, captured off the main thread where no JS object may be made.
struct Failure {
  int err = 0;            // errno; 0 means success
  std::string syscall;    // "setns", "bpf_object__load", ...
  std::string object;     // the namespace path, map name, interface ...
  std::string detail;     // extra text such as a verifier log

  bool ok() const { return err == 0; }
  static Failure Ok() { return {}; }
  static Failure Of(int err, std::string syscall, std::string object, std::string detail = "") {
    return Failure{err, std::move(syscall), std::move(object), std::move(detail)};
  }
};

// Builds `Error("<syscall> <object>: <strerror>")` with errno, code, syscall,
// object (and detail when set) properties.
Napi::Error MakeError(Napi::Env env, const Failure& f);

// Throws a JS error for the current errno (call right after the failed syscall).
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& syscall, const std::string& object);
[[noreturn]] void Throw(Napi::Env env, const Failure& f);

// An AsyncWorker that settles a Promise: Execute() fills `failure_` or the
// subclass's result; OnOK resolves with Result(), OnError rejects with the
// errno-carrying error.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "ferry"), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // Called by Execute(): records the failure and routes completion to OnError.
  void Fail(const Failure& f) {
    failure_ = f;
    SetError(f.syscall);
  }
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

 private:
  void OnOK() override { deferred_.Resolve(Result(Env())); }
  void OnError(const Napi::Error&) override { deferred_.Reject(MakeError(Env(), failure_).Value()); }

  Napi::Promise::Deferred deferred_;
  Failure failure_;
};

// Reads an optional integer argument; `fallback` when absent/undefined.
int IntArg(const Napi::CallbackInfo& info, size_t i, int fallback);

}  // namespace ferry
