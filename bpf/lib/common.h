/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Constants every ferry program needs that vmlinux.h cannot give: they are
 * macros in the kernel's headers, and BTF carries no macros.
 */
#ifndef FERRY_LIB_COMMON_H
#define FERRY_LIB_COMMON_H

#define ETH_HLEN		14
#define ETH_ALEN		6
#define ETH_P_IP		0x0800
#define ETH_P_IPV6		0x86dd
#define AF_INET			2
#define AF_INET6		10

#define IP_OFFSET		0x1fff	/* fragment offset, in 8-byte units */
#define IP_MF			0x2000	/* more fragments follow */

/* The TCP flags byte (byte 13 of the header), as on the wire. */
#define TCPHDR_FIN		0x01
#define TCPHDR_SYN		0x02
#define TCPHDR_RST		0x04
#define TCPHDR_ACK		0x10
#define TCP_FLAGS_OFF		13

/* ICMP types (RFC 792) the programs tell apart. */
#define ICMP4_ECHO_REPLY	0
#define ICMP4_DEST_UNREACH	3
#define ICMP4_ECHO		8
#define ICMP4_TIME_EXCEEDED	11
#define ICMP4_PARAM_PROB	12

#define NSEC_PER_SEC		1000000000ULL

/* skb->ip_summed: how the packet's L4 checksum is kept (include/linux/skbuff.h). */
#define CHECKSUM_NONE		0
#define CHECKSUM_UNNECESSARY	1
#define CHECKSUM_COMPLETE	2
#define CHECKSUM_PARTIAL	3

/*
 * tc verdicts. tcx and cls_bpf (direct action) agree on what -1 means: tcx
 * calls it TCX_NEXT (run the next program on the hook, then carry on as if
 * none were there), cls_bpf TC_ACT_UNSPEC. Our own names, because an older
 * vmlinux.h has no enum tcx_action_base and TC_ACT_* are macros.
 */
#define FERRY_ACT_NEXT		(-1)
#define FERRY_ACT_OK		0	/* TC_ACT_OK / TCX_PASS: on into the stack */
#define FERRY_ACT_SHOT		2	/* TC_ACT_SHOT / TCX_DROP */
#define FERRY_ACT_REDIRECT	7	/* TC_ACT_REDIRECT / TCX_REDIRECT: bpf_redirect*() said where */

/*
 * skb->data and skb->data_end, loaded straight from the context.
 * Verifier workaround: when two paths reach a load of these fields (one that
 * called bpf_skb_pull_data() and one that did not), clang 14 merges them and
 * loads through a ctx pointer plus an offset held in a register, which the
 * verifier rejects ("dereference of modified ctx ptr R2 off=76 disallowed").
 * The asm pins each load to the ctx register with a constant offset.
 */
static __always_inline void *ctx_data(const struct __sk_buff *skb)
{
	void *ptr;

	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(ptr)
		     : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, data)));
	return ptr;
}

static __always_inline void *ctx_data_end(const struct __sk_buff *skb)
{
	void *ptr;

	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(ptr)
		     : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, data_end)));
	return ptr;
}

/*
 * The running kernel's timer tick rate, which libbpf reads from its config
 * (/proc/config.gz or /boot/config-*) at load; 0 when it finds none.
 */
extern unsigned int CONFIG_HZ __kconfig __weak;

/* ns per jiffy at the rates a kernel can be built with; 0 for any other. */
static __always_inline __u64 lb_jiffy_ns(void)
{
	switch (CONFIG_HZ) {
	case 100:
		return NSEC_PER_SEC / 100;
	case 250:
		return NSEC_PER_SEC / 250;
	case 300:
		return NSEC_PER_SEC / 300;
	case 1000:
		return NSEC_PER_SEC / 1000;
	default:
		return 0;
	}
}

/*
 * The time conntrack, affinity, SNAT and fragment records keep, in ns:
 * jiffies (bpf_jiffies64()) times the tick's length. The verifier inlines
 * bpf_jiffies64() as a load, where bpf_ktime_get_coarse_ns() is a call,
 * and with the kernel's mitigations a call costs ~15 ns: a tenth of an
 * established packet's whole path. The tick (1–10 ms) is fine-grained
 * enough for lifetimes of seconds. CONFIG_HZ comes from a read-only map
 * the verifier sees the value of, so it keeps one branch of the switch.
 * A kernel whose config libbpf cannot read falls back to
 * bpf_ktime_get_coarse_ns().
 *
 * This is not CLOCK_MONOTONIC: jiffies start at a value of their own.
 * User space reads this clock through bpf/clock.c (engine/dataplane/clock.ts),
 * never process.hrtime(), when it compares a record's time with now.
 */
static __always_inline __u64 lb_now(void)
{
	__u64 jiffy_ns = lb_jiffy_ns();

	if (jiffy_ns)
		return bpf_jiffies64() * jiffy_ns;
	return bpf_ktime_get_coarse_ns();
}

#endif /* FERRY_LIB_COMMON_H */
