/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 packet parsing for tc programs: Ethernet, IPv4 (options included),
 * and what the load balancer keys on: TCP and UDP ports, ICMP echo
 * identifiers; ICMP errors are recognised (lib/icmp4_error.h reads their
 * quote).
 */
#ifndef FERRY_LIB_PKT4_H
#define FERRY_LIB_PKT4_H

#include <bpf/bpf_endian.h>

#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/pkt.h"

/* What the load balancer needs to know about an IPv4 TCP, UDP or ICMP packet. */
struct pkt4 {
	struct ct4_key tuple;	/* as on the wire; dir CT_FORWARD; ICMP: see ct4_key, an error's ports are 0 */
	__u32 l4_off;		/* TCP/UDP/ICMP header, from the Ethernet header */
	__u8 tcp_flags;		/* TCP: the segment's flags byte; otherwise 0 */
	__u8 ip_summed;		/* the skb's CHECKSUM_*: how lib/nat4.h fixes the L4 checksum */
	bool first_fragment;	/* the first of a fragmented datagram's (lib/frag4.h) */
	__be16 ip_id;		/* the IP header's identification */
	bool icmp_error;	/* an ICMP error (icmp4_is_error()): its quote says which flow */
};

/* Where an ICMP echo keeps its identifier. */
#define ICMP4_ECHO_ID_OFF	__builtin_offsetof(struct icmphdr, un.echo.id)

static __always_inline bool icmp4_is_echo(__u8 type)
{
	return type == ICMP4_ECHO || type == ICMP4_ECHO_REPLY;
}

/* The errors that quote a packet of the flow they are about (RFC 792). */
static __always_inline bool icmp4_is_error(__u8 type)
{
	return type == ICMP4_DEST_UNREACH || type == ICMP4_TIME_EXCEEDED || type == ICMP4_PARAM_PROB;
}

/*
 * An echo's identifier as its tuple's ports (see ct4_key): the request's
 * source port, the reply's destination port.
 */
static __always_inline void icmp4_echo_ports(struct ct4_key *tuple, __u8 type, __be16 id)
{
	tuple->sport = type == ICMP4_ECHO ? id : 0;
	tuple->dport = type == ICMP4_ECHO ? 0 : id;
}

/* Not 0.0.0.0, multicast or the limited broadcast: an address of one host. */
static __always_inline bool ipv4_is_one_host(__be32 addr)
{
	__u32 a = bpf_ntohl(addr);

	return a != 0 && a != 0xffffffff && (a >> 28) != 0xe;
}

/* A non-first fragment: no L4 header, so nothing to key on. */
static __always_inline bool ipv4_is_later_fragment(const struct iphdr *ip)
{
	return ip->frag_off & bpf_htons(IP_OFFSET);
}

static __always_inline bool lb_proto_supported(__u8 proto)
{
	return proto == LB_PROTO_TCP || proto == LB_PROTO_UDP || proto == LB_PROTO_ICMP;
}

/*
 * The packet's IPv4 header, for direct reads and writes, or NULL when the
 * linear data ends before it. Valid until the next helper that may move the
 * data (bpf_skb_pull_data(), bpf_l4_csum_replace() ...): then call again.
 */
static __always_inline struct iphdr *pkt4_ip(struct __sk_buff *skb)
{
	struct iphdr *ip = ctx_data(skb) + ETH_HLEN;

	if ((void *)(ip + 1) > ctx_data_end(skb))
		return NULL;
	return ip;
}

/*
 * The packet's L4 header at `l4_off` (pkt4.l4_off), `len` bytes of it
 * directly accessible, or NULL. As pkt4_ip(), valid until the next helper
 * that may move the data. The mask shows the verifier what pkt4_parse()
 * checked: the offset is past Ethernet and an IP header of at most 60 bytes.
 */
