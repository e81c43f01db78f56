#include "netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace ferry {

namespace {

constexpr const char* kNetnsRunDir = "/var/run/netns";

Failure JoinNetns(int nsFd, const std::string& nsName) {
  if (nsFd < 0) return Failure::Ok();
  if (setns(nsFd, CLONE_NEWNET) < 0) return Failure::Of(errno, "setns", nsName);
  return Failure::Ok();
}

// Makes /var/run/netns a shared mount point, as iproute2 does, so that a
// namespace bind-mounted there is visible to every mount namespace that
// later looks (containerd, `ip netns`).
Failure PrepareRunDir() {
  if (mkdir(kNetnsRunDir, 0755) < 0 && errno != EEXIST) return Failure::Of(errno, "mkdir", kNetnsRunDir);
  if (mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) == 0) return Failure::Ok();
  if (errno != EINVAL) return Failure::Of(errno, "mount", kNetnsRunDir);
  // Not yet a mount point: bind it onto itself first.
  if (mount(kNetnsRunDir, kNetnsRunDir, "none", MS_BIND | MS_REC, nullptr) < 0)
    return Failure::Of(errno, "mount", kNetnsRunDir);
  if (mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) < 0) return Failure::Of(errno, "mount", kNetnsRunDir);
  return Failure::Ok();
}

class CreateWorker : public PromiseWorker {
 public:
  CreateWorker(Napi::Env env, std::string name) : PromiseWorker(env), name_(std::move(name)) {}

  void Execute() override {
    path_ = std::string(kNetnsRunDir) + "/" + name_;
    Failure f = PrepareRunDir();
    if (!f.ok()) return Fail(f);
    int fd = open(path_.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) return Fail(Failure::Of(errno, "open", path_));
    close(fd);
    Failure made;
    std::thread([&] {
      if (unshare(CLONE_NEWNET) < 0) {
        made = Failure::Of(errno, "unshare", path_);
        return;
      }
      if (mount("/proc/thread-self/ns/net", path_.c_str(), "none", MS_BIND, nullptr) < 0)
        made = Failure::Of(errno, "mount", path_);
    }).join();
    if (!made.ok()) {
      unlink(path_.c_str());  // nothing half-created
      return Fail(made);
    }
  }

  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, path_); }

 private:
  std::string name_;
  std::string path_;
};

// netnsCreate(name) -> Promise<path>; like `ip netns add NAME`.
Napi::Value Create(const Napi::CallbackInfo& info) {
  auto* worker = new CreateWorker(info.Env(), info[0].As<Napi::String>());
  worker->Queue();
  return worker->Promise();
}

// netnsDelete(path); like `ip netns delete NAME`. Throws ENOENT when absent.
Napi::Value Delete(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  if (umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL) ThrowErrno(info.Env(), "umount2", path);
  if (unlink(path.c_str()) < 0) ThrowErrno(info.Env(), "unlink", path);
  return info.Env().Undefined();
}

// netnsOpen(path) -> fd, after checking that the path really is a network
// namespace (NS_GET_NSTYPE), so a wrong path fails here and names itself.
Napi::Value Open(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowErrno(info.Env(), "open", path);
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type < 0) {
    int err = errno == ENOTTY ? EINVAL : errno;  // ENOTTY: a plain file, not an nsfs inode
    close(fd);
    Throw(info.Env(), Failure::Of(err, "ioctl(NS_GET_NSTYPE)", path, "not a network namespace"));
  }
  if (type != CLONE_NEWNET) {
    close(fd);
    Throw(info.Env(), Failure::Of(EINVAL, "ioctl(NS_GET_NSTYPE)", path, "not a network namespace"));
  }
  return Napi::Number::New(info.Env(), fd);
}

// closeFd(fd): closes a descriptor handed out by this addon.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) < 0) ThrowErrno(info.Env(), "close", "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

// Writes or reads a sysctl under /proc/sys/net, which the kernel resolves
// against the namespace of the thread that opens it.
class SysctlWorker : public PromiseWorker {
 public:
  SysctlWorker(Napi::Env env, int nsFd, std::string nsName, std::string path, std::optional<std::string> value)
      : PromiseWorker(env), nsFd_(nsFd), nsName_(std::move(nsName)), path_(std::move(path)), value_(std::move(value)) {}

