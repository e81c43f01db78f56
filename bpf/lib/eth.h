/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Sending a packet back the way it came, at L2. */
#ifndef FERRY_LIB_ETH_H
#define FERRY_LIB_ETH_H

#include "include/ferry_drop.h"
#include "lib/common.h"

/*
 * Swaps the Ethernet addresses and redirects the packet to the egress of
 * skb->ifindex, the interface it came in on: at tcx ingress of a pod's host
 * veth that delivers into the pod, from the host end's MAC to the pod's, as
 * the node itself would send it; at the uplink, back to the L2 hop it came
 * from. Returns FERRY_ACT_REDIRECT, or DROP_NAT when a helper fails.
 */
static __always_inline int eth_bounce(struct __sk_buff *skb)
{
	struct ethhdr *eth = ctx_data(skb);
	__u8 dest[ETH_ALEN];

	if ((void *)(eth + 1) > ctx_data_end(skb))
		return DROP_NAT;
	__builtin_memcpy(dest, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, dest, ETH_ALEN);
	/* Flags 0: egress, not BPF_F_INGRESS. */
	return bpf_redirect(skb->ifindex, 0) == FERRY_ACT_REDIRECT ? FERRY_ACT_REDIRECT : DROP_NAT;
}

#endif /* FERRY_LIB_ETH_H */
