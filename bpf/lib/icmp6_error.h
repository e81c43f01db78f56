/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMPv6 errors about a translated IPv6 flow (destination unreachable,
 * packet too big, time exceeded, parameter problem: RFC 4443 3.1-3.4)
 * translated as the flow is: lib/icmp4_error.h's twin, function by
 * function. An error quotes the packet it is about, as much of it as keeps
 * the error within the minimum MTU, as that packet was where the error was
 * made, i.e. translated:
 *
 *   eth | IPv6 (40, outer) | ICMPv6 (8) | quoted IPv6 (40) | ports ...
 *
 * Only a quote of a TCP or UDP packet right behind its IPv6 header can be
 * a translated flow's (pkt6_parse() translates no other), so every field
 * sits at a constant offset and is read and written in place
 * (ICMP6_QUOTE_*). The quote is rewritten to what its packet was on the
 * other side, so the sender's stack finds the socket it belongs to (and,
 * for packet too big, learns the path MTU to the address it sent to), and
 * so is the outer header: the error goes to the quoted packet's (original)
 * sender, and when the quoted packet's destination complains itself (a
 * backend's port unreachable) it comes from what the sender sent to (the
 * service address); a router in between keeps its own address.
 *
 * Checksums: IPv6 has no header checksum. Inside the quote, the TCP or UDP
 * checksum when quoted (UDP's unless 0, "none"; TCP's when its 18 bytes
 * are), worked out here (csum_update()) over the quoted addresses (its
 * pseudo header) and ports. The ICMPv6 checksum covers a pseudo header
 * with the outer addresses (RFC 4443 2.3) and the whole message: it moves
 * by the difference of every word changed, outer addresses and quote
 * alike (bpf_csum_diff(): errors are rare, and a call is less code than
 * csum_diff16()'s unrolled sums), and is written in place. It is the
 * whole checksum whatever skb->ip_summed says (ICMPv6 is never left to
 * the device), and a CHECKSUM_COMPLETE skb->csum, the sum from the IPv6
 * header on, stays right untouched: the message and the outer addresses
 * move it by as much as the ICMPv6 checksum moves it back (lib/nat6.h says
 * the same of TCP and UDP), so no bpf_l4_csum_replace(), nor its
 * BPF_F_IPV6 (Linux 6.16 on).
 */
#ifndef FERRY_LIB_ICMP6_ERROR_H
#define FERRY_LIB_ICMP6_ERROR_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/csum.h"
#include "lib/ct6.h"
#include "lib/flow6.h"
#include "lib/icmp6.h"
#include "lib/pkt.h"
#include "lib/pkt6.h"

/* From the Ethernet header: the error's checksum, and the quoted packet's L4 header (its IPv6 one: ICMP6_QUOTE_OFF). */
#define ICMP6_CSUM_OFF			(PKT6_L4_OFF + __builtin_offsetof(struct icmp6hdr, icmp6_cksum))
#define ICMP6_QUOTE_L4_OFF		(ICMP6_QUOTE_OFF + sizeof(struct ipv6hdr))
/* Where a quoted TCP header's checksum ends: quoted up to there, it is fixed. */
#define ICMP6_QUOTE_TCP_CHECK_END	(ICMP6_QUOTE_L4_OFF + __builtin_offsetof(struct tcphdr, check) + sizeof(__sum16))

/*
 * Reads the quote of the error `pkt` and sets pkt->tuple to the key its
 * flow's packets the other way have (the quote's tuple swapped, dir
 * CT_REVERSE), so no copy of it takes the stack; *tcp_check says whether a
 * quoted TCP header's checksum is quoted too. Makes the quote's headers
 * linear. Returns false with the LB_METRIC_PASS_* reason in `why` when the
 * quote is no IPv6 TCP or UDP packet with 8 bytes of L4 header, within the
 * message's length (RFC 4443 2.4 (e): nothing is said about an error, so
 * no error is quoted: PASS_MALFORMED), or an echo (not tracked:
 * PASS_NO_SERVICE).
 */
static __always_inline bool icmp6_quote_parse(struct __sk_buff *skb, struct pkt6 *pkt, bool *tcp_check, __u32 *why)
{
	__u32 end = PKT6_L4_OFF + pkt->payload_len;
	struct ipv6hdr *ip6;
	struct udphdr *ports;	/* TCP's are at the same offsets; an ICMPv6 header's type at the first byte */
	void *data;
	__u8 proto;

	*why = LB_METRIC_PASS_MALFORMED;
	if (end < ICMP6_QUOTE_L4_OFF + sizeof(*ports))
		return false;
	if (!pkt_pull(skb, end < ICMP6_QUOTE_TCP_CHECK_END ? end : ICMP6_QUOTE_TCP_CHECK_END))
		return false;
	data = ctx_data(skb);
	ip6 = data + ICMP6_QUOTE_OFF;
	ports = data + ICMP6_QUOTE_L4_OFF;
	if ((void *)(ports + 1) > ctx_data_end(skb))
		return false;
	proto = ip6->nexthdr;
	if (ip6->version != 6)
		return false;
	if (proto == NEXTHDR_ICMP) {
		__u8 type = *(__u8 *)ports;

		if (type == ICMP6_ECHO_REQUEST || type == ICMP6_ECHO_REPLY)
			*why = LB_METRIC_PASS_NO_SERVICE;
		return false;
	}
	if (proto != LB_PROTO_TCP && proto != LB_PROTO_UDP)
		return false;
	*tcp_check = proto == LB_PROTO_TCP && end >= ICMP6_QUOTE_TCP_CHECK_END;
	ct6_key_set(&pkt->tuple, proto, CT_REVERSE, &ip6->daddr, ports->dest, &ip6->saddr, ports->source);
	return true;
}

/*
 * Rewrites the error whose quote `key` was read from (icmp6_quote_parse():
 * the quote's tuple swapped). `to` is what the quoted packet's flow makes
 * of `key` (see icmp6_error_translate()), so the quote becomes its
 * reverse: source to->daddr:dport, destination to->saddr:sport. Returns 0
 * or DROP_NAT.
 */
static __always_inline int icmp6_error_rewrite(struct __sk_buff *skb, const struct ct6_key *key,
					       const struct nat6_ends *to, bool tcp_check)
{
	void *data = ctx_data(skb);
	void *data_end = ctx_data_end(skb);
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	__sum16 *icmp_check = data + ICMP6_CSUM_OFF;
	struct ipv6hdr *quote = data + ICMP6_QUOTE_OFF;
	struct udphdr *ports = data + ICMP6_QUOTE_L4_OFF;
	bool udp = key->proto == LB_PROTO_UDP;
	__sum16 *l4_check = NULL;
	__u32 quote_diff, icmp_diff;

	if ((void *)(ports + 1) > data_end)
		return DROP_NAT;
	if (udp) {
		l4_check = &ports->check;
	} else if (tcp_check) {
		l4_check = data + ICMP6_QUOTE_TCP_CHECK_END - sizeof(__sum16);
		if ((void *)(l4_check + 1) > data_end)
			return DROP_NAT;
	}

	/*
	 * The quoted addresses and ports go from the key's to `to`'s, each
	 * pair swapped, which a sum does not see: one difference of the
	 * two structs' first 36 bytes (NAT6_ENDS_LEN). Its ports are words of
	 * its TCP/UDP header, its addresses of its pseudo header.
	 */
	quote_diff = bpf_csum_diff((__be32 *)key, NAT6_ENDS_LEN, (__be32 *)to, NAT6_ENDS_LEN, 0);
	icmp_diff = quote_diff;
	/* UDP's checksum 0 is "none": it stays. */
	if (l4_check && !(udp && !*l4_check)) {
		__sum16 old = *l4_check;
		__sum16 new = csum_update(old, quote_diff);

		/* A computed 0 goes out as 0xffff: 0 would say "none". */
		if (udp && !new)
			new = 0xffff;
		*l4_check = new;
		icmp_diff = csum_add(icmp_diff, (__u32)(__u16)~old + new);
	}

	/*
	 * The outer addresses that are the quoted packet's ends (its source is
	 * the key's destination), through the ICMPv6 pseudo header.
	 */
	if (ipv6_addr_equal(&ip6->daddr, &key->daddr)) {
		icmp_diff = csum_add(icmp_diff, bpf_csum_diff((__be32 *)&key->daddr, sizeof(key->daddr),
							      (__be32 *)&to->daddr, sizeof(to->daddr), 0));
		ip6->daddr = to->daddr;
	}
	if (ipv6_addr_equal(&ip6->saddr, &key->saddr)) {
		icmp_diff = csum_add(icmp_diff, bpf_csum_diff((__be32 *)&key->saddr, sizeof(key->saddr),
							      (__be32 *)&to->saddr, sizeof(to->saddr), 0));
		ip6->saddr = to->saddr;
	}
	quote->saddr = to->daddr;
	quote->daddr = to->saddr;
	ports->source = to->dport;
	ports->dest = to->sport;
	*icmp_check = csum_update(*icmp_check, icmp_diff);
	/* The skb's flow hash stays, as nat6_rewrite() says. */
	return 0;
}

/*
 * Translates the ICMPv6 error `pkt` if it is about a packet of a tracked
 * flow, as icmp4_error_translate() does: the quoted packet went one way;
 * the flow's packets the other way are keyed by its tuple swapped: under a
 * reverse entry the quote is a packet the client's way and the error
 * travels as a reply does; under a forward entry, the other way round.
 * Neither entry is refreshed. pkt->tuple becomes that key (see
 * icmp6_quote_parse()). Sets *ct_flags to the flow's, which say where the
 * error goes on. Returns LB_METRIC_ICMP_TRANSLATED, a LB_METRIC_PASS_*
 * reason, or a drop code.
 *
 * `egress` (to_uplink) translates only what a pod says about replies of its
 * masqueraded flows (lib/masq6.h), whose source becomes the node's there as
 * their flows' does; the other programs leave those to it, as
 * icmp4_error_translate() does.
 */
static __always_inline int icmp6_error_translate(struct __sk_buff *skb, struct pkt6 *pkt, bool egress,
						 enum ct_flags *ct_flags)
{
	struct ct6_key *key = &pkt->tuple;
	const struct ct6_entry *entry;
	struct nat6_ends to;
	bool tcp_check = false;
	__u32 why;
	int ret;

	if (!icmp6_quote_parse(skb, pkt, &tcp_check, &why))
		return why;
	entry = egress ? NULL : ct6_lookup(key);
	if (!entry) {
		key->dir = CT_FORWARD;
		entry = ct6_lookup(key);
		if (entry && !!(entry->flags & CT_F_MASQ) != egress)
			entry = NULL;
	}
	if (!entry)
		return LB_METRIC_PASS_NO_SERVICE;
	if (!flow6_translate(key, entry, &to))
		return key->dir == CT_REVERSE ? LB_METRIC_PASS_NO_REV_NAT : LB_METRIC_PASS_NO_SERVICE;
	*ct_flags = entry->flags;
	ret = icmp6_error_rewrite(skb, key, &to, tcp_check);
	return is_drop(ret) ? ret : LB_METRIC_ICMP_TRANSLATED;
}

#endif /* FERRY_LIB_ICMP6_ERROR_H */
