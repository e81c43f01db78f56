// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// ferry's service load balancer and NAT, IPv4 TCP, UDP and ICMP, and IPv6
// TCP, UDP and ICMPv6 errors (see "IPv6" below): the kube-proxy
// replacement's datapath.
// Three programs share the maps of include/ferry_lb.h.
//
// from_pod runs at tcx ingress of each pod's host-side veth in routed mode,
// so it sees every packet the pod sends, before the node routes it:
//
//  - to a service frontend (a ClusterIP, or an external frontend reached
//    from inside: its internal scope when its external policy is Local):
//    pick a backend (or keep the one the flow's conntrack entry names),
//    record the flow, rewrite the destination to the backend;
//  - a reply from a backend to a client of a service: rewrite its source
//    back to the frontend (and for an SNATed flow from outside its
//    destination back to the client);
//  - hairpin: when the backend is the client pod itself, also rewrite its
//    source to the node's side (LB_HAIRPIN_ADDR4, routed mode's gateway) as
//    kube-proxy masquerades hairpin traffic, so the pod neither sees a
//    request from itself nor answers it inside itself; its packets both ways
//    go straight back out of the veth into the pod (CT_F_HAIRPIN);
//  - anything else: TCX_NEXT (-1), untouched: the rest of the hook and the
//    stack decide.
//
// from_uplink runs at tcx ingress of the node's uplink(s), so it sees what
// comes from outside the node:
//
//  - to an external frontend (a NodePort at one of the node's addresses, an
//    external IP, a load-balancer IP): pick a backend and DNAT, as above;
//    with externalTrafficPolicy Cluster also SNAT the client's source to the
//    node's address and a port of its own (lib/snat4.h), so replies come
//    back through this node; with Local keep the client's address (the
//    frontend's external scope holds this node's endpoints only: none, and
//    new flows are dropped);
//  - a reply from a backend behind the uplink (another node's pod), of a
//    flow from outside or of a pod's ClusterIP flow, or a reply to a
//    masqueraded flow: undo the translation;
//  - a ClusterIP: passed (LB_METRIC_PASS_NOT_EXTERNAL), served to pods only;
//  - anything else: TCX_NEXT.
//
// to_uplink runs at tcx egress of the node's uplink(s), so it sees what
// leaves the node: a pod's packet to outside the cluster (from one of the
// pod CIDRs in ferry_node_cfg to none of them, and no service flow's) is
// masqueraded, its source rewritten to the node's address and a port (an
// echo: identifier) claimed like an SNATed flow's (lib/masq4.h; IPv6 TCP
// and UDP likewise, lib/masq6.h); pod to pod and pod to node traffic never
// is. Anything else: TCX_NEXT.
//
// ICMP: echo is tracked like a flow, its identifier standing for the ports
// (masqueraded pings). ICMP errors (destination unreachable, fragmentation
// needed among them, time exceeded, parameter problem) about a packet of a
// tracked flow are translated as that flow is, outer header and quoted
// packet both, either way (lib/icmp4_error.h): a backend's port
// unreachable reaches the client from the service, a router's
// "fragmentation needed" about a masqueraded flow reaches the pod.
//
// Where packets go (host routing, lib/route4.h; IPv6's the same,
// lib/route6.h), translated or not: to a pod of this node, straight into it
// with bpf_redirect_peer(); from a pod to anywhere else, and a flow of an
// external frontend (CT_F_REDIRECT) either way, on by a FIB lookup and
// bpf_redirect_neigh() (lib/fib4.h says why the latter must); a hairpin
// flow's back into its pod (lib/eth.h); anything else, and whatever a
// lookup has no answer for, into the stack, which routes it like any. An ICMP error goes where its flow's packets in the
// same direction go.
//
// A new flow to a frontend without endpoints is rejected as kube-proxy's
// iptables mode rejects it (`-j REJECT`: ICMP port unreachable, for TCP as
// for UDP; lib/icmp4.h), so the client fails at once instead of timing
// out: from a pod, to a ClusterIP (or an external frontend's internal
// scope); from outside, to an external frontend whose service has no
// endpoints at all. A Local frontend that has endpoints, none of them on
// this node, drops instead: kube-proxy writes DROP ("has no local
// endpoints") there, so that a load balancer's health check, not the
// client, finds the node out. Only the first packet of a flow is answered
// (a UDP datagram, a TCP SYN); anything else without backends is dropped
// (TC_ACT_SHOT). ICMP echo to services is not answered.
//
// Fragments: a translated datagram's first fragment is translated like any
// packet, and its later ones (no ports) as it was (lib/frag4.h).
//
// A new flow's backend (lib/lb4.h, lb4_select_backend): with ClientIP
// session affinity the one the client's address last got from the service
// (ferry_lb4_aff); otherwise a random slot, or for a service with
// LB_SVC_F_MAGLEV the entry of its Maglev table (ferry_lb4_maglv) the
// 5-tuple hashes to, so the choice does not depend on conntrack.
//
// IPv6 (lib/ingress6.h, lb6_ingress(); maps of its own for what holds an
// address: ferry_lb6_svc, _be, _rnat, _aff and ferry_ct6; slot values,
// affinity records, Maglev tables, counters and node_cfg shared with IPv4):
// from_pod and from_uplink do for IPv6 TCP and UDP what they do for IPv4,
// the same conntrack semantics, the same host routing (ferry_pod6 for the
// pods of this node, lib/route6.h), SNAT to node_cfg.snat_addr6 with a port
// of the one range, hairpin to fe80::1, affinity and Maglev (jhash2 of the
// tuple's nine words), a new flow without endpoints rejected with ICMPv6
// port unreachable (lib/icmp6.h), and ICMPv6 errors (destination
// unreachable, packet too big, time exceeded, parameter problem) about a
// packet of a tracked flow translated as that flow is, either way, as
// ICMP errors are (lib/icmp6_error.h): a router's packet too big about a
// Service flow teaches the client the path MTU to the address it used.
// to_uplink masquerades pods' IPv6 TCP and UDP to outside the cluster
// (node_cfg.cluster_cidrs6 to snat_addr6, lib/masq6.h) as IPv4's, and
// from_uplink translates the replies back and records inbound UDP flows;
// there is no ferry_node4 for IPv6, so a pod's flow to another node's IPv6
// address is masqueraded too.
// Not done for IPv6: echo tracking, so no masquerade of pings either
// (ICMPv6 other than errors, neighbour discovery first of all, passes
// untouched, PASS_OTHER_PROTO, to_uplink included); fragments and any
// other extension header (passed untouched: PASS_FRAGMENT,
// PASS_OTHER_PROTO; an error quoting one, PASS_MALFORMED), all of which
// go to the stack, host routing or not. Dispatch costs IPv4 packets
// nothing: the IPv6 path starts where pkt4_parse() says "not IPv4"
// (to_uplink's too: to_uplink6()). Its code
// shares the programs' stack (512 bytes, about 480 used): another inlined
// path must keep an eye on it. The ICMPv6 error path fits in the slots the
// other IPv6 paths use (it works in place, and keys its lookup in
// pkt6.tuple), and struct pkt6 did not grow for it: a bigger one moves the
// slots clang gives IPv4's path. from_uplink's part of the masquerade
// (masq6_inbound(), lb6_reply()'s masqueraded replies) fits as well, its
// cluster CIDR test comparing word by word and stopping at the first
// difference (cidr6_holds()): an unrolled OR of all 16 words' differences
// kept more values live than there are registers, and the spills took
// from_uplink's frame past 512. Host routing (route6()) takes no stack of
// its own: it looks the pod up by the destination address in the packet,
// not a copy.
//
// Counters: enum lb_metric. Entries age by the lifetimes in lib/ct.h;
// user space collects the stale ones.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/ct4.h"
#include "lib/eth.h"
#include "lib/flow4.h"
#include "lib/frag4.h"
#include "lib/icmp4.h"
#include "lib/icmp4_error.h"
#include "lib/ingress6.h"
#include "lib/lb.h"
#include "lib/lb4.h"
#include "lib/masq4.h"
#include "lib/masq6.h"
#include "lib/metrics.h"
#include "lib/nat4.h"
#include "lib/pkt4.h"
#include "lib/pkt6.h"
#include "lib/route4.h"
#include "lib/snat4.h"
#include "lib/verdict.h"

