/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Masquerading pods' traffic to outside the cluster, at the egress of the
 * node's uplink (to_uplink): a packet from one of the cluster's pod CIDRs
 * (ferry_node_cfg) to an address in none of them leaves with the node's
 * address and a source port of its own (an echo: identifier), claimed by
 * lib/snat4.h as for NodePorts' SNAT. from_uplink translates the replies
 * back (lb4_reply()), and ICMP errors about the flow either way
 * (lib/icmp4_error.h).
 *
 * Not masqueraded: what answers a flow the pod did not open, as
 * netfilter's MASQUERADE takes only a connection's first packet: a TCP
 * segment without the pod's SYN before it (see masq4_snat()), an echo
 * reply, a UDP datagram of a flow that came in from outside (CT_F_INBOUND,
 * recorded by masq4_inbound()); pod to another node of the cluster (ferry_node4:
 * that node routes the replies to the pod, and a pod's answer to its
 * SNATed NodePort flow must keep the pod's address); pod to pod (another node's pods are in the cluster's
 * CIDRs too), pod to this node (never leaves through the uplink), and the
 * packets of a pod's service flow, DNATed by from_pod to a backend outside
 * the pod CIDRs (a node address, say): their replies must come back to the
 * pod's own address to be reverse-NATed, as kube-proxy's would.
 *
 * lib/masq6.h is the IPv6 twin (TCP and UDP; ICMPv6 echo is not tracked).
 */
#ifndef FERRY_LIB_MASQ4_H
#define FERRY_LIB_MASQ4_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/ct4.h"
#include "lib/metrics.h"
#include "lib/nat4.h"
#include "lib/pkt4.h"
#include "lib/snat4.h"

/* Whether `addr` is in one of the cluster's pod CIDRs. */
static __always_inline bool node_cluster_addr(const struct node_cfg *cfg, __be32 addr)
{
	int i;

#pragma unroll
	for (i = 0; i < NODE_CLUSTER_CIDRS_MAX; i++) {
		const struct cidr4 *cidr = &cfg->cluster_cidrs[i];

		if (cidr->mask && (addr & cidr->mask) == cidr->addr)
			return true;
	}
	return false;
}

/* Whether the packet is one of a load-balanced flow's: the reverse entry of the flow it belongs to exists. */
static __always_inline bool masq4_service_flow(const struct ct4_key *tuple)
{
	struct ct4_key reply_key;
	const struct ct_entry *entry;

	ct4_key_set(&reply_key, tuple->proto, CT_REVERSE, tuple->daddr, tuple->dport, tuple->saddr, tuple->sport);
	entry = ct4_lookup(&reply_key);
	return entry && !(entry->flags & CT_F_MASQ);
}

/* Refreshes an inbound flow's entry, at most every CT_REFRESH_NS as ct4_track() does. */
static __always_inline void masq4_inbound_refresh(struct ct_entry *entry)
{
	__u64 now = lb_now();

	if ((entry->flags & CT_F_INBOUND) && now - entry->last_seen >= CT_REFRESH_NS)
		entry->last_seen = now;
}

/*
 * from_uplink's part: a UDP datagram from outside the cluster to a pod (one
 * that passed untranslated, to no service) starts or refreshes its flow's
 * CT_F_INBOUND entry, under the tuple of the pod's answers. TCP needs none
 * (an answer is never a SYN), nor does ICMP (an answer is an echo reply).
 */
