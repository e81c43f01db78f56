/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Host routing for IPv6, a small part of lib/route4.h's: only a translated
 * packet of a flow with CT_F_REDIRECT (an external frontend's) is sent on
 * past the stack, by a FIB lookup and bpf_redirect_neigh() (lib/fib6.h),
 * because the stack would not forward it (an SNATed request's source, a
 * NodePort reply's, is one of the node's own addresses). Everything else
 * goes into the stack, which routes it: pods' IPv6 packets (there is no
 * ferry_pod6 map, so no bpf_redirect_peer() into a pod, and no FIB
 * redirect of a pod's other traffic), a packet whose hop limit runs out of a
 * flow that may reach the stack, and whatever the FIB has no answer for.
 */
#ifndef FERRY_LIB_ROUTE6_H
#define FERRY_LIB_ROUTE6_H

#include "include/ferry_drop.h"
#include "lib/common.h"
#include "lib/fib6.h"
#include "lib/metrics.h"
#include "lib/pkt6.h"

/*
 * Sends a translated packet of a CT_F_REDIRECT flow on, as route4() does
 * with `flow_redirect`: its hop limit running out drops it, a FIB miss is
 * counted and leaves it to the stack. Counts the redirect it makes.
 * Returns FERRY_ACT_REDIRECT; FERRY_ACT_OK: the stack's; or a drop code.
 */
static __always_inline int route6_redirect(struct __sk_buff *skb)
{
	struct ipv6hdr *ip6 = pkt6_ip(skb);
	int ret;

	/* Read back: a translation may have rewritten both ends. */
	if (!ip6)
		return DROP_NAT;
	if (ip6->hop_limit <= 1)
		return DROP_TTL;
	if (!ipv6_is_one_host(&ip6->daddr))
		return FERRY_ACT_OK;

	ret = fib6_redirect(skb, ip6);
	if (ret == FERRY_ACT_REDIRECT)
		lb_count(LB_METRIC_FIB_REDIRECT);
	else if (ret == FERRY_ACT_OK)
		lb_count(LB_METRIC_FIB_MISS);
	return ret;
}

#endif /* FERRY_LIB_ROUTE6_H */
