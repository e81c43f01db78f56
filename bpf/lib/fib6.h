/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Forwarding an IPv6 packet past the stack: lib/fib4.h's twin. A FIB
 * lookup (a forwarding one, from the interface the packet came in on)
 * picks the interface and next hop; bpf_redirect_neigh() fills in the L2
 * header from the neighbour table, resolving it when needed, and sends the
 * packet out of that interface.
 */
#ifndef FERRY_LIB_FIB6_H
#define FERRY_LIB_FIB6_H

#include <bpf/bpf_endian.h>

#include "include/ferry_drop.h"
#include "lib/common.h"
#include "lib/pkt6.h"

/* The traffic class and flow label: what of the first word routing may look at. */
#define IPV6_FLOWINFO_MASK	0x0fffffff

/*
 * Sends the packet where the FIB routes its destination, as the node would
 * forward it, its hop limit down by one (the caller has seen it above 1).
 * `ip6` is the IPv6 header as it is now (translated), in place. The lookup
 * checks the packet's length against the route's MTU as fib4_redirect()
 * does, a GSO packet's by the kernel instead. Returns FERRY_ACT_REDIRECT;
 * FERRY_ACT_OK when the FIB has no forwarding answer (the stack then does
 * what it does with such a packet: "packet too big" for one above the MTU,
 * as IPv6 routers never fragment); or DROP_NAT.
 */
static __always_inline int fib6_redirect(struct __sk_buff *skb, struct ipv6hdr *ip6)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	/* For the ECMP hash only. */
	struct udphdr *ports = pkt6_l4(skb, sizeof(*ports));
	long rc;

	if (!ports)
		return DROP_NAT;
	fib.family = AF_INET6;
	fib.l4_protocol = ip6->nexthdr;
	fib.sport = ports->source;
	fib.dport = ports->dest;
	fib.tot_len = skb->gso_size ? 0 : sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	fib.ifindex = skb->ingress_ifindex;
	fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(IPV6_FLOWINFO_MASK);
	__builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
	__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, sizeof(fib.ipv6_dst));

	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	/* NO_NEIGH still names the interface and next hop: redirect_neigh resolves it. */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return FERRY_ACT_OK;

	/* No header checksum to fix. */
	ip6 = pkt6_ip(skb);
	if (!ip6)
		return DROP_NAT;
	ip6->hop_limit--;

	/* The lookup left the gateway in ipv6_dst, or the destination when on-link. */
	nh.nh_family = AF_INET6;
	__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, sizeof(nh.ipv6_nh));
	/* TC_ACT_SHOT only for bad arguments. */
	if (bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0) != FERRY_ACT_REDIRECT)
		return DROP_NAT;
	return FERRY_ACT_REDIRECT;
}

#endif /* FERRY_LIB_FIB6_H */
