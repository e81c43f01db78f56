/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 packet parsing for tc programs: Ethernet, the fixed IPv6 header and
 * a TCP or UDP header right behind it, which is all the load balancer
 * translates, or an ICMPv6 error (lib/icmp6_error.h reads its quote). The
 * L4 header therefore always starts at PKT6_L4_OFF.
 *
 * Passed untouched (pkt6_parse() says why): any extension header, a
 * fragment header among them (a service flow whose packets carry one is
 * not translated: nothing here walks the header chain), and every ICMPv6
 * message but the errors, so that neighbour discovery and echo never meet
 * the load balancer.
 */
#ifndef FERRY_LIB_PKT6_H
#define FERRY_LIB_PKT6_H

#include <bpf/bpf_endian.h>

#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/pkt.h"

/* Next header values (RFC 8200, 4443) the parser tells apart; macros in the kernel's headers. */
#define NEXTHDR_FRAGMENT	44
#define NEXTHDR_ICMP		58

/* ICMPv6 error types (RFC 4443 3.1-3.4): each quotes the packet it is about. */
#define ICMP6_DEST_UNREACH	1
#define ICMP6_PKT_TOO_BIG	2
#define ICMP6_TIME_EXCEEDED	3
#define ICMP6_PARAM_PROB	4
/* Echo (RFC 4443 4.1, 4.2): passed, and not tracked. */
#define ICMP6_ECHO_REQUEST	128
#define ICMP6_ECHO_REPLY	129

/* The L4 header's offset from the Ethernet header: no extension headers. */
#define PKT6_L4_OFF		(ETH_HLEN + sizeof(struct ipv6hdr))

/*
 * What the load balancer needs to know about an IPv6 TCP or UDP packet, or
 * an ICMPv6 error: tuple.proto NEXTHDR_ICMP (pkt6_icmp_error()), whose
 * quote says which flow it is about (lib/icmp6_error.h), its ports 0. No
 * flag of its own: the struct's size shifts the stack slots clang gives
 * IPv4's path too (see lb.c's top comment on the stack).
 */
struct pkt6 {
	struct ct6_key tuple;	/* as on the wire; dir CT_FORWARD */
	__u16 payload_len;	/* the IPv6 header's, host order: the L4 segment's length */
	__u8 tcp_flags;		/* TCP: the segment's flags byte; otherwise 0 */
	__u8 ip_summed;		/* the skb's CHECKSUM_*: how lib/nat6.h fixes the L4 checksum */
};

_Static_assert(sizeof(struct udphdr) == sizeof(struct icmp6hdr), "UDP and ICMPv6 headers are both 8 bytes");

/* The ICMPv6 errors, the only ICMPv6 messages that parse; informational ones (echo, ND) are >= 128. */
static __always_inline bool icmp6_is_error(__u8 type)
{
	return type >= ICMP6_DEST_UNREACH && type <= ICMP6_PARAM_PROB;
}

/* pkt6_parse() found an ICMPv6 error (icmp6_is_error()), not a TCP or UDP packet. */
static __always_inline bool pkt6_icmp_error(const struct pkt6 *pkt)
{
	return pkt->tuple.proto == NEXTHDR_ICMP;
}

/* Whether the frame is IPv6 at all, by its ethertype. */
static __always_inline bool eth_is_ipv6(struct __sk_buff *skb)
{
	struct ethhdr *eth = ctx_data(skb);

	return (void *)(eth + 1) <= ctx_data_end(skb) && eth->h_proto == bpf_htons(ETH_P_IPV6);
}

static __always_inline bool ipv6_addr_equal(const struct in6_addr *a, const struct in6_addr *b)
{
	return a->in6_u.u6_addr32[0] == b->in6_u.u6_addr32[0] && a->in6_u.u6_addr32[1] == b->in6_u.u6_addr32[1] &&
	       a->in6_u.u6_addr32[2] == b->in6_u.u6_addr32[2] && a->in6_u.u6_addr32[3] == b->in6_u.u6_addr32[3];
}

static __always_inline bool ipv6_addr_any(const struct in6_addr *a)
{
	return !(a->in6_u.u6_addr32[0] | a->in6_u.u6_addr32[1] | a->in6_u.u6_addr32[2] | a->in6_u.u6_addr32[3]);
}

/* Not :: or multicast (ff00::/8): an address of one host. */
static __always_inline bool ipv6_is_one_host(const struct in6_addr *a)
{
	return !ipv6_addr_any(a) && a->in6_u.u6_addr8[0] != 0xff;
}

