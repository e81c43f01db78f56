/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv6 address and port rewrites with incremental checksum fix-ups. IPv6
 * has no header checksum; the TCP/UDP checksum covers the 128-bit
 * addresses through its pseudo header (RFC 8200, 8.1), and the ports. An
 * address and its port change together, so one rewrite makes one checksum
 * update: the sum of both differences.
 */
#ifndef FERRY_LIB_NAT6_H
#define FERRY_LIB_NAT6_H

#include "include/ferry_drop.h"
#include "lib/common.h"
#include "lib/csum.h"
#include "lib/pkt6.h"

/* The TCP or UDP checksum field, in place (see pkt6_l4()), or NULL. */
static __always_inline __sum16 *pkt6_l4_check(struct __sk_buff *skb, const struct pkt6 *pkt)
{
	if (pkt->tuple.proto == LB_PROTO_TCP) {
		struct tcphdr *th = pkt6_l4(skb, sizeof(*th));

		return th ? &th->check : NULL;
	}
	struct udphdr *uh = pkt6_l4(skb, sizeof(*uh));

	return uh ? &uh->check : NULL;
}

/*
 * Fixes the L4 checksum for an address that changed by `addr_diff` and a
 * port that changed by `port_diff` (csum_diff16() sums), by how the skb
 * keeps its checksum (pkt->ip_summed), as nat4_l4_csum() does:
 *  - CHECKSUM_PARTIAL (a local sender left it to the device): the field
 *    holds the pseudo header's sum, uncomplemented; the device sums the
 *    rest, so only the address moves it;
 *  - CHECKSUM_NONE, _UNNECESSARY: the field is the whole checksum; RFC 1624;
 *  - CHECKSUM_COMPLETE: the same, in place, and skb->csum (the device's sum
 *    of the packet from the IPv6 header on) stays as it is: IPv6 has no
 *    header checksum, so an address and the L4 checksum change by opposite
 *    amounts and the packet's sum does not move (nor does it for a port).
 *    IPv4 needs bpf_l4_csum_replace() here to move skb->csum for its
 *    header checksum's change; for IPv6 that helper would move it wrongly,
 *    unless given BPF_F_IPV6 (Linux 6.16, and vmlinux.h's enumerator only
 *    there), with which it does exactly what is done here.
 * UDP's checksum 0 stays 0 (IPv6 forbids it, but it is not ours to fix);
 * a computed 0 goes out as 0xffff. Returns 0 or DROP_NAT.
 */
static __always_inline int nat6_l4_csum(struct __sk_buff *skb, const struct pkt6 *pkt, __u32 addr_diff, __u32 port_diff)
{
	bool udp = pkt->tuple.proto == LB_PROTO_UDP;
	__sum16 *check = pkt6_l4_check(skb, pkt);
	__sum16 sum;

	if (!check)
		return DROP_NAT;
	sum = *check;
	if (udp && !sum)
		return 0;
	if (pkt->ip_summed == CHECKSUM_PARTIAL)
		sum = ~csum_update(~sum, addr_diff);
	else
		sum = csum_update(sum, csum_add(addr_diff, port_diff));
	*check = udp && !sum ? 0xffff : sum;
	return 0;
}

/*
 * Rewrites the source or destination (`dst`) address and port of the
 * tuple `pkt` was parsed with to `addr` and `port`, and the L4 checksum
 * over them, in place.
 */
static __always_inline int nat6_rewrite(struct __sk_buff *skb, const struct pkt6 *pkt, bool dst,
					const struct in6_addr *addr, __be16 port)
{
	const struct in6_addr *from = dst ? &pkt->tuple.daddr : &pkt->tuple.saddr;
	__be16 from_port = dst ? pkt->tuple.dport : pkt->tuple.sport;
	bool same_addr = ipv6_addr_equal(from, addr);
	struct ipv6hdr *ip6;
	struct udphdr *l4;
	int ret;

	if (same_addr && from_port == port)
		return 0;
	/* A port is one 16-bit word of the segment; 0 for one that stays. */
	ret = nat6_l4_csum(skb, pkt, same_addr ? 0 : csum_diff16(from, addr),
			   from_port == port ? 0 : (__u32)(__u16)~from_port + port);
	if (ret < 0)
		return ret;
	ip6 = pkt6_ip(skb);
	/* TCP's ports are where UDP's are, in the first 4 bytes. */
	l4 = pkt6_l4(skb, sizeof(*l4));
	if (!ip6 || !l4)
		return DROP_NAT;
	if (dst) {
		ip6->daddr = *addr;
		l4->dest = port;
	} else {
		ip6->saddr = *addr;
		l4->source = port;
	}
	/* The skb's flow hash stays the one of the tuple before translation, as nat4_rewrite_addr() says. */
	return 0;
}

/* The destination becomes addr:port: a backend (DNAT), or an SNATed client's own address again. */
static __always_inline int nat6_rewrite_dst(struct __sk_buff *skb, const struct pkt6 *pkt,
					    const struct in6_addr *addr, __be16 port)
{
	return nat6_rewrite(skb, pkt, true, addr, port);
}

/* The source becomes addr:port: the service (a reply's reverse NAT), or the SNAT address and port. */
static __always_inline int nat6_rewrite_src(struct __sk_buff *skb, const struct pkt6 *pkt,
					    const struct in6_addr *addr, __be16 port)
{
	return nat6_rewrite(skb, pkt, false, addr, port);
}

#endif /* FERRY_LIB_NAT6_H */
