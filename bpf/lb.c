// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// ferry's service load balancer, IPv4 TCP and UDP: the kube-proxy
// replacement's datapath for traffic leaving a pod.
//
// from_pod runs at tcx ingress of each pod's host-side veth in routed mode,
// so it sees every packet the pod sends, before the node routes it:
//
//  - to a service IP:port (ClusterIP): pick a backend (or keep the one the
//    flow's conntrack entry names), record the flow, rewrite the destination
//    to the backend and return TC_ACT_OK; the node's /32 route per pod takes
//    the packet on from there;
//  - a reply from a backend to a client of a service: rewrite its source
//    back to the service IP:port and return TC_ACT_OK;
//  - anything else: TCX_NEXT (-1), untouched: the rest of the hook and the
//    stack decide.
//
// It drops (TC_ACT_SHOT) a new flow to a service without backends; rejecting
// it with an ICMP error or a RST instead comes later, as do ICMP echo to
// services, IPv6, session affinity and traffic policies.
//
// Maps and their layout: include/ferry_lb.h (shared with engine/dataplane/
// layout.ts). Counters: enum lb_metric. Entries age by the lifetimes in
// lib/ct4.h; user space collects the stale ones.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/ct4.h"
#include "lib/lb4.h"
#include "lib/metrics.h"
#include "lib/nat4.h"
#include "lib/pkt4.h"

// A packet to a service: to the backend the flow is pinned to, or to a new
// one for a new flow (or when the pinned backend is gone). A flow already
// tracked keeps its backend even once the service has no ready backends
// left, as established connections do under kube-proxy. Returns
// LB_METRIC_TRANSLATED or a drop code.
static __always_inline int lb4_forward(struct __sk_buff *skb, const struct pkt4 *pkt, struct lb4_key *svc_key,
				       const struct lb4_service *svc)
{
	struct ct4_key key = pkt->tuple;
	struct ct4_key reply_key;
	const struct lb4_backend *backend = NULL;
	struct ct_entry *own = ct4_lookup(&key);
	__u16 rev_nat_index = svc->rev_nat_index;
	bool created = false;
	__u32 backend_id = 0;
	__be32 addr;
	__be16 port;
	int ret;

	if (own) {
		backend_id = own->backend_id;
		rev_nat_index = own->rev_nat_index;
		backend = lb4_lookup_backend(backend_id);
		if (!backend) {
			lb_count(LB_METRIC_CT_RESELECTED);
			own = NULL;	// replaced below, pinned to the new backend
			rev_nat_index = svc->rev_nat_index;
		}
	} else {
		created = true;
	}

	if (!backend) {
		const struct lb4_service *slot;

		if (svc->count == 0)
			return DROP_NO_BACKEND;
		slot = lb4_select_slot(svc_key, svc->count);
		if (!slot)
			return DROP_NO_SLOT;
		backend_id = slot->backend_id;
		backend = lb4_lookup_backend(backend_id);
		if (!backend)
			return DROP_NO_SLOT;
	}
	addr = backend->address;
	port = backend->port;

	ct4_reply_key(&reply_key, pkt, addr, port);
	ret = ct4_track(own, &key, &reply_key, backend_id, rev_nat_index, pkt->tcp_flags);
	if (is_drop(ret))
		return ret;
	if (created)
		lb_count(LB_METRIC_CT_CREATED);

	ret = nat4_dnat(skb, pkt, addr, port);
	if (is_drop(ret))
		return ret;
	return LB_METRIC_TRANSLATED;
}

// A packet to no service: a reply of a load-balanced flow if conntrack knows
// its tuple as one. Returns LB_METRIC_REV_TRANSLATED, a LB_METRIC_PASS_*
// reason, or a drop code.
static __always_inline int lb4_reply(struct __sk_buff *skb, const struct pkt4 *pkt)
{
	struct ct4_key key = pkt->tuple;
	struct ct4_key forward_key;
	const struct lb4_reverse_nat *rev_nat;
	struct ct_entry *own;
	__be32 addr;
	__be16 port;
	int ret;

	key.dir = CT_REVERSE;
	own = ct4_lookup(&key);
	if (!own)
		return LB_METRIC_PASS_NO_SERVICE;
	rev_nat = lb4_lookup_rev_nat(own->rev_nat_index);
	if (!rev_nat)
		return LB_METRIC_PASS_NO_REV_NAT;
	addr = rev_nat->address;
	port = rev_nat->port;

	ct4_forward_key(&forward_key, pkt, addr, port);
	ret = ct4_track(own, &key, &forward_key, own->backend_id, own->rev_nat_index, pkt->tcp_flags);
	if (is_drop(ret))
		return ret;

	ret = nat4_rev_snat(skb, pkt, addr, port);
	if (is_drop(ret))
		return ret;
	return LB_METRIC_REV_TRANSLATED;
}

static __always_inline bool lb_translated(int outcome)
{
	return outcome == LB_METRIC_TRANSLATED || outcome == LB_METRIC_REV_TRANSLATED;
}

// Counts a packet's outcome (an lb_metric, or a drop code) and turns it into
// the tc verdict.
static __always_inline int lb_verdict(int outcome)
{
	if (is_drop(outcome)) {
		lb_count(drop_metric(outcome));
		return FERRY_ACT_SHOT;
	}
	lb_count(outcome);
	return lb_translated(outcome) ? FERRY_ACT_OK : FERRY_ACT_NEXT;
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	struct pkt4 pkt = {};
	struct lb4_key svc_key = {};
	const struct lb4_service *svc;
	__u32 why;

	if (!pkt4_parse(skb, &pkt, &why))
		return lb_verdict(why);
	svc = lb4_lookup_service(&svc_key, &pkt.tuple);
	if (svc)
		return lb_verdict(lb4_forward(skb, &pkt, &svc_key, svc));
	return lb_verdict(lb4_reply(skb, &pkt));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
