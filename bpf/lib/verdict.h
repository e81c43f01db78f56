/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A packet's outcome (an enum lb_metric, or a drop code) counted and
 * turned into the tc verdict, whichever family's path it took.
 */
#ifndef FERRY_LIB_VERDICT_H
#define FERRY_LIB_VERDICT_H

#include "include/ferry_drop.h"
#include "include/ferry_lb.h"
#include "lib/common.h"
#include "lib/metrics.h"

static __always_inline bool lb_translated(int outcome)
{
	return outcome == LB_METRIC_TRANSLATED || outcome == LB_METRIC_REV_TRANSLATED ||
	       outcome == LB_METRIC_MASQUERADED || outcome == LB_METRIC_ICMP_TRANSLATED ||
	       outcome == LB_METRIC_FRAG_TRANSLATED;
}

/*
 * Counts a packet's outcome and turns it into the tc verdict: a drop
 * FERRY_ACT_SHOT, a translated packet FERRY_ACT_OK (on into the stack),
 * anything else FERRY_ACT_NEXT (untouched: the rest of the hook decides).
 */
static __always_inline int lb_verdict(int outcome)
{
	if (is_drop(outcome)) {
		lb_count(drop_metric(outcome));
		return FERRY_ACT_SHOT;
	}
	lb_count(outcome);
	return lb_translated(outcome) ? FERRY_ACT_OK : FERRY_ACT_NEXT;
}

#endif /* FERRY_LIB_VERDICT_H */
