// The backends maps (MAPS.backends, MAPS.backends6) are BPF arrays indexed
// by backend id: the datapath's lookup of a flow's backend is then inlined
// by the verifier instead of a helper call (bpf/include/ferry_lb.h). An
// array has a slot for every id below its max_entries and none can be
// deleted (EINVAL), so:
//
//  - a slot that holds no backend is all zero, and its address (0.0.0.0 or
//    ::, never a backend's) is how the datapath (lb4_lookup_backend()) and
//    everything here tells it: isEmptyBackend();
//  - removing a backend writes its slot all zero: clearBackend(), or
//    emptyBackend() in a batch;
//  - reading the backends skips the empty slots of a map whose iteration
//    yields every index: backendSlots() reads in batches and copies out
//    the used slots only, so 131,072 slots cost a few dozen syscalls.
import { backendId as backendIdCodec, BACKENDS_MAX, lb4Backend, lb6Backend, type Family } from './layout.js';

/** What reading a backends map needs: BpfMap has it (lookupBatch too), and so does MemoryMap. */
export interface BackendsReader {
  entries(): Iterable<[Buffer, Buffer]>;
  lookupBatch?(chunk?: number, keep?: (key: Buffer, value: Buffer) => boolean): Iterable<[Buffer, Buffer]>;
}

/** Slots per BPF_MAP_LOOKUP_BATCH call. */
const SCAN_CHUNK = 4096;

const VALUE_SIZE: Readonly<Record<Family, number>> = Object.freeze({ 4: lb4Backend.size, 6: lb6Backend.size });

/** Whether a backends map value holds no backend: its address (the first 4 or 16 bytes, by the value's size) is all zero. */
export function isEmptyBackend(value: Buffer): boolean {
  const end = value.length === lb4Backend.size ? 4 : 16;
  for (let i = 0; i < end; i++) if (value[i] !== 0) return false;
  return true;
}

/** An empty slot's value in `family`'s backends map: all zero. */
export function emptyBackend(family: Family): Buffer {
  return Buffer.alloc(VALUE_SIZE[family]);
}

/** Removes backend `id` from `family`'s backends map: writes its slot all zero. */
export function clearBackend(map: { update(key: Buffer, value: Buffer): void }, family: Family, id: number): void {
  map.update(backendIdCodec.encode(id), emptyBackend(family));
}

/** Every used slot of a backends map, as [key, value]; in batches when the map can. */
export function backendSlots(map: BackendsReader): Array<[Buffer, Buffer]> {
  const keep = (_key: Buffer, value: Buffer) => !isEmptyBackend(value);
  if (map.lookupBatch !== undefined) return [...map.lookupBatch(SCAN_CHUNK, keep)];
  const out: Array<[Buffer, Buffer]> = [];
  for (const [key, value] of map.entries()) if (keep(key, value)) out.push([key, value]);
  return out;
}

/** The ids of the used slots of a backends map. */
export function backendIdsIn(map: BackendsReader): number[] {
  return backendSlots(map).map(([key]) => backendIdCodec.decode(key));
}

/**
 * The capacity that bounds backend ids, given the backends maps of both
 * families (or IPv4's alone): ids are one space across the families, so
 * every id must fit each map, and the smaller capacity is the bound (ids
 * run below it). A map that does not say its capacity (an in-memory one)
 * is taken to hold BACKENDS_MAX, lb.o's.
 */
export function backendCapacity(maps: ReadonlyArray<{ readonly maxEntries?: number } | undefined>): number {
  let capacity = Infinity;
  for (const map of maps) if (map !== undefined) capacity = Math.min(capacity, map.maxEntries ?? BACKENDS_MAX);
  return capacity === Infinity ? BACKENDS_MAX : capacity;
}
