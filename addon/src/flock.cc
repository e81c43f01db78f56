// flock(2) for the IPAM store: an exclusive lock on a file in the store's
// directory serializes allocations across processes, as host-local's does.
// Locks belong to the open file description, so two opens of the same file in
// one process exclude each other too.
#include <sys/file.h>

#include <cerrno>
#include <string>

#include "errors.h"

namespace ferry {

namespace {

std::string Label(const Napi::CallbackInfo& info, size_t i, int fd) {
  if (info.Length() > i && info[i].IsString()) return info[i].As<Napi::String>();
  return "fd " + std::to_string(fd);
}

int FdArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "flock: fd must be a number");
  return info[0].As<Napi::Number>().Int32Value();
}

// Waiting for the lock can take as long as another process holds it, so it
// blocks a libuv pool thread, never the main thread.
class FlockWorker : public PromiseWorker {
 public:
  FlockWorker(Napi::Env env, int fd, bool exclusive, std::string label)
      : PromiseWorker(env), fd_(fd), exclusive_(exclusive), label_(std::move(label)) {}

  void Execute() override {
    // A signal delivered to this thread interrupts the wait; wait again.
    while (flock(fd_, exclusive_ ? LOCK_EX : LOCK_SH) < 0) {
      if (errno != EINTR) return Fail(Failure::Of(errno, exclusive_ ? "flock(LOCK_EX)" : "flock(LOCK_SH)", label_));
    }
  }

 private:
  int fd_;
  bool exclusive_;
  std::string label_;
};

// flock(fd, exclusive, label?) -> Promise<void>, resolved once the lock is held.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  int fd = FdArg(info);
  bool exclusive = info.Length() > 1 && info[1].ToBoolean().Value();
  auto* worker = new FlockWorker(info.Env(), fd, exclusive, Label(info, 2, fd));
  worker->Queue();
  return worker->Promise();
}

// tryFlock(fd, exclusive, label?) -> boolean: LOCK_NB, so it never waits and
// runs synchronously; false when another open file description holds it.
Napi::Value TryFlock(const Napi::CallbackInfo& info) {
  int fd = FdArg(info);
  bool exclusive = info.Length() > 1 && info[1].ToBoolean().Value();
  while (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(info.Env(), false);
    if (errno != EINTR) ThrowErrno(info.Env(), exclusive ? "flock(LOCK_EX|LOCK_NB)" : "flock(LOCK_SH|LOCK_NB)", Label(info, 2, fd));
  }
  return Napi::Boolean::New(info.Env(), true);
}

// funlock(fd, label?): LOCK_UN never waits, so it runs synchronously.
Napi::Value Funlock(const Napi::CallbackInfo& info) {
  int fd = FdArg(info);
  while (flock(fd, LOCK_UN) < 0) {
    if (errno != EINTR) ThrowErrno(info.Env(), "flock(LOCK_UN)", Label(info, 1, fd));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitFlock(Napi::Env env, Napi::Object exports) {
  exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
  exports.Set("tryFlock", Napi::Function::New(env, TryFlock, "tryFlock"));
  exports.Set("funlock", Napi::Function::New(env, Funlock, "funlock"));
}

}  // namespace ferry
