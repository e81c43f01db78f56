/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What both families' service load balancing (lib/lb4.h, lib/lb6.h)
 * shares: a service slot's value and its flags, Maglev tables and affinity
 * records hold no address, so IPv4 and IPv6 frontends use the same ones
 * (rev_nat_indices and backend ids are unique across the families).
 */
#ifndef FERRY_LIB_LB_H
#define FERRY_LIB_LB_H

#include "include/ferry_lb.h"
#include "lib/common.h"

/*
 * A new flow's CT_F_* flags. Flows of external frontends go past the stack
 * both ways; from outside, a frontend with policy Cluster is SNATed too.
 */
static __always_inline enum ct_flags lb_new_flow_flags(const struct lb4_service *svc, bool from_outside)
{
	if (!(svc->flags & LB_SVC_F_EXTERNAL))
		return 0;
	if (from_outside && !(svc->flags & LB_SVC_F_LOCAL))
		return CT_F_REDIRECT | CT_F_SNAT;
	return CT_F_REDIRECT;
}

/* The Maglev table of a frontend's scope, if any; one of size 0 is none yet. */
static __always_inline const struct lb4_maglev *lb_maglev_table(__u16 rev_nat_index, enum lb_scope scope)
{
	struct lb4_maglev_key mkey = {
		.rev_nat_index = rev_nat_index,
		.scope = scope,
	};

	return bpf_map_lookup_elem(&ferry_lb4_maglv, &mkey);
}

/*
 * The backend id `table` (size > 0) names for a tuple's `hash`, taken with
 * table->seed.
 */
static __always_inline __u32 lb_maglev_entry(const struct lb4_maglev *table, __u32 hash)
{
	__u32 index = hash % table->size;

	/* size <= LB_MAGLEV_MAX by contract; the verifier needs the bound here. */
	if (index >= LB_MAGLEV_MAX)
		return 0;
	return table->backend_ids[index];
}

/*
 * Whether an affinity record has not been idle longer than the service's
 * timeout at `now`. A record from after `now`, lb_now() being a tick
 * behind, is fresh.
 */
static __always_inline bool lb_affinity_fresh(const struct lb4_affinity *aff, const struct lb4_service *svc, __u64 now)
{
	return !(now > aff->last_used && now - aff->last_used > (__u64)svc->affinity_timeout * NSEC_PER_SEC);
}

#endif /* FERRY_LIB_LB_H */
