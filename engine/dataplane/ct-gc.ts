// Conntrack garbage collection. The datapath only writes ferry_ct4 (and
// ferry_ct6, IPv6 flows); entries leave them when user space deletes them (or
// when an LRU map is full and evicts the least recently used). This removes,
// from each family's map, judged against that family's backends and
// services maps:
//
//  - expired entries: idle past their lifetime (ctStale);
//  - orphaned entries: their backend id is no longer in the backends map
//    (an array: its slot is empty, all zero; backend-slots.ts);
//  - withdrawn entries (UDP only): their backend still exists but no longer
//    serves their service (it was removed from this Service and stays for
//    another), or the service itself is gone.
//
// Masqueraded and inbound flows (CT_FLAGS.masq, CT_FLAGS.inbound) have no
// backend or service: they go when they expire.
//
// Orphaned and withdrawn UDP entries are kube-proxy's stale-UDP-conntrack
// bug class: a UDP "flow" (say DNS from one client socket) never ends, so an
// entry pinned to a backend that left the Service would keep sending the
// client there. Deleting it makes the next packet pick a live backend. TCP
// connections to a backend that left a Service are left alone while the
// backend exists (kube-proxy keeps established connections to terminating
// endpoints); once it is deleted from the backends map, nothing can reach it
// and its entries go as orphaned.
//
// forgetBackends() is the immediate form for the daemon: right after
// Reconciler.apply(), it drops the entries of the backend ids the apply
// removed (ApplyResult.removedBackendIds) from both families' maps (ids are
// one space) instead of waiting for a GC pass.
//
// Races with the datapath: an entry may be refreshed between the scan and
// its deletion, so each candidate is looked up again and judged on its fresh
// value just before it is deleted. The conntrack map is read before the
// backends and services maps, so a flow created after those were read is
// never judged against a view older than itself.
import type { Clock } from './clock.js';
import { backendIdsIn, type BackendsReader } from './backend-slots.js';
import {
  ct4Key,
  ct6Entry,
  ct6Key,
  ctEntry,
  ctStale,
  CT_FLAGS,
  lb4Key,
  lb4Service,
  lb6Key,
  type CCodec,
  type Ct4Key,
  type CtEntry,
  type CtProto,
  type Family,
  type Lb4Key,
  type Proto,
} from './layout.js';

/** What reading a map needs: BpfMap has it, and so does MemoryMap. */
export interface ReadableMap {
  lookup(key: Buffer): Buffer | undefined;
  entries(): Iterable<[Buffer, Buffer]>;
}

/** The conntrack map as GC and flush use it. */
export interface ConntrackMap extends ReadableMap {
  delete(key: Buffer): boolean;
  /** The map's capacity, when known (BpfMap). */
  readonly maxEntries?: number;
  /** BPF_MAP_LOOKUP_BATCH (BpfMap): one syscall per chunk instead of two per entry. */
  lookupBatch?(chunk?: number): Array<[Buffer, Buffer]>;
}

export interface CtGcMaps {
  /** ct4Key → ctEntry: IPv4 flows. */
  conntrack: ConntrackMap;
  /** backend id → Lb4Backend: an array, whose empty slots are no backends. */
  backends: BackendsReader;
  /** Lb4Key → Lb4Service. Without it, withdrawn UDP entries are not looked for. */
  services?: ReadableMap;
  /** ct6Key → ct6Entry: IPv6 flows, collected when given, with backends6 (and services6) as above. */
  conntrack6?: ConntrackMap;
  backends6?: BackendsReader;
  services6?: ReadableMap;
}

/** The conntrack maps of both families, as forgetBackends() and the CLI take them. */
export interface ConntrackMaps {
  conntrack: ConntrackMap;
  conntrack6?: ConntrackMap;
}

/** The codecs of each family's conntrack keys and values and service keys. */
export const CT_CODECS: Readonly<Record<Family, { key: CCodec<Ct4Key>; entry: CCodec<CtEntry>; serviceKey: CCodec<Lb4Key> }>> = Object.freeze({
  4: { key: ct4Key, entry: ctEntry, serviceKey: lb4Key },
  6: { key: ct6Key, entry: ct6Entry, serviceKey: lb6Key },
});

/** One pass over both families' maps: the counts are their sums. */
export interface CtGcResult {
  /** Entries looked at. */
  scanned: number;
  /** Deleted: idle past their lifetime. */
  expired: number;
  /** Deleted: their backend id is not in the backends map. */
  orphaned: number;
  /** Deleted (UDP): their backend no longer serves their service, or the service is gone. */
  withdrawn: number;
  /** Entries left after this pass (scanned minus deleted). */
  remaining: number;
  /** The maps' max_entries, summed; undefined when a map does not say. */
  capacity: number | undefined;
}

export type CtGcReason = 'expired' | 'orphaned' | 'withdrawn';

/** Entries per BPF_MAP_LOOKUP_BATCH call. */
const SCAN_CHUNK = 4096;

/** Every [key, value] of the conntrack map, in as few syscalls as the map allows. */
export function conntrackEntries(map: ConntrackMap): Array<[Buffer, Buffer]> {
  return map.lookupBatch !== undefined ? map.lookupBatch(SCAN_CHUNK) : [...map.entries()];
}

