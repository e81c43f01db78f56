/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 through from_pod and from_uplink: lb6_ingress(), what lb.c's
 * lb4_ingress() does for IPv4, function by function, ICMPv6 errors about
 * a flow included (lib/icmp6_error.h), and from_uplink's part of
 * masquerading (lib/masq6.h: replies of masqueraded flows translated back,
 * inbound UDP flows recorded), less what IPv6 does not have here: ICMPv6
 * echo is not tracked (it passes untouched, as neighbour discovery does,
 * and is never masqueraded) and fragments are not translated (a fragment
 * header passes). Host routing is IPv4's (lib/route6.h): into pods of this
 * node with bpf_redirect_peer(), pods' other traffic and external
 * frontends' flows by a FIB lookup.
 */
#ifndef FERRY_LIB_INGRESS6_H
#define FERRY_LIB_INGRESS6_H

#include <bpf/bpf_endian.h>

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/ct6.h"
#include "lib/eth.h"
#include "lib/icmp6.h"
#include "lib/icmp6_error.h"
#include "lib/lb.h"
#include "lib/lb6.h"
#include "lib/masq6.h"
#include "lib/metrics.h"
#include "lib/nat6.h"
#include "lib/pkt6.h"
#include "lib/route6.h"
#include "lib/snat6.h"
#include "lib/verdict.h"

/* LB_HAIRPIN_ADDR6_*: fe80::1, the source hairpin flows are given. */
static __always_inline void lb6_hairpin_addr(struct in6_addr *addr)
{
	addr->in6_u.u6_addr32[0] = bpf_htonl(LB_HAIRPIN_ADDR6_W0);
	addr->in6_u.u6_addr32[1] = 0;
	addr->in6_u.u6_addr32[2] = 0;
	addr->in6_u.u6_addr32[3] = bpf_htonl(LB_HAIRPIN_ADDR6_W3);
}

/*
 * lb4_no_backend(): LB_METRIC_REJECT_NO_BACKEND for a flow's first packet
 * that kube-proxy would reject and that may be answered, else
 * DROP_NO_BACKEND.
 */
static __always_inline int lb6_no_backend(struct __sk_buff *skb, const struct pkt6 *pkt, struct lb6_key *svc_key,
					  const struct lb4_service *svc, bool from_outside)
{
	const struct lb4_service *internal;

	if (pkt->tuple.proto == LB_PROTO_TCP &&
	    (pkt->tcp_flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST | TCPHDR_FIN)) != TCPHDR_SYN)
		return DROP_NO_BACKEND;
	/* Local, from outside: reject only if the internal scope (every endpoint) is empty too. */
	if (from_outside && (svc->flags & LB_SVC_F_LOCAL)) {
		internal = lb6_internal_scope(svc_key, svc);
		if (internal == svc || internal->count != 0)
			return DROP_NO_BACKEND;
	}
	if (!icmp6_may_answer(skb, pkt))
		return DROP_NO_BACKEND;
	return LB_METRIC_REJECT_NO_BACKEND;
}

/*
 * lb4_forward(): a packet to a service, to the backend its flow is pinned
 * to (`backend`, of `own`) or to a new one; SNATed from outside when the
 * service says so, and to fe80::1 (LB_HAIRPIN_ADDR6_*) when the backend is
 * the client pod itself. Sets *ct_flags; returns LB_METRIC_TRANSLATED,
 * LB_METRIC_REJECT_NO_BACKEND (packet untouched) or a drop code.
 */
