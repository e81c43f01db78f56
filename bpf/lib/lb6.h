/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 service, backend and reverse NAT lookups, and backend selection:
 * lib/lb4.h's twins over ferry_lb6_svc, ferry_lb6_be, ferry_lb6_rnat and
 * ferry_lb6_aff. Slot values, Maglev tables and affinity records are the
 * same as IPv4's (lib/lb.h).
 */
#ifndef FERRY_LIB_LB6_H
#define FERRY_LIB_LB6_H

#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/jhash.h"
#include "lib/lb.h"

/* The service (slot 0) a tuple's destination names, if any; fills `key`. */
static __always_inline const struct lb4_service *lb6_lookup_service(struct lb6_key *key,
								    const struct ct6_key *tuple)
{
	key->address = tuple->daddr;
	key->dport = tuple->dport;
	key->slot = 0;
	key->proto = tuple->proto;
	key->scope = LB_SCOPE_EXTERNAL;
	return bpf_map_lookup_elem(&ferry_lb6_svc, key);
}

/* lb4_internal_scope(): for a Local external frontend, its internal scope. */
static __always_inline const struct lb4_service *lb6_internal_scope(struct lb6_key *key,
								    const struct lb4_service *svc)
{
	const struct lb4_service *internal;

	if (!(svc->flags & LB_SVC_F_LOCAL))
		return svc;
	key->scope = LB_SCOPE_INTERNAL;
	internal = bpf_map_lookup_elem(&ferry_lb6_svc, key);
	if (internal)
		return internal;
	key->scope = LB_SCOPE_EXTERNAL;
	return svc;
}

/* One of a service's `count` (> 0) backend slots, uniformly at random. */
static __always_inline const struct lb4_service *lb6_select_slot(struct lb6_key *key, __u16 count)
{
	key->slot = (bpf_get_prandom_u32() % count) + 1;
	return bpf_map_lookup_elem(&ferry_lb6_svc, key);
}

/* lb4_lookup_backend(): NULL past the array or for an unused slot (address ::). */
static __always_inline const struct lb6_backend *lb6_lookup_backend(__u32 backend_id)
{
	const struct lb6_backend *backend = bpf_map_lookup_elem(&ferry_lb6_be, &backend_id);
	const __u32 *a;

	if (!backend)
		return NULL;
	a = backend->address.in6_u.u6_addr32;
	if (!(a[0] | a[1] | a[2] | a[3]))
		return NULL;
	return backend;
}

/*
 * The 5-tuple's hash for Maglev: jhash2() of the addresses' eight words and
 * the ports' (as they are on the wire), the protocol folded into the seed,
 * as lb4_tuple_hash() does with IPv4's three.
 */
static __always_inline __u32 lb6_tuple_hash(const struct ct6_key *tuple, __u32 seed)
{
	__u32 words[9];
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		words[i] = tuple->saddr.in6_u.u6_addr32[i];
		words[4 + i] = tuple->daddr.in6_u.u6_addr32[i];
	}
	words[8] = ((__u32)tuple->sport << 16) | tuple->dport;
	return jhash2(words, 9, seed ^ tuple->proto);
}

/*
 * The backend id the Maglev table of the service scope `key` names for
 * `tuple`; 0 (no backend) when the scope has no table yet.
 */
static __always_inline __u32 lb6_maglev_backend(const struct lb4_service *svc, const struct lb6_key *key,
						const struct ct6_key *tuple)
{
	const struct lb4_maglev *table = lb_maglev_table(svc->rev_nat_index, key->scope);

	if (!table || !table->size)
		return 0;
	return lb_maglev_entry(table, lb6_tuple_hash(tuple, table->seed));
}

/* lb4_affinity_valid(): fresh, and the slot it was chosen from still names its backend. */
static __always_inline bool lb6_affinity_valid(const struct lb4_affinity *aff, const struct lb6_key *key,
					       const struct lb4_service *svc, __u64 now)
{
	struct lb6_key slot_key = *key;
	const struct lb4_service *slot;

	if (!lb_affinity_fresh(aff, svc, now))
		return false;
	if (aff->slot == 0)
		return true;
	if (aff->slot > svc->count)
		return false;
	slot_key.slot = aff->slot;
	slot = bpf_map_lookup_elem(&ferry_lb6_svc, &slot_key);
	return slot && slot->backend_id == aff->backend_id;
}

/*
 * A new flow's backend, as lb4_select_backend(): the client's affinity
 * while it holds, else Maglev (LB_SVC_F_MAGLEV) or a random slot, recorded
 * for the client when the service has affinity. Sets *backend_id; NULL
 * when the chosen slot or backend is missing.
 */
static __always_inline const struct lb6_backend *lb6_select_backend(struct lb6_key *key, const struct lb4_service *svc,
								    const struct ct6_key *tuple, __u32 *backend_id)
{
	struct lb6_affinity_key akey = {};
	struct lb4_affinity *aff;
	const struct lb6_backend *backend = NULL;
	const struct lb4_service *slot;
	__u16 slot_nr = 0;
	__u64 now = 0;
	__u32 id = 0;

	if (svc->affinity_timeout) {
		akey.client_addr = tuple->saddr;
		akey.rev_nat_index = svc->rev_nat_index;
		akey.scope = key->scope;
		now = lb_now();
		aff = bpf_map_lookup_elem(&ferry_lb6_aff, &akey);
		if (aff && lb6_affinity_valid(aff, key, svc, now)) {
			id = aff->backend_id;
			backend = lb6_lookup_backend(id);
			if (backend) {
				aff->last_used = now;
				*backend_id = id;
				return backend;
			}
		}
	}

	if (svc->flags & LB_SVC_F_MAGLEV) {
		id = lb6_maglev_backend(svc, key, tuple);
		backend = id ? lb6_lookup_backend(id) : NULL;
	}
	if (!backend) {
		slot = lb6_select_slot(key, svc->count);
		if (!slot)
			return NULL;
		id = slot->backend_id;
		slot_nr = key->slot;
		backend = lb6_lookup_backend(id);
		if (!backend)
			return NULL;
	}

	if (svc->affinity_timeout) {
		struct lb4_affinity record = {
			.last_used = now,
			.backend_id = id,
			.slot = slot_nr,
		};

		/* A failed write only loses the affinity, not the flow. */
		bpf_map_update_elem(&ferry_lb6_aff, &akey, &record, BPF_ANY);
	}
	*backend_id = id;
	return backend;
}

static __always_inline const struct lb6_reverse_nat *lb6_lookup_rev_nat(__u16 rev_nat_index)
{
	return bpf_map_lookup_elem(&ferry_lb6_rnat, &rev_nat_index);
}

#endif /* FERRY_LIB_LB6_H */