static __always_inline void masq4_inbound(const struct pkt4 *pkt)
{
	const struct node_cfg *cfg;
	struct ct4_key key;
	struct ct_entry *entry;

	if (pkt->tuple.proto != LB_PROTO_UDP)
		return;
	cfg = node_cfg();
	if (!cfg || node_cluster_addr(cfg, pkt->tuple.saddr) || !node_cluster_addr(cfg, pkt->tuple.daddr))
		return;
	ct4_key_set(&key, LB_PROTO_UDP, CT_FORWARD, pkt->tuple.daddr, pkt->tuple.dport, pkt->tuple.saddr,
		    pkt->tuple.sport);
	entry = ct4_lookup(&key);
	if (entry) {
		/* A masqueraded flow of the pod's own with the tuple stays so. */
		masq4_inbound_refresh(entry);
		return;
	}
	struct ct_entry inbound = {
		.last_seen = lb_now(),
		.lifetime_ns = CT_LIFETIME_NONTCP,
		.state = CT_ESTABLISHED,
		.flags = CT_F_INBOUND,
	};
	/* A failed write only leaves the answers masqueraded, as before. */
	bpf_map_update_elem(&ferry_ct4, &key, &inbound, BPF_NOEXIST);
}

/*
 * Masquerades a packet leaving through the uplink if it is a pod's to
 * outside the cluster (see the top of the file): keeps the port its flow
 * holds, or claims one for a new flow. Returns LB_METRIC_MASQUERADED,
 * LB_METRIC_PASS_NO_MASQ, or a drop code.
 */
static __always_inline int masq4_snat(struct __sk_buff *skb, const struct pkt4 *pkt)
{
	const struct node_cfg *cfg = node_cfg();
	struct ct4_key key = pkt->tuple;
	struct ct4_key reply_key;
	struct ct4_flow flow = { .flags = CT_F_SNAT | CT_F_MASQ };
	struct cluster_node4_key node;
	struct ct_entry *own;
	__be16 held = 0;
	int ret;

	if (!cfg || !node_cluster_addr(cfg, key.saddr) || node_cluster_addr(cfg, key.daddr))
		return LB_METRIC_PASS_NO_MASQ;
	node.address = key.daddr;
	if (bpf_map_lookup_elem(&ferry_node4, &node))
		return LB_METRIC_PASS_NO_MASQ;
	own = ct4_lookup(&key);
	if (own) {
		if (!(own->flags & CT_F_MASQ)) {
			/* An inbound flow's answers refresh it too, as netfilter's would. */
			masq4_inbound_refresh(own);
			return LB_METRIC_PASS_NO_MASQ;
		}
		flow.snat_addr = own->nat_addr;
		held = own->nat_port;
	} else if (masq4_service_flow(&key)) {
		return LB_METRIC_PASS_NO_MASQ;
	} else if ((key.proto == LB_PROTO_TCP && (pkt->tcp_flags & (TCPHDR_SYN | TCPHDR_ACK)) != TCPHDR_SYN) ||
		   (key.proto == LB_PROTO_ICMP && !key.sport)) {
		/*
		 * Only a pod's own connection, begun by its SYN (a ping: its echo
		 * request), is masqueraded: anything else without an entry
		 * answers a connection from outside (another node's SNATed
		 * NodePort flow, a client routed to the pod), whose peer expects
		 * the pod's own address.
		 */
		return LB_METRIC_PASS_NO_MASQ;
	} else {
		if (!cfg->snat_addr)
			return DROP_NO_SNAT_ADDR;
		flow.snat_addr = cfg->snat_addr;
	}
	flow.client_addr = key.saddr;
	flow.client_port = key.sport;

	ct4_key_set(&reply_key, key.proto, CT_REVERSE, key.daddr, key.dport, flow.snat_addr, 0);
	ret = snat4_claim(&reply_key, &flow, cfg, held);
	if (is_drop(ret))
		return ret;
	ret = ct4_track(own, &key, &reply_key, &flow, pkt->tcp_flags);
	if (is_drop(ret))
		return ret;
	if (!own)
		lb_count(LB_METRIC_CT_CREATED);
	ret = nat4_rewrite_src(skb, pkt, flow.snat_addr, flow.snat_port);
	return is_drop(ret) ? ret : LB_METRIC_MASQUERADED;
}

#endif /* FERRY_LIB_MASQ4_H */
