// Netlink sockets bound to a network namespace.
//
// netlinkOpen() creates the socket on a dedicated thread inside the target
// namespace (a socket stays bound to the namespace it was created in) and
// hands back the fd. NetlinkSocket then drives that fd from the main loop:
// it is non-blocking, send() never waits, and a uv_poll watcher delivers
// every datagram that arrives to a JavaScript callback. Parsing the messages
// is TypeScript's job; this file only moves bytes.
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <vector>

#include "errors.h"
#include "netns.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

namespace ferry {

namespace {

constexpr int kReceiveBuffer = 4 << 20;  // room for event bursts and big dumps

class OpenWorker : public PromiseWorker {
 public:
  OpenWorker(Napi::Env env, int nsFd, std::string nsName, int protocol)
      : PromiseWorker(env), nsFd_(nsFd), nsName_(std::move(nsName)), protocol_(protocol) {}

  void Execute() override {
    Failure f = RunInNetns(nsFd_, nsName_, [this]() -> Failure {
      int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol_);
      if (fd < 0) return Failure::Of(errno, "socket(AF_NETLINK)", nsName_);
      int one = 1;
      // Extended ack gives the kernel's reason text; strict checking makes
      // filtered dumps honour their filters. Both are best effort on old kernels.
      setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
      setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one);
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kReceiveBuffer, sizeof kReceiveBuffer) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof kReceiveBuffer);
      sockaddr_nl addr{};
      addr.nl_family = AF_NETLINK;
      if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        int err = errno;
        close(fd);
        return Failure::Of(err, "bind(AF_NETLINK)", nsName_);
      }
      fd_ = fd;
      return Failure::Ok();
    });
    if (!f.ok()) Fail(f);
  }

  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, fd_); }

 private:
  int nsFd_;
  std::string nsName_;
  int protocol_;
  int fd_ = -1;
};

// netlinkOpen(nsFd, nsName, protocol) -> Promise<fd>
Napi::Value Open(const Napi::CallbackInfo& info) {
  auto* worker = new OpenWorker(info.Env(), info[0].As<Napi::Number>().Int32Value(),
                                info[1].As<Napi::String>(), info[2].As<Napi::Number>().Int32Value());
  worker->Queue();
  return worker->Promise();
}

// new NetlinkSocket(fd, name, onMessages(buffers[]), onError(err))
class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NetlinkSocket",
                       {InstanceMethod<&NetlinkSocket::Send>("send"),
                        InstanceMethod<&NetlinkSocket::AddMembership>("addMembership"),
                        InstanceMethod<&NetlinkSocket::Close>("close")});
  }

  NetlinkSocket(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<NetlinkSocket>(info), context_(info.Env(), "ferry:netlink") {
    fd_ = info[0].As<Napi::Number>().Int32Value();
    name_ = info[1].As<Napi::String>();
    onMessages_ = Napi::Persistent(info[2].As<Napi::Function>());
    onError_ = Napi::Persistent(info[3].As<Napi::Function>());
    poll_ = new uv_poll_t;
    poll_->data = this;
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(info.Env(), &loop);
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc == 0) rc = uv_poll_start(poll_, UV_READABLE, OnReadable);
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      Throw(info.Env(), Failure::Of(-rc, "uv_poll_start", name_));
    }
    Ref();  // stay alive while the watcher may call back
  }

 private:
  // send(buffer): one netlink datagram to the kernel.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    if (fd_ < 0) Throw(info.Env(), Failure::Of(EBADF, "sendto", name_, "socket is closed"));
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    ssize_t n;
    do {
      n = sendto(fd_, buf.Data(), buf.Length(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    } while (n < 0 && errno == EINTR);
    if (n < 0) ThrowErrno(info.Env(), "sendto", name_);
    return info.Env().Undefined();
  }

  // addMembership(group): subscribe to a multicast group (RTNLGRP_*).
  Napi::Value AddMembership(const Napi::CallbackInfo& info) {
    int group = info[0].As<Napi::Number>().Int32Value();
    if (setsockopt(fd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0)
      ThrowErrno(info.Env(), "setsockopt(NETLINK_ADD_MEMBERSHIP)", name_);
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
      Unref();
    }
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    static_cast<NetlinkSocket*>(handle->data)->Drain(status);
  }

  // Reads every pending datagram, then makes one JS call with all of them.
  void Drain(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Array batch = Napi::Array::New(env);
    int failure = status < 0 ? -status : 0;
    while (failure == 0 && fd_ >= 0) {
      // Peek with MSG_TRUNC for the datagram's real size, then read it whole.
      ssize_t size = recv(fd_, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
      if (size < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        failure = errno;  // ENOBUFS: the kernel dropped messages for us
        break;
      }
      Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, size > 0 ? size : 1);
      ssize_t n = recv(fd_, buf.Data(), buf.Length(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        failure = errno;
        break;
      }
      batch.Set(batch.Length(), n == static_cast<ssize_t>(buf.Length()) ? buf : Napi::Buffer<uint8_t>::Copy(env, buf.Data(), n));
    }
    if (batch.Length() > 0) onMessages_.MakeCallback(Value(), {batch}, context_);
    if (failure != 0 && fd_ >= 0) {
      onError_.MakeCallback(Value(), {MakeError(env, Failure::Of(failure, "recv", name_)).Value()}, context_);
    }
  }

  int fd_ = -1;
  std::string name_;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference onMessages_;
  Napi::FunctionReference onError_;
  Napi::AsyncContext context_;
};

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("netlinkOpen", Napi::Function::New(env, Open, "netlinkOpen"));
  exports.Set("NetlinkSocket", NetlinkSocket::Define(env));
}

}  // namespace ferry
