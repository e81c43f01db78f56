/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 conntrack for load-balanced flows. A flow has two entries in
 * ferry_ct4: CT_FORWARD under the client's tuple (client -> service), which
 * pins the flow to its backend, and CT_REVERSE under the backend's reply
 * tuple (backend -> client; backend -> node address:port for a flow with
 * CT_F_SNAT), which says how to rewrite replies. Packets either way
 * refresh both (at least every CT_REFRESH_NS) and move the flow's state, so
 * the two age together and user space can garbage-collect each entry on its
 * own. The state machine and lifetimes are both families' (lib/ct.h).
 */
#ifndef FERRY_LIB_CT4_H
#define FERRY_LIB_CT4_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/ct.h"
#include "lib/metrics.h"
#include "lib/pkt4.h"

static __always_inline struct ct_entry *ct4_lookup(const struct ct4_key *key)
{
	return bpf_map_lookup_elem(&ferry_ct4, key);
}

/*
 * What both entries of a flow record besides state and time: the backend and
 * service the flow is pinned to, its CT_F_* flags, and each direction's
 * nat_* (enum ct_flags): the forward entry gets snat_*, the reverse entry
 * client_*. Both are 0 for a flow without CT_F_SNAT.
 */
struct ct4_flow {
	__u32 backend_id;
	__u16 rev_nat_index;
	enum ct_flags flags;
	__be32 snat_addr;	/* the node address:port the client's source became */
	__be32 client_addr;	/* the client's own address:port */
	__be16 snat_port;
	__be16 client_port;
};

static __always_inline void ct4_key_set(struct ct4_key *key, enum lb_proto proto, enum ct_dir dir,
					__be32 saddr, __be16 sport, __be32 daddr, __be16 dport)
{
	key->saddr = saddr;
	key->daddr = daddr;
	key->sport = sport;
	key->dport = dport;
	key->proto = proto;
	key->dir = dir;
	key->pad = 0;
}

/* Fills an entry's flow fields for its direction `dir`. */
static __always_inline void ct_entry_set_flow(struct ct_entry *entry, enum ct_dir dir, const struct ct4_flow *flow)
{
	entry->backend_id = flow->backend_id;
	entry->rev_nat_index = flow->rev_nat_index;
	entry->flags = flow->flags;
	entry->nat_addr = dir == CT_FORWARD ? flow->snat_addr : flow->client_addr;
	entry->nat_port = dir == CT_FORWARD ? flow->snat_port : flow->client_port;
}

/* Whether ct_entry_set_flow() would leave `entry` as it is. */
static __always_inline bool ct_entry_has_flow(const struct ct_entry *entry, enum ct_dir dir, const struct ct4_flow *flow)
{
	return entry->backend_id == flow->backend_id && entry->rev_nat_index == flow->rev_nat_index &&
	       entry->flags == flow->flags &&
	       entry->nat_addr == (dir == CT_FORWARD ? flow->snat_addr : flow->client_addr) &&
	       entry->nat_port == (dir == CT_FORWARD ? flow->snat_port : flow->client_port);
}

/*
 * Records one packet of a load-balanced flow. `own` is the entry the
 * packet's tuple `key` found (NULL: none yet, or it is to be replaced, e.g.
 * with a new backend), `twin_key` the other direction's tuple. Both entries
 * get the new state, lifetime and last_seen; a missing one is written.
 * A packet that changes nothing but the time, within CT_REFRESH_NS of
 * `own`'s last record, writes nothing.
 *
 * The forward entry decides which backend and service a flow has: going
 * forward, the reverse twin is made to agree (it may be left from an earlier
 * flow with the same reply tuple, e.g. the client's port reused towards
 * another service with the same backend). Going back, a forward twin pinned
 * to another backend is left alone: the reply came over a tuple left from
 * before the flow moved. Returns 0 or DROP_CT_CREATE.
 *
 * Updates in place are plain stores: two CPUs refreshing one flow race only
 * over timestamps and flags, which either value settles.
 */
static __always_inline int ct4_track(struct ct_entry *own, const struct ct4_key *key,
				     const struct ct4_key *twin_key, const struct ct4_flow *flow,
				     __u8 tcp_flags)
{
	enum ct_state prev = own ? own->state : CT_NEW;
	enum ct_state state = ct_next_state(prev, key->proto, tcp_flags, key->dir);
	bool reopened = prev == CT_CLOSING && state == CT_NEW;
	__u64 lifetime = ct_lifetime(key->proto, state);
	__u64 now = lb_now();
	struct ct_entry *twin;

	if (own && state == prev && (own->tcp_flags | tcp_flags) == own->tcp_flags &&
	    now - own->last_seen < CT_REFRESH_NS && ct_entry_has_flow(own, key->dir, flow))
		return 0;
	if (own) {
		own->last_seen = now;
		own->lifetime_ns = lifetime;
		own->tcp_flags = reopened ? tcp_flags : own->tcp_flags | tcp_flags;
		own->state = state;
		/* The same as before, but for an SNATed flow moved to a new port. */
		ct_entry_set_flow(own, key->dir, flow);
	} else {
		struct ct_entry entry = {
			.last_seen = now,
			.lifetime_ns = lifetime,
			.tcp_flags = tcp_flags,
			.state = state,
		};

		ct_entry_set_flow(&entry, key->dir, flow);
		if (bpf_map_update_elem(&ferry_ct4, key, &entry, BPF_ANY) < 0)
			return DROP_CT_CREATE;
	}

	twin = ct4_lookup(twin_key);
	if (twin) {
		if (key->dir == CT_REVERSE && twin->backend_id != flow->backend_id)
			return 0;
		twin->last_seen = now;
		twin->lifetime_ns = lifetime;
		ct_entry_set_flow(twin, twin_key->dir, flow);
		if (reopened || !own)
			twin->tcp_flags = 0;
		twin->state = state;
	} else {
		struct ct_entry entry = {
			.last_seen = now,
			.lifetime_ns = lifetime,
			.state = state,
		};

		ct_entry_set_flow(&entry, twin_key->dir, flow);
		if (bpf_map_update_elem(&ferry_ct4, twin_key, &entry, BPF_ANY) < 0)
			return DROP_CT_CREATE;
		/* Evicted (LRU) or collected while its twin lived on. */
		if (own)
			lb_count(LB_METRIC_CT_RESTORED);
	}
	return 0;
}

#endif /* FERRY_LIB_CT4_H */
