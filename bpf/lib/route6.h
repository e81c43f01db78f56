/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Host routing for IPv6: lib/route4.h's twin, the same decisions. Where a
 * packet goes once from_pod or from_uplink is done with it (translated or
 * not):
 *
 *  - to a pod of this node (ferry_pod6 holds its address): into the pod with
 *    bpf_redirect_peer(), with the Ethernet header the node would write
 *    (host veth's MAC to the pod's) and the hop limit down by one;
 *  - from a pod to anywhere else, and a flow with CT_F_REDIRECT either way
 *    (an external frontend's: the stack would not forward it, its source
 *    one of the node's own addresses for an SNATed request or a NodePort
 *    reply): a FIB lookup and bpf_redirect_neigh() (lib/fib6.h);
 *  - whatever a lookup has no answer for, whatever else comes in from the
 *    uplink, and a packet whose hop limit runs out (the stack answers it
 *    with "time exceeded"), unless its flow has CT_F_REDIRECT (dropped,
 *    DROP_TTL): the stack.
 *
 * The pod is looked up by the destination in the packet itself (a helper
 * may take its key from packet data): no copy on the programs' stack,
 * whose last bytes IPv4's path needs (lb.c's top comment).
 */
#ifndef FERRY_LIB_ROUTE6_H
#define FERRY_LIB_ROUTE6_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/fib6.h"
#include "lib/metrics.h"
#include "lib/pkt6.h"

/*
 * route4_to_pod() for IPv6: delivers the packet into the pod `pod`. Returns
 * FERRY_ACT_REDIRECT or DROP_NAT. No header checksum to fix for the hop
 * limit.
 */
static __always_inline int route6_to_pod(struct __sk_buff *skb, const struct local_pod4 *pod)
{
	struct ethhdr *eth = ctx_data(skb);
	struct ipv6hdr *ip6 = (void *)(eth + 1);

	if ((void *)(ip6 + 1) > ctx_data_end(skb))
		return DROP_NAT;
	__builtin_memcpy(eth->h_dest, pod->pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, pod->host_mac, ETH_ALEN);
	ip6->hop_limit--;
	/* TC_ACT_SHOT only for flags other than 0. */
	return bpf_redirect_peer(pod->ifindex, 0) == FERRY_ACT_REDIRECT ? FERRY_ACT_REDIRECT : DROP_NAT;
}

/*
 * route4() for IPv6: sends the packet on as the top of the file says.
 * `from_pod`: from_pod's packet (from_uplink's otherwise); `flow_redirect`:
 * a translated packet of a flow with CT_F_REDIRECT. Counts the redirect it
 * makes. Returns FERRY_ACT_REDIRECT; FERRY_ACT_OK: the stack's, the
 * caller's verdict stands; or a drop code.
 */
static __always_inline int route6(struct __sk_buff *skb, bool from_pod, bool flow_redirect)
{
	const struct local_pod4 *pod;
	struct ipv6hdr *ip6 = pkt6_ip(skb);
	int ret;

	/* Read back: a translation may have rewritten both ends. */
	if (!ip6)
		return DROP_NAT;
	if (ip6->hop_limit <= 1)
		return flow_redirect ? DROP_TTL : FERRY_ACT_OK;
	if (!ipv6_is_one_host(&ip6->daddr))
		return FERRY_ACT_OK;

	pod = bpf_map_lookup_elem(&ferry_pod6, &ip6->daddr);
	if (pod) {
		ret = route6_to_pod(skb, pod);
		if (ret == FERRY_ACT_REDIRECT)
			lb_count(LB_METRIC_PEER_REDIRECT);
		return ret;
	}
	if (!from_pod && !flow_redirect)
		return FERRY_ACT_OK;

	ret = fib6_redirect(skb, ip6);
	if (ret == FERRY_ACT_REDIRECT)
		lb_count(LB_METRIC_FIB_REDIRECT);
	else if (ret == FERRY_ACT_OK && flow_redirect)
		lb_count(LB_METRIC_FIB_MISS);
	return ret;
}

#endif /* FERRY_LIB_ROUTE6_H */
