/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 conntrack for load-balanced and masqueraded flows, ferry_ct6:
 * lib/ct4.h's twin, the same two entries per flow (CT_FORWARD under the
 * client's tuple, CT_REVERSE under the backend's reply tuple), the same
 * refresh and twin rules, the state machine and lifetimes of lib/ct.h, and
 * the same masqueraded (CT_F_MASQ) and inbound (CT_F_INBOUND) flows
 * (lib/masq6.h). No ICMPv6 flows: echo is not tracked.
 */
#ifndef FERRY_LIB_CT6_H
#define FERRY_LIB_CT6_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/ct.h"
#include "lib/metrics.h"
#include "lib/pkt6.h"

static __always_inline struct ct6_entry *ct6_lookup(const struct ct6_key *key)
{
	return bpf_map_lookup_elem(&ferry_ct6, key);
}

/* As struct ct4_flow: what both entries of a flow record besides state and time. */
struct ct6_flow {
	__u32 backend_id;
	__u16 rev_nat_index;
	enum ct_flags flags;
	struct in6_addr snat_addr;	/* the address:port the client's source became */
	struct in6_addr client_addr;	/* the client's own address:port */
	__be16 snat_port;
	__be16 client_port;
};

static __always_inline void ct6_key_set(struct ct6_key *key, enum lb_proto proto, enum ct_dir dir,
					const struct in6_addr *saddr, __be16 sport,
					const struct in6_addr *daddr, __be16 dport)
{
	key->saddr = *saddr;
	key->daddr = *daddr;
	key->sport = sport;
	key->dport = dport;
	key->proto = proto;
	key->dir = dir;
	key->pad = 0;
}

/* Fills an entry's flow fields for its direction `dir`. */
static __always_inline void ct6_entry_set_flow(struct ct6_entry *entry, enum ct_dir dir, const struct ct6_flow *flow)
{
	entry->backend_id = flow->backend_id;
	entry->rev_nat_index = flow->rev_nat_index;
	entry->flags = flow->flags;
	entry->nat_addr = dir == CT_FORWARD ? flow->snat_addr : flow->client_addr;
	entry->nat_port = dir == CT_FORWARD ? flow->snat_port : flow->client_port;
}

/* Whether ct6_entry_set_flow() would leave `entry` as it is. */
static __always_inline bool ct6_entry_has_flow(const struct ct6_entry *entry, enum ct_dir dir,
					       const struct ct6_flow *flow)
{
	return entry->backend_id == flow->backend_id && entry->rev_nat_index == flow->rev_nat_index &&
	       entry->flags == flow->flags &&
	       ipv6_addr_equal(&entry->nat_addr, dir == CT_FORWARD ? &flow->snat_addr : &flow->client_addr) &&
	       entry->nat_port == (dir == CT_FORWARD ? flow->snat_port : flow->client_port);
}

/*
 * Records one packet of a load-balanced IPv6 flow: ct4_track() on ferry_ct6
 * (see there). Returns 0 or DROP_CT_CREATE.
 */
static __always_inline int ct6_track(struct ct6_entry *own, const struct ct6_key *key,
				     const struct ct6_key *twin_key, const struct ct6_flow *flow,
				     __u8 tcp_flags)
{
	enum ct_state prev = own ? own->state : CT_NEW;
	enum ct_state state = ct_next_state(prev, key->proto, tcp_flags, key->dir);
	bool reopened = prev == CT_CLOSING && state == CT_NEW;
	__u64 lifetime = ct_lifetime(key->proto, state);
	__u64 now = lb_now();
	struct ct6_entry *twin;

	if (own && state == prev && (own->tcp_flags | tcp_flags) == own->tcp_flags &&
	    now - own->last_seen < CT_REFRESH_NS && ct6_entry_has_flow(own, key->dir, flow))
		return 0;
	if (own) {
		own->last_seen = now;
		own->lifetime_ns = lifetime;
		own->tcp_flags = reopened ? tcp_flags : own->tcp_flags | tcp_flags;
		own->state = state;
		/* The same as before, but for an SNATed flow moved to a new port. */
		ct6_entry_set_flow(own, key->dir, flow);
	} else {
		struct ct6_entry entry = {
			.last_seen = now,
			.lifetime_ns = lifetime,
			.tcp_flags = tcp_flags,
			.state = state,
		};

		ct6_entry_set_flow(&entry, key->dir, flow);
		if (bpf_map_update_elem(&ferry_ct6, key, &entry, BPF_ANY) < 0)
			return DROP_CT_CREATE;
	}

	twin = ct6_lookup(twin_key);
	if (twin) {
		if (key->dir == CT_REVERSE && twin->backend_id != flow->backend_id)
			return 0;
		twin->last_seen = now;
		twin->lifetime_ns = lifetime;
		ct6_entry_set_flow(twin, twin_key->dir, flow);
		if (reopened || !own)
			twin->tcp_flags = 0;
		twin->state = state;
	} else {
		struct ct6_entry entry = {
			.last_seen = now,
			.lifetime_ns = lifetime,
			.state = state,
		};

		ct6_entry_set_flow(&entry, twin_key->dir, flow);
		if (bpf_map_update_elem(&ferry_ct6, twin_key, &entry, BPF_ANY) < 0)
			return DROP_CT_CREATE;
		/* Evicted (LRU) or collected while its twin lived on. */
		if (own)
			lb_count(LB_METRIC_CT_RESTORED);
	}
	return 0;
}

#endif /* FERRY_LIB_CT6_H */
