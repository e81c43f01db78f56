// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// TEST FIXTURE: maps only, no programs, for test/bpf/map.test.ts to exercise
// lookup/update/delete/iteration/batches on a hash (deletable keys) and a
// per-CPU array (values sized per possible CPU).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, __u64);
} test_hash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u32);  // 4 bytes: each CPU's slot is rounded up to 8
} test_percpu SEC(".maps");

char LICENSE[] SEC("license") = "Dual BSD/GPL";
