// Network namespaces: the one place where ferry changes a thread's namespace.
//
// Node's main thread never leaves the namespace it started in. Work that must
// happen inside another namespace (opening a netlink socket, writing a
// per-namespace sysctl, attaching BPF by ifindex) runs on a fresh std::thread
// that does setns() first and exits afterwards, so no shared thread (the main
// thread or a libuv pool thread) is ever left in a foreign namespace.
#pragma once

#include <napi.h>

#include <functional>
#include <optional>
#include <string>

#include "errors.h"

namespace ferry {

// Runs `fn` on a dedicated thread that first joins the network namespace open
// at `nsFd` (or stays in the process's namespace when nsFd < 0), and waits
// for it. Call it from a PromiseWorker's Execute(), never from the main thread.
Failure RunInNetns(int nsFd, const std::string& nsName, const std::function<Failure()>& fn);

void InitNetns(Napi::Env env, Napi::Object exports);

}  // namespace ferry
