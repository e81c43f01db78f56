/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bob Jenkins' lookup3 hash as the kernel's <linux/jhash.h> has it:
 * jhash_3words() (three words and a seed, the final mix alone) and jhash2()
 * (any number of words), well-mixed 32-bit hashes, every input bit affecting
 * every output bit. Maglev (lib/lb4.h, lib/lb6.h) takes a table index from
 * them modulo a prime, so the low bits must be as good as the high.
 */
#ifndef FERRY_LIB_JHASH_H
#define FERRY_LIB_JHASH_H

#define JHASH_INITVAL		0xdeadbeef

static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

/* __jhash_mix(): three words of a longer key into the state. */
static __always_inline void jhash_mix(__u32 *a, __u32 *b, __u32 *c)
{
	*a -= *c; *a ^= rol32(*c, 4);  *c += *b;
	*b -= *a; *b ^= rol32(*a, 6);  *a += *c;
	*c -= *b; *c ^= rol32(*b, 8);  *b += *a;
	*a -= *c; *a ^= rol32(*c, 16); *c += *b;
	*b -= *a; *b ^= rol32(*a, 19); *a += *c;
	*c -= *b; *c ^= rol32(*b, 4);  *b += *a;
}

/* __jhash_final(): the last mix, whose result is c. */
static __always_inline void jhash_final(__u32 *a, __u32 *b, __u32 *c)
{
	*c ^= *b; *c -= rol32(*b, 14);
	*a ^= *c; *a -= rol32(*c, 11);
	*b ^= *a; *b -= rol32(*a, 25);
	*c ^= *b; *c -= rol32(*b, 16);
	*a ^= *c; *a -= rol32(*c, 4);
	*b ^= *a; *b -= rol32(*a, 14);
	*c ^= *b; *c -= rol32(*b, 24);
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	initval += JHASH_INITVAL + (3 << 2);
	a += initval;
	b += initval;
	c += initval;
	jhash_final(&a, &b, &c);
	return c;
}

/*
 * The kernel's jhash2(): `length` 32-bit words at `k`. `length` must be a
 * constant at the call, so that the loop unrolls into straight code.
 */
static __always_inline __u32 jhash2(const __u32 *k, __u32 length, __u32 initval)
{
	__u32 a, b, c;

	a = b = c = JHASH_INITVAL + (length << 2) + initval;
#pragma unroll
	while (length > 3) {
		a += k[0];
		b += k[1];
		c += k[2];
		jhash_mix(&a, &b, &c);
		length -= 3;
		k += 3;
	}
	switch (length) {
	case 3:
		c += k[2];
		/* fall through */
	case 2:
		b += k[1];
		/* fall through */
	case 1:
		a += k[0];
		jhash_final(&a, &b, &c);
		break;
	default:
		break;
	}
	return c;
}

#endif /* FERRY_LIB_JHASH_H */
