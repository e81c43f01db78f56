/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What conntrack is in either family (lib/ct4.h, lib/ct6.h): a flow's state
 * machine and the lifetimes it gives an entry, the refresh interval, and
 * the TCP flags that move it. Nothing here depends on addresses.
 */
#ifndef FERRY_LIB_CT_H
#define FERRY_LIB_CT_H

#include "include/ferry_lb.h"
#include "lib/common.h"

/*
 * Lifetimes: how long an entry may sit idle. Cilium's defaults: a TCP flow
 * whose handshake is not done lives 60 s (SYN floods and dead backends age
 * out fast), an established one 6 hours (kube-proxy's conntrack keeps idle
 * connections for hours), a closing one 10 s. UDP and other protocols:
 * 60 s since the last packet either way, with or without replies.
 */
#define CT_LIFETIME_TCP_SYN	(60 * NSEC_PER_SEC)
#define CT_LIFETIME_TCP		(6 * 3600 * NSEC_PER_SEC)
#define CT_LIFETIME_TCP_CLOSE	(10 * NSEC_PER_SEC)
#define CT_LIFETIME_NONTCP	(60 * NSEC_PER_SEC)

/*
 * How stale an entry's last_seen may get while its flow's packets change
 * nothing else: a packet that only says "still alive" within this of the
 * last record writes nothing and leaves the twin entry alone (one lookup
 * and two writes of shared cache lines saved per packet, the common case of
 * an established flow). Small beside the shortest lifetime, 10 s.
 */
#define CT_REFRESH_NS		NSEC_PER_SEC

static __always_inline bool tcp_closing(__u8 flags)
{
	return flags & (TCPHDR_FIN | TCPHDR_RST);
}

/* A connection's first segment: SYN without ACK. */
static __always_inline bool tcp_opening(__u8 flags)
{
	return (flags & (TCPHDR_SYN | TCPHDR_ACK)) == TCPHDR_SYN;
}

/*
 * The flow's state after a packet with `flags` going `dir`. TCP: FIN or RST
 * closes; a segment without SYN ends the handshake (the client's ACK of the
 * SYN-ACK, or a flow picked up mid-stream); a new SYN from the client on a
 * closing flow (port reuse) opens it again. UDP: a reply establishes.
 */
static __always_inline enum ct_state ct_next_state(enum ct_state state, enum lb_proto proto,
						   __u8 flags, enum ct_dir dir)
{
	if (proto != LB_PROTO_TCP)
		return dir == CT_REVERSE ? CT_ESTABLISHED : state;
	if (tcp_closing(flags))
		return CT_CLOSING;
	if (state == CT_CLOSING && dir == CT_FORWARD && tcp_opening(flags))
		return CT_NEW;
	if (state == CT_NEW && !(flags & TCPHDR_SYN))
		return CT_ESTABLISHED;
	return state;
}

static __always_inline __u64 ct_lifetime(enum lb_proto proto, enum ct_state state)
{
	if (proto != LB_PROTO_TCP)
		return CT_LIFETIME_NONTCP;
	switch (state) {
	case CT_NEW:
		return CT_LIFETIME_TCP_SYN;
	case CT_ESTABLISHED:
		return CT_LIFETIME_TCP;
	default:
		return CT_LIFETIME_TCP_CLOSE;
	}
}

#endif /* FERRY_LIB_CT_H */