/** One conntrack entry, decoded, with its raw key for deletion. */
export interface CtRecord {
  raw: Buffer;
  key: Ct4Key;
  entry: CtEntry;
}

/** The conntrack map of `family` (ferry_ct4 or ferry_ct6) decoded. */
export function readConntrack(map: ConntrackMap, family: Family = 4): CtRecord[] {
  const codecs = CT_CODECS[family];
  return conntrackEntries(map).map(([raw, value]) => ({ raw, key: codecs.key.decode(raw), entry: codecs.entry.decode(value) }));
}

/** Each family's conntrack map that `maps` has, with the family. */
export function conntrackMapsOf(maps: ConntrackMaps): Array<{ family: Family; map: ConntrackMap }> {
  const out: Array<{ family: Family; map: ConntrackMap }> = [{ family: 4, map: maps.conntrack }];
  if (maps.conntrack6 !== undefined) out.push({ family: 6, map: maps.conntrack6 });
  return out;
}

/** The backend ids in the backends map: its used slots (an array's empty ones are no backends). */
export function backendIds(backends: BackendsReader): Set<number> {
  return new Set(backendIdsIn(backends));
}

/**
 * Which backend ids serve each service, by the service's rev-NAT index (the
 * index conntrack entries carry): the backend ids in slots 1..count of every
 * frontend whose slot 0 names that index, both scopes together. `family`:
 * of the services map (ferry_lb4_svc or ferry_lb6_svc).
 */
export function servedBackends(services: ReadableMap, family: Family = 4): Map<number, Set<number>> {
  const heads = new Map<string, { revNatIndex: number; count: number }>();
  const slots = new Map<string, Array<{ slot: number; backendId: number }>>();
  const serviceKey = CT_CODECS[family].serviceKey;
  for (const [k, v] of services.entries()) {
    const key = serviceKey.decode(k);
    const value = lb4Service.decode(v);
    const frontend = `${key.address}:${key.port}/${key.proto}/${key.scope}`;
    if (key.slot === 0) heads.set(frontend, { revNatIndex: value.revNatIndex, count: value.count });
    else {
      let list = slots.get(frontend);
      if (list === undefined) slots.set(frontend, (list = []));
      list.push({ slot: key.slot, backendId: value.backendId });
    }
  }
  const served = new Map<number, Set<number>>();
  for (const [frontend, head] of heads) {
    let ids = served.get(head.revNatIndex);
    if (ids === undefined) served.set(head.revNatIndex, (ids = new Set()));
    for (const s of slots.get(frontend) ?? []) if (s.slot <= head.count) ids.add(s.backendId);
  }
  return served;
}

/**
 * One GC pass: deletes expired, orphaned and withdrawn entries (see the top
 * of this file) from the conntrack map of each family `maps` has. `now` is
 * the datapath's clock (clock.ts), in ns.
 */
export function collectConntrack(maps: CtGcMaps, now: bigint): CtGcResult {
  const result = collectFamily(4, { conntrack: maps.conntrack, backends: maps.backends, services: maps.services }, now);
  if (maps.conntrack6 === undefined) return result;
  if (maps.backends6 === undefined) throw new TypeError('conntrack GC: conntrack6 needs backends6 (the IPv6 flows\' backends)');
  const six = collectFamily(6, { conntrack: maps.conntrack6, backends: maps.backends6, services: maps.services6 }, now);
  return {
    scanned: result.scanned + six.scanned,
    expired: result.expired + six.expired,
    orphaned: result.orphaned + six.orphaned,
    withdrawn: result.withdrawn + six.withdrawn,
    remaining: result.remaining + six.remaining,
    capacity: result.capacity === undefined || six.capacity === undefined ? undefined : result.capacity + six.capacity,
  };
}

/** collectConntrack() for one family's maps. */
function collectFamily(family: Family, maps: { conntrack: ConntrackMap; backends: BackendsReader; services: ReadableMap | undefined }, now: bigint): CtGcResult {
  const codecs = CT_CODECS[family];
  // Conntrack first: see "Races" above.
  const records = conntrackEntries(maps.conntrack);
  const live = backendIds(maps.backends);
  const served = maps.services === undefined ? undefined : servedBackends(maps.services, family);
  const reasonOf = (key: Ct4Key, entry: CtEntry): CtGcReason | undefined => {
    if (ctStale(entry, now)) return 'expired';
    if ((entry.flags ?? 0) & (CT_FLAGS.masq | CT_FLAGS.inbound)) return undefined;
    if (!live.has(entry.backendId)) return 'orphaned';
    if (served !== undefined && key.proto === 'udp' && !served.get(entry.revNatIndex)?.has(entry.backendId)) return 'withdrawn';
    return undefined;
  };
  const result: CtGcResult = {
    scanned: records.length,
    expired: 0,
    orphaned: 0,
    withdrawn: 0,
    remaining: 0,
    capacity: maps.conntrack.maxEntries,
  };
  for (const [raw, value] of records) {
    const key = codecs.key.decode(raw);
    if (reasonOf(key, codecs.entry.decode(value)) === undefined) continue;
    // Judged again on the entry as it is now: a packet may have refreshed it.
    const fresh = maps.conntrack.lookup(raw);
    const reason = fresh === undefined ? undefined : reasonOf(key, codecs.entry.decode(fresh));
    if (reason !== undefined && maps.conntrack.delete(raw)) result[reason]++;
  }
  result.remaining = result.scanned - result.expired - result.orphaned - result.withdrawn;
  return result;
}

