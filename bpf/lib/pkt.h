/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet access both families' parsers (lib/pkt4.h, lib/pkt6.h) share:
 * making headers linear, the skb's checksum state, L4 header sizes.
 */
#ifndef FERRY_LIB_PKT_H
#define FERRY_LIB_PKT_H

#include <bpf/bpf_core_read.h>

#include "include/ferry_lb.h"
#include "lib/common.h"

/* A kfunc the verifier turns into a register move: the skb behind the context. */
extern void *bpf_cast_to_kern_ctx(void *ctx) __ksym;

static __always_inline __u8 skb_ip_summed(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);

	return BPF_CORE_READ_BITFIELD(kskb, ip_summed);
}

/* TCP's header without options, UDP's, or ICMP's first 8 bytes (as many as UDP's header). */
static __always_inline __u32 l4_hdr_len(__u8 proto)
{
	return proto == LB_PROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr);
}
_Static_assert(sizeof(struct udphdr) == sizeof(struct icmphdr), "UDP and ICMP headers are both 8 bytes");

/*
 * Makes the first `len` bytes directly readable. veth hands headers over in
 * the linear area, but an skb built from page fragments may not have them
 * there. bpf_skb_pull_data() invalidates every packet pointer: callers reload.
 */
static __always_inline bool pkt_pull(struct __sk_buff *skb, __u32 len)
{
	if (ctx_data(skb) + len <= ctx_data_end(skb))
		return true;
	return len <= skb->len && bpf_skb_pull_data(skb, len) == 0;
}

#endif /* FERRY_LIB_PKT_H */
