/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 service, backend and reverse NAT lookups, and backend selection. */
#ifndef FERRY_LIB_LB4_H
#define FERRY_LIB_LB4_H

#include "include/ferry_lb.h"

/* The service (slot 0) a tuple's destination names, if any; fills `key`. */
static __always_inline const struct lb4_service *lb4_lookup_service(struct lb4_key *key,
								    const struct ct4_key *tuple)
{
	key->address = tuple->daddr;
	key->dport = tuple->dport;
	key->slot = 0;
	key->proto = tuple->proto;
	key->scope = LB_SCOPE_EXTERNAL;
	return bpf_map_lookup_elem(&ferry_lb4_svc, key);
}

/*
 * The entry from_pod balances over, given the external-scope entry `svc`
 * that lb4_lookup_service() found with `key`: for an external frontend
 * with policy Local, its internal scope (every endpoint, as kube-proxy
 * sends traffic from inside the cluster); otherwise `svc` itself. Should the
 * internal entry be missing (user space midway through a rewrite), the
 * external one serves.
 */
static __always_inline const struct lb4_service *lb4_internal_scope(struct lb4_key *key,
								    const struct lb4_service *svc)
{
	const struct lb4_service *internal;

	if (!(svc->flags & LB_SVC_F_LOCAL))
		return svc;
	key->scope = LB_SCOPE_INTERNAL;
	internal = bpf_map_lookup_elem(&ferry_lb4_svc, key);
	if (internal)
		return internal;
	key->scope = LB_SCOPE_EXTERNAL;
	return svc;
}

/*
 * One of a service's `count` (> 0) backend slots, uniformly at random, from
 * the `key` lb4_lookup_service() filled. NULL when user space is midway
 * through rewriting the service's slots.
 */
static __always_inline const struct lb4_service *lb4_select_slot(struct lb4_key *key, __u16 count)
{
	key->slot = (bpf_get_prandom_u32() % count) + 1;
	return bpf_map_lookup_elem(&ferry_lb4_svc, key);
}

static __always_inline const struct lb4_backend *lb4_lookup_backend(__u32 backend_id)
{
	return bpf_map_lookup_elem(&ferry_lb4_be, &backend_id);
}

static __always_inline const struct lb4_reverse_nat *lb4_lookup_rev_nat(__u16 rev_nat_index)
{
	return bpf_map_lookup_elem(&ferry_lb4_rnat, &rev_nat_index);
}

#endif /* FERRY_LIB_LB4_H */
