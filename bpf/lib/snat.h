/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What both families' source NAT (lib/snat4.h, lib/snat6.h) share: the
 * node's configuration (its addresses and the one port range both claim
 * ports from) and how hard a claim tries.
 */
#ifndef FERRY_LIB_SNAT_H
#define FERRY_LIB_SNAT_H

#include "include/ferry_lb.h"

/* Random ports tried before giving up on a flow (DROP_NO_SNAT_PORT). */
#define SNAT_TRIES	16

static __always_inline const struct node_cfg *node_cfg(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&ferry_node_cfg, &key);
}

#endif /* FERRY_LIB_SNAT_H */
