/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a tracked flow makes of a packet's tuple: the one rule that both
 * translates replies (lb4_reply) and the ICMP errors about a flow's packets
 * either way (lib/icmp4_error.h).
 */
#ifndef FERRY_LIB_FLOW4_H
#define FERRY_LIB_FLOW4_H

#include "include/ferry_lb.h"
#include "lib/lb4.h"

/* A tuple's addresses and ports after translation. */
struct nat4_ends {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

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
static __always_inline bool flow4_translate(const struct ct4_key *key, const struct ct_entry *entry, struct nat4_ends *to)
{
	bool masq = entry->flags & CT_F_MASQ;
	bool snat = entry->flags & CT_F_SNAT;

	to->saddr = key->saddr;
	to->sport = key->sport;
	to->daddr = key->daddr;
	to->dport = key->dport;
	if (key->dir == CT_REVERSE) {
		if (!masq) {
			const struct lb4_reverse_nat *rev_nat = lb4_lookup_rev_nat(entry->rev_nat_index);

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
			const struct lb4_backend *backend = lb4_lookup_backend(entry->backend_id);

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

#endif /* FERRY_LIB_FLOW4_H */
