// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4): a lookup table of
// M entries (M prime) in which every backend owns about M/N entries, and
// which changes little when a backend comes or goes. The datapath indexes it
// by the hash of a flow's 5-tuple (bpf/lib/lb4.h), so every node with the
// same table sends a flow to the same backend, with or without conntrack.
//
// Each backend's preference list is the permutation
//   permutation[j] = (offset + j * skip) mod M,
// offset and skip coming from two seeded hashes of the backend's identity
// (its `address:port/proto` key), so a table depends only on the seed, M and
// the set of identities: not on their order, nor on backend ids. Backends
// then take turns claiming their next preferred entry not yet taken, until
// the table is full (the paper's Populate, pseudocode 1).
import { createHash } from 'node:crypto';

import { MAGLEV_MAX } from './layout.js';

/** The default table size, a prime: Cilium's default too. Entries per backend: M/N ± 1. */
export const MAGLEV_DEFAULT_SIZE = 16381;

/** The default seed of the table's permutations and of the datapath's 5-tuple hash. */
export const MAGLEV_DEFAULT_SEED = 0x6d61676c; // 'magl'

export interface MaglevOptions {
  /** M, a prime ≤ MAGLEV_MAX (16381); default MAGLEV_DEFAULT_SIZE. The paper wants M ≫ N (M ≥ 100 N keeps imbalance and disruption low). */
  size?: number;
  /** Seeds both permutation hashes; default MAGLEV_DEFAULT_SEED. Nodes must agree on it. */
  seed?: number;
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Checks a table size: a prime ≤ MAGLEV_MAX (the room struct lb4_maglev has). */
export function checkMaglevSize(size: number): number {
  if (!isPrime(size) || size > MAGLEV_MAX) throw new RangeError(`Maglev table size ${size}: must be a prime ≤ ${MAGLEV_MAX}`);
  return size;
}

/**
 * offset ∈ [0, M) and skip ∈ [1, M) of a backend: two independent 64-bit
 * hashes (halves of SHA-256 over seed and identity), reduced mod M and
 * M − 1. SHA-256 is slow next to the paper's hashes but runs once per
 * backend per table, and is the same on every node and Node.js version.
 */
function permutationOf(name: string, size: number, seed: number): { offset: number; skip: number } {
  const digest = createHash('sha256').update(`${seed >>> 0}\0${name}`).digest();
  const h1 = digest.readBigUInt64BE(0);
  const h2 = digest.readBigUInt64BE(8);
  return { offset: Number(h1 % BigInt(size)), skip: Number(h2 % BigInt(size - 1)) + 1 };
}

/**
 * The Maglev lookup table for backends named `names` (duplicates count
 * once): M entries, each the name of the backend that owns it. Empty for no
 * backends.
 */
export function maglevTable(names: Iterable<string>, options: MaglevOptions = {}): string[] {
  const size = checkMaglevSize(options.size ?? MAGLEV_DEFAULT_SIZE);
  const seed = options.seed ?? MAGLEV_DEFAULT_SEED;
  // Sorted: the turn order must not depend on the caller's order.
  const backends = [...new Set(names)].sort();
  const n = backends.length;
  if (n === 0) return [];

  const perms = backends.map((name) => permutationOf(name, size, seed));
  const next = new Uint32Array(n); // j: how far along its permutation each backend is
  const entry = new Int32Array(size).fill(-1);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      const { offset, skip } = perms[i]!;
      // Skip the backend's preferences already taken. skip < M and M prime:
      // the permutation visits every entry, so this ends.
      let c = (offset + next[i]! * skip) % size;
      while (entry[c]! >= 0) {
        next[i]!++;
        c = (offset + next[i]! * skip) % size;
      }
      entry[c] = i;
      next[i]!++;
      if (++filled === size) return Array.from(entry, (index) => backends[index]!);
    }
  }
}
