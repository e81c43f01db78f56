// BPF through libbpf: what the bpf_*.cc files share.
//
// The addon does only the syscalls: open/load an ELF object, hand out the
// program and map fds, map operations on Buffers, pin/get, tcx/tc attach and
// BPF_PROG_TEST_RUN. Sizes, ownership and naming policy live in engine/bpf/.
#pragma once

#include <napi.h>

#include <string>

#include "errors.h"

namespace ferry {

// Collects libbpf's warnings printed on this thread while it lives, so that a
// failure can carry them to JavaScript instead of libbpf writing to stderr.
// (Set FERRY_LIBBPF_DEBUG=1 to also see every libbpf message on stderr.)
class LibbpfMessages {
 public:
  LibbpfMessages();
  ~LibbpfMessages();
  LibbpfMessages(const LibbpfMessages&) = delete;
  LibbpfMessages& operator=(const LibbpfMessages&) = delete;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string* previous_;
};

// A Failure for a libbpf call that returned a negative error code. libbpf's
// own codes (LIBBPF_ERRNO__*, >= 4000) have no strerror(): they become EINVAL
// with libbpf's text in the detail.
Failure LibbpfFailure(int ret, std::string call, std::string object, std::string detail = "");

// "sched_cls", "array", ...; "unknown(N)" for types newer than libbpf 1.1.
std::string ProgTypeName(unsigned type);
std::string MapTypeName(unsigned type);

// Reads a required Buffer argument (throws a TypeError otherwise).
Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* what);
// Reads a required fd / unsigned number argument (throws a TypeError otherwise).
int FdArg(const Napi::CallbackInfo& info, size_t i);
uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* what);
// Reads an optional string argument; empty when absent/undefined.
std::string StringArg(const Napi::CallbackInfo& info, size_t i);

void InitBpfObject(Napi::Env env, Napi::Object exports);
void InitBpfMap(Napi::Env env, Napi::Object exports);
void InitBpfPin(Napi::Env env, Napi::Object exports);
void InitBpfAttach(Napi::Env env, Napi::Object exports);
void InitBpfTestRun(Napi::Env env, Napi::Object exports);

}  // namespace ferry
