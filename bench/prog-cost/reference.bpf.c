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
//  - floor_ct_insert: the least a new flow's conntrack costs: one entry of
//    a key never seen before written into an LRU hash like ferry_ct4 (its
//    key and value sizes, its 65,536 entries). A new flow of ferry's
//    writes two (lib/ct4.h: the forward and the reverse entry).
//  - floor_hash_insert: the cheapest insert the kernel's hash maps offer,
//    for comparison: the same key and value into a preallocated plain hash
//    (no LRU lists) of 4,096 entries, small enough to stay in cache. Not
//    an option for conntrack (a full plain hash refuses new flows), but
//    what it costs bounds what any two-entry conntrack can reach.
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

/* ct4_key's and ct_entry's sizes (include/ferry_lb.h), CT4_MAX entries. */
struct ct_like_key {
	__u32 words[4];
};

struct ct_like_entry {
	__u64 words[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_like_key);
	__type(value, struct ct_like_entry);
} floor_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ct_like_key);
	__type(value, struct ct_like_entry);
} floor_hash SEC(".maps");

/* Runs so far on this CPU: what makes every key a new one. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} floor_ct_runs SEC(".maps");

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

/* One entry of a key never written before into `map`. */
static __always_inline int insert_new_key(void *map)
{
	struct ct_like_entry entry = { .words = { 1 } };
	struct ct_like_key key = {};
	__u32 zero = 0;
	__u64 *runs = bpf_map_lookup_elem(&floor_ct_runs, &zero);

	if (!runs)
		return TC_ACT_OK;
	*runs += 1;
	key.words[0] = (__u32)*runs;
	key.words[1] = (__u32)(*runs >> 32);
	key.words[2] = bpf_get_smp_processor_id();
	bpf_map_update_elem(map, &key, &entry, BPF_NOEXIST);
	return TC_ACT_OK;
}

SEC("tc")
int floor_ct_insert(struct __sk_buff *skb)
{
	return insert_new_key(&floor_ct);
}

SEC("tc")
int floor_hash_insert(struct __sk_buff *skb)
{
	return insert_new_key(&floor_hash);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
