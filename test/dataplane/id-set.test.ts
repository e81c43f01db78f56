// IdSet (engine/dataplane/id-set.ts): ids as bits, across blocks and up to 2^32 - 1.
import { describe, expect, it } from 'vitest';
import { IdSet } from '../../engine/dataplane/id-set.js';

describe('IdSet', () => {
  it('adds, finds, deletes and lists ids, at block edges and the top of the u32 range', () => {
    const set = new IdSet();
    const ids = [0, 1, 31, 32, 4095, 4096, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];
    for (const id of ids) set.add(id).add(id);
    expect(set.size).toBe(ids.length);
    for (const id of ids) expect(set.has(id)).toBe(true);
    for (const id of [2, 30, 33, 4094, 4097, 0x7fff_fffe, 0xffff_fffe]) expect(set.has(id)).toBe(false);
    expect([...set].sort((a, b) => a - b)).toEqual(ids);
    expect(set.delete(31)).toBe(true);
    expect(set.delete(31)).toBe(false);
    expect(set.delete(4097)).toBe(false);
    expect(set.has(31)).toBe(false);
    for (const id of [4096, 0xffff_ffff]) set.delete(id);
    expect([...set].sort((a, b) => a - b)).toEqual([0, 1, 32, 4095, 0x7fff_ffff, 0x8000_0000]);
    expect(set.size).toBe(6);
  });

  it('holds a run of 100k ids as a Set would', () => {
    const set = new IdSet();
    const plain = new Set<number>();
    for (let id = 1; id <= 100_000; id++) {
      set.add(id);
      plain.add(id);
    }
    for (let id = 1; id <= 100_000; id += 3) {
      set.delete(id);
      plain.delete(id);
    }
    expect(set.size).toBe(plain.size);
    expect([...set]).toEqual([...plain].sort((a, b) => a - b));
  });
});
