/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Host routing in routed mode: where a packet goes once from_pod or
 * from_uplink is done with it (translated or not), without the node's stack,
 * and so without netfilter, on the way:
 *
 *  - to a pod of this node (ferry_pod4 holds its address): into the pod with
 *    bpf_redirect_peer(), from the ingress of the host veth or the uplink
 *    straight to the ingress of the pod's interface in its namespace (no
 *    backlog queue, no second pass through a veth), with the Ethernet header
 *    the node would write (host veth's MAC to the pod's) and the TTL down by
 *    one, as the node's forwarding would;
 *  - from a pod to anywhere else, and a flow with CT_F_REDIRECT either way:
 *    a FIB lookup and bpf_redirect_neigh() (lib/fib4.h);
 *  - whatever a lookup has no answer for (no such pod, no route, one of the
 *    node's own addresses, multicast and broadcast), whatever else comes in
 *    from the uplink, and a packet whose TTL runs out (the stack answers it
 *    with "time exceeded"): the stack, as without host routing.
 *
 * bpf_redirect_peer() works from tc ingress only, where both programs run.
 */
#ifndef FERRY_LIB_ROUTE4_H
#define FERRY_LIB_ROUTE4_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/fib4.h"
#include "lib/metrics.h"
#include "lib/nat4.h"
#include "lib/pkt4.h"

static __always_inline const struct local_pod4 *local_pod4_lookup(__be32 addr)
{
	struct local_pod4_key key = { .address = addr };

	return bpf_map_lookup_elem(&ferry_pod4, &key);
}

/*
 * Delivers the packet into the pod `pod`. Returns FERRY_ACT_REDIRECT or
 * DROP_NAT. The kernel checks the host veth when it acts on the redirect:
 * one gone meanwhile (the pod deleted) drops the packet.
 */
static __always_inline int route4_to_pod(struct __sk_buff *skb, const struct local_pod4 *pod)
{
	struct ethhdr *eth = ctx_data(skb);

	if ((void *)(eth + 1) > ctx_data_end(skb))
		return DROP_NAT;
	__builtin_memcpy(eth->h_dest, pod->pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, pod->host_mac, ETH_ALEN);
	if (nat4_dec_ttl(skb) < 0)
		return DROP_NAT;
	/* TC_ACT_SHOT only for flags other than 0. */
	return bpf_redirect_peer(pod->ifindex, 0) == FERRY_ACT_REDIRECT ? FERRY_ACT_REDIRECT : DROP_NAT;
}

/*
 * Sends the packet on as the top of the file says. `from_pod`: from_pod's
 * packet (from_uplink's otherwise); `flow_redirect`: a translated packet of
 * a flow with CT_F_REDIRECT, which must not reach the stack (its TTL running
 * out drops it, and a FIB miss is counted). Counts the redirect it makes.
 * Returns FERRY_ACT_REDIRECT; FERRY_ACT_OK: the stack's, the caller's
 * verdict stands; or a drop code.
 */
static __always_inline int route4(struct __sk_buff *skb, const struct pkt4 *pkt, bool from_pod, bool flow_redirect)
{
	const struct local_pod4 *pod;
	struct iphdr *ip = pkt4_ip(skb);
	int ret;

	/* Read back: a translation may have rewritten both ends. */
	if (!ip)
		return DROP_NAT;
	if (ip->ttl <= 1)
		return flow_redirect ? DROP_TTL : FERRY_ACT_OK;
	if (!ipv4_is_one_host(ip->daddr))
		return FERRY_ACT_OK;

	pod = local_pod4_lookup(ip->daddr);
	if (pod) {
		ret = route4_to_pod(skb, pod);
		if (ret == FERRY_ACT_REDIRECT)
			lb_count(LB_METRIC_PEER_REDIRECT);
		return ret;
	}
	if (!from_pod && !flow_redirect)
		return FERRY_ACT_OK;

	ret = fib4_redirect(skb, pkt, ip);
	if (ret == FERRY_ACT_REDIRECT)
		lb_count(LB_METRIC_FIB_REDIRECT);
	else if (ret == FERRY_ACT_OK && flow_redirect)
		lb_count(LB_METRIC_FIB_MISS);
	return ret;
}

#endif /* FERRY_LIB_ROUTE4_H */