static __always_inline int lb6_forward(struct __sk_buff *skb, const struct pkt6 *pkt, struct ct6_entry *own,
				       const struct lb6_backend *backend, struct lb6_key *svc_key,
				       const struct lb4_service *svc, bool from_outside, enum ct_flags *ct_flags)
{
	struct ct6_key reply_key;
	struct ct6_flow flow = {};
	bool created = !own;
	__be16 held = 0;
	int ret;

	if (backend) {
		flow.backend_id = own->backend_id;
		flow.rev_nat_index = own->rev_nat_index;
		flow.flags = own->flags;
		flow.snat_addr = own->nat_addr;
		held = own->nat_port;
	} else {
		if (own)
			lb_count(LB_METRIC_CT_RESELECTED);
		own = NULL;	/* replaced below, pinned to the new backend */
		flow.rev_nat_index = svc->rev_nat_index;
		flow.flags = lb_new_flow_flags(svc, from_outside);
		if (svc->count == 0)
			return created ? lb6_no_backend(skb, pkt, svc_key, svc, from_outside) : DROP_NO_BACKEND;
		backend = lb6_select_backend(svc_key, svc, &pkt->tuple, &flow.backend_id);
		if (!backend)
			return DROP_NO_SLOT;
		if (!from_outside && ipv6_addr_equal(&backend->address, &pkt->tuple.saddr))
			flow.flags |= CT_F_SNAT | CT_F_HAIRPIN;
	}
	*ct_flags = flow.flags;

	if (flow.flags & CT_F_SNAT) {
		const struct node_cfg *cfg = node_cfg();

		if (!cfg)
			return DROP_NO_SNAT_ADDR;
		if (flow.flags & CT_F_HAIRPIN) {
			lb6_hairpin_addr(&flow.snat_addr);
			if (!held)
				held = pkt->tuple.sport;
		} else if (!held) {
			if (ipv6_addr_any(&cfg->snat_addr6))
				return DROP_NO_SNAT_ADDR;
			flow.snat_addr = cfg->snat_addr6;
		}
		flow.client_addr = pkt->tuple.saddr;
		flow.client_port = pkt->tuple.sport;
		ct6_key_set(&reply_key, pkt->tuple.proto, CT_REVERSE, &backend->address, backend->port,
			    &flow.snat_addr, 0);
		ret = snat6_claim(&reply_key, &flow, cfg, held);
		if (is_drop(ret))
			return ret;
	} else {
		ct6_key_set(&reply_key, pkt->tuple.proto, CT_REVERSE, &backend->address, backend->port,
			    &pkt->tuple.saddr, pkt->tuple.sport);
	}

	/* pkt->tuple is the forward key: dir CT_FORWARD. */
	ret = ct6_track(own, &pkt->tuple, &reply_key, &flow, pkt->tcp_flags);
	if (is_drop(ret))
		return ret;
	if (created)
		lb_count(LB_METRIC_CT_CREATED);

	ret = nat6_rewrite_dst(skb, pkt, &backend->address, backend->port);
	if (is_drop(ret))
		return ret;
	if (flow.flags & CT_F_SNAT) {
		ret = nat6_rewrite_src(skb, pkt, &flow.snat_addr, flow.snat_port);
		if (is_drop(ret))
			return ret;
	}
	return LB_METRIC_TRANSLATED;
}

/*
 * lb4_forget_closed_reply(): a pod's SYN straight to a backend from the
 * port of a closed service flow of its takes that flow's reply tuple over.
 */
static __always_inline void lb6_forget_closed_reply(const struct pkt6 *pkt)
{
	struct ct6_key stale;
	const struct ct6_entry *entry;

	if (pkt->tuple.proto != LB_PROTO_TCP || (pkt->tcp_flags & (TCPHDR_SYN | TCPHDR_ACK)) != TCPHDR_SYN)
		return;
	ct6_key_set(&stale, LB_PROTO_TCP, CT_REVERSE, &pkt->tuple.daddr, pkt->tuple.dport,
		    &pkt->tuple.saddr, pkt->tuple.sport);
	entry = ct6_lookup(&stale);
	if (entry && entry->state == CT_CLOSING && !(entry->flags & CT_F_MASQ))
		bpf_map_delete_elem(&ferry_ct6, &stale);
}

/*
 * lb4_reply(): a packet to no service is a reply of a load-balanced or
 * masqueraded flow if conntrack knows its tuple as one: its source becomes
 * the service the client sent to (a masqueraded flow's keeps its own), and
 * for a flow with CT_F_SNAT its destination the client's own address:port.
 * pkt->tuple becomes the reply's conntrack key (dir CT_REVERSE) in place, a
 * copy the stack has no room for. Sets *ct_flags; returns
 * LB_METRIC_REV_TRANSLATED, a LB_METRIC_PASS_* reason, or a drop code.
 */
static __always_inline int lb6_reply(struct __sk_buff *skb, struct pkt6 *pkt, enum ct_flags *ct_flags)
{
	struct ct6_key *key = &pkt->tuple;
	struct ct6_key forward_key;
	struct ct6_flow flow = {};
	const struct in6_addr *client = &pkt->tuple.daddr;
	__be16 client_port = pkt->tuple.dport;
	/* What the client sent to: the service, or a masqueraded flow's peer, the reply's source. */
	const struct in6_addr *service = &pkt->tuple.saddr;
	__be16 service_port = pkt->tuple.sport;
	struct ct6_entry *own;
	int ret;

	key->dir = CT_REVERSE;
	own = ct6_lookup(key);
	if (!own) {
		lb6_forget_closed_reply(pkt);
		return LB_METRIC_PASS_NO_SERVICE;
	}
	if (!(own->flags & CT_F_MASQ)) {
		const struct lb6_reverse_nat *rev_nat = lb6_lookup_rev_nat(own->rev_nat_index);

		if (!rev_nat)
			return LB_METRIC_PASS_NO_REV_NAT;
		service = &rev_nat->address;
		service_port = rev_nat->port;
	}

	flow.backend_id = own->backend_id;
	flow.rev_nat_index = own->rev_nat_index;
	flow.flags = own->flags;
	if (flow.flags & CT_F_SNAT) {
		flow.client_addr = own->nat_addr;
		flow.client_port = own->nat_port;
		flow.snat_addr = pkt->tuple.daddr;
		flow.snat_port = pkt->tuple.dport;
		client = &flow.client_addr;
		client_port = flow.client_port;
	}
	*ct_flags = flow.flags;

	ct6_key_set(&forward_key, pkt->tuple.proto, CT_FORWARD, client, client_port, service, service_port);
	ret = ct6_track(own, key, &forward_key, &flow, pkt->tcp_flags);
	if (is_drop(ret))
		return ret;

	/* A masqueraded flow's reply keeps its source (nat6_rewrite() leaves an unchanged end alone). */
	ret = nat6_rewrite_src(skb, pkt, service, service_port);
	if (is_drop(ret))
		return ret;
	ret = nat6_rewrite_dst(skb, pkt, client, client_port);
	if (is_drop(ret))
		return ret;
	return LB_METRIC_REV_TRANSLATED;
}

