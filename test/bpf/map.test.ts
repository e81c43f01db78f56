// Map operations on Buffers: a hash (keys come and go) and a per-CPU array
// (values sized per possible CPU), from the test_maps.o fixture.
import { join } from 'node:path';
import { endianness } from 'node:os';
import { describe, expect, it } from 'vitest';

import {
  BpfError,
  BpfMap,
  BpfObject,
  KeyExistsError,
  KeyNotFoundError,
  possibleCpus,
} from '../../engine/bpf/index.js';
import { isRoot } from '../support/netns.js';
import { bpfObject, defer, pinDir } from './support.js';

const LE = endianness() === 'LE';
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  if (LE) b.writeBigUInt64LE(n);
  else b.writeBigUInt64BE(n);
  return b;
};
const readU32 = (b: Buffer) => (LE ? b.readUInt32LE(0) : b.readUInt32BE(0));

async function loadMaps() {
  const collection = await BpfObject.open(bpfObject('test_maps')).load();
  defer(() => collection.close());
  return collection;
}

describe.skipIf(!isRoot)('BpfMap (needs root: BPF)', () => {
  it('looks up, updates and deletes, with missing keys as undefined/false', async () => {
    const hash = (await loadMaps()).map('test_hash');
    expect(hash).toMatchObject({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 256, perCpu: false });

    expect(hash.lookup(u32(1))).toBeUndefined();
    expect(hash.delete(u32(1))).toBe(false);
    hash.update(u32(1), u64(10n));
    expect(hash.lookup(u32(1))).toEqual(u64(10n));
    hash.update(u32(1), u64(11n), 'exist');
    expect(hash.lookup(u32(1))).toEqual(u64(11n));

    const exists = (() => {
      try {
        hash.update(u32(1), u64(12n), 'noexist');
      } catch (e) {
        return e;
      }
    })();
    expect(exists).toBeInstanceOf(KeyExistsError);
    expect(exists).toMatchObject({ code: 'EEXIST', errno: 17, syscall: 'bpf_map_update_elem', object: 'map test_hash' });
    expect(() => hash.update(u32(2), u64(1n), 'exist')).toThrow(KeyNotFoundError);

    expect(hash.delete(u32(1))).toBe(true);
    expect(hash.lookup(u32(1))).toBeUndefined();
  });

  it('checks Buffer sizes before calling into the kernel', async () => {
    const hash = (await loadMaps()).map('test_hash');
    expect(() => hash.lookup(Buffer.alloc(8))).toThrow(RangeError);
    expect(() => hash.update(u32(1), Buffer.alloc(4))).toThrow(/value must be 8 bytes/);
    expect(() => hash.update(u32(1), u64(1n), 'sometimes' as never)).toThrow(TypeError);
  });

  it('iterates keys and entries, and writes and reads in batches', async () => {
    const hash = (await loadMaps()).map('test_hash');
    const entries = Array.from({ length: 100 }, (_, i) => [u32(i), u64(BigInt(i) * 3n)] as const);
    expect(hash.updateBatch(entries)).toBe(100);

    const keys = [...hash.keys()].map(readU32).sort((x, y) => x - y);
    expect(keys).toEqual(entries.map((_, i) => i));
    const viaIterator = new Map([...hash].map(([k, v]) => [readU32(k), v]));
    expect(viaIterator.size).toBe(100);
    expect(viaIterator.get(7)).toEqual(u64(21n));

    const viaBatch = hash.lookupBatch(16);
    expect(viaBatch).toHaveLength(100);
    expect(new Map(viaBatch.map(([k, v]) => [readU32(k), v])).get(99)).toEqual(u64(297n));

    expect(() => hash.updateBatch([[u32(1), Buffer.alloc(4)]])).toThrow(/value #0 must be 8 bytes/);
    expect(hash.updateBatch([])).toBe(0);

    // Packed: keys end to end, values end to end; the same batch, no Buffer per entry.
    expect(hash.updatePacked(Buffer.concat([u32(200), u32(201)]), Buffer.concat([u64(5n), u64(6n)]), 2)).toBe(2);
    expect(hash.lookup(u32(201))).toEqual(u64(6n));
    expect(() => hash.updatePacked(Buffer.alloc(8), Buffer.alloc(8), 2)).toThrow(/values must be 16 bytes/);
    expect(hash.updatePacked(Buffer.alloc(0), Buffer.alloc(0), 0)).toBe(0);

    // Scans reuse their buffers from call to call: each one's entries are its own.
    const first = hash.lookupBatch(8);
    hash.update(u32(7), u64(70n));
    const second = hash.lookupBatch(8);
    expect(new Map(first.map(([k, v]) => [readU32(k), v])).get(7)).toEqual(u64(21n));
    expect(new Map(second.map(([k, v]) => [readU32(k), v])).get(7)).toEqual(u64(70n));
  });

  it('sizes per-CPU values by the possible CPUs', async () => {
    const percpu = (await loadMaps()).map('test_percpu');
    const cpus = possibleCpus();
    expect(percpu.perCpu).toBe(true);
    // 4-byte values take an 8-byte slot per CPU.
    expect(percpu.valueBufferSize).toBe(8 * cpus);
    const value = Buffer.alloc(percpu.valueBufferSize);
    for (let cpu = 0; cpu < cpus; cpu++) u32(cpu + 1).copy(value, cpu * 8);
    percpu.update(u32(2), value);
    const slots = percpu.perCpuValues(percpu.lookup(u32(2))!);
    expect(slots).toHaveLength(cpus);
    expect(slots.map(readU32)).toEqual(Array.from({ length: cpus }, (_, i) => i + 1));
    // Batches work on arrays too (the kernel's generic implementation).
    const all = percpu.lookupBatch(3);
    expect(all.map(([k]) => readU32(k))).toEqual([0, 1, 2, 3]);
    expect(all[2]?.[1]).toEqual(value);
    // An array has every index; deleting one is not possible.
    expect(() => percpu.delete(u32(0))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('pins, reopens from the pin, unpins, and refuses use after close', async () => {
    const collection = await loadMaps();
    const hash = collection.map('test_hash');
    hash.update(u32(5), u64(55n));
    const path = join(pinDir(), 'test_hash');
    hash.pin(path);

    const reopened = BpfMap.openPinned(path);
    defer(() => reopened.close());
    expect(reopened.id).toBe(hash.id);
    expect(reopened.lookup(u32(5))).toEqual(u64(55n));

    expect(hash.unpin()).toBe(true);
    expect(hash.unpin()).toBe(false);
    expect(() => BpfMap.openPinned(path)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'bpf_obj_get' }));

    collection.close();
    const closed = (() => {
      try {
        hash.lookup(u32(5));
      } catch (e) {
        return e;
      }
    })();
    expect(closed).toBeInstanceOf(BpfError);
    expect(closed).toMatchObject({ code: 'EBADF' });
    // The reopened fd is its own: still usable after the collection closed.
    expect(reopened.lookup(u32(5))).toEqual(u64(55n));
  });
});
