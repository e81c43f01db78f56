/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rejecting an IPv6 packet to a service without endpoints as kube-proxy's
 * ip6tables rules do (`-j REJECT`, icmp6-port-unreachable for TCP as for
 * UDP): the packet itself becomes an ICMPv6 destination unreachable, port
 * unreachable (type 1 code 4, RFC 4443 3.1) from the service's address
 * back to its sender, bounced out of the interface it came in on.
 *
 *   before: eth | IPv6 (40) | TCP/UDP ...
 *   after:  eth (MACs swapped) | IPv6 (40, VIP -> client) | ICMPv6 (8) |
 *           the original packet from its IPv6 header on, as much of it as
 *           keeps the error within the minimum MTU, 1280 (RFC 4443 2.4 (c))
 *
 * The original packet stays where it is: the headers are room opened in
 * front of it (bpf_skb_adjust_room()) after its tail is cut to the quote,
 * so the quote is never copied; only its checksum is summed.
 *
 * RFC 4443 2.4 (e): no error about an ICMPv6 error (only TCP and UDP get
 * here), a link-layer multicast or broadcast, a packet to multicast, or
 * one whose source is no one host (::, multicast): those are dropped.
 */
#ifndef FERRY_LIB_ICMP6_H
#define FERRY_LIB_ICMP6_H

#include <bpf/bpf_endian.h>

#include "include/ferry_drop.h"
#include "lib/common.h"
#include "lib/csum.h"
#include "lib/eth.h"
#include "lib/pkt6.h"

/* Macros in the kernel's headers, so not in vmlinux.h (ICMP6_DEST_UNREACH: lib/pkt6.h). */
#define ICMP6_PORT_UNREACH	4
#define ICMP6_HOP_LIMIT		64

#define IPV6_MIN_MTU		1280
/* What is written in front of the quote: an IPv6 header and ICMPv6's 8 bytes. */
#define ICMP6_HDRS_LEN		(sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr))
#define ICMP6_QUOTE_MAX		(IPV6_MIN_MTU - ICMP6_HDRS_LEN)
#define ICMP6_QUOTE_OFF		(ETH_HLEN + ICMP6_HDRS_LEN)
/* The quote is summed this many bytes per bpf_csum_diff(), the rest a word at a time. */
#define ICMP6_SUM_CHUNK		256

/* The headers as built on the stack, then written in front of the quote. */
struct icmp6_reply {
	struct ipv6hdr ip6;
	struct icmp6hdr icmp6;
};

/*
 * May the packet get an ICMPv6 error at all (see the top of the file)?
 * pkt6_parse() has made the Ethernet header linear.
 */
static __always_inline bool icmp6_may_answer(struct __sk_buff *skb, const struct pkt6 *pkt)
{
	struct ethhdr *eth = ctx_data(skb);

	if ((void *)(eth + 1) > ctx_data_end(skb))
		return false;
	if (eth->h_dest[0] & 1)
		return false;
	return ipv6_is_one_host(&pkt->tuple.saddr) && ipv6_is_one_host(&pkt->tuple.daddr);
}

/*
 * The 64-bit sum of the ICMPv6 message's 32-bit words, `len` of them from
 * the quote's start (ICMP6_QUOTE_OFF), in memory order; a last partial
 * word is padded with zeros (RFC 8200 8.1). The data must be linear.
 * Returns the sum, or -1 when the packet ends early.
 *
 * Chunks of ICMP6_SUM_CHUNK go through bpf_csum_diff() on the packet
 * itself; what is left, a word at a time. Each offset is a constant in
 * each of the verifier's paths (a few hundred of them, all short).
 */
