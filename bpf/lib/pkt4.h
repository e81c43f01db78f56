/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 packet parsing for tc programs: Ethernet, IPv4 (options included),
 * and the TCP or UDP ports the load balancer keys on.
 */
#ifndef FERRY_LIB_PKT4_H
#define FERRY_LIB_PKT4_H

#include <bpf/bpf_endian.h>

#include "include/ferry_lb.h"
#include "lib/common.h"

/* What the load balancer needs to know about an IPv4 TCP/UDP packet. */
struct pkt4 {
	struct ct4_key tuple;	/* as on the wire; dir CT_FORWARD */
	__u32 l4_off;		/* TCP/UDP header, from the Ethernet header */
	__u8 tcp_flags;		/* TCP: the segment's flags byte; UDP: 0 */
};

/* A non-first fragment: no L4 header, so nothing to key on. */
static __always_inline bool ipv4_is_later_fragment(const struct iphdr *ip)
{
	return ip->frag_off & bpf_htons(IP_OFFSET);
}

static __always_inline bool lb_proto_supported(__u8 proto)
{
	return proto == LB_PROTO_TCP || proto == LB_PROTO_UDP;
}

static __always_inline __u32 l4_hdr_len(__u8 proto)
{
	return proto == LB_PROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr);
}

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

/*
 * Fills `pkt` from an Ethernet + IPv4 + TCP/UDP packet and returns true, or
 * returns false with the LB_METRIC_PASS_* reason to pass it on untouched in
 * `why`. First fragments parse like any packet; later ones (no L4 header)
 * pass: fragmented datagrams to a service need fragment tracking, not here
 * yet. The L4 header is copied out with bpf_skb_load_bytes(): its offset
 * depends on the IP header length, and the helper needs no packet pointer
 * the verifier must bound (it also reads non-linear data).
 */
static __always_inline bool pkt4_parse(struct __sk_buff *skb, struct pkt4 *pkt, __u32 *why)
{
	void *data = ctx_data(skb);
	void *data_end = ctx_data_end(skb);
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ip_len, tot_len;

	*why = LB_METRIC_PASS_MALFORMED;
	if ((void *)(eth + 1) > data_end)
		return false;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		*why = LB_METRIC_PASS_NOT_IPV4;
		return false;
	}
	if (!pkt_pull(skb, ETH_HLEN + sizeof(*ip)))
		return false;
	/* Reloaded: pkt_pull() may have moved the data. */
	data = ctx_data(skb);
	data_end = ctx_data_end(skb);
	ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return false;

	ip_len = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	if (ip->version != 4 || ip_len < sizeof(*ip) || tot_len < ip_len)
		return false;
	if (ipv4_is_later_fragment(ip)) {
		*why = LB_METRIC_PASS_FRAGMENT;
		return false;
	}
	if (!lb_proto_supported(ip->protocol)) {
		*why = LB_METRIC_PASS_OTHER_PROTO;
		return false;
	}
	/* A first fragment may end before its L4 header does: malformed. */
	if (tot_len < ip_len + l4_hdr_len(ip->protocol))
		return false;

	pkt->tuple.saddr = ip->saddr;
	pkt->tuple.daddr = ip->daddr;
	pkt->tuple.proto = ip->protocol;
	pkt->tuple.dir = CT_FORWARD;
	pkt->l4_off = ETH_HLEN + ip_len;

	if (pkt->tuple.proto == LB_PROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, pkt->l4_off, &th, sizeof(th)) < 0)
			return false;
		pkt->tuple.sport = th.source;
		pkt->tuple.dport = th.dest;
		pkt->tcp_flags = ((__u8 *)&th)[TCP_FLAGS_OFF];
	} else {
		struct udphdr uh;

		if (bpf_skb_load_bytes(skb, pkt->l4_off, &uh, sizeof(uh)) < 0)
			return false;
		pkt->tuple.sport = uh.source;
		pkt->tuple.dport = uh.dest;
	}
	return true;
}

#endif /* FERRY_LIB_PKT4_H */
