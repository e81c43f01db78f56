/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fragmented datagrams of translated flows. Only the first fragment holds
 * the L4 header, so only it can be matched to a flow and translated (its L4
 * checksum, which covers the whole datagram, fixed with it: everything that
 * changes is in it or in the pseudo header). Its translation is recorded
 * (ferry_frag4) under the datagram's identity as it came, and the later
 * fragments, found by that identity, get the same addresses, as the node
 * would give them after netfilter's defragmentation. A later fragment that
 * overtakes its first, or comes after FRAG4_LIFETIME, passes untranslated.
 */
#ifndef FERRY_LIB_FRAG4_H
#define FERRY_LIB_FRAG4_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/csum.h"
#include "lib/pkt4.h"

/* As long as the kernel waits for a datagram's fragments (net.ipv4.ipfrag_time). */
#define FRAG4_LIFETIME		(30 * NSEC_PER_SEC)

static __always_inline void frag4_key_set(struct frag4_key *key, const struct pkt4 *pkt)
{
	key->saddr = pkt->tuple.saddr;
	key->daddr = pkt->tuple.daddr;
	key->id = pkt->ip_id;
	key->proto = pkt->tuple.proto;
	key->pad = 0;
}

/*
 * After a first fragment was translated (its header now as it leaves):
 * records what its addresses became, and its flow's `flags`.
 */
static __always_inline void frag4_record(struct __sk_buff *skb, const struct pkt4 *pkt, enum ct_flags flags)
{
	struct frag4_entry entry = { .first_seen = lb_now(), .flags = flags };
	struct frag4_key key;
	struct iphdr *ip = pkt4_ip(skb);

	if (!ip)
		return;
	entry.saddr = ip->saddr;
	entry.daddr = ip->daddr;
	frag4_key_set(&key, pkt);
	/* A failed write leaves the later fragments untranslated, as before there was this. */
	bpf_map_update_elem(&ferry_frag4, &key, &entry, BPF_ANY);
}

/*
 * A later fragment (pkt4_parse() said LB_METRIC_PASS_FRAGMENT): rewritten
 * as its datagram's first was, the IP header checksum with it. Sets
 * *ct_flags to the flow's. Returns LB_METRIC_FRAG_TRANSLATED,
 * LB_METRIC_PASS_FRAGMENT (no translated first fragment known), or DROP_NAT.
 */
static __always_inline int frag4_translate(struct __sk_buff *skb, const struct pkt4 *pkt, enum ct_flags *ct_flags)
{
	const struct frag4_entry *entry;
	struct frag4_key key;
	struct iphdr *ip;

	frag4_key_set(&key, pkt);
	entry = bpf_map_lookup_elem(&ferry_frag4, &key);
	if (!entry || lb_now() - entry->first_seen > FRAG4_LIFETIME)
		return LB_METRIC_PASS_FRAGMENT;
	ip = pkt4_ip(skb);
	if (!ip)
		return DROP_NAT;
	ip->check = csum_replace4(ip->check, ip->saddr, entry->saddr);
	ip->saddr = entry->saddr;
	ip->check = csum_replace4(ip->check, ip->daddr, entry->daddr);
	ip->daddr = entry->daddr;
	*ct_flags = entry->flags;
	return LB_METRIC_FRAG_TRANSLATED;
}

#endif /* FERRY_LIB_FRAG4_H */
