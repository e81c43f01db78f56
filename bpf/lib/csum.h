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

/* a + b in ones' complement, 32 bits: the carry out comes back in at the bottom. */
static __always_inline __u32 csum_add(__u32 a, __u32 b)
{
	__u32 s = a + b;

	return s + (s < a);
}

/*
 * What bpf_csum_diff() would return for 16 bytes (an IPv6 address) going
 * from `from` to `to`: the 32-bit ones' complement sum of ~from and to,
 * word by word, in memory order; without the helper call.
 */
static __always_inline __u32 csum_diff16(const struct in6_addr *from, const struct in6_addr *to)
{
	__u32 s = 0;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		s = csum_add(s, ~from->in6_u.u6_addr32[i]);
		s = csum_add(s, to->in6_u.u6_addr32[i]);
	}
	return s;
}

/* Folds a 64-bit sum of 32-bit words (memory order) to the 16-bit checksum field. */
static __always_inline __sum16 csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return csum_fold32(sum);
}

#endif /* FERRY_LIB_CSUM_H */
