// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Reference programs for the program-cost bench, run under BPF_PROG_RUN
// beside ferry's from_pod:
//
//  - nop: returns at once. Its cost is what the test-run loop itself adds
//    to every run; and with repeat = 1 what a single timed run adds, which
//    the bench subtracts from single runs of a new flow.
//  - floor_redirect: the least a pod-to-pod datapath does: one hash lookup of the
//    destination, the MACs rewritten, bpf_redirect_peer(). Issue #4 puts
//    it at about 75 ns here.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define ETH_ALEN 6
#define TC_ACT_OK 0
#define TCX_NEXT -1

struct peer {
	__u32 ifindex;
	__u8 mac[ETH_ALEN];
	__u8 gateway_mac[ETH_ALEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __be32);	/* pod address */
	__type(value, struct peer);
} floor_peers SEC(".maps");

SEC("tc")
int nop(struct __sk_buff *skb)
{
	return TCX_NEXT;
}

SEC("tc")
int floor_redirect(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct peer *peer;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	peer = bpf_map_lookup_elem(&floor_peers, &ip->daddr);
	if (!peer)
		return TC_ACT_OK;
	__builtin_memcpy(eth->h_dest, peer->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, peer->gateway_mac, ETH_ALEN);
	return bpf_redirect_peer(peer->ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
