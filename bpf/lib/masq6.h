/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Masquerading pods' IPv6 traffic to outside the cluster, at the egress of
 * the node's uplink (to_uplink): lib/masq4.h's twin over ferry_ct6. A TCP
 * or UDP packet from one of the cluster's IPv6 pod CIDRs
 * (node_cfg.cluster_cidrs6) to an address in none of them leaves with the
 * node's IPv6 address (node_cfg.snat_addr6) and a source port of its own,
 * claimed by lib/snat6.h from the range both families use. from_uplink
 * translates the replies back (lb6_reply()), and ICMPv6 errors about the
 * flow either way (lib/icmp6_error.h: from outside in from_uplink, a pod's
 * about a reply in to_uplink).
 *
 * Not masqueraded, as for IPv4: what answers a flow the pod did not open
 * (a TCP segment without the pod's SYN before it, a UDP datagram of a flow
 * that came in from outside: CT_F_INBOUND, recorded by masq6_inbound());
 * pod to pod, pod to this node, and the packets of a pod's service flow
 * (see lib/masq4.h). Unlike IPv4, a pod's flow to another node's IPv6
 * address is masqueraded: there is no ferry_node4 for IPv6 (see
 * include/ferry_lb.h). ICMPv6 echo is not tracked, so pings pass as they
 * are (pkt6_parse() passes every ICMPv6 message but the errors), and so do
 * fragments and packets with extension headers.
 */
#ifndef FERRY_LIB_MASQ6_H
#define FERRY_LIB_MASQ6_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/ct.h"
#include "lib/ct6.h"
#include "lib/metrics.h"
#include "lib/nat6.h"
#include "lib/pkt6.h"
#include "lib/snat6.h"

/*
 * Whether `addr` is in `cidr`, an unused entry (mask 0: no prefix is /0) in
 * none. Word by word, stopping at the first that differs: OR-ing all four
 * words' differences of all four CIDRs, unrolled, keeps more values live
 * than from_uplink (masq6_inbound()) has registers for, and the spills took
 * its stack frame past 512 bytes.
 */
static __always_inline bool cidr6_holds(const struct cidr6 *cidr, const struct in6_addr *addr)
{
	const __be32 *mask = cidr->mask.in6_u.u6_addr32;
	const __be32 *net = cidr->addr.in6_u.u6_addr32;
	const __be32 *a = addr->in6_u.u6_addr32;

	return mask[0] && (a[0] & mask[0]) == net[0] && (a[1] & mask[1]) == net[1] &&
	       (a[2] & mask[2]) == net[2] && (a[3] & mask[3]) == net[3];
}

/* Whether `addr` is in one of the cluster's IPv6 pod CIDRs. */
static __always_inline bool node_cluster_addr6(const struct node_cfg *cfg, const struct in6_addr *addr)
{
	int i;

#pragma unroll
	for (i = 0; i < NODE_CLUSTER_CIDRS_MAX; i++) {
		if (cidr6_holds(&cfg->cluster_cidrs6[i], addr))
			return true;
	}
	return false;
}

/* masq4_service_flow(): the reverse entry of the flow the packet belongs to exists, and is no masqueraded flow's. */
static __always_inline bool masq6_service_flow(const struct ct6_key *tuple)
{
	struct ct6_key reply_key;
	const struct ct6_entry *entry;

	ct6_key_set(&reply_key, tuple->proto, CT_REVERSE, &tuple->daddr, tuple->dport, &tuple->saddr, tuple->sport);
	entry = ct6_lookup(&reply_key);
	return entry && !(entry->flags & CT_F_MASQ);
}

/* masq4_inbound_refresh(): an inbound flow's entry, refreshed at most every CT_REFRESH_NS. */
static __always_inline void masq6_inbound_refresh(struct ct6_entry *entry)
{
	__u64 now = lb_now();

	if ((entry->flags & CT_F_INBOUND) && now - entry->last_seen >= CT_REFRESH_NS)
		entry->last_seen = now;
}

/*
 * from_uplink's part, masq4_inbound(): a UDP datagram from outside the
 * cluster to a pod (one that passed untranslated, to no service) starts or
 * refreshes its flow's CT_F_INBOUND entry, under the tuple of the pod's
 * answers. `tuple` is the datagram's addresses and ports (its dir is not
 * read: lb6_reply() leaves CT_REVERSE there).
 */
