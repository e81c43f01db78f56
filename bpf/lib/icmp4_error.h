/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP errors about a translated flow (destination unreachable, with
 * fragmentation needed, time exceeded, parameter problem) translated as
 * the flow is, as Linux's conntrack NAT does. An error quotes the packet it
 * is about (its IP header and at least 8 bytes of what follows, RFC 792) as
 * that packet was where the error was made, i.e. translated:
 *
 *   eth | IP (outer) | ICMP (8) | quoted IP (20..60) | ports or echo id ...
 *
 * The quote is rewritten to what its packet was on the other side, so the
 * sender's stack finds the socket it belongs to, and so is the outer header:
 * the error goes to the quoted packet's (original) sender, and when the
 * quoted packet's destination complains itself (a backend's port
 * unreachable) it comes from what the sender sent to (the service address);
 * a router in between keeps its own address.
 *
 * Checksums: the outer IP header's (by the helpers); inside the quote the IP
 * header's and the L4 one when quoted (UDP's unless 0, "none"; an echo's;
 * TCP's when 20 bytes of TCP are quoted), worked out here (csum_update());
 * and the ICMP checksum, which covers the whole quote, by the difference of
 * every word changed.
 */
#ifndef FERRY_LIB_ICMP4_ERROR_H
#define FERRY_LIB_ICMP4_ERROR_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/csum.h"
#include "lib/ct4.h"
#include "lib/flow4.h"
#include "lib/nat4.h"
#include "lib/pkt4.h"

/* The packet an error quotes. */
struct icmp4_quote {
	struct ct4_key tuple;	/* as quoted; dir CT_FORWARD */
	__u32 ip_off;		/* its IP header, from the Ethernet header */
	__u32 l4_off;		/* its L4 header */
	__u8 echo_type;		/* a quoted echo's type: which port its identifier is */
};

/* The quoted fields a translation changes, to measure the ICMP checksum's difference at once. */
struct icmp4_quote_words {
	__be32 addrs[2];	/* source, destination */
	__be16 ports[2];	/* TCP/UDP: source, destination; echo: identifier, sequence */
	__sum16 ip_check;
	__sum16 l4_check;
};

#define IPV4_CHECK_OFF	__builtin_offsetof(struct iphdr, check)
#define IPV4_ADDRS_OFF	__builtin_offsetof(struct iphdr, saddr)
#define TCP_CHECK_OFF	__builtin_offsetof(struct tcphdr, check)
#define UDP_CHECK_OFF	__builtin_offsetof(struct udphdr, check)

/*
 * Reads the quote of the error `pkt` into `q`; false when it is no IPv4
 * TCP, UDP or echo packet with 8 bytes of L4 (RFC 1122 3.2.2: nothing is
 * said about an error, so no error is quoted), or a later fragment.
 */
static __always_inline bool icmp4_quote_parse(struct __sk_buff *skb, const struct pkt4 *pkt, struct icmp4_quote *q)
{
	struct iphdr ip;
	union {
		struct udphdr ports;	/* TCP's are at the same offsets */
		struct icmphdr icmp;
	} l4;

	q->ip_off = pkt->l4_off + sizeof(struct icmphdr);
	if (bpf_skb_load_bytes(skb, q->ip_off, &ip, sizeof(ip)) < 0)
		return false;
	if (ip.version != 4 || ip.ihl < 5 || ipv4_is_later_fragment(&ip) || !lb_proto_supported(ip.protocol))
		return false;
	q->l4_off = q->ip_off + ip.ihl * 4;
	if (bpf_skb_load_bytes(skb, q->l4_off, &l4, sizeof(l4)) < 0)
		return false;
	ct4_key_set(&q->tuple, ip.protocol, CT_FORWARD, ip.saddr, l4.ports.source, ip.daddr, l4.ports.dest);
	q->echo_type = 0;
	if (ip.protocol == LB_PROTO_ICMP) {
		if (!icmp4_is_echo(l4.icmp.type))
			return false;
		q->echo_type = l4.icmp.type;
		icmp4_echo_ports(&q->tuple, l4.icmp.type, l4.icmp.un.echo.id);
	}
	return true;
}

/* Where the quote's L4 checksum is, 0 when not quoted. */
static __always_inline __u32 icmp4_quote_l4_check_off(const struct __sk_buff *skb, const struct icmp4_quote *q)
{
	switch (q->tuple.proto) {
	case LB_PROTO_TCP:
		return skb->len >= q->l4_off + TCP_CHECK_OFF + sizeof(__sum16) ? q->l4_off + TCP_CHECK_OFF : 0;
	case LB_PROTO_UDP:
		return q->l4_off + UDP_CHECK_OFF;
	default:
		return q->l4_off + ICMP4_CSUM_OFF;
	}
}

/*
 * Rewrites the error `pkt` about the quoted packet `q`. `to` is what the
 * quoted packet's flow makes of the tuple going the other way (the quote's,
 * swapped: see icmp4_error_translate()), so the quote becomes its reverse.
 * Returns 0 or DROP_NAT.
 */