// A new flow to a service scope without backends: LB_METRIC_REJECT_NO_BACKEND
// when kube-proxy would reject it (see the top of the file) and it may be
// answered at all (a flow's first packet, icmp4_may_answer()), else
// DROP_NO_BACKEND. `svc_key` may be left pointing at the internal scope.
static __always_inline int lb4_no_backend(struct __sk_buff *skb, const struct pkt4 *pkt, struct lb4_key *svc_key,
					  const struct lb4_service *svc, bool from_outside)
{
	const struct lb4_service *internal;

	if (pkt->tuple.proto == LB_PROTO_TCP &&
	    (pkt->tcp_flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST | TCPHDR_FIN)) != TCPHDR_SYN)
		return DROP_NO_BACKEND;
	/* Local, from outside: reject only if the internal scope (every endpoint) is empty too. */
	if (from_outside && (svc->flags & LB_SVC_F_LOCAL)) {
		internal = lb4_internal_scope(svc_key, svc);
		if (internal == svc || internal->count != 0)
			return DROP_NO_BACKEND;
	}
	if (!icmp4_may_answer(skb, pkt))
		return DROP_NO_BACKEND;
	return LB_METRIC_REJECT_NO_BACKEND;
}

// A packet to a service: to the backend its flow is pinned to (`backend`,
// the one of `own`, the flow's forward entry: lb4_ingress() looked them
// up), or to a new one (lb4_select_backend()) for a new flow, or when the
// pinned backend is gone (`own` then names the entry to replace). A flow
// already tracked keeps its backend even once the service has no ready
// backends left, as established connections do under kube-proxy, and keeps
// its flags and source port. `svc` and `svc_key` (the service scope) are
// used only to pick a backend. `from_outside`: from_uplink's packet (SNAT
// when the service says so). A pod whose flow lands on itself gets its
// source SNATed to LB_HAIRPIN_ADDR4, keeping its port when no other flow to
// it has that one (CT_F_HAIRPIN). Sets *ct_flags; returns
// LB_METRIC_TRANSLATED, LB_METRIC_REJECT_NO_BACKEND (packet untouched: the
// caller answers it) or a drop code.
static __always_inline int lb4_forward(struct __sk_buff *skb, const struct pkt4 *pkt, struct ct_entry *own,
				       const struct lb4_backend *backend, struct lb4_key *svc_key,
				       const struct lb4_service *svc, bool from_outside, enum ct_flags *ct_flags)
{
	struct ct4_key key = pkt->tuple;
	struct ct4_key reply_key;
	struct ct4_flow flow = {};
	bool created = !own;
	__be16 held = 0;
	__be32 addr;
	__be16 port;
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
		own = NULL;	// replaced below, pinned to the new backend
		flow.rev_nat_index = svc->rev_nat_index;
		flow.flags = lb_new_flow_flags(svc, from_outside);
		if (svc->count == 0)
			return created ? lb4_no_backend(skb, pkt, svc_key, svc, from_outside) : DROP_NO_BACKEND;
		backend = lb4_select_backend(svc_key, svc, &pkt->tuple, &flow.backend_id);
		if (!backend)
			return DROP_NO_SLOT;
		if (!from_outside && backend->address == pkt->tuple.saddr)
			flow.flags |= CT_F_SNAT | CT_F_HAIRPIN;
	}
	addr = backend->address;
	port = backend->port;
	*ct_flags = flow.flags;

	if (flow.flags & CT_F_SNAT) {
		const struct node_cfg *cfg = node_cfg();

		if (!cfg)
			return DROP_NO_SNAT_ADDR;
		if (flow.flags & CT_F_HAIRPIN) {
			flow.snat_addr = bpf_htonl(LB_HAIRPIN_ADDR4);
			if (!held)
				held = pkt->tuple.sport;
		} else if (!held) {
			if (!cfg->snat_addr)
				return DROP_NO_SNAT_ADDR;
			flow.snat_addr = cfg->snat_addr;
		}
		flow.client_addr = pkt->tuple.saddr;
		flow.client_port = pkt->tuple.sport;
		ct4_key_set(&reply_key, pkt->tuple.proto, CT_REVERSE, addr, port, flow.snat_addr, 0);
		ret = snat4_claim(&reply_key, &flow, cfg, held);
		if (is_drop(ret))
			return ret;
	} else {
		ct4_key_set(&reply_key, pkt->tuple.proto, CT_REVERSE, addr, port, pkt->tuple.saddr, pkt->tuple.sport);
	}

	ret = ct4_track(own, &key, &reply_key, &flow, pkt->tcp_flags);
	if (is_drop(ret))
		return ret;
	if (created)
		lb_count(LB_METRIC_CT_CREATED);

	ret = nat4_rewrite_dst(skb, pkt, addr, port);
	if (is_drop(ret))
		return ret;
	if (flow.flags & CT_F_SNAT) {
		ret = nat4_rewrite_src(skb, pkt, flow.snat_addr, flow.snat_port);
		if (is_drop(ret))
			return ret;
	}
	return LB_METRIC_TRANSLATED;
}

