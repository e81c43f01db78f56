/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 address and port rewrites with incremental checksum fix-ups: the IP
 * header checksum, and the TCP/UDP checksum, whose pseudo header covers the
 * addresses. ICMP echo's identifier is its "port" (ct4_key); ICMP's
 * checksum has no pseudo header. Everything goes through helpers by offset,
 * so no packet pointer is held across them (they may move the data and
 * invalidate pointers).
 */
#ifndef FERRY_LIB_NAT4_H
#define FERRY_LIB_NAT4_H

#include "include/ferry_drop.h"
#include "lib/common.h"
#include "lib/pkt4.h"

/*
 * Wire offsets, from __builtin_offsetof. Verifier workaround: libbpf's
 * offsetof() on vmlinux.h's structs (all marked preserve_access_index) turns
 * into CO-RE relocations, and clang 14 lowered a choice between two of them
 * into a load through the relocated constant ("R1 invalid mem access
 * 'scalar'"). Packet headers have a fixed wire layout: no CO-RE needed.
 */
#define IPV4_CSUM_OFF	(ETH_HLEN + __builtin_offsetof(struct iphdr, check))
#define IPV4_SADDR_OFF	(ETH_HLEN + __builtin_offsetof(struct iphdr, saddr))
#define IPV4_DADDR_OFF	(ETH_HLEN + __builtin_offsetof(struct iphdr, daddr))
#define IPV4_TTL_OFF	(ETH_HLEN + __builtin_offsetof(struct iphdr, ttl))

/* TCP and UDP keep their ports at the same offsets. */
#define L4_SPORT_OFF	__builtin_offsetof(struct udphdr, source)
#define L4_DPORT_OFF	__builtin_offsetof(struct udphdr, dest)
_Static_assert(__builtin_offsetof(struct tcphdr, source) == __builtin_offsetof(struct udphdr, source) &&
	       __builtin_offsetof(struct tcphdr, dest) == __builtin_offsetof(struct udphdr, dest),
	       "TCP and UDP ports share offsets");

#define ICMP4_CSUM_OFF	__builtin_offsetof(struct icmphdr, checksum)

static __always_inline __u32 l4_csum_off(const struct pkt4 *pkt)
{
	switch (pkt->tuple.proto) {
	case LB_PROTO_TCP:
		return pkt->l4_off + __builtin_offsetof(struct tcphdr, check);
	case LB_PROTO_UDP:
		return pkt->l4_off + __builtin_offsetof(struct udphdr, check);
	default:
		return pkt->l4_off + ICMP4_CSUM_OFF;
	}
}

/* Where the tuple's source or destination port is, from the L4 header: an echo has one identifier for both. */
static __always_inline __u32 l4_port_off(const struct pkt4 *pkt, bool dst)
{
	if (pkt->tuple.proto == LB_PROTO_ICMP)
		return ICMP4_ECHO_ID_OFF;
	return dst ? L4_DPORT_OFF : L4_SPORT_OFF;
}

/*
 * UDP's checksum 0 means "none" and must stay 0, and a computed 0 must go
 * out as 0xffff (RFC 768): BPF_F_MARK_MANGLED_0 does both. TCP has neither.
 */
static __always_inline __u64 l4_csum_flags(const struct pkt4 *pkt)
{
	return pkt->tuple.proto == LB_PROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/* Rewrites the IPv4 address at `off` (IPV4_SADDR_OFF or IPV4_DADDR_OFF). */
static __always_inline int nat4_rewrite_addr(struct __sk_buff *skb, const struct pkt4 *pkt,
					     __u32 off, __be32 from, __be32 to)
{
	if (from == to)
		return 0;
	if (pkt->tuple.proto != LB_PROTO_ICMP &&
	    bpf_l4_csum_replace(skb, l4_csum_off(pkt), from, to,
				l4_csum_flags(pkt) | BPF_F_PSEUDO_HDR | sizeof(to)) < 0)
		return DROP_NAT;
	if (bpf_l3_csum_replace(skb, IPV4_CSUM_OFF, from, to, sizeof(to)) < 0)
		return DROP_NAT;
	/* A new tuple: let the stack recompute the flow hash (RPS, ECMP). */
	if (bpf_skb_store_bytes(skb, off, &to, sizeof(to), BPF_F_INVALIDATE_HASH) < 0)
		return DROP_NAT;
	return 0;
}

/* Rewrites the L4 port at `off` from the L4 header (l4_port_off()). */
static __always_inline int nat4_rewrite_port(struct __sk_buff *skb, const struct pkt4 *pkt,
					     __u32 off, __be16 from, __be16 to)
{
	if (from == to)
		return 0;
	if (bpf_l4_csum_replace(skb, l4_csum_off(pkt), from, to, l4_csum_flags(pkt) | sizeof(to)) < 0)
		return DROP_NAT;
	if (bpf_skb_store_bytes(skb, pkt->l4_off + off, &to, sizeof(to), 0) < 0)
		return DROP_NAT;
	return 0;
}

/*
 * The destination becomes addr:port: a service's backend (DNAT), or the
 * client's own address again (a reply of an SNATed or masqueraded flow).
 */
static __always_inline int nat4_rewrite_dst(struct __sk_buff *skb, const struct pkt4 *pkt, __be32 addr, __be16 port)
{
	int ret = nat4_rewrite_addr(skb, pkt, IPV4_DADDR_OFF, pkt->tuple.daddr, addr);

	if (ret < 0)
		return ret;
	return nat4_rewrite_port(skb, pkt, l4_port_off(pkt, true), pkt->tuple.dport, port);
}

/*
 * The source becomes addr:port: the service IP:port (a reply's reverse
 * NAT), or an address of the node and an allocated port (SNAT, masquerade,
 * hairpin).
 */
static __always_inline int nat4_rewrite_src(struct __sk_buff *skb, const struct pkt4 *pkt, __be32 addr, __be16 port)
{
	int ret = nat4_rewrite_addr(skb, pkt, IPV4_SADDR_OFF, pkt->tuple.saddr, addr);

	if (ret < 0)
		return ret;
	return nat4_rewrite_port(skb, pkt, l4_port_off(pkt, false), pkt->tuple.sport, port);
}

/*
 * Decrements the TTL of a packet about to be forwarded past the stack, as a
 * router does, fixing the header checksum over the TTL/protocol word.
 */
static __always_inline int nat4_dec_ttl(struct __sk_buff *skb, __u8 ttl, __u8 proto)
{
	__be16 from = bpf_htons((__u16)ttl << 8 | proto);
	__be16 to = bpf_htons((__u16)(ttl - 1) << 8 | proto);
	__u8 new_ttl = ttl - 1;

	if (bpf_l3_csum_replace(skb, IPV4_CSUM_OFF, from, to, sizeof(to)) < 0)
		return DROP_NAT;
	if (bpf_skb_store_bytes(skb, IPV4_TTL_OFF, &new_ttl, sizeof(new_ttl), 0) < 0)
		return DROP_NAT;
	return 0;
}

#endif /* FERRY_LIB_NAT4_H */