/**
 * Deletes, in both directions, the conntrack entries of the given backend
 * ids whose protocol is in `protos` (UDP by default: TCP flows to a deleted
 * backend are reselected by the datapath and end with the connection);
 * returns how many were deleted. Call it right after Reconciler.apply() with
 * the result's removedBackendIds. `conntrack`: the IPv4 map alone, or both
 * families' (ids are one space: an id names a backend of either).
 */
export function forgetBackends(conntrack: ConntrackMap | ConntrackMaps, ids: Iterable<number>, protos: readonly Proto[] = ['udp']): number {
  const gone = new Set(ids);
  if (gone.size === 0) return 0;
  const wanted = new Set<CtProto>(protos);
  const maps: ConntrackMaps = 'conntrack' in conntrack ? conntrack : { conntrack };
  let deleted = 0;
  for (const { family, map } of conntrackMapsOf(maps)) {
    const codecs = CT_CODECS[family];
    const names = (value: Buffer | undefined) => value !== undefined && gone.has(codecs.entry.decode(value).backendId);
    for (const [raw, value] of conntrackEntries(map)) {
      if (!wanted.has(codecs.key.decode(raw).proto) || !names(value)) continue;
      // The datapath may have repinned the flow to a live backend meanwhile.
      if (names(map.lookup(raw)) && map.delete(raw)) deleted++;
    }
  }
  return deleted;
}

export interface ConntrackGcOptions {
  /** Time between passes; default 30 s (UDP entries live 60 s idle). */
  intervalMs?: number;
  /** The datapath's clock (clock.ts datapathClock()), in ns. */
  clock: Clock;
  /** Called after every pass. */
  onResult?: (result: CtGcResult) => void;
  /** Called when a pass throws (the timer keeps running); the error is also kept in lastError. */
  onError?: (error: unknown) => void;
}

/** A pass's result with when it ran and how long it took. */
export interface CtGcRun extends CtGcResult {
  at: Date;
  durationMs: number;
}

/** Totals since the collector was made, for counters. */
export interface CtGcTotals {
  runs: number;
  errors: number;
  expired: number;
  orphaned: number;
  withdrawn: number;
}

export const DEFAULT_GC_INTERVAL_MS = 30_000;

/**
 * collectConntrack() every intervalMs on an unref'd timer (it never keeps
 * the process alive). start() begins, stop() ends; run() makes a pass now.
 */
export class ConntrackGc {
  readonly intervalMs: number;
  readonly #maps: CtGcMaps;
  readonly #clock: Clock;
  readonly #onResult: ((result: CtGcResult) => void) | undefined;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #totals: CtGcTotals = { runs: 0, errors: 0, expired: 0, orphaned: 0, withdrawn: 0 };
  #timer: NodeJS.Timeout | undefined;
  #last: CtGcRun | undefined;
  #lastError: unknown;

  constructor(maps: CtGcMaps, options: ConntrackGcOptions) {
    const intervalMs = options.intervalMs ?? DEFAULT_GC_INTERVAL_MS;
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`conntrack GC interval must be > 0 ms, not ${intervalMs}`);
    this.intervalMs = intervalMs;
    this.#maps = maps;
    this.#clock = options.clock;
    this.#onResult = options.onResult;
    this.#onError = options.onError;
  }

  /** Starts the periodic passes (the first after one interval); idempotent. */
  start(): this {
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.intervalMs);
      this.#timer.unref();
    }
    return this;
  }

  /** Stops the periodic passes; idempotent. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** The last pass that completed. */
  get last(): CtGcRun | undefined {
    return this.#last;
  }

  /** The error of the last pass, when it failed; cleared by a pass that succeeds. */
  get lastError(): unknown {
    return this.#lastError;
  }

  get totals(): Readonly<CtGcTotals> {
    return { ...this.#totals };
  }

  /** One pass now; throws what collectConntrack() throws (counted in totals.errors). */
  run(): CtGcRun {
    const started = performance.now();
    let result: CtGcResult;
    try {
      result = collectConntrack(this.#maps, this.#clock());
    } catch (e) {
      this.#totals.errors++;
      this.#lastError = e;
      throw e;
    }
    const run: CtGcRun = { ...result, at: new Date(), durationMs: performance.now() - started };
    this.#last = run;
    this.#lastError = undefined;
    this.#totals.runs++;
    this.#totals.expired += result.expired;
    this.#totals.orphaned += result.orphaned;
    this.#totals.withdrawn += result.withdrawn;
    this.#onResult?.(result);
    return run;
  }

  #tick(): void {
    try {
      this.run();
    } catch (e) {
      this.#onError?.(e);
    }
  }
}
