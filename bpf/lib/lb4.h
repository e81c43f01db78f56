/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 service, backend and reverse NAT lookups, and backend selection. */
#ifndef FERRY_LIB_LB4_H
#define FERRY_LIB_LB4_H

#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/jhash.h"
#include "lib/lb.h"

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

/*
 * The backend `backend_id` names; NULL when there is none: an id past the
 * array, or an unused (all-zero) slot, 0.0.0.0 being no backend's address.
 * Every caller's "backend gone" (a tracked flow reselected, a Maglev table
 * or affinity record naming a removed backend) rests on that NULL.
 */
static __always_inline const struct lb4_backend *lb4_lookup_backend(__u32 backend_id)
{
	const struct lb4_backend *backend = bpf_map_lookup_elem(&ferry_lb4_be, &backend_id);

	if (!backend || !backend->address)
		return NULL;
	return backend;
}

/*
 * The 5-tuple's hash for Maglev: jhash of the addresses and ports (as they
 * are on the wire), the protocol folded into the seed. The same tuple hashes
 * the same on every node with the same seed, with or without conntrack.
 */
static __always_inline __u32 lb4_tuple_hash(const struct ct4_key *tuple, __u32 seed)
{
	__u32 ports = ((__u32)tuple->sport << 16) | tuple->dport;

	return jhash_3words(tuple->saddr, tuple->daddr, ports, seed ^ tuple->proto);
}

/*
 * The backend id the Maglev table of the service scope `key` names for
 * `tuple`; 0 (no backend) when the scope has no table yet.
 */
static __always_inline __u32 lb4_maglev_backend(const struct lb4_service *svc, const struct lb4_key *key,
						const struct ct4_key *tuple)
{
	const struct lb4_maglev *table = lb_maglev_table(svc->rev_nat_index, key->scope);

	if (!table || !table->size)
		return 0;
	return lb_maglev_entry(table, lb4_tuple_hash(tuple, table->seed));
}

static __always_inline void lb4_affinity_key_set(struct lb4_affinity_key *akey, const struct lb4_service *svc,
						 const struct lb4_key *key, __be32 client)
{
	akey->client_addr = client;
	akey->rev_nat_index = svc->rev_nat_index;
	akey->scope = key->scope;
	akey->pad = 0;
}

/*
 * Whether an affinity record still holds at `now`: not idle longer than the
 * service's timeout, and its backend still the service's: the slot it was
 * chosen from still names it (slot 0: chosen by Maglev, which has no slot;
 * then the backend need only still exist).
 */
static __always_inline bool lb4_affinity_valid(const struct lb4_affinity *aff, const struct lb4_key *key,
					       const struct lb4_service *svc, __u64 now)
{
	struct lb4_key slot_key = *key;
	const struct lb4_service *slot;

	if (!lb_affinity_fresh(aff, svc, now))
		return false;
	if (aff->slot == 0)
		return true;
	if (aff->slot > svc->count)
		return false;
	slot_key.slot = aff->slot;
	slot = bpf_map_lookup_elem(&ferry_lb4_svc, &slot_key);
	return slot && slot->backend_id == aff->backend_id;
}

/*
 * A new flow's backend, from the service `svc` (count > 0) that
 * lb4_lookup_service() found with `key`: with ClientIP affinity
 * (affinity_timeout > 0) the one the client's address last got, while that
 * holds; otherwise by Maglev (LB_SVC_F_MAGLEV) or a random slot, recorded
 * for the client when the service has affinity. Sets *backend_id; NULL when
 * the chosen slot or backend is missing (user space midway through a
 * rewrite). A Maglev table naming a missing backend falls back to random.
 */
static __always_inline const struct lb4_backend *lb4_select_backend(struct lb4_key *key, const struct lb4_service *svc,
								    const struct ct4_key *tuple, __u32 *backend_id)
{
	struct lb4_affinity_key akey = {};
	struct lb4_affinity *aff;
	const struct lb4_backend *backend = NULL;
	const struct lb4_service *slot;
	__u16 slot_nr = 0;
	__u64 now = 0;
	__u32 id = 0;

	if (svc->affinity_timeout) {
		lb4_affinity_key_set(&akey, svc, key, tuple->saddr);
		now = lb_now();
		aff = bpf_map_lookup_elem(&ferry_lb4_aff, &akey);
		if (aff && lb4_affinity_valid(aff, key, svc, now)) {
			id = aff->backend_id;
			backend = lb4_lookup_backend(id);
			if (backend) {
				aff->last_used = now;
				*backend_id = id;
				return backend;
			}
		}
	}

	if (svc->flags & LB_SVC_F_MAGLEV) {
		id = lb4_maglev_backend(svc, key, tuple);
		backend = id ? lb4_lookup_backend(id) : NULL;
	}
	if (!backend) {
		slot = lb4_select_slot(key, svc->count);
		if (!slot)
			return NULL;
		id = slot->backend_id;
		slot_nr = key->slot;
		backend = lb4_lookup_backend(id);
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
		bpf_map_update_elem(&ferry_lb4_aff, &akey, &record, BPF_ANY);
	}
	*backend_id = id;
	return backend;
}

static __always_inline const struct lb4_reverse_nat *lb4_lookup_rev_nat(__u16 rev_nat_index)
{
	return bpf_map_lookup_elem(&ferry_lb4_rnat, &rev_nat_index);
}

#endif /* FERRY_LIB_LB4_H */
