/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Why a program drops a packet. Drop codes are negative, so anywhere in a
 * call chain "ret < 0" means "drop, for this reason"; a non-negative return
 * is an outcome to count (an enum lb_metric). Each code is the negation of
 * the metric that counts it, so enum lb_metric stays the one list of reasons
 * and the entry point needs no table to count a drop.
 */
#ifndef FERRY_DROP_H
#define FERRY_DROP_H

#include "include/ferry_lb.h"

#define DROP_NO_BACKEND		(-LB_METRIC_DROP_NO_BACKEND)
#define DROP_NO_SLOT		(-LB_METRIC_DROP_NO_SLOT)
#define DROP_CT_CREATE		(-LB_METRIC_DROP_CT_CREATE)
#define DROP_NAT		(-LB_METRIC_DROP_NAT)
#define DROP_NO_SNAT_ADDR	(-LB_METRIC_DROP_NO_SNAT_ADDR)
#define DROP_NO_SNAT_PORT	(-LB_METRIC_DROP_NO_SNAT_PORT)
#define DROP_TTL		(-LB_METRIC_DROP_TTL)

/* Metric 0 negated would be 0, which is no drop. */
_Static_assert(LB_METRIC_DROP_NO_BACKEND > 0 && LB_METRIC_DROP_NO_SLOT > 0 &&
	       LB_METRIC_DROP_CT_CREATE > 0 && LB_METRIC_DROP_NAT > 0 &&
	       LB_METRIC_DROP_NO_SNAT_ADDR > 0 && LB_METRIC_DROP_NO_SNAT_PORT > 0 &&
	       LB_METRIC_DROP_TTL > 0,
	       "drop metrics are never index 0");

static __always_inline bool is_drop(int ret)
{
	return ret < 0;
}

static __always_inline __u32 drop_metric(int ret)
{
	return (__u32)-ret;
}

#endif /* FERRY_DROP_H */
