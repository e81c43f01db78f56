// An ELF object file through libbpf: open (parse, no kernel state), load
// (maps created and pinned, programs verified), hand out fds, close.
//
// One JS-visible class, BpfObject, wraps one struct bpf_object until it is
// loaded; then only what it made: each program's and map's spec and fd
// (a duplicate), and the bpf_object is closed. libbpf keeps the parsed ELF
// (instructions, BTF, line info: megabytes for lb.o) for as long as the
// object is open, and nothing needs it once the kernel holds the programs
// and maps. The fds belong to the BpfObject: close() releases them all,
// like cilium/ebpf's Collection. The garbage collector closes a forgotten
// object too, but that is a safety net, not the contract.
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "bpf.h"

namespace ferry {

namespace {

// Room for the verifier log of a failing program. Kernels since 6.4 keep the
// tail of a longer log (where the reason is); older ones fail with ENOSPC.
constexpr size_t kVerifierLogSize = 16 << 20;

class BpfObject : public Napi::ObjectWrap<BpfObject> {
  // A program or a map as the load left it; fd -1: none (not loaded, not created).
  struct Program {
    std::string name, section, type;
    bool autoload;
    int fd;
  };
  struct Map {
    std::string name, type;
    uint32_t keySize, valueSize, maxEntries;
    bool internal;
    std::string pinPath;
    int fd;
  };

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
    if (ret == 0) return Detach();
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

  // After a load, on the pool thread: keeps each program's and map's spec
  // and a duplicate of its fd, and closes the bpf_object (see the top).
  Failure Detach() {
    struct bpf_program* prog;
    bpf_object__for_each_program(prog, obj_) {
      int fd = bpf_program__fd(prog);
      Program p{bpf_program__name(prog), bpf_program__section_name(prog), ProgTypeName(bpf_program__type(prog)),
                bpf_program__autoload(prog), fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0)};
      if (fd >= 0 && p.fd < 0) return Failure::Of(errno, "fcntl(F_DUPFD_CLOEXEC)", path_ + " program " + p.name);
      programs_.push_back(std::move(p));
    }
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj_) {
      int fd = bpf_map__fd(map);
      const char* pin = bpf_map__pin_path(map);
      Map m{bpf_map__name(map), MapTypeName(bpf_map__type(map)), bpf_map__key_size(map), bpf_map__value_size(map),
            bpf_map__max_entries(map), bpf_map__is_internal(map), pin != nullptr ? pin : "", fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0)};
      if (fd >= 0 && m.fd < 0) return Failure::Of(errno, "fcntl(F_DUPFD_CLOEXEC)", path_ + " map " + m.name);
      maps_.push_back(std::move(m));
    }
    bpf_object__close(obj_);
    obj_ = nullptr;
    // The load parsed the kernel's BTF and the close freed the object, in
    // malloc arenas glibc keeps as they are: give the free pages back (of
    // every arena), or they stay in the daemon's RSS for good.
    malloc_trim(0);
    return Failure::Ok();
  }

 private:
  // programs() -> [{name, section, type, autoload}] from the spec.
  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Usable(env, "programs");
    Napi::Array out = Napi::Array::New(env);
    for (const Program& p : Specs().first) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", p.name);
      o.Set("section", p.section);
      o.Set("type", p.type);
      o.Set("autoload", p.autoload);
      out.Set(out.Length(), o);
    }
    return out;
  }

  // maps() -> [{name, type, keySize, valueSize, maxEntries, internal, pinPath?}]
  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Usable(env, "maps");
    Napi::Array out = Napi::Array::New(env);
    for (const Map& m : Specs().second) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", m.name);
      o.Set("type", m.type);
      o.Set("keySize", m.keySize);
      o.Set("valueSize", m.valueSize);
      o.Set("maxEntries", m.maxEntries);
      o.Set("internal", m.internal);
      if (!m.pinPath.empty()) o.Set("pinPath", m.pinPath);
      out.Set(out.Length(), o);
    }
    return out;
  }

  // The specs: from libbpf before the load, as kept by Detach() after it.
  std::pair<std::vector<Program>, std::vector<Map>> Specs() const {
    if (obj_ == nullptr) return {programs_, maps_};
    std::pair<std::vector<Program>, std::vector<Map>> out;
    struct bpf_program* prog;
    bpf_object__for_each_program(prog, obj_) {
      out.first.push_back({bpf_program__name(prog), bpf_program__section_name(prog), ProgTypeName(bpf_program__type(prog)), bpf_program__autoload(prog), -1});
    }
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj_) {
      const char* pin = bpf_map__pin_path(map);
      out.second.push_back({bpf_map__name(map), MapTypeName(bpf_map__type(map)), bpf_map__key_size(map), bpf_map__value_size(map),
                            bpf_map__max_entries(map), bpf_map__is_internal(map), pin != nullptr ? pin : "", -1});
    }
    return out;
  }

  // setMaxEntries(name, n): bpf_map__set_max_entries before load, so a map's
  // capacity can be chosen at run time; the object's declaration is the default.
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    uint32_t maxEntries = U32Arg(info, 1, "maxEntries");
    Usable(env, "bpf_map__set_max_entries");
    if (loaded_) Throw(env, Failure::Of(EALREADY, "bpf_map__set_max_entries", path_ + " map " + name, "already loaded"));
    struct bpf_map* map = bpf_object__find_map_by_name(obj_, name.c_str());
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
    Loaded(env, "bpf_object__find_program_by_name", name);
    for (const Program& p : programs_) {
      if (p.name != name) continue;
      if (p.fd < 0) Throw(env, Failure::Of(ENOENT, "bpf_program__fd", path_ + " program " + name, "not loaded (autoload off?)"));
      return Napi::Number::New(env, p.fd);
    }
    Throw(env, Failure::Of(ENOENT, "bpf_object__find_program_by_name", path_ + " program " + name));
  }

  // mapFd(name) -> fd owned by this object.
  Napi::Value MapFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = StringArg(info, 0);
    Loaded(env, "bpf_object__find_map_by_name", name);
    for (const Map& m : maps_) {
      if (m.name != name) continue;
      if (m.fd < 0) Throw(env, Failure::Of(ENOENT, "bpf_map__fd", path_ + " map " + name, "not created"));
      return Napi::Number::New(env, m.fd);
    }
    Throw(env, Failure::Of(ENOENT, "bpf_object__find_map_by_name", path_ + " map " + name));
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
    for (const Program& p : programs_) if (p.fd >= 0) close(p.fd);
    for (const Map& m : maps_) if (m.fd >= 0) close(m.fd);
    programs_.clear();
    maps_.clear();
    closed_ = true;
  }

  void Usable(Napi::Env env, const std::string& call) {
    if (closed_) Throw(env, Failure::Of(EBADF, call, path_, "object is closed"));
    if (loading_) Throw(env, Failure::Of(EBUSY, call, path_, "load() still running"));
  }

  void Loaded(Napi::Env env, const std::string& call, const std::string& name) {
    Usable(env, call);
    if (!loaded_) Throw(env, Failure::Of(EINVAL, call, path_ + " " + name, "object is not loaded"));
  }

  friend class LoadWorker;
  // Open until loaded (then Detach() closes it) or closed.
  struct bpf_object* obj_ = nullptr;
  std::vector<Program> programs_;
  std::vector<Map> maps_;
  std::string path_;
  bool loading_ = false;
  bool loaded_ = false;
  bool closed_ = false;
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