// A pod's SYN straight to a backend (no service) from the port a closed
// service flow of its used: that flow's reverse entry has this connection's
// reply tuple, and would turn the backend's SYN-ACK into one from the
// service. netfilter lets a new connection take over a closed one's tuple
// too. An entry still open is left alone: both connections cannot own it.
static __always_inline void lb4_forget_closed_reply(const struct pkt4 *pkt)
{
	struct ct4_key stale;
	const struct ct_entry *entry;

	if (pkt->tuple.proto != LB_PROTO_TCP || (pkt->tcp_flags & (TCPHDR_SYN | TCPHDR_ACK)) != TCPHDR_SYN)
		return;
	ct4_key_set(&stale, LB_PROTO_TCP, CT_REVERSE, pkt->tuple.daddr, pkt->tuple.dport, pkt->tuple.saddr, pkt->tuple.sport);
	entry = ct4_lookup(&stale);
	if (entry && entry->state == CT_CLOSING && !(entry->flags & CT_F_MASQ))
		bpf_map_delete_elem(&ferry_ct4, &stale);
}

// A packet to no service: a reply of a load-balanced or masqueraded flow if
// conntrack knows its tuple as one (flow4_translate() says what it becomes).
// Sets *ct_flags; returns LB_METRIC_REV_TRANSLATED, a LB_METRIC_PASS_*
// reason, or a drop code.
static __always_inline int lb4_reply(struct __sk_buff *skb, const struct pkt4 *pkt, enum ct_flags *ct_flags)
{
	struct ct4_key key = pkt->tuple;
	struct ct4_key forward_key;
	struct ct4_flow flow = {};
	struct nat4_ends to;
	struct ct_entry *own;
	int ret;

	key.dir = CT_REVERSE;
	own = ct4_lookup(&key);
	if (!own) {
		lb4_forget_closed_reply(pkt);
		return LB_METRIC_PASS_NO_SERVICE;
	}
	if (!flow4_translate(&key, own, &to))
		return LB_METRIC_PASS_NO_REV_NAT;

	flow.backend_id = own->backend_id;
	flow.rev_nat_index = own->rev_nat_index;
	flow.flags = own->flags;
	if (flow.flags & CT_F_SNAT) {
		flow.client_addr = to.daddr;
		flow.client_port = to.dport;
		flow.snat_addr = pkt->tuple.daddr;
		flow.snat_port = pkt->tuple.dport;
	}
	*ct_flags = flow.flags;

	ct4_key_set(&forward_key, pkt->tuple.proto, CT_FORWARD, to.daddr, to.dport, to.saddr, to.sport);
	ret = ct4_track(own, &key, &forward_key, &flow, pkt->tcp_flags);
	if (is_drop(ret))
		return ret;

	ret = nat4_rewrite_src(skb, pkt, to.saddr, to.sport);
	if (is_drop(ret))
		return ret;
	ret = nat4_rewrite_dst(skb, pkt, to.daddr, to.dport);
	if (is_drop(ret))
		return ret;
	return LB_METRIC_REV_TRANSLATED;
}

