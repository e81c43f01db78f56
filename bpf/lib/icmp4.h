/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rejecting a packet to a service without endpoints the way kube-proxy's
 * iptables mode does (`-j REJECT` in KUBE-SERVICES / KUBE-EXTERNAL-SERVICES,
 * whose default is --reject-with icmp-port-unreachable, for TCP as for
 * UDP): the packet itself is turned into an ICMP destination unreachable,
 * port unreachable (type 3 code 3, RFC 792) from the service's address back
 * to its sender, and bounced out of the interface it came in on.
 *
 *   before: eth | IP (20..60) | TCP/UDP ...
 *   after:  eth (MACs swapped) | IP (20, VIP -> client) | ICMP (8) |
 *           the original IP header | its first 8 bytes of L4
 *
 * RFC 1122 3.2.2: no ICMP error about an ICMP error (only TCP and UDP reach
 * here: services are TCP or UDP), a non-first fragment (pkt4_parse() passes
 * it), a link-layer broadcast or multicast, or a packet whose source is
 * not one host (0.0.0.0, multicast, broadcast): those are dropped instead.
 */
#ifndef FERRY_LIB_ICMP4_H
#define FERRY_LIB_ICMP4_H

#include <bpf/bpf_endian.h>

#include "include/ferry_drop.h"
#include "lib/common.h"
#include "lib/csum.h"
#include "lib/eth.h"
#include "lib/pkt4.h"

/* Macros in the kernel's headers, so not in vmlinux.h (IPPROTO_ICMP is an enum there). */
#define ICMP4_PORT_UNREACH	3
#define ICMP_TTL		64
#define ICMP_TOS		0xc0	/* IPTOS_PREC_INTERNETCONTROL, as the kernel's icmp_send() */

/* RFC 792: the original header and the first 64 bits of its data. */
#define ICMP4_QUOTE_L4		8
#define ICMP4_QUOTE_MAX		(60 + ICMP4_QUOTE_L4)

/* The reply as built on the stack, then written over the packet after its Ethernet header. */
struct icmp4_reply {
	struct iphdr ip;
	struct icmphdr icmp;
	__u8 quote[ICMP4_QUOTE_MAX];
};

/*
 * May the packet get an ICMP error at all (see the top of the file)? Reads
 * the Ethernet destination's group bit: pkt4_parse() has made the Ethernet
 * header linear.
 */
static __always_inline bool icmp4_may_answer(struct __sk_buff *skb, const struct pkt4 *pkt)
{
	void *data = ctx_data(skb);
	void *data_end = ctx_data_end(skb);
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return false;
	if (eth->h_dest[0] & 1)
		return false;
	return ipv4_is_one_host(pkt->tuple.saddr) && ipv4_is_one_host(pkt->tuple.daddr);
}

/*
 * Rewrites the packet (pkt4_parse()d, untranslated) into the port
 * unreachable for it and sends it back where it came from (eth_bounce()):
 * into the pod, or to the L2 hop the request came from at the uplink.
 * Returns FERRY_ACT_REDIRECT or DROP_NAT when a helper fails.
 */
static __always_inline int icmp4_port_unreach(struct __sk_buff *skb, const struct pkt4 *pkt)
{
	struct icmp4_reply reply = {};
	__u32 quote_len, icmp_len;
	__s64 sum;

	/*
	 * The quote: the IP header (options and all) and 8 bytes after it.
	 * Verifier workaround: the length is variable, and the verifier accepts
	 * it as the size of bpf_skb_load_bytes(), bpf_csum_diff() and
	 * bpf_skb_store_bytes() on the stack buffer only with bounds it can
	 * see: non-zero, and within the buffer. pkt->l4_off is read back from
	 * memory without the bounds pkt4_parse() checked, and clang turns range
	 * checks into arithmetic on copies the verifier cannot follow; a mask
	 * bounds the value itself. An IP header length is a multiple of 4 from
	 * 20 to 60, which the mask keeps, and bpf_csum_diff() sums whole 4-byte
	 * words (-EINVAL otherwise).
	 */
	quote_len = ((pkt->l4_off - ETH_HLEN) & 0x3c) + ICMP4_QUOTE_L4;
	icmp_len = sizeof(struct icmphdr) + quote_len;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, reply.quote, quote_len) < 0)
		return DROP_NAT;

	reply.ip.version = 4;
	reply.ip.ihl = sizeof(struct iphdr) / 4;
	reply.ip.tos = ICMP_TOS;
	reply.ip.tot_len = bpf_htons(sizeof(struct iphdr) + icmp_len);
	reply.ip.ttl = ICMP_TTL;
	reply.ip.protocol = IPPROTO_ICMP;
	reply.ip.saddr = pkt->tuple.daddr;
	reply.ip.daddr = pkt->tuple.saddr;
	reply.ip.check = csum_fold32(bpf_csum_diff(NULL, 0, (__be32 *)&reply.ip, sizeof(reply.ip), 0));

	reply.icmp.type = ICMP4_DEST_UNREACH;
	reply.icmp.code = ICMP4_PORT_UNREACH;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&reply.icmp, icmp_len, 0);
	if (sum < 0)
		return DROP_NAT;
	reply.icmp.checksum = csum_fold32(sum);

	/* To exactly the reply's length: grows a short SYN, cuts a long datagram. */
	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(struct iphdr) + icmp_len, 0) < 0)
		return DROP_NAT;
	/* A new packet: let the stack recompute the flow hash. */
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &reply, sizeof(struct iphdr) + icmp_len, BPF_F_INVALIDATE_HASH) < 0)
		return DROP_NAT;
	return eth_bounce(skb);
}

#endif /* FERRY_LIB_ICMP4_H */
