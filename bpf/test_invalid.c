// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// TEST FIXTURE, never attached anywhere: a program the verifier must reject.
// It reads the first packet byte without checking it against data_end, so
// loading it fails and test/bpf proves the verifier log reaches TypeScript.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tc")
int test_invalid_unchecked_read(struct __sk_buff *skb) {
  const __u8 *data = (const __u8 *)(long)skb->data;
  return *data;  // deliberately unchecked: "invalid access to packet"
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
