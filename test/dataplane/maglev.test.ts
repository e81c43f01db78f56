// engine/dataplane/maglev.ts: the Maglev lookup table's properties as the
// paper states them (balance, minimal disruption) and the determinism the
// datapath relies on. No root needed.
import { describe, expect, it } from 'vitest';

import { MAGLEV_MAX } from '../../engine/dataplane/layout.js';
import { checkMaglevSize, isPrime, MAGLEV_DEFAULT_SIZE, maglevTable } from '../../engine/dataplane/maglev.js';

const backends = (n: number) => Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${(i & 255) + 1}:8080/tcp`);

function countsOf(table: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const name of table) counts.set(name, (counts.get(name) ?? 0) + 1);
  return counts;
}

describe('maglevTable', () => {
  it.each([251, 16381].flatMap((m) => [3, 5, 10].map((n) => [m, n] as const)))('M = %i, N = %i: every backend owns M/N ± 10% of the entries', (m, n) => {
    const names = backends(n);
    const table = maglevTable(names, { size: m });
    expect(table).toHaveLength(m);
    const counts = countsOf(table);
    expect([...counts.keys()].sort()).toEqual([...names].sort());
    for (const count of counts.values()) {
      expect(count).toBeGreaterThanOrEqual((0.9 * m) / n);
      expect(count).toBeLessThanOrEqual((1.1 * m) / n);
    }
  });

  it.each([251, 16381].flatMap((m) => [3, 5, 10].map((n) => [m, n] as const)))(
    'M = %i, N = %i: removing any one backend moves its entries and few others (≤ 1/N + 2%% of them; ≤ 2%% with M ≫ N)',
    (m, n) => {
      const names = backends(n);
      const before = maglevTable(names, { size: m });
      for (const removed of names) {
        const after = maglevTable(
          names.filter((x) => x !== removed),
          { size: m },
        );
        let others = 0;
        let moved = 0;
        before.forEach((owner, i) => {
          if (owner === removed) expect(after[i]).not.toBe(removed);
          else {
            others++;
            if (after[i] !== owner) moved++;
          }
        });
        expect(after).not.toContain(removed);
        expect(moved / others).toBeLessThanOrEqual(m >= 100 * n ? 0.02 : 1 / n + 0.02);
      }
    },
  );

  it('adding a backend takes about M/(N+1) entries and moves few others', () => {
    const names = backends(5);
    const before = maglevTable(names, { size: 16381 });
    const after = maglevTable([...names, '10.0.9.9:8080/tcp'], { size: 16381 });
    let moved = 0;
    before.forEach((owner, i) => {
      if (after[i] !== owner && after[i] !== '10.0.9.9:8080/tcp') moved++;
    });
    expect(countsOf(after).get('10.0.9.9:8080/tcp')).toBeGreaterThanOrEqual(Math.floor(16381 / 6));
    expect(moved / 16381).toBeLessThanOrEqual(0.02);
  });

  it('is deterministic for a seed and a set of backends, whatever their order or repetition', () => {
    const names = backends(7);
    const table = maglevTable(names, { size: 251, seed: 42 });
    expect(maglevTable([...names].reverse(), { size: 251, seed: 42 })).toEqual(table);
    expect(maglevTable([...names, names[0]!, names[3]!], { size: 251, seed: 42 })).toEqual(table);
    expect(maglevTable(new Set(names), { size: 251, seed: 42 })).toEqual(table);
    // Another seed: another (still balanced) table.
    expect(maglevTable(names, { size: 251, seed: 43 })).not.toEqual(table);
  });

  it('one backend owns every entry; none gives an empty table', () => {
    expect(new Set(maglevTable(['10.0.0.1:80/tcp'], { size: 251 }))).toEqual(new Set(['10.0.0.1:80/tcp']));
    expect(maglevTable([], { size: 251 })).toEqual([]);
  });

  it('takes only primes up to MAGLEV_MAX as the size', () => {
    expect(MAGLEV_DEFAULT_SIZE).toBe(MAGLEV_MAX);
    expect(isPrime(MAGLEV_MAX)).toBe(true);
    expect(maglevTable(backends(3))).toHaveLength(MAGLEV_DEFAULT_SIZE);
    for (const bad of [250, 1, 0, -7, 2.5, 16411]) expect(() => checkMaglevSize(bad)).toThrow(/must be a prime/);
    expect(() => maglevTable(backends(3), { size: 255 })).toThrow(RangeError);
  });
});