static __always_inline void masq6_inbound(const struct ct6_key *tuple)
{
	const struct node_cfg *cfg;
	struct ct6_key key;
	struct ct6_entry *entry;

	if (tuple->proto != LB_PROTO_UDP)
		return;
	cfg = node_cfg();
	if (!cfg || node_cluster_addr6(cfg, &tuple->saddr) || !node_cluster_addr6(cfg, &tuple->daddr))
		return;
	ct6_key_set(&key, LB_PROTO_UDP, CT_FORWARD, &tuple->daddr, tuple->dport, &tuple->saddr, tuple->sport);
	entry = ct6_lookup(&key);
	if (entry) {
		/* A masqueraded flow of the pod's own with the tuple stays so. */
		masq6_inbound_refresh(entry);
		return;
	}
	struct ct6_entry inbound = {
		.last_seen = lb_now(),
		.lifetime_ns = CT_LIFETIME_NONTCP,
		.state = CT_ESTABLISHED,
		.flags = CT_F_INBOUND,
	};
	/* A failed write only leaves the answers masqueraded, as before. */
	bpf_map_update_elem(&ferry_ct6, &key, &inbound, BPF_NOEXIST);
}

/*
 * masq4_snat() for IPv6: masquerades a TCP or UDP packet leaving through
 * the uplink if it is a pod's to outside the cluster (see the top of the
 * file), keeping the port its flow holds or claiming one for a new flow.
 * pkt->tuple is the forward key. Returns LB_METRIC_MASQUERADED,
 * LB_METRIC_PASS_NO_MASQ, or a drop code (DROP_NO_SNAT_ADDR while
 * snat_addr6 is ::, as IPv4's without snat_addr).
 */
static __always_inline int masq6_snat(struct __sk_buff *skb, const struct pkt6 *pkt)
{
	const struct node_cfg *cfg = node_cfg();
	struct ct6_key reply_key;
	struct ct6_flow flow = { .flags = CT_F_SNAT | CT_F_MASQ };
	struct ct6_entry *own;
	__be16 held = 0;
	int ret;

	if (!cfg || !node_cluster_addr6(cfg, &pkt->tuple.saddr) || node_cluster_addr6(cfg, &pkt->tuple.daddr))
		return LB_METRIC_PASS_NO_MASQ;
	own = ct6_lookup(&pkt->tuple);
	if (own) {
		if (!(own->flags & CT_F_MASQ)) {
			/* An inbound flow's answers refresh it too, as netfilter's would. */
			masq6_inbound_refresh(own);
			return LB_METRIC_PASS_NO_MASQ;
		}
		flow.snat_addr = own->nat_addr;
		held = own->nat_port;
	} else if (masq6_service_flow(&pkt->tuple)) {
		return LB_METRIC_PASS_NO_MASQ;
	} else if (pkt->tuple.proto == LB_PROTO_TCP && !tcp_opening(pkt->tcp_flags)) {
		/* Only a pod's own connection, begun by its SYN: see masq4_snat(). */
		return LB_METRIC_PASS_NO_MASQ;
	} else {
		if (ipv6_addr_any(&cfg->snat_addr6))
			return DROP_NO_SNAT_ADDR;
		flow.snat_addr = cfg->snat_addr6;
	}
	flow.client_addr = pkt->tuple.saddr;
	flow.client_port = pkt->tuple.sport;

	ct6_key_set(&reply_key, pkt->tuple.proto, CT_REVERSE, &pkt->tuple.daddr, pkt->tuple.dport, &flow.snat_addr, 0);
	ret = snat6_claim(&reply_key, &flow, cfg, held);
	if (is_drop(ret))
		return ret;
	ret = ct6_track(own, &pkt->tuple, &reply_key, &flow, pkt->tcp_flags);
	if (is_drop(ret))
		return ret;
	if (!own)
		lb_count(LB_METRIC_CT_CREATED);
	ret = nat6_rewrite_src(skb, pkt, &flow.snat_addr, flow.snat_port);
	return is_drop(ret) ? ret : LB_METRIC_MASQUERADED;
}

#endif /* FERRY_LIB_MASQ6_H */
