/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internet checksum arithmetic (RFC 1071, RFC 1624) over the sums
 * bpf_csum_diff() returns: 32-bit ones' complement sums of 16-bit words
 * taken in memory order, which are as good as network order for a checksum
 * kept in memory order too (the sum is byte-order independent).
 */
#ifndef FERRY_LIB_CSUM_H
#define FERRY_LIB_CSUM_H

/* Folds bpf_csum_diff()'s 32-bit ones' complement sum to the 16-bit checksum field. */
static __always_inline __sum16 csum_fold32(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__sum16)~s;
}

/*
 * The checksum field `check` once the data it covers changed by `diff`, as
 * bpf_csum_diff(old, new) measures it: HC' = ~(~HC + ~m + m') (RFC 1624).
 * For fields the helpers cannot reach by offset in one go, e.g. the
 * checksums inside an ICMP error's quote.
 */
static __always_inline __sum16 csum_update(__sum16 check, __s64 diff)
{
	__u64 s = (__u64)(__u16)~check + (__u32)diff;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__sum16)~s;
}

/*
 * The checksum field `check` once a 32-bit word it covers went from `from`
 * to `to`: HC' = ~(~HC + ~m + m') (RFC 1624, eqn. 3), both halves of each
 * word, in memory order like the field.
 */
static __always_inline __sum16 csum_replace4(__sum16 check, __be32 from, __be32 to)
{
	__u32 s = (__u16)~check;

	s += (~from & 0xffff) + (~from >> 16);
	s += (to & 0xffff) + (to >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__sum16)~s;
}

#endif /* FERRY_LIB_CSUM_H */
