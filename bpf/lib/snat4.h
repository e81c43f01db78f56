/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Source NAT for flows from outside the node to a service with
 * externalTrafficPolicy Cluster, as kube-proxy masquerades them: the
 * client's source becomes the node's address (ferry_node_cfg) and a port of
 * the configured range, so that the backend, wherever it runs, replies
 * through this node, which restores the client's address. Pods' flows to
 * outside the cluster (lib/masq4.h) and hairpin flows (CT_F_HAIRPIN) claim
 * their ports here too.
 *
 * A port is free for a backend when no flow's reverse entry holds the reply
 * tuple (backend -> node address:port): claiming one writes that entry with
 * BPF_NOEXIST, so two CPUs can never hand out the same one. Ports come back
 * when the flow's entries are collected or evicted. The range should lie
 * outside the node's own ephemeral ports (net.ipv4.ip_local_port_range) and
 * NodePorts: a reply to the node's own connection from such a port would be
 * mistaken for a reply of the flow holding it.
 */
#ifndef FERRY_LIB_SNAT4_H
#define FERRY_LIB_SNAT4_H

#include <bpf/bpf_endian.h>

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/ct4.h"
#include "lib/snat.h"

/*
 * Whether `entry`, found under a reply tuple, is the reverse entry of this
 * flow: same client, backend and service (one client port may reach one
 * backend through two services, as a hairpin flow offering its own port does).
 */
static __always_inline bool snat4_ours(const struct ct_entry *entry, const struct ct4_flow *flow)
{
	return (entry->flags & CT_F_SNAT) && entry->nat_addr == flow->client_addr &&
	       entry->nat_port == flow->client_port && entry->backend_id == flow->backend_id &&
	       entry->rev_nat_index == flow->rev_nat_index;
}

/*
 * Claims a source port for `flow` (its snat_addr, client_* and backend
 * filled in) towards the backend in `reply_key` (saddr, sport, proto and
 * daddr filled in): the port the flow already holds when it is still its
 * own (`held`, network order; 0: none; a hairpin flow offers the client's
 * own), otherwise a random one of the range. The flow's reverse entry is
 * written on the way; ct4_track() then completes both entries. Sets
 * flow->snat_port and reply_key->dport; returns 0 or DROP_NO_SNAT_PORT.
 */
static __always_inline int snat4_claim(struct ct4_key *reply_key, struct ct4_flow *flow,
				       const struct node_cfg *cfg, __be16 held)
{
	struct ct_entry entry = {
		.last_seen = lb_now(),
		.lifetime_ns = ct_lifetime(reply_key->proto, CT_NEW),
		.state = CT_NEW,
	};
	__u32 min = cfg->snat_port_min;
	__u32 span = (__u32)cfg->snat_port_max - min + 1;
	const struct ct_entry *found;
	int i;

	ct_entry_set_flow(&entry, CT_REVERSE, flow);
	if (held) {
		reply_key->dport = held;
		found = ct4_lookup(reply_key);
		/* Gone (evicted, collected): take it again if nobody else has. */
		if ((found && snat4_ours(found, flow)) ||
		    (!found && bpf_map_update_elem(&ferry_ct4, reply_key, &entry, BPF_NOEXIST) == 0)) {
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
		if (bpf_map_update_elem(&ferry_ct4, reply_key, &entry, BPF_NOEXIST) == 0)
			return 0;
	}
	return DROP_NO_SNAT_PORT;
}

#endif /* FERRY_LIB_SNAT4_H */
