/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 address and port rewrites with incremental checksum fix-ups: the IP
 * header checksum, and the TCP/UDP checksum, whose pseudo header covers the
 * addresses. ICMP echo's identifier is its "port" (ct4_key); ICMP's
 * checksum has no pseudo header. Fields are written in place (pkt4_ip(),
 * pkt4_l4()); the L4 checksum goes through bpf_l4_csum_replace(), after
 * which packet pointers are looked up again.
 */
#ifndef FERRY_LIB_NAT4_H
#define FERRY_LIB_NAT4_H

#include "include/ferry_drop.h"
#include "lib/common.h"
#include "lib/csum.h"
#include "lib/pkt4.h"

/*
 * ICMP's checksum offset, from __builtin_offsetof. Verifier workaround:
 * libbpf's offsetof() on vmlinux.h's structs (all marked
 * preserve_access_index) turns into CO-RE relocations, and clang 14 lowered
 * a choice between two of them into a load through the relocated constant
 * ("R1 invalid mem access 'scalar'"). Packet headers have a fixed wire
 * layout: no CO-RE needed.
 */
#define ICMP4_CSUM_OFF	__builtin_offsetof(struct icmphdr, checksum)

/*
 * The L4 header's checksum field, in place (see pkt4_l4()), or NULL. One
 * branch per protocol, each with its header's constant size: the verifier
 * must see which bound holds where.
 */
static __always_inline __sum16 *pkt4_l4_check(struct __sk_buff *skb, const struct pkt4 *pkt)
{
	if (pkt->tuple.proto == LB_PROTO_TCP) {
		struct tcphdr *th = pkt4_l4(skb, pkt->l4_off, sizeof(*th));

		return th ? &th->check : NULL;
	}
	if (pkt->tuple.proto == LB_PROTO_UDP) {
		struct udphdr *uh = pkt4_l4(skb, pkt->l4_off, sizeof(*uh));

		return uh ? &uh->check : NULL;
	}
	struct icmphdr *ih = pkt4_l4(skb, pkt->l4_off, sizeof(*ih));

	return ih ? &ih->checksum : NULL;
}

/*
 * Fixes the L4 checksum for one field that went from `from` to `to`: an
 * address (`pseudo`: TCP's and UDP's checksums cover it through the pseudo
 * header) or a port (an echo's identifier), as bpf_l4_csum_replace() would,
 * by how the skb keeps its checksum (pkt->ip_summed):
 *  - CHECKSUM_PARTIAL (a local sender left it to the device): the field
 *    holds the pseudo header's sum, uncomplemented; the rest is summed on
 *    the way out, so only an address moves it;
 *  - CHECKSUM_NONE, _UNNECESSARY: the field is the whole checksum; RFC 1624;
 *  - CHECKSUM_COMPLETE: skb->csum, the device's sum of the packet, must
 *    move too, which only the helper can write: the helper.
 * UDP's checksum 0 means "none" and stays 0; a computed 0 goes out as
 * 0xffff (RFC 768). Returns 0 or DROP_NAT; packet pointers held across it
 * must be looked up again.
 */
static __always_inline int nat4_l4_csum(struct __sk_buff *skb, const struct pkt4 *pkt,
					__be32 from, __be32 to, bool pseudo)
{
	bool udp = pkt->tuple.proto == LB_PROTO_UDP;
	__sum16 *check;
	__sum16 sum;

	if (pkt->ip_summed == CHECKSUM_PARTIAL && !pseudo)
		return 0;
	check = pkt4_l4_check(skb, pkt);
	if (!check)
		return DROP_NAT;
	if (pkt->ip_summed == CHECKSUM_COMPLETE) {
		__u64 flags = (udp ? BPF_F_MARK_MANGLED_0 : 0) | (pseudo ? BPF_F_PSEUDO_HDR | 4 : 2);
		__u32 off = (void *)check - ctx_data(skb);

		return bpf_l4_csum_replace(skb, off, from, to, flags) < 0 ? DROP_NAT : 0;
	}
	sum = *check;
	if (udp && !sum)
		return 0;
	if (pkt->ip_summed == CHECKSUM_PARTIAL)
		sum = ~csum_replace4(~sum, from, to);
	else
		sum = csum_replace4(sum, from, to);
	*check = udp && !sum ? 0xffff : sum;
	return 0;
}

