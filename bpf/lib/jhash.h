/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bob Jenkins' lookup3 final mix as the kernel's <linux/jhash.h> has it
 * (jhash_3words): three words and a seed to a well-mixed 32-bit hash, every
 * input bit affecting every output bit. Maglev (lib/lb4.h) takes a table
 * index from it modulo a prime, so the low bits must be as good as the high.
 */
#ifndef FERRY_LIB_JHASH_H
#define FERRY_LIB_JHASH_H

#define JHASH_INITVAL		0xdeadbeef

static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	initval += JHASH_INITVAL + (3 << 2);
	a += initval;
	b += initval;
	c += initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

#endif /* FERRY_LIB_JHASH_H */