// lb_verdict(), except that a rejected packet goes back to its sender as an
// ICMP error (lib/icmp4.h), a translated packet of a hairpin flow straight
// back into its pod (lib/eth.h), and any other is host-routed
// (lib/route4.h): `from_pod` says which program sees it.
static __always_inline int lb_send(struct __sk_buff *skb, const struct pkt4 *pkt, int outcome, enum ct_flags ct_flags,
				   bool from_pod)
{
	bool translated = lb_translated(outcome);
	int verdict;

	if (translated && pkt->first_fragment)
		frag4_record(skb, pkt, ct_flags);

	if (outcome == LB_METRIC_REJECT_NO_BACKEND) {
		verdict = icmp4_port_unreach(skb, pkt);
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
	verdict = route4(skb, pkt, from_pod, translated && (ct_flags & CT_F_REDIRECT));
	if (is_drop(verdict) || verdict == FERRY_ACT_OK)
		return lb_verdict(is_drop(verdict) ? verdict : outcome);
	lb_count(outcome);
	return verdict;
}

// What from_pod and from_uplink share: a packet of a tracked service flow
// goes to its backend; otherwise a packet to a service frontend is
// load-balanced (from a pod, in the frontend's internal scope; from
// outside, only an external frontend), anything else may be a reply to
// undo; ICMP errors are translated as their flow is. The flow's forward
// entry comes first: an established flow's packet needs neither the service
// nor anything else looked up, and one of a flow whose service is gone
// still reaches its backend, as conntrack keeps it under kube-proxy.
// `from_pod` is a constant at each call, so each program keeps only its own
// branches.
static __always_inline int lb4_ingress(struct __sk_buff *skb, bool from_pod)
{
	struct pkt4 pkt = {};
	struct lb4_key svc_key = {};
	const struct lb4_service *svc = NULL;
	const struct lb4_backend *backend = NULL;
	struct ct_entry *own;
	enum ct_flags ct_flags = 0;
	int outcome;
	__u32 why;

	if (!pkt4_parse(skb, &pkt, &why)) {
		/* Not IPv4: IPv6's path (lib/ingress6.h), which costs IPv4 packets nothing. */
		if (why == LB_METRIC_PASS_NOT_IP)
			return lb6_ingress(skb, from_pod);
		if (why != LB_METRIC_PASS_FRAGMENT)
			return lb_verdict(why);
		outcome = frag4_translate(skb, &pkt, &ct_flags);
		return outcome == LB_METRIC_PASS_FRAGMENT ? lb_verdict(outcome) : lb_send(skb, &pkt, outcome, ct_flags, from_pod);
	}
	if (pkt.icmp_error)
		return lb_send(skb, &pkt, icmp4_error_translate(skb, &pkt, false, &ct_flags), ct_flags, from_pod);
	/* A masqueraded flow's entry is to_uplink's: not a service flow. */
	own = ct4_lookup(&pkt.tuple);
	if (own && !(own->flags & CT_F_MASQ))
		backend = lb4_lookup_backend(own->backend_id);
	if (!backend) {
		svc = lb4_lookup_service(&svc_key, &pkt.tuple);
		if (!svc) {
			outcome = lb4_reply(skb, &pkt, &ct_flags);
			if (!from_pod && outcome == LB_METRIC_PASS_NO_SERVICE)
				masq4_inbound(&pkt);
			return lb_send(skb, &pkt, outcome, ct_flags, from_pod);
		}
		if (!from_pod && !(svc->flags & LB_SVC_F_EXTERNAL))
			return lb_verdict(LB_METRIC_PASS_NOT_EXTERNAL);
		if (from_pod)
			svc = lb4_internal_scope(&svc_key, svc);
	}
	outcome = lb4_forward(skb, &pkt, own, backend, &svc_key, svc, !from_pod, &ct_flags);
	return lb_send(skb, &pkt, outcome, ct_flags, from_pod);
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	return lb4_ingress(skb, true);
}

SEC("tc")
int from_uplink(struct __sk_buff *skb)
{
	return lb4_ingress(skb, false);
}

// to_uplink for IPv6 (lib/masq6.h): a pod's TCP or UDP packet to outside
// the cluster is masqueraded, and a pod's ICMPv6 error about a reply of a
// masqueraded flow translated with it; anything else that does not parse
// (echo, neighbour discovery, extension headers, fragments) passes
// untouched, counted by pkt6_parse()'s reason, as from_pod counts it.
static __always_inline int to_uplink6(struct __sk_buff *skb)
{
	struct pkt6 pkt = {};
	enum ct_flags ct_flags = 0;
	__u32 why;

	if (!pkt6_parse(skb, &pkt, &why))
		return lb_verdict(why);
	if (pkt6_icmp_error(&pkt))
		return lb_verdict(icmp6_error_translate(skb, &pkt, true, &ct_flags));
	return lb_verdict(masq6_snat(skb, &pkt));
}

SEC("tc")
int to_uplink(struct __sk_buff *skb)
{
	struct pkt4 pkt = {};
	enum ct_flags ct_flags = 0;
	int outcome;
	__u32 why;

	if (!pkt4_parse(skb, &pkt, &why)) {
		/* Not IPv4: IPv6's path, where it starts for from_pod and from_uplink too. */
		if (why == LB_METRIC_PASS_NOT_IP)
			return to_uplink6(skb);
		return lb_verdict(why == LB_METRIC_PASS_FRAGMENT ? frag4_translate(skb, &pkt, &ct_flags) : why);
	}
	if (pkt.icmp_error)
		return lb_verdict(icmp4_error_translate(skb, &pkt, true, &ct_flags));
	outcome = masq4_snat(skb, &pkt);
	if (outcome == LB_METRIC_MASQUERADED && pkt.first_fragment)
		frag4_record(skb, &pkt, CT_F_SNAT | CT_F_MASQ);
	return lb_verdict(outcome);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
