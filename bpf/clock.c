// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The datapath's clock, for user space: conntrack, affinity, SNAT and
// fragment records hold lb_now() times (lib/common.h), which are jiffies
// in ns, not CLOCK_MONOTONIC. engine/dataplane/clock.ts runs this program
// with BPF_PROG_RUN on a frame of at least 8 bytes past the Ethernet
// header's start, and reads lb_now() back from the frame's first 8 bytes
// (host order).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/common.h"

SEC("tc")
int clock_now(struct __sk_buff *skb)
{
	__u64 now = lb_now();

	if (bpf_skb_store_bytes(skb, 0, &now, sizeof(now), 0) < 0)
		return FERRY_ACT_SHOT;
	return FERRY_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
