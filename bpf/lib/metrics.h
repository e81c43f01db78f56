/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The load balancer's per-CPU counters (ferry_lb_metric, enum lb_metric). */
#ifndef FERRY_LIB_METRICS_H
#define FERRY_LIB_METRICS_H

#include "include/ferry_lb.h"

/*
 * Never called, and never loaded: a function with an enum lb_metric
 * parameter is what puts the enum into the object's BTF, where
 * test/dataplane/layout.test.ts checks the metric names engine/dataplane
 * uses (an enumerator used only as a constant never reaches BTF). lb_count()
 * itself is inlined: a BPF-to-BPF call per count cost more than the count.
 */
__attribute__((used)) static __noinline int lb_metric_btf(enum lb_metric metric)
{
	return metric;
}

/* Adds one to a counter. */
static __always_inline void lb_count(enum lb_metric metric)
{
	__u32 key = metric;
	__u64 *count = bpf_map_lookup_elem(&ferry_lb_metric, &key);

	/* Never NULL below max_entries, but the verifier cannot know. */
	if (count)
		*count += 1;	/* per-CPU: no other CPU writes this slot */
}

#endif /* FERRY_LIB_METRICS_H */