static __always_inline void *pkt4_l4(struct __sk_buff *skb, __u32 l4_off, __u32 len)
{
	void *l4 = ctx_data(skb) + (l4_off & 0x7f);

	if (l4 + len > ctx_data_end(skb))
		return NULL;
	return l4;
}

/*
 * Fills `pkt` from an Ethernet + IPv4 + TCP/UDP/ICMP packet and returns
 * true, or returns false with the LB_METRIC_PASS_* reason to pass it on
 * untouched in `why`. ICMP parses when it is an echo or an error; other
 * messages pass. First fragments parse like any packet; later ones (no L4
 * header) return false with LB_METRIC_PASS_FRAGMENT, their addresses,
 * protocol and identification filled in for lib/frag4.h.
 * Headers up to the L4 one's first bytes are made linear (pkt_pull()) and
 * read in place: direct access costs no helper call.
 */
static __always_inline bool pkt4_parse(struct __sk_buff *skb, struct pkt4 *pkt, __u32 *why)
{
	void *data = ctx_data(skb);
	void *data_end = ctx_data_end(skb);
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ip_len, tot_len, l4_len;
	__u8 proto;

	*why = LB_METRIC_PASS_MALFORMED;
	if ((void *)(eth + 1) > data_end)
		return false;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		*why = LB_METRIC_PASS_NOT_IP;
		return false;
	}
	if (!pkt_pull(skb, ETH_HLEN + sizeof(*ip)))
		return false;
	/* Reloaded: pkt_pull() may have moved the data. */
	ip = pkt4_ip(skb);
	if (!ip)
		return false;

	ip_len = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	proto = ip->protocol;
	if (ip->version != 4 || ip_len < sizeof(*ip) || tot_len < ip_len)
		return false;
	/* What a later fragment is known by, too (lib/frag4.h). */
	pkt->tuple.saddr = ip->saddr;
	pkt->tuple.daddr = ip->daddr;
	pkt->tuple.proto = proto;
	pkt->ip_id = ip->id;
	if (ipv4_is_later_fragment(ip)) {
		*why = LB_METRIC_PASS_FRAGMENT;
		return false;
	}
	pkt->first_fragment = ip->frag_off & bpf_htons(IP_MF);
	if (!lb_proto_supported(proto)) {
		*why = LB_METRIC_PASS_OTHER_PROTO;
		return false;
	}
	l4_len = l4_hdr_len(proto);
	/* A first fragment may end before its L4 header does: malformed. */
	if (tot_len < ip_len + l4_len)
		return false;

	pkt->tuple.dir = CT_FORWARD;
	pkt->l4_off = ETH_HLEN + ip_len;
	pkt->ip_summed = skb_ip_summed(skb);
	if (!pkt_pull(skb, pkt->l4_off + l4_len))
		return false;

	if (proto == LB_PROTO_TCP) {
		struct tcphdr *th = pkt4_l4(skb, pkt->l4_off, sizeof(*th));

		if (!th)
			return false;
		pkt->tuple.sport = th->source;
		pkt->tuple.dport = th->dest;
		pkt->tcp_flags = ((__u8 *)th)[TCP_FLAGS_OFF];
	} else if (proto == LB_PROTO_UDP) {
		struct udphdr *uh = pkt4_l4(skb, pkt->l4_off, sizeof(*uh));

		if (!uh)
			return false;
		pkt->tuple.sport = uh->source;
		pkt->tuple.dport = uh->dest;
	} else {
		struct icmphdr *ih = pkt4_l4(skb, pkt->l4_off, sizeof(*ih));

		if (!ih)
			return false;
		if (icmp4_is_echo(ih->type)) {
			icmp4_echo_ports(&pkt->tuple, ih->type, ih->un.echo.id);
		} else if (icmp4_is_error(ih->type)) {
			pkt->icmp_error = true;
		} else {
			*why = LB_METRIC_PASS_OTHER_PROTO;
			return false;
		}
	}
	return true;
}

#endif /* FERRY_LIB_PKT4_H */
