// The backends maps as arrays (engine/dataplane/backend-slots.ts): a slot
// holds no backend when its address is all zero, a backend is removed by
// writing its slot all zero, and reading skips the empty slots. The same
// steps on a kernel array (lb.o's ferry_lb4_be, ferry_lb6_be) and on the
// in-memory array tests use in its place, which must behave alike.
import { describe, expect, it } from 'vitest';
import { backendIdsIn, backendSlots, clearBackend, emptyBackend, isEmptyBackend } from '../../engine/dataplane/backend-slots.js';
import { backendId, BACKENDS_MAX, lb4Backend, lb6Backend, type Family } from '../../engine/dataplane/layout.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { isRoot } from '../support/netns.js';
import { loadLb } from './lb-fixture.js';

const CODECS = { 4: lb4Backend, 6: lb6Backend } as const;
const ADDRESS = { 4: '10.244.0.5', 6: 'fd00::5' } as const;

interface ArrayMap {
  lookup(key: Buffer): Buffer | undefined;
  update(key: Buffer, value: Buffer): void;
  delete(key: Buffer): boolean;
  entries(): Iterable<[Buffer, Buffer]>;
  readonly maxEntries?: number;
}

/** The steps, on one backends map of `family`; returns what they saw. */
function exercise(map: ArrayMap, family: Family) {
  const codec = CODECS[family];
  const write = (id: number) => map.update(backendId.encode(id), codec.encode({ address: ADDRESS[family], port: 8080, proto: 'tcp', flags: 0 }));
  const unwritten = map.lookup(backendId.encode(4097))!;
  write(4097);
  write(4098);
  write(60000);
  clearBackend(map, family, 4098);
  let deleteRefused = false;
  try {
    map.delete(backendId.encode(4097));
  } catch {
    deleteRefused = true;
  }
  let pastEndRefused = false;
  try {
    write(map.maxEntries!);
  } catch {
    pastEndRefused = true;
  }
  return {
    unwritten: unwritten.equals(emptyBackend(family)) && isEmptyBackend(unwritten),
    cleared: isEmptyBackend(map.lookup(backendId.encode(4098))!),
    past: map.lookup(backendId.encode(map.maxEntries!)),
    ids: backendIdsIn(map).sort((a, b) => a - b),
    slots: backendSlots(map).map(([, v]) => codec.decode(v).address),
    deleteRefused,
    pastEndRefused,
  };
}

const EXPECTED = (family: Family) => ({
  unwritten: true,
  cleared: true,
  past: undefined,
  ids: [4097, 60000],
  slots: [ADDRESS[family], ADDRESS[family]],
  deleteRefused: true,
  pastEndRefused: true,
});

describe('backend slots', () => {
  it('an empty slot is one whose address is all zero, whatever else it holds', () => {
    expect(isEmptyBackend(emptyBackend(4))).toBe(true);
    expect(isEmptyBackend(emptyBackend(6))).toBe(true);
    expect(isEmptyBackend(lb4Backend.encode({ address: '0.0.0.0', port: 80, proto: 'tcp', flags: 0 }))).toBe(true);
    expect(isEmptyBackend(lb4Backend.encode({ address: '0.0.0.1', port: 0, proto: 'tcp', flags: 0 }))).toBe(false);
    expect(isEmptyBackend(lb6Backend.encode({ address: '::1', port: 0, proto: 'tcp', flags: 0 }))).toBe(false);
    expect(isEmptyBackend(lb6Backend.encode({ address: '::', port: 80, proto: 'udp', flags: 0 }))).toBe(true);
  });

  it.each([4, 6] as const)('IPv%s: the in-memory array behaves as the kernel’s', (family) => {
    const map = new MemoryMap('backends', backendId.size, CODECS[family].size, { array: true, maxEntries: BACKENDS_MAX });
    expect(exercise(map, family)).toEqual(EXPECTED(family));
    expect(map.size).toBe(BACKENDS_MAX);
  });

  it.skipIf(!isRoot).each([4, 6] as const)('IPv%s: lb.o’s backends map, a kernel array (needs root)', async (family) => {
    const lb = await loadLb();
    const map = family === 4 ? lb.backends : lb.backends6;
    expect(map.type).toBe('array');
    expect(exercise(map, family)).toEqual(EXPECTED(family));
  });
});
