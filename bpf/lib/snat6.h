/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Source NAT for IPv6 flows: lib/snat4.h's twin over ferry_ct6. Flows from
 * outside to a Cluster-policy frontend leave with the node's IPv6 address
 * (node_cfg.snat_addr6) and a port of the range IPv4 uses too (node_cfg's
 * snat_port_min/max: the two families' reply tuples never collide, so
 * each may hand out every port); hairpin flows (CT_F_HAIRPIN) claim theirs
 * here too. A port is claimed by writing the flow's reverse entry with
 * BPF_NOEXIST, as for IPv4.
 */
#ifndef FERRY_LIB_SNAT6_H
#define FERRY_LIB_SNAT6_H

#include <bpf/bpf_endian.h>

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/ct6.h"
#include "lib/snat.h"

/* snat4_ours(): `entry`, found under a reply tuple, is this flow's reverse entry. */
static __always_inline bool snat6_ours(const struct ct6_entry *entry, const struct ct6_flow *flow)
{
	return (entry->flags & CT_F_SNAT) && ipv6_addr_equal(&entry->nat_addr, &flow->client_addr) &&
	       entry->nat_port == flow->client_port && entry->backend_id == flow->backend_id &&
	       entry->rev_nat_index == flow->rev_nat_index;
}

/*
 * Claims a source port for `flow` towards the backend in `reply_key`, as
 * snat4_claim() does: `held` when still the flow's own (or free), else a
 * random one of the range. Sets flow->snat_port and reply_key->dport;
 * returns 0 or DROP_NO_SNAT_PORT.
 */
static __always_inline int snat6_claim(struct ct6_key *reply_key, struct ct6_flow *flow,
				       const struct node_cfg *cfg, __be16 held)
{
	struct ct6_entry entry = {
		.last_seen = lb_now(),
		.lifetime_ns = ct_lifetime(reply_key->proto, CT_NEW),
		.state = CT_NEW,
	};
	__u32 min = cfg->snat_port_min;
	__u32 span = (__u32)cfg->snat_port_max - min + 1;
	const struct ct6_entry *found;
	int i;

	ct6_entry_set_flow(&entry, CT_REVERSE, flow);
	if (held) {
		reply_key->dport = held;
		found = ct6_lookup(reply_key);
		/* Gone (evicted, collected): take it again if nobody else has. */
		if ((found && snat6_ours(found, flow)) ||
		    (!found && bpf_map_update_elem(&ferry_ct6, reply_key, &entry, BPF_NOEXIST) == 0)) {
			flow->snat_port = held;
			return 0;
		}
	}

	/* No range (node config not written: port 0 is none). */
	if (!cfg->snat_port_min || cfg->snat_port_max < cfg->snat_port_min)
		return DROP_NO_SNAT_PORT;
	for (i = 0; i < SNAT_TRIES; i++) {
		__be16 port = bpf_htons(min + bpf_get_prandom_u32() % span);

		reply_key->dport = port;
		flow->snat_port = port;
		if (bpf_map_update_elem(&ferry_ct6, reply_key, &entry, BPF_NOEXIST) == 0)
			return 0;
	}
	return DROP_NO_SNAT_PORT;
}

#endif /* FERRY_LIB_SNAT6_H */