static __always_inline __s64 icmp6_sum_quote(struct __sk_buff *skb, __u32 len)
{
	void *data = ctx_data(skb);
	void *data_end = ctx_data_end(skb);
	__u8 last[4] = {};
	__u64 sum = 0;
	__u32 off = 0;
	__u8 *p;
	int i;

	for (i = 0; i < ICMP6_QUOTE_MAX / ICMP6_SUM_CHUNK; i++) {
		if (len - off < ICMP6_SUM_CHUNK)
			break;
		p = data + ICMP6_QUOTE_OFF + off;
		if ((void *)(p + ICMP6_SUM_CHUNK) > data_end)
			return -1;
		sum += (__u32)bpf_csum_diff(NULL, 0, (__be32 *)p, ICMP6_SUM_CHUNK, 0);
		off += ICMP6_SUM_CHUNK;
	}
#pragma clang loop unroll(disable)
	for (i = 0; i < ICMP6_SUM_CHUNK / 4; i++) {
		if (len - off < 4)
			break;
		p = data + ICMP6_QUOTE_OFF + off;
		if ((void *)(p + 4) > data_end)
			return -1;
		sum += *(__u32 *)p;
		off += 4;
	}
	if (len - off == 0)
		return sum;
	p = data + ICMP6_QUOTE_OFF + off;
	if ((void *)(p + 1) > data_end)
		return -1;
	last[0] = p[0];
	if (len - off > 1) {
		if ((void *)(p + 2) > data_end)
			return -1;
		last[1] = p[1];
	}
	if (len - off > 2) {
		if ((void *)(p + 3) > data_end)
			return -1;
		last[2] = p[2];
	}
	return sum + *(__u32 *)last;
}

/*
 * Rewrites the packet (pkt6_parse()d, untranslated) into the port
 * unreachable for it and sends it back where it came from (eth_bounce()).
 * Returns FERRY_ACT_REDIRECT, or DROP_NAT when a helper fails.
 */
static __always_inline int icmp6_port_unreach(struct __sk_buff *skb, const struct pkt6 *pkt)
{
	struct icmp6_reply reply = {};
	__u32 quote_len = sizeof(struct ipv6hdr) + pkt->payload_len;
	__u64 sum = 0;
	__s64 quote_sum;
	int i;

	/* The packet as sent (payload length), as far as it came, within the minimum MTU. */
	if (quote_len > skb->len - ETH_HLEN)
		quote_len = skb->len - ETH_HLEN;
	if (quote_len > ICMP6_QUOTE_MAX)
		quote_len = ICMP6_QUOTE_MAX;

	/* The tail cut first: a GSO packet's offloads go with it (and so it gets its room). */
	if (bpf_skb_change_tail(skb, ETH_HLEN + quote_len, 0) < 0)
		return DROP_NAT;
	if (bpf_skb_adjust_room(skb, ICMP6_HDRS_LEN, BPF_ADJ_ROOM_MAC, 0) < 0)
		return DROP_NAT;
	if (!pkt_pull(skb, ICMP6_QUOTE_OFF + quote_len))
		return DROP_NAT;

	reply.ip6.version = 6;
	reply.ip6.payload_len = bpf_htons(sizeof(struct icmp6hdr) + quote_len);
	reply.ip6.nexthdr = NEXTHDR_ICMP;
	reply.ip6.hop_limit = ICMP6_HOP_LIMIT;
	reply.ip6.saddr = pkt->tuple.daddr;
	reply.ip6.daddr = pkt->tuple.saddr;
	reply.icmp6.icmp6_type = ICMP6_DEST_UNREACH;
	reply.icmp6.icmp6_code = ICMP6_PORT_UNREACH;

	/*
	 * The checksum covers a pseudo header (RFC 8200 8.1: the addresses,
	 * the upper-layer length and next header as 32-bit words), the
	 * ICMPv6 header (its checksum 0 for now) and the quote.
	 */
#pragma unroll
	for (i = 0; i < 4; i++)
		sum += (__u64)reply.ip6.saddr.in6_u.u6_addr32[i] + reply.ip6.daddr.in6_u.u6_addr32[i];
	sum += bpf_htonl(sizeof(struct icmp6hdr) + quote_len);
	sum += bpf_htonl(NEXTHDR_ICMP);
	sum += ((__u32 *)&reply.icmp6)[0] + (__u64)((__u32 *)&reply.icmp6)[1];
	quote_sum = icmp6_sum_quote(skb, quote_len);
	if (quote_sum < 0)
		return DROP_NAT;
	reply.icmp6.icmp6_cksum = csum_fold64(sum + quote_sum);

	/* A new packet: let the stack recompute the flow hash. */
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &reply, sizeof(reply), BPF_F_INVALIDATE_HASH) < 0)
		return DROP_NAT;
	return eth_bounce(skb);
}

#endif /* FERRY_LIB_ICMP6_H */
