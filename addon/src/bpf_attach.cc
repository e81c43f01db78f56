// Attaching a SCHED_CLS program to an interface, by ifindex, inside a network
// namespace: tcx links first (Linux 6.6+), clsact + cls_bpf as the fallback.
//
// Both resolve the ifindex in the calling thread's namespace (tc also opens
// its netlink socket there), so attach and tc detach run through RunInNetns
// from a PromiseWorker. A tcx link, once made, is detached through its fd
// from any namespace.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>

#include "bpf.h"
#include "netns.h"

namespace ferry {

namespace {

// enum bpf_attach_type values added in Linux 6.6 (tcx). libbpf 1.1 and the
// 6.1 uapi headers predate them; uapi enum values never change.
constexpr int kBpfTcxIngress = 46;  // BPF_TCX_INGRESS
constexpr int kBpfTcxEgress = 47;   // BPF_TCX_EGRESS

enum class Mode { kAuto, kTcx, kTc };

bool IsIngress(const Napi::CallbackInfo& info, size_t i) {
  std::string direction = StringArg(info, i);
  if (direction != "ingress" && direction != "egress")
    throw Napi::TypeError::New(info.Env(), "direction must be 'ingress' or 'egress'");
  return direction == "ingress";
}

std::string Where(int ifindex, bool ingress, const std::string& nsName) {
  return "ifindex " + std::to_string(ifindex) + (ingress ? " ingress" : " egress") + " in netns " +
         (nsName.empty() ? "(current)" : nsName);
}

struct bpf_tc_hook Hook(int ifindex, bool ingress) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
  return hook;
}

class AttachWorker : public PromiseWorker {
 public:
  AttachWorker(Napi::Env env, int nsFd, std::string nsName, int ifindex, bool ingress, int progFd, Mode mode,
               std::string progLabel)
      : PromiseWorker(env), nsFd_(nsFd), nsName_(std::move(nsName)), ifindex_(ifindex), ingress_(ingress),
        progFd_(progFd), mode_(mode), object_("program " + progLabel + " on " + Where(ifindex, ingress, nsName_)) {}

  void Execute() override {
    Failure f = RunInNetns(nsFd_, nsName_, [this] { return mode_ == Mode::kTc ? AttachTc() : AttachTcx(); });
    if (!f.ok()) Fail(f);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    if (linkFd_ >= 0) {
      out.Set("mode", "tcx");
      out.Set("linkFd", linkFd_);
    } else {
      out.Set("mode", "tc");
      out.Set("handle", handle_);
      out.Set("priority", priority_);
      if (tcxErrno_ != 0) out.Set("tcxErrno", tcxErrno_);  // why auto mode fell back
    }
    return out;
  }

 private:
  Failure AttachTcx() {
    int fd = bpf_link_create(progFd_, ifindex_, static_cast<enum bpf_attach_type>(ingress_ ? kBpfTcxIngress : kBpfTcxEgress),
                             nullptr);
    if (fd >= 0) {
      linkFd_ = fd;
      return Failure::Ok();
    }
    // A kernel without tcx rejects the attach type: EINVAL (or EOPNOTSUPP
    // from some drivers' paths). Anything else is a real error.
    if (mode_ == Mode::kAuto && (fd == -EINVAL || fd == -EOPNOTSUPP)) {
      tcxErrno_ = -fd;
      return AttachTc();
    }
    return LibbpfFailure(fd, "bpf_link_create(tcx)", object_);
  }

  // Equivalent to: `tc qdisc add dev X clsact; tc filter add dev X ingress bpf da fd N`.
  Failure AttachTc() {
    LibbpfMessages messages;
    struct bpf_tc_hook hook = Hook(ifindex_, ingress_);
    int ret = bpf_tc_hook_create(&hook);
    // An existing clsact qdisc is shared with whoever made it.
    if (ret < 0 && ret != -EEXIST) return LibbpfFailure(ret, "bpf_tc_hook_create", object_, messages.text());
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = progFd_);
    ret = bpf_tc_attach(&hook, &opts);
    if (ret < 0) return LibbpfFailure(ret, "bpf_tc_attach", object_, messages.text());
    handle_ = opts.handle;
    priority_ = opts.priority;
    return Failure::Ok();
  }