  void Execute() override {
    Failure f = RunInNetns(nsFd_, nsName_, [this]() -> Failure {
      int fd = open(path_.c_str(), (value_ ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
      if (fd < 0) return Failure::Of(errno, "open", path_ + " in " + nsName_);
      Failure r;
      if (value_) {
        if (write(fd, value_->data(), value_->size()) < 0) r = Failure::Of(errno, "write", path_ + " in " + nsName_);
      } else {
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) r = Failure::Of(errno, "read", path_ + " in " + nsName_);
        else read_.assign(buf, n);
      }
      close(fd);
      return r;
    });
    if (!f.ok()) Fail(f);
  }

  Napi::Value Result(Napi::Env env) override {
    if (value_) return env.Undefined();
    return Napi::String::New(env, read_);
  }

 private:
  int nsFd_;
  std::string nsName_;
  std::string path_;
  std::optional<std::string> value_;
  std::string read_;
};

constexpr std::string_view kSysctlNetPrefix = "/proc/sys/net/";

// sysctl(nsFd, nsName, path, value?) -> Promise<string|undefined>
Napi::Value Sysctl(const Napi::CallbackInfo& info) {
  int nsFd = info[0].As<Napi::Number>().Int32Value();
  std::string nsName = info[1].As<Napi::String>();
  std::string path = info[2].As<Napi::String>();
  if (!path.starts_with(kSysctlNetPrefix) || path.find("..") != std::string::npos)
    Throw(info.Env(), Failure::Of(EINVAL, "sysctl", path, "only per-namespace keys under /proc/sys/net"));
  std::optional<std::string> value;
  if (info.Length() > 3 && info[3].IsString()) value = info[3].As<Napi::String>().Utf8Value();
  auto* worker = new SysctlWorker(info.Env(), nsFd, nsName, path, value);
  worker->Queue();
  return worker->Promise();
}

// enterNetnsOnThisThread(nsFd, nsName): for a worker_thread dedicated to
// in-namespace sockets (the probe worker). Refused on the main thread, which
// must never change namespace; libuv pool threads never run JS, so a worker's
// own thread is the only other caller.
Napi::Value EnterOnThisThread(const Napi::CallbackInfo& info) {
  int nsFd = info[0].As<Napi::Number>().Int32Value();
  std::string nsName = info[1].As<Napi::String>();
  if (gettid() == getpid())
    Throw(info.Env(), Failure::Of(EPERM, "setns", nsName, "refused on Node's main thread; use a worker thread"));
  Failure f = JoinNetns(nsFd, nsName);
  if (!f.ok()) Throw(info.Env(), f);
  return info.Env().Undefined();
}

// runInNetnsSync(nsFd, nsName, fn): calls fn() with the calling thread in
// another namespace, and puts the thread back before returning or throwing.
//
// This exists for one library: raw-socket polls its sockets on libuv's
// default loop, so its sockets must be created on the main thread, and a
// socket belongs to the namespace it was created in. fn must only create
// sockets synchronously; no event-loop turn can happen inside the bracket.
// If the thread cannot be put back, continuing would run ferry in the wrong
// namespace, so the process aborts (Go's netns.Do makes the same choice).
Napi::Value RunInNetnsSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int nsFd = info[0].As<Napi::Number>().Int32Value();
  std::string nsName = info[1].As<Napi::String>();
  Napi::Function fn = info[2].As<Napi::Function>();
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) ThrowErrno(env, "open", "/proc/thread-self/ns/net");
  if (setns(nsFd, CLONE_NEWNET) < 0) {
    int err = errno;
    close(home);
    Throw(env, Failure::Of(err, "setns", nsName));
  }
  auto restore = [&] {
    if (setns(home, CLONE_NEWNET) < 0) {
      fprintf(stderr, "ferry: cannot return thread to its network namespace after %s: %s\n", nsName.c_str(),
              strerror(errno));
      abort();
    }
    close(home);
  };
  Napi::Value result;
  try {
    result = fn.Call({});
  } catch (...) {
    restore();
    throw;
  }
  restore();
  return result;
}

}  // namespace

Failure RunInNetns(int nsFd, const std::string& nsName, const std::function<Failure()>& fn) {
  Failure result;
  std::thread([&] {
    result = JoinNetns(nsFd, nsName);
    if (result.ok()) result = fn();
  }).join();
  return result;
}

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsCreate", Napi::Function::New(env, Create, "netnsCreate"));
  exports.Set("netnsDelete", Napi::Function::New(env, Delete, "netnsDelete"));
  exports.Set("netnsOpen", Napi::Function::New(env, Open, "netnsOpen"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("sysctl", Napi::Function::New(env, Sysctl, "sysctl"));
  exports.Set("runInNetnsSync", Napi::Function::New(env, RunInNetnsSync, "runInNetnsSync"));
  exports.Set("enterNetnsOnThisThread", Napi::Function::New(env, EnterOnThisThread, "enterNetnsOnThisThread"));
}

}  // namespace ferry
