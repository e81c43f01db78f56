// IdAllocator (engine/dataplane/ids.ts): stable ids, handed out round-robin,
// restored after a restart, conflicts refused — with the ids kept as bits.
import { describe, expect, it } from 'vitest';
import { IdAllocator, IdConflictError, IdsExhaustedError } from '../../engine/dataplane/ids.js';

describe('IdAllocator', () => {
  it('binds a key once, and reuses a released id only after every other free one', () => {
    const ids = new IdAllocator('test id', 1, 4);
    expect(['a', 'b', 'a', 'c'].map((k) => ids.acquire(k))).toEqual([1, 2, 1, 3]);
    expect(ids.release('b')).toBe(true);
    expect(ids.release('b')).toBe(false);
    expect(ids.has(2)).toBe(false);
    expect(ids.acquire('d')).toBe(4);
    expect(ids.acquire('e')).toBe(2); // wrapped around to the only free id
    expect(() => ids.acquire('f')).toThrow(IdsExhaustedError);
    expect([...ids.entries()]).toEqual([['a', 1], ['c', 3], ['d', 4], ['e', 2]]);
    expect(ids.keysById()).toEqual(new Map([[1, 'a'], [3, 'c'], [4, 'd'], [2, 'e']]));
    expect(ids.size).toBe(4);
  });

  it('restores bindings, refuses contradicting ones, and continues after the highest', () => {
    const ids = new IdAllocator('backend id', 1, 1000);
    ids.restore('a', 7);
    ids.restore('a', 7);
    expect(() => ids.restore('a', 8)).toThrow(new IdConflictError('a has backend ids 7 and 8'));
    expect(() => ids.restore('b', 7)).toThrow(new IdConflictError('backend id 7 is bound to both a and b'));
    expect(() => ids.restore('b', 1001)).toThrow(IdConflictError);
    expect(ids.acquire('b')).toBe(8);
  });

  it('keeps far-apart and block-edge ids apart, up to the top of a u32 range', () => {
    const ids = new IdAllocator('backend id', 1, 0xffff_efff);
    const far = [4095, 4096, 4097, 0x7fff_ffff, 0x8000_0000, 0xffff_efff];
    far.forEach((id, i) => ids.restore(`k${i}`, id));
    for (const id of far) expect(ids.has(id)).toBe(true);
    for (const id of [4094, 4098, 0x7fff_fffe, 0x8000_0001, 0xffff_effe]) expect(ids.has(id)).toBe(false);
    // The cursor is past the highest restored id: it wraps to the bottom and skips what is bound.
    expect(ids.acquire('next')).toBe(1);
    ids.releaseUnless((id) => id >= 0x8000_0000);
    expect(far.map((id) => ids.has(id))).toEqual([false, false, false, false, true, true]);
    expect(ids.has(1)).toBe(false);
    expect([...ids.entries()]).toEqual([['k4', 0x8000_0000], ['k5', 0xffff_efff]]);
  });

  it('hands ids out in order through many acquisitions and releases', () => {
    const ids = new IdAllocator('backend id', 1, 1 << 20);
    let next = 1;
    for (let round = 0; round < 20; round++) {
      const keys = Array.from({ length: 1000 }, (_, i) => `r${round}-${i}`);
      for (const k of keys) expect(ids.acquire(k)).toBe(next++);
      for (const k of keys.slice(0, 900)) ids.release(k);
    }
    expect(ids.size).toBe(20 * 100);
    expect(ids.has(1)).toBe(false);
    expect(ids.has(901)).toBe(true);
  });
});