static __always_inline int icmp4_error_rewrite(struct __sk_buff *skb, const struct pkt4 *pkt,
					       const struct icmp4_quote *q, const struct nat4_ends *to)
{
	struct icmp4_quote_words old = {};
	struct icmp4_quote_words new;
	bool echo = q->tuple.proto == LB_PROTO_ICMP;
	__u32 ports_off = q->l4_off + (echo ? ICMP4_ECHO_ID_OFF : 0);
	__u32 l4_check_off = icmp4_quote_l4_check_off(skb, q);
	__s64 addr_diff, icmp_diff;
	int ret;

	if (bpf_skb_load_bytes(skb, q->ip_off + IPV4_ADDRS_OFF, old.addrs, sizeof(old.addrs)) < 0 ||
	    bpf_skb_load_bytes(skb, q->ip_off + IPV4_CHECK_OFF, &old.ip_check, sizeof(old.ip_check)) < 0 ||
	    bpf_skb_load_bytes(skb, ports_off, old.ports, sizeof(old.ports)) < 0 ||
	    (l4_check_off && bpf_skb_load_bytes(skb, l4_check_off, &old.l4_check, sizeof(old.l4_check)) < 0))
		return DROP_NAT;
	/* UDP's checksum 0 is "none": it stays. */
	if (q->tuple.proto == LB_PROTO_UDP && !old.l4_check)
		l4_check_off = 0;

	new = old;
	new.addrs[0] = to->daddr;
	new.addrs[1] = to->saddr;
	if (echo) {
		new.ports[0] = q->echo_type == ICMP4_ECHO ? to->dport : to->sport;
	} else {
		new.ports[0] = to->dport;
		new.ports[1] = to->sport;
	}
	addr_diff = bpf_csum_diff(old.addrs, sizeof(old.addrs), new.addrs, sizeof(new.addrs), 0);
	new.ip_check = csum_update(old.ip_check, addr_diff);
	if (l4_check_off) {
		/* TCP's and UDP's cover the addresses (pseudo header); ICMP's only the message. */
		__s64 l4_diff = bpf_csum_diff((__be32 *)old.ports, sizeof(old.ports), (__be32 *)new.ports,
					      sizeof(new.ports), echo ? 0 : (__u32)addr_diff);

		new.l4_check = csum_update(old.l4_check, l4_diff);
		/* A computed 0 goes out as 0xffff: 0 would say "none" (RFC 768). */
		if (q->tuple.proto == LB_PROTO_UDP && !new.l4_check)
			new.l4_check = 0xffff;
	}
	icmp_diff = bpf_csum_diff((__be32 *)&old, sizeof(old), (__be32 *)&new, sizeof(new), 0);

	if (bpf_skb_store_bytes(skb, q->ip_off + IPV4_ADDRS_OFF, new.addrs, sizeof(new.addrs), 0) < 0 ||
	    bpf_skb_store_bytes(skb, q->ip_off + IPV4_CHECK_OFF, &new.ip_check, sizeof(new.ip_check), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ports_off, new.ports, sizeof(new.ports), 0) < 0 ||
	    (l4_check_off && bpf_skb_store_bytes(skb, l4_check_off, &new.l4_check, sizeof(new.l4_check), 0) < 0))
		return DROP_NAT;
	/* Size 0: `to` is a difference, bpf_csum_diff()'s. */
	if (bpf_l4_csum_replace(skb, pkt->l4_off + ICMP4_CSUM_OFF, 0, (__u32)icmp_diff, 0) < 0)
		return DROP_NAT;

	if (pkt->tuple.daddr == q->tuple.saddr) {
		ret = nat4_rewrite_addr(skb, pkt, true, pkt->tuple.daddr, to->daddr);
		if (is_drop(ret))
			return ret;
	}
	if (pkt->tuple.saddr == q->tuple.daddr)
		return nat4_rewrite_addr(skb, pkt, false, pkt->tuple.saddr, to->saddr);
	return 0;
}

/*
 * Translates the ICMP error `pkt` if it is about a packet of a tracked flow.
 * The quoted packet went one way; the flow's packets the other way are keyed
 * by its tuple swapped: under a reverse entry the quote is a packet the
 * client's way and the error travels as a reply does; under a forward
 * entry, the other way round. Sets *ct_flags to the flow's, which say where
 * the error goes on. Returns LB_METRIC_ICMP_TRANSLATED, a LB_METRIC_PASS_*
 * reason, or a drop code.
 *
 * `egress` (to_uplink) translates only what a pod says about replies of its
 * masqueraded flows, whose source becomes the node's there as their flows'
 * does; the other programs leave those to it.
 */
static __always_inline int icmp4_error_translate(struct __sk_buff *skb, const struct pkt4 *pkt, bool egress,
						 enum ct_flags *ct_flags)
{
	struct icmp4_quote quote;
	struct ct4_key key;
	const struct ct_entry *entry = NULL;
	struct nat4_ends to;
	int ret;

	if (!icmp4_quote_parse(skb, pkt, &quote))
		return LB_METRIC_PASS_MALFORMED;
	ct4_key_set(&key, quote.tuple.proto, CT_REVERSE, quote.tuple.daddr, quote.tuple.dport, quote.tuple.saddr,
		    quote.tuple.sport);
	if (!egress)
		entry = ct4_lookup(&key);
	if (!entry) {
		key.dir = CT_FORWARD;
		entry = ct4_lookup(&key);
		if (entry && !!(entry->flags & CT_F_MASQ) != egress)
			entry = NULL;
	}
	if (!entry)
		return LB_METRIC_PASS_NO_SERVICE;
	if (!flow4_translate(&key, entry, &to))
		return key.dir == CT_REVERSE ? LB_METRIC_PASS_NO_REV_NAT : LB_METRIC_PASS_NO_SERVICE;
	*ct_flags = entry->flags;
	ret = icmp4_error_rewrite(skb, pkt, &quote, &to);
	return is_drop(ret) ? ret : LB_METRIC_ICMP_TRANSLATED;
}

#endif /* FERRY_LIB_ICMP4_ERROR_H */