/*
 * lb.c's lb_send() for IPv6: lb_verdict(), except that a rejected packet
 * goes back to its sender as an ICMPv6 error (lib/icmp6.h), a translated
 * packet of a hairpin flow straight back into its pod (lib/eth.h), and any
 * other is host-routed (lib/route6.h): `from_pod` says which program sees
 * it.
 */
static __always_inline int lb6_send(struct __sk_buff *skb, const struct pkt6 *pkt, int outcome, enum ct_flags ct_flags,
				    bool from_pod)
{
	bool translated = lb_translated(outcome);
	int verdict;

	if (outcome == LB_METRIC_REJECT_NO_BACKEND) {
		verdict = icmp6_port_unreach(skb, pkt);
		if (is_drop(verdict))
			return lb_verdict(verdict);
		lb_count(outcome);
		return verdict;
	}
	if (is_drop(outcome))
		return lb_verdict(outcome);
	if (translated && (ct_flags & CT_F_HAIRPIN)) {
		verdict = eth_bounce(skb);
		if (is_drop(verdict))
			return lb_verdict(verdict);
		lb_count(outcome);
		lb_count(LB_METRIC_HAIRPIN);
		return verdict;
	}
	verdict = route6(skb, from_pod, translated && (ct_flags & CT_F_REDIRECT));
	if (is_drop(verdict) || verdict == FERRY_ACT_OK)
		return lb_verdict(is_drop(verdict) ? verdict : outcome);
	lb_count(outcome);
	return verdict;
}

/*
 * lb4_ingress() for IPv6: a packet of a tracked service flow goes to its
 * backend (its forward entry first: no service lookup for an established
 * flow); otherwise a packet to a service frontend is load-balanced (from a
 * pod, in the frontend's internal scope; from outside, only an external
 * frontend); anything else may be a reply to undo; ICMPv6 errors are
 * translated as their flow is. `from_pod` is a constant at each call.
 */
static __always_inline int lb6_ingress(struct __sk_buff *skb, bool from_pod)
{
	struct pkt6 pkt = {};
	struct lb6_key svc_key = {};
	const struct lb4_service *svc = NULL;
	const struct lb6_backend *backend = NULL;
	struct ct6_entry *own;
	enum ct_flags ct_flags = 0;
	int outcome;
	__u32 why;

	if (!pkt6_parse(skb, &pkt, &why))
		return lb_verdict(why);
	if (pkt6_icmp_error(&pkt)) {
		outcome = icmp6_error_translate(skb, &pkt, false, &ct_flags);
	} else {
		/* A masqueraded flow's entry is to_uplink's: not a service flow. */
		own = ct6_lookup(&pkt.tuple);
		if (own && !(own->flags & CT_F_MASQ))
			backend = lb6_lookup_backend(own->backend_id);
		if (!backend) {
			svc = lb6_lookup_service(&svc_key, &pkt.tuple);
			if (svc && !from_pod && !(svc->flags & LB_SVC_F_EXTERNAL))
				return lb_verdict(LB_METRIC_PASS_NOT_EXTERNAL);
			if (svc && from_pod)
				svc = lb6_internal_scope(&svc_key, svc);
		}
		if (backend || svc) {
			outcome = lb6_forward(skb, &pkt, own, backend, &svc_key, svc, !from_pod, &ct_flags);
		} else {
			outcome = lb6_reply(skb, &pkt, &ct_flags);
			if (!from_pod && outcome == LB_METRIC_PASS_NO_SERVICE)
				masq6_inbound(&pkt.tuple);
		}
	}
	/* One lb6_send() for every path: each inlined copy would be its code again. */
	return lb6_send(skb, &pkt, outcome, ct_flags, from_pod);
}

#endif /* FERRY_LIB_INGRESS6_H */