  int nsFd_;
  std::string nsName_;
  int ifindex_;
  bool ingress_;
  int progFd_;
  Mode mode_;
  std::string object_;
  int linkFd_ = -1;
  uint32_t handle_ = 0;
  uint32_t priority_ = 0;
  int tcxErrno_ = 0;
};

// bpfTcAttach(nsFd, nsName, ifindex, direction, progFd, mode, progLabel)
//   -> Promise<{mode:'tcx', linkFd} | {mode:'tc', handle, priority, tcxErrno?}>
Napi::Value Attach(const Napi::CallbackInfo& info) {
  int nsFd = info[0].As<Napi::Number>().Int32Value();
  std::string nsName = StringArg(info, 1);
  int ifindex = static_cast<int>(U32Arg(info, 2, "ifindex"));
  bool ingress = IsIngress(info, 3);
  int progFd = FdArg(info, 4);
  std::string modeName = StringArg(info, 5);
  Mode mode = modeName == "tcx" ? Mode::kTcx : modeName == "tc" ? Mode::kTc : Mode::kAuto;
  if (modeName != "tcx" && modeName != "tc" && modeName != "auto")
    throw Napi::TypeError::New(info.Env(), "mode must be 'auto', 'tcx' or 'tc'");
  auto* worker = new AttachWorker(info.Env(), nsFd, nsName, ifindex, ingress, progFd, mode, StringArg(info, 6));
  worker->Queue();
  return worker->Promise();
}

class TcDetachWorker : public PromiseWorker {
 public:
  TcDetachWorker(Napi::Env env, int nsFd, std::string nsName, int ifindex, bool ingress, uint32_t handle,
                 uint32_t priority)
      : PromiseWorker(env), nsFd_(nsFd), nsName_(std::move(nsName)), ifindex_(ifindex), ingress_(ingress),
        handle_(handle), priority_(priority) {}

  void Execute() override {
    Failure f = RunInNetns(nsFd_, nsName_, [this]() -> Failure {
      LibbpfMessages messages;
      struct bpf_tc_hook hook = Hook(ifindex_, ingress_);
      LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle_, .priority = priority_);
      int ret = bpf_tc_detach(&hook, &opts);
      if (ret < 0)
        return LibbpfFailure(ret, "bpf_tc_detach",
                             "handle " + std::to_string(handle_) + " priority " + std::to_string(priority_) + " on " +
                                 Where(ifindex_, ingress_, nsName_),
                             messages.text());
      return Failure::Ok();
    });
    if (!f.ok()) Fail(f);
  }

 private:
  int nsFd_;
  std::string nsName_;
  int ifindex_;
  bool ingress_;
  uint32_t handle_;
  uint32_t priority_;
};

// bpfTcDetach(nsFd, nsName, ifindex, direction, handle, priority) -> Promise<void>
// Equivalent to: `tc filter del dev X ingress handle H prio P bpf`.
Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  int nsFd = info[0].As<Napi::Number>().Int32Value();
  auto* worker = new TcDetachWorker(info.Env(), nsFd, StringArg(info, 1), static_cast<int>(U32Arg(info, 2, "ifindex")),
                                    IsIngress(info, 3), U32Arg(info, 4, "handle"), U32Arg(info, 5, "priority"));
  worker->Queue();
  return worker->Promise();
}

// bpfLinkDetach(linkFd, label): detaches a link (its program stops running
// even if the link is pinned elsewhere) and closes the fd, even on failure.
Napi::Value LinkDetach(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  std::string label = StringArg(info, 1);
  int ret = bpf_link_detach(fd);
  close(fd);
  if (ret < 0) Throw(info.Env(), LibbpfFailure(ret, "bpf_link_detach", label));
  return info.Env().Undefined();
}

}  // namespace

void InitBpfAttach(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfTcAttach", Napi::Function::New(env, Attach, "bpfTcAttach"));
  exports.Set("bpfTcDetach", Napi::Function::New(env, TcDetach, "bpfTcDetach"));
  exports.Set("bpfLinkDetach", Napi::Function::New(env, LinkDetach, "bpfLinkDetach"));
}

}  // namespace ferry
