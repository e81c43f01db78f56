// BPF_PROG_TEST_RUN: runs a loaded program on a crafted input, so programs
// can be unit-tested without attaching them anywhere. It runs on a libuv
// pool thread because `repeat` can make it long; inputs are copied first.
// For skb programs the kernel builds the packet in the calling thread's
// namespace (its loopback device); nothing is sent anywhere.
#include <bpf/bpf.h>

#include <cerrno>
#include <vector>

#include "bpf.h"

namespace ferry {

namespace {

class TestRunWorker : public PromiseWorker {
 public:
  TestRunWorker(Napi::Env env, int fd, std::vector<uint8_t> data, size_t dataOutSize, std::vector<uint8_t> ctx,
                uint32_t repeat, std::string label)
      : PromiseWorker(env), fd_(fd), data_(std::move(data)), out_(dataOutSize), ctx_(std::move(ctx)),
        repeat_(repeat), label_(std::move(label)) {}

  void Execute() override {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data_.data(), .data_out = out_.data(),
                .data_size_in = static_cast<uint32_t>(data_.size()), .data_size_out = static_cast<uint32_t>(out_.size()),
                .repeat = static_cast<int>(repeat_));
    if (!ctx_.empty()) {
      opts.ctx_in = ctx_.data();
      opts.ctx_size_in = static_cast<uint32_t>(ctx_.size());
    }
    int ret = bpf_prog_test_run_opts(fd_, &opts);
    // ENOSPC: the program grew the packet beyond data_size_out. The kernel
    // still reports the full size, so say how much room was needed.
    if (ret < 0)
      return Fail(LibbpfFailure(ret, "bpf_prog_test_run_opts", label_,
                                ret == -ENOSPC ? "output needs " + std::to_string(opts.data_size_out) + " bytes" : ""));
    retval_ = opts.retval;
    duration_ = opts.duration;
    out_.resize(std::min<size_t>(opts.data_size_out, out_.size()));
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("retval", retval_);
    result.Set("duration", duration_);
    result.Set("data", Napi::Buffer<uint8_t>::Copy(env, out_.data(), out_.size()));
    return result;
  }

 private:
  int fd_;
  std::vector<uint8_t> data_;
  std::vector<uint8_t> out_;
  std::vector<uint8_t> ctx_;
  uint32_t repeat_;
  std::string label_;
  uint32_t retval_ = 0;
  uint32_t duration_ = 0;
};

// bpfProgTestRun(fd, data, dataOutSize, ctx | null, repeat, label)
//   -> Promise<{retval (u32 as the kernel reports it), duration (ns, mean), data}>
Napi::Value TestRun(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  auto data = BufferArg(info, 1, "data");
  uint32_t dataOutSize = U32Arg(info, 2, "dataOutSize");
  std::vector<uint8_t> ctx;
  if (info.Length() > 3 && info[3].IsBuffer()) {
    auto c = info[3].As<Napi::Buffer<uint8_t>>();
    ctx.assign(c.Data(), c.Data() + c.Length());
  }
  uint32_t repeat = U32Arg(info, 4, "repeat");
  auto* worker = new TestRunWorker(info.Env(), fd, std::vector<uint8_t>(data.Data(), data.Data() + data.Length()),
                                   dataOutSize, std::move(ctx), repeat, StringArg(info, 5));
  worker->Queue();
  return worker->Promise();
}

}  // namespace

void InitBpfTestRun(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfProgTestRun", Napi::Function::New(env, TestRun, "bpfProgTestRun"));
}

}  // namespace ferry
