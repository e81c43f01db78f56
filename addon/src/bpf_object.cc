// An ELF object file through libbpf: open (parse, no kernel state), load
// (maps created and pinned, programs verified), hand out fds, close.
//
// One JS-visible class, BpfObject, wraps one struct bpf_object. Its fds
// belong to it: close() releases them all, like cilium/ebpf's Collection.
// The garbage collector closes a forgotten object too, but that is a safety
// net, not the contract.
#include <bpf/libbpf.h>

#include <cerrno>
#include <memory>

#include "bpf.h"

namespace ferry {

namespace {

// Room for the verifier log of a failing program. Kernels since 6.4 keep the
// tail of a longer log (where the reason is); older ones fail with ENOSPC.
constexpr size_t kVerifierLogSize = 16 << 20;

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {InstanceMethod<&BpfObject::Programs>("programs"),
                        InstanceMethod<&BpfObject::Maps>("maps"),
                        InstanceMethod<&BpfObject::SetMaxEntries>("setMaxEntries"),
                        InstanceMethod<&BpfObject::Load>("load"),
                        InstanceMethod<&BpfObject::ProgramFd>("programFd"),
                        InstanceMethod<&BpfObject::MapFd>("mapFd"),
                        InstanceMethod<&BpfObject::Close>("close")});
  }

  // new BpfObject(path, pinRoot?): bpf_object__open_file. Maps declared with
  // LIBBPF_PIN_BY_NAME are pinned under pinRoot on load (default /sys/fs/bpf).
  BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "path must be a string");
    path_ = info[0].As<Napi::String>();
    std::string pinRoot = StringArg(info, 1);
    LIBBPF_OPTS(bpf_object_open_opts, opts);
    if (!pinRoot.empty()) opts.pin_root_path = pinRoot.c_str();
    LibbpfMessages messages;
    obj_ = bpf_object__open_file(path_.c_str(), &opts);
    if (obj_ == nullptr) Throw(info.Env(), LibbpfFailure(-errno, "bpf_object__open_file", path_, messages.text()));
  }

  ~BpfObject() override { Release(); }

  // Called by the load worker on the pool thread; the JS side cannot touch
  // the object meanwhile (loading_ makes every method throw EBUSY).
  Failure LoadNow() {
    std::unique_ptr<char[]> log(new char[kVerifierLogSize]);
    log[0] = '\0';
    struct bpf_program* prog;
    bpf_object__for_each_program(prog, obj_) bpf_program__set_log_buf(prog, log.get(), kVerifierLogSize);
    LibbpfMessages messages;
    int ret = bpf_object__load(obj_);
    bpf_object__for_each_program(prog, obj_) bpf_program__set_log_buf(prog, nullptr, 0);
    if (ret == 0) return Failure::Ok();
    // Programs load in order: the first wanted one without an fd failed.
    // A failure before any program (map creation, BTF) names the file only.
    if (log[0] != '\0') {
      std::string object = path_;
      bpf_object__for_each_program(prog, obj_) {
        if (bpf_program__autoload(prog) && bpf_program__fd(prog) < 0) {
          object += " program " + std::string(bpf_program__name(prog));
          break;
        }
      }
      return LibbpfFailure(ret, "BPF_PROG_LOAD", object, log.get());
    }
    return LibbpfFailure(ret, "bpf_object__load", path_, messages.text());
  }

  void LoadDone(bool ok) {
    loading_ = false;
    loaded_ = ok;
  }

 private:
  // programs() -> [{name, section, type, autoload}] from the spec.
  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    struct bpf_object* obj = Usable(env, "programs");
    Napi::Array out = Napi::Array::New(env);
    struct bpf_program* prog;
    bpf_object__for_each_program(prog, obj) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("name", bpf_program__name(prog));
      p.Set("section", bpf_program__section_name(prog));
      p.Set("type", ProgTypeName(bpf_program__type(prog)));
      p.Set("autoload", bpf_program__autoload(prog));
      out.Set(out.Length(), p);
    }
    return out;
  }

  // maps() -> [{name, type, keySize, valueSize, maxEntries, internal, pinPath?}]
  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    struct bpf_object* obj = Usable(env, "maps");
    Napi::Array out = Napi::Array::New(env);
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      Napi::Object m = Napi::Object::New(env);
      m.Set("name", bpf_map__name(map));
      m.Set("type", MapTypeName(bpf_map__type(map)));
      m.Set("keySize", bpf_map__key_size(map));
      m.Set("valueSize", bpf_map__value_size(map));
      m.Set("maxEntries", bpf_map__max_entries(map));
      m.Set("internal", bpf_map__is_internal(map));
      if (const char* pin = bpf_map__pin_path(map)) m.Set("pinPath", pin);
      out.Set(out.Length(), m);
    }
    return out;
  }

  // setMaxEntries(name, n): bpf_map__set_max_entries before load, so a map's
  // capacity can be chosen at run time; the object's declaration is the default.
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    uint32_t maxEntries = U32Arg(info, 1, "maxEntries");
    struct bpf_object* obj = Usable(env, "bpf_map__set_max_entries");
    if (loaded_) Throw(env, Failure::Of(EALREADY, "bpf_map__set_max_entries", path_ + " map " + name, "already loaded"));
    struct bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
    if (map == nullptr) Throw(env, Failure::Of(ENOENT, "bpf_object__find_map_by_name", path_ + " map " + name));
    int ret = bpf_map__set_max_entries(map, maxEntries);
    if (ret < 0) Throw(env, LibbpfFailure(ret, "bpf_map__set_max_entries", path_ + " map " + name));
    return env.Undefined();
  }

  // load() -> Promise<void>; see LoadWorker.
  Napi::Value Load(const Napi::CallbackInfo& info);

  // programFd(name) -> fd owned by this object.
  Napi::Value ProgramFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    struct bpf_object* obj = Loaded(env, "bpf_object__find_program_by_name", name);
    struct bpf_program* prog = bpf_object__find_program_by_name(obj, name.c_str());
    if (prog == nullptr) Throw(env, Failure::Of(ENOENT, "bpf_object__find_program_by_name", path_ + " program " + name));
    int fd = bpf_program__fd(prog);
    if (fd < 0) Throw(env, Failure::Of(ENOENT, "bpf_program__fd", path_ + " program " + name, "not loaded (autoload off?)"));
    return Napi::Number::New(env, fd);
  }

  // mapFd(name) -> fd owned by this object.
  Napi::Value MapFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    struct bpf_object* obj = Loaded(env, "bpf_object__find_map_by_name", name);
    struct bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
    if (map == nullptr) Throw(env, Failure::Of(ENOENT, "bpf_object__find_map_by_name", path_ + " map " + name));
    int fd = bpf_map__fd(map);
    if (fd < 0) Throw(env, Failure::Of(ENOENT, "bpf_map__fd", path_ + " map " + name, "not created"));
    return Napi::Number::New(env, fd);
  }

  // close(): releases every fd of the object. Pinned maps stay pinned (that
  // is what pinning is for); the caller unpins. Idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (loading_) Throw(info.Env(), Failure::Of(EBUSY, "bpf_object__close", path_, "load() still running"));
    Release();
    return info.Env().Undefined();
  }

  void Release() {
    if (obj_ != nullptr) bpf_object__close(obj_);
    obj_ = nullptr;
  }

  struct bpf_object* Usable(Napi::Env env, const std::string& call) {
    if (obj_ == nullptr) Throw(env, Failure::Of(EBADF, call, path_, "object is closed"));
    if (loading_) Throw(env, Failure::Of(EBUSY, call, path_, "load() still running"));
    return obj_;
  }

  struct bpf_object* Loaded(Napi::Env env, const std::string& call, const std::string& name) {
    struct bpf_object* obj = Usable(env, call);
    if (!loaded_) Throw(env, Failure::Of(EINVAL, call, path_ + " " + name, "object is not loaded"));
    return obj;
  }

  friend class LoadWorker;
  struct bpf_object* obj_ = nullptr;
  std::string path_;
  bool loading_ = false;
  bool loaded_ = false;
};

// Loads off the main thread (verification can take long); keeps the JS
// wrapper alive until it settles.
class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, BpfObject* object, Napi::Object self)
      : PromiseWorker(env), object_(object), self_(Napi::Persistent(self)) {}

  void Execute() override {
    Failure f = object_->LoadNow();
    ok_ = f.ok();
    if (!ok_) Fail(f);
  }

  // Both run on the main thread before the promise settles.
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    object_->LoadDone(ok_);
    PromiseWorker::OnWorkComplete(env, status);
  }

 private:
  BpfObject* object_;
  Napi::ObjectReference self_;
  bool ok_ = false;
};

Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Usable(env, "bpf_object__load");
  if (loaded_) Throw(env, Failure::Of(EALREADY, "bpf_object__load", path_, "already loaded"));
  loading_ = true;
  auto* worker = new LoadWorker(env, this, info.This().As<Napi::Object>());
  worker->Queue();
  return worker->Promise();
}

}  // namespace

void InitBpfObject(Napi::Env env, Napi::Object exports) { exports.Set("BpfObject", BpfObject::Define(env)); }

}  // namespace ferry
