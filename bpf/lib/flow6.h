/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a tracked IPv6 flow makes of a packet's tuple: lib/flow4.h's
 * flow4_translate() over ferry_ct6, for the ICMPv6 errors about a flow's
 * packets either way (lib/icmp6_error.h), masqueraded flows (lib/masq6.h)
 * included. lb6_reply() (lib/ingress6.h) applies the CT_REVERSE half of
 * the same rule itself, writing the reply's forward key as it goes.
 */
#ifndef FERRY_LIB_FLOW6_H
#define FERRY_LIB_FLOW6_H

#include "include/ferry_lb.h"
#include "lib/lb6.h"

/* A tuple's addresses and ports after translation. */
struct nat6_ends {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__be16 sport;
	__be16 dport;
};

/*
 * Addresses and ports, laid out as struct ct6_key's first bytes, so that
 * one bpf_csum_diff() measures a whole tuple's change (lib/icmp6_error.h).
 */
#define NAT6_ENDS_LEN	sizeof(struct nat6_ends)
_Static_assert(sizeof(struct nat6_ends) == 36, "nat6_ends is 36 bytes");
_Static_assert(__builtin_offsetof(struct ct6_key, saddr) == __builtin_offsetof(struct nat6_ends, saddr) &&
	       __builtin_offsetof(struct ct6_key, daddr) == __builtin_offsetof(struct nat6_ends, daddr) &&
	       __builtin_offsetof(struct ct6_key, sport) == __builtin_offsetof(struct nat6_ends, sport) &&
	       __builtin_offsetof(struct ct6_key, dport) == __builtin_offsetof(struct nat6_ends, dport),
	       "nat6_ends is laid out as ct6_key's first 36 bytes");

/*
 * Fills `to` with what the flow of `entry`, found under `key`, makes of a
 * packet with the tuple `key`:
 *  - a reply (CT_REVERSE): its source becomes the service address the
 *    client sent to (a masqueraded flow's keeps its own), its destination
 *    the client's own address:port for a flow with CT_F_SNAT;
 *  - a packet the client's way (CT_FORWARD): its destination becomes the
 *    backend (a masqueraded flow's stays), its source the address:port it
 *    was SNATed to for a flow with CT_F_SNAT.
 * Returns false when the flow's reverse NAT entry or backend is gone.
 */
static __always_inline bool flow6_translate(const struct ct6_key *key, const struct ct6_entry *entry,
					    struct nat6_ends *to)
{
	bool masq = entry->flags & CT_F_MASQ;
	bool snat = entry->flags & CT_F_SNAT;

	to->saddr = key->saddr;
	to->sport = key->sport;
	to->daddr = key->daddr;
	to->dport = key->dport;
	if (key->dir == CT_REVERSE) {
		if (!masq) {
			const struct lb6_reverse_nat *rev_nat = lb6_lookup_rev_nat(entry->rev_nat_index);

			if (!rev_nat)
				return false;
			to->saddr = rev_nat->address;
			to->sport = rev_nat->port;
		}
		if (snat) {
			to->daddr = entry->nat_addr;
			to->dport = entry->nat_port;
		}
	} else {
		if (!masq) {
			const struct lb6_backend *backend = lb6_lookup_backend(entry->backend_id);

			if (!backend)
				return false;
			to->daddr = backend->address;
			to->dport = backend->port;
		}
		if (snat) {
			to->saddr = entry->nat_addr;
			to->sport = entry->nat_port;
		}
	}
	return true;
}

#endif /* FERRY_LIB_FLOW6_H */