/*
 * The packet's IPv6 header, for direct reads and writes, or NULL when the
 * linear data ends before it. Valid until the next helper that may move the
 * data: then call again.
 */
static __always_inline struct ipv6hdr *pkt6_ip(struct __sk_buff *skb)
{
	struct ipv6hdr *ip6 = ctx_data(skb) + ETH_HLEN;

	if ((void *)(ip6 + 1) > ctx_data_end(skb))
		return NULL;
	return ip6;
}

/* The L4 header, `len` bytes of it directly accessible, or NULL; as pkt6_ip(). */
static __always_inline void *pkt6_l4(struct __sk_buff *skb, __u32 len)
{
	void *l4 = ctx_data(skb) + PKT6_L4_OFF;

	if (l4 + len > ctx_data_end(skb))
		return NULL;
	return l4;
}

/*
 * Fills `pkt` from an Ethernet + IPv6 + TCP/UDP packet or ICMPv6 error
 * and returns true, or returns false with the LB_METRIC_PASS_* reason to
 * pass it on untouched in `why`: PASS_NOT_IP (not IPv6, by ethertype or
 * version), PASS_FRAGMENT (a fragment header), PASS_OTHER_PROTO (ICMPv6
 * other than an error, any other extension header or protocol),
 * PASS_MALFORMED (truncated, or a payload length short of the L4 header,
 * ICMPv6's 8 bytes included). As pkt4_parse(), headers are made linear and
 * read in place.
 */
static __always_inline bool pkt6_parse(struct __sk_buff *skb, struct pkt6 *pkt, __u32 *why)
{
	struct ethhdr *eth = ctx_data(skb);
	struct ipv6hdr *ip6;
	__u32 l4_len;
	__u8 proto;

	*why = LB_METRIC_PASS_MALFORMED;
	if ((void *)(eth + 1) > ctx_data_end(skb))
		return false;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6)) {
		*why = LB_METRIC_PASS_NOT_IP;
		return false;
	}
	if (!pkt_pull(skb, ETH_HLEN + sizeof(*ip6)))
		return false;
	/* Reloaded: pkt_pull() may have moved the data. */
	ip6 = pkt6_ip(skb);
	if (!ip6)
		return false;
	/* The version is what says IPv6: a frame whose header says otherwise is not IP. */
	if (ip6->version != 6) {
		*why = LB_METRIC_PASS_NOT_IP;
		return false;
	}

	proto = ip6->nexthdr;
	if (proto == NEXTHDR_FRAGMENT) {
		*why = LB_METRIC_PASS_FRAGMENT;
		return false;
	}
	if (proto != LB_PROTO_TCP && proto != LB_PROTO_UDP && proto != NEXTHDR_ICMP) {
		*why = LB_METRIC_PASS_OTHER_PROTO;
		return false;
	}
	/* ICMPv6: its first 8 bytes, as many as UDP's header (see below). */
	l4_len = l4_hdr_len(proto);
	pkt->payload_len = bpf_ntohs(ip6->payload_len);
	/* A jumbogram (payload length 0) has a hop-by-hop header: passed above. */
	if (pkt->payload_len < l4_len)
		return false;

	pkt->tuple.saddr = ip6->saddr;
	pkt->tuple.daddr = ip6->daddr;
	pkt->tuple.proto = proto;
	pkt->tuple.dir = CT_FORWARD;
	pkt->ip_summed = skb_ip_summed(skb);
	if (!pkt_pull(skb, PKT6_L4_OFF + l4_len))
		return false;

	if (proto == LB_PROTO_TCP) {
		struct tcphdr *th = pkt6_l4(skb, sizeof(*th));

		if (!th)
			return false;
		pkt->tuple.sport = th->source;
		pkt->tuple.dport = th->dest;
		pkt->tcp_flags = ((__u8 *)th)[TCP_FLAGS_OFF];
	} else if (proto == LB_PROTO_UDP) {
		struct udphdr *uh = pkt6_l4(skb, sizeof(*uh));

		if (!uh)
			return false;
		pkt->tuple.sport = uh->source;
		pkt->tuple.dport = uh->dest;
	} else {
		struct icmp6hdr *ih = pkt6_l4(skb, sizeof(*ih));

		if (!ih)
			return false;
		if (!icmp6_is_error(ih->icmp6_type)) {
			*why = LB_METRIC_PASS_OTHER_PROTO;
			return false;
		}
	}
	return true;
}

#endif /* FERRY_LIB_PKT6_H */
