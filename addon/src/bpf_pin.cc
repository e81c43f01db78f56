// bpffs: pinning an fd at a path, getting a pinned object back, and mounting
// the filesystem itself where a node has not. Unpinning is a plain unlink,
// which TypeScript does with node:fs.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>

#include "bpf.h"

namespace ferry {

namespace {

// BPF_FS_MAGIC from <linux/magic.h>: statfs() f_type of a bpffs mount.
constexpr long kBpfFsMagic = 0xcafe4a11;

// bpfObjPin(fd, path, label): like `bpftool ... pin`.
Napi::Value Pin(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  std::string path = StringArg(info, 1);
  std::string label = StringArg(info, 2);
  int ret = bpf_obj_pin(fd, path.c_str());
  if (ret < 0) Throw(info.Env(), LibbpfFailure(ret, "bpf_obj_pin", path, label));
  return info.Env().Undefined();
}

// bpfObjGet(path) -> a new fd for the pinned program, map or link.
Napi::Value Get(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0);
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) Throw(info.Env(), LibbpfFailure(fd, "bpf_obj_get", path));
  return Napi::Number::New(info.Env(), fd);
}

// bpffsEnsure(path) -> true when it mounted bpffs at path, false when one was
// already there. Equivalent to: `mount -t bpf bpf PATH -o mode=0700`.
// The directory must exist (TypeScript creates it).
//
// Check-then-mount under an flock on the directory, so that two processes
// starting together (parallel test files, two agents) do not stack two
// mounts: the loser waits, then sees bpffs when it looks again by path.
Napi::Value Ensure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info, 0);
  int dir = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) ThrowErrno(env, "open", path);
  Failure f;
  bool mounted = false;
  struct statfs fs = {};
  if (flock(dir, LOCK_EX) < 0) {
    f = Failure::Of(errno, "flock", path);
  } else if (statfs(path.c_str(), &fs) < 0) {
    f = Failure::Of(errno, "statfs", path);
  } else if (static_cast<long>(fs.f_type) != kBpfFsMagic) {
    if (mount("bpf", path.c_str(), "bpf", 0, "mode=0700") < 0) f = Failure::Of(errno, "mount(bpf)", path);
    else mounted = true;
  }
  close(dir);  // releases the lock
  if (!f.ok()) Throw(env, f);
  return Napi::Boolean::New(env, mounted);
}

}  // namespace

void InitBpfPin(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfObjPin", Napi::Function::New(env, Pin, "bpfObjPin"));
  exports.Set("bpfObjGet", Napi::Function::New(env, Get, "bpfObjGet"));
  exports.Set("bpffsEnsure", Napi::Function::New(env, Ensure, "bpffsEnsure"));
}

}  // namespace ferry
