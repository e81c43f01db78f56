/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Forwarding an IPv4 packet past the stack: a FIB lookup picks the
 * interface and next hop, bpf_redirect_neigh() fills in the L2 header from
 * the neighbour table (resolving it when needed) and sends the packet out of
 * that interface, through its tc egress hook (where to_uplink runs).
 *
 * Host routing (lib/route4.h) sends two kinds of packets this way. Flows
 * with CT_F_REDIRECT, which the stack would drop: an SNATed request's
 * source, and a NodePort reply's source, is an address of the node itself,
 * and the stack drops a packet arriving with a local source as martian
 * (fib_validate_source(), unless accept_local is set), so such packets
 * never reach ip_forward(). And pods' packets to anywhere but a pod of this
 * node, to keep the stack and netfilter off their path.
 */
#ifndef FERRY_LIB_FIB4_H
#define FERRY_LIB_FIB4_H

#include <bpf/bpf_endian.h>

#include "include/ferry_drop.h"
#include "lib/common.h"
#include "lib/nat4.h"
#include "lib/pkt4.h"

/*
 * Sends the packet where the FIB routes its destination, as the node would
 * forward it: the lookup is a forwarding one from the interface it came in
 * on (so it honours ip_forward and policy routing by input interface), and
 * the TTL goes down by one (the caller has seen it above 1). `ip` is the IP
 * header as it is now (translated), in place: read before any helper that
 * may move the data.
 *
 * The lookup checks the packet's total length against the route's MTU,
 * except for a GSO packet (a pod's TSO burst): its header's total length is
 * the whole super-packet's, which would fail every time; without one the
 * kernel lets it through (is_skb_forwardable()), to be segmented on the way out.
 *
 * Returns FERRY_ACT_REDIRECT; FERRY_ACT_OK when the FIB has no forwarding
 * answer (no route, a local or blackhole destination, forwarding disabled,
 * a packet above the MTU ...): the stack then does what it does with such a
 * packet, ICMP errors included; or DROP_NAT.
 */
static __always_inline int fib4_redirect(struct __sk_buff *skb, const struct pkt4 *pkt, const struct iphdr *ip)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	/* For the ECMP hash only: an ICMP message's first bytes do as well. */
	struct udphdr *ports = pkt4_l4(skb, pkt->l4_off, sizeof(*ports));
	long rc;

	if (!ports)
		return DROP_NAT;
	fib.family = AF_INET;
	fib.l4_protocol = ip->protocol;
	fib.sport = ports->source;
	fib.dport = ports->dest;
	fib.tot_len = skb->gso_size ? 0 : bpf_ntohs(ip->tot_len);
	fib.ifindex = skb->ingress_ifindex;
	fib.tos = ip->tos;
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;

	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	/* NO_NEIGH still names the interface and next hop: redirect_neigh resolves it. */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return FERRY_ACT_OK;

	if (nat4_dec_ttl(skb) < 0)
		return DROP_NAT;

	/* The lookup left the gateway in ipv4_dst, or the destination when on-link. */
	nh.nh_family = AF_INET;
	nh.ipv4_nh = fib.ipv4_dst;
	/* TC_ACT_SHOT only for bad arguments. */
	if (bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0) != FERRY_ACT_REDIRECT)
		return DROP_NAT;
	return FERRY_ACT_REDIRECT;
}

#endif /* FERRY_LIB_FIB4_H */