/*
 * Rewrites the IPv4 source or destination address (`dst`) from `from` to
 * `to`, and the checksums over it (nat4_l4_csum()), in place.
 */
static __always_inline int nat4_rewrite_addr(struct __sk_buff *skb, const struct pkt4 *pkt,
					     bool dst, __be32 from, __be32 to)
{
	struct iphdr *ip;
	int ret;

	if (from == to)
		return 0;
	if (pkt->tuple.proto != LB_PROTO_ICMP) {
		ret = nat4_l4_csum(skb, pkt, from, to, true);
		if (ret < 0)
			return ret;
	}
	/* After nat4_l4_csum(), whose helper may have moved the data. */
	ip = pkt4_ip(skb);
	if (!ip)
		return DROP_NAT;
	if (dst)
		ip->daddr = to;
	else
		ip->saddr = to;
	ip->check = csum_replace4(ip->check, from, to);
	/*
	 * The skb's flow hash (RPS, ECMP, fq) stays the one of the tuple before
	 * translation: still one per flow, as consistent as a new one would be,
	 * and the stack need not dissect the packet again to get it.
	 */
	return 0;
}

/* Rewrites the tuple's source or destination port (`dst`): an echo's identifier stands for both. */
static __always_inline int nat4_rewrite_port(struct __sk_buff *skb, const struct pkt4 *pkt,
					     bool dst, __be16 from, __be16 to)
{
	void *l4;
	int ret;

	if (from == to)
		return 0;
	/* A port as the low half of a word: the high half, 0 both times, adds nothing. */
	ret = nat4_l4_csum(skb, pkt, from, to, false);
	if (ret < 0)
		return ret;
	/* Every L4 header parsed has its ports (an echo its identifier) in its first 8 bytes. */
	l4 = pkt4_l4(skb, pkt->l4_off, sizeof(struct udphdr));
	if (!l4)
		return DROP_NAT;
	if (pkt->tuple.proto == LB_PROTO_ICMP)
		((struct icmphdr *)l4)->un.echo.id = to;
	else if (dst)
		((struct udphdr *)l4)->dest = to;
	else
		((struct udphdr *)l4)->source = to;
	return 0;
}

/*
 * The destination becomes addr:port: a service's backend (DNAT), or the
 * client's own address again (a reply of an SNATed or masqueraded flow).
 */
static __always_inline int nat4_rewrite_dst(struct __sk_buff *skb, const struct pkt4 *pkt, __be32 addr, __be16 port)
{
	int ret = nat4_rewrite_addr(skb, pkt, true, pkt->tuple.daddr, addr);

	if (ret < 0)
		return ret;
	return nat4_rewrite_port(skb, pkt, true, pkt->tuple.dport, port);
}

/*
 * The source becomes addr:port: the service IP:port (a reply's reverse
 * NAT), or an address of the node and an allocated port (SNAT, masquerade,
 * hairpin).
 */
static __always_inline int nat4_rewrite_src(struct __sk_buff *skb, const struct pkt4 *pkt, __be32 addr, __be16 port)
{
	int ret = nat4_rewrite_addr(skb, pkt, false, pkt->tuple.saddr, addr);

	if (ret < 0)
		return ret;
	return nat4_rewrite_port(skb, pkt, false, pkt->tuple.sport, port);
}

/*
 * Decrements the TTL of a packet about to be forwarded past the stack, as a
 * router does (the caller has seen it above 1), fixing the header checksum
 * the way the kernel's ip_decrease_ttl() does: the TTL is the high byte of
 * its 16-bit word.
 */
static __always_inline int nat4_dec_ttl(struct __sk_buff *skb)
{
	struct iphdr *ip = pkt4_ip(skb);
	__u32 check;

	if (!ip)
		return DROP_NAT;
	check = ip->check;
	check += bpf_htons(0x0100);
	ip->check = (__sum16)(check + (check >= 0xffff));
	ip->ttl--;
	return 0;
}

#endif /* FERRY_LIB_NAT4_H */
