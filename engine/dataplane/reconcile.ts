// Brings the load-balancing maps (services, backends, revNat) to a desired
// state by writing only what differs, in an order that keeps every lookup the
// datapath can make valid at every moment:
//
//   1. new and changed backends and rev-NAT entries (before anything names them);
//   2. service slots 1..count (a slot above the current count is invisible;
//      one below it is replaced by another valid backend);
//   3. Maglev tables (they name only backends written in 1), then slot 0 of
//      each service (a raised count now covers written slots, a lowered one
//      no longer covers the slots about to go; the Maglev flag is set only
//      once the table is there);
//   4. slot 0 of removed services, then stale slots;
//   5. Maglev tables nothing uses any more (after slot 0 stopped naming
//      them), rev-NAT entries and backends nothing names any more.
//
// Backend ids and rev-NAT indices are bound to addresses by IdAllocators and
// never renumbered: adopt() rebuilds the bindings from the maps after a
// restart, and a backend keeps its slot while it stays, so a change to one
// endpoint rewrites only the entries of the Services it belongs to.
import type { UpdateMode } from '../bpf/map.js';
import {
  backendKey,
  frontendKey,
  revNatKey,
  type BackendAddress,
  type DesiredFrontend,
  type DesiredState,
} from './desired.js';
import { IdAllocator, IdConflictError } from './ids.js';
import { MAGLEV_DEFAULT_SEED, maglevTable, type MaglevOptions } from './maglev.js';
import {
  backendId as backendIdCodec,
  lb4Backend,
  lb4Key,
  lb4Maglev,
  lb4MaglevKey,
  lb4ReverseNat,
  lb4Service,
  revNatIndex as revNatIndexCodec,
  SVC_FLAGS,
  type Codec,
  type Lb4Key,
} from './layout.js';

export { desiredState, backendKey, frontendKey, revNatKey, NODE_PORT_ADDRESS } from './desired.js';
export type { BackendAddress, DesiredFrontend, DesiredOptions, DesiredState, FrontendKind, Skipped } from './desired.js';

/** What the Reconciler needs of a map: BpfMap has it, and so can an in-memory fake. */
export interface MapLike {
  lookup(key: Buffer): Buffer | undefined;
  update(key: Buffer, value: Buffer, mode?: UpdateMode): void;
  delete(key: Buffer): boolean;
  entries(): Iterable<[Buffer, Buffer]>;
  updateBatch(entries: Iterable<readonly [Buffer, Buffer]>): number;
}

export interface LbMaps {
  /** Lb4Key → Lb4Service */
  services: MapLike;
  /** backend id → Lb4Backend */
  backends: MapLike;
  /** rev-NAT index → Lb4ReverseNat */
  revNat: MapLike;
  /**
   * Lb4MaglevKey → Lb4Maglev. Without it, Services asking for Maglev are
   * balanced at random.
   */
  maglev?: MapLike;
}

export interface ApplyCounts {
  added: number;
  updated: number;
  removed: number;
  unchanged: number;
}

export interface ApplyResult {
  services: ApplyCounts;
  backends: ApplyCounts;
  revNat: ApplyCounts;
  /**
   * Backend ids this apply() deleted from the backends map, or rebound to
   * another backend (after a conflict), ascending. Conntrack entries that
   * name them are stale: pass them to forgetBackends() (ct-gc.ts).
   */
  removedBackendIds: number[];
  /** Maglev tables, one per frontend scope; only when LbMaps.maglev is given. */
  maglev?: ApplyCounts;
}

/** Entries per BPF_MAP_UPDATE_BATCH call. */
const BATCH_CHUNK = 1024;

/** One service entry found in the map. */
interface Slot {
  key: Buffer;
  value: Buffer;
  backendId: number;
}

/** The entries of one frontend (address, port, protocol, scope) found in the map. */
interface CurrentFrontend {
  key: Lb4Key;
  revNatIndex: number | undefined;
  slots: Map<number, Slot>;
}

interface Current {
  backends: Map<number, Buffer>;
  revNat: Map<number, Buffer>;
  services: Map<string, CurrentFrontend>;
}

type Entry = [Buffer, Buffer];

export class Reconciler {
  readonly #maps: LbMaps;
  // 0 means "none" to the datapath (slot 0's backend id, a missing rev-NAT).
  readonly #backendIds = new IdAllocator('backend id', 1, maxOf(backendIdCodec));
  readonly #revNatIds = new IdAllocator('rev-NAT index', 1, maxOf(revNatIndexCodec));
  readonly #conflicts: string[] = [];
  readonly #maglev: MaglevOptions;

  /**
   * A Reconciler with empty id tables. Entries already in the maps are taken
   * over on the first apply() where they do not conflict; adopt() takes them
   * over first, so that is the way to start on maps that may hold entries.
   */
  constructor(maps: LbMaps, options: { maglev?: MaglevOptions } = {}) {
    this.#maps = maps;
    this.#maglev = options.maglev ?? {};
  }

  /** A Reconciler whose id tables are rebuilt from what the maps hold (after a restart). */
  static async adopt(maps: LbMaps, options: { maglev?: MaglevOptions } = {}): Promise<Reconciler> {
    const reconciler = new Reconciler(maps, options);
    reconciler.#absorb(reconciler.#read());
    return reconciler;
  }

  /**
   * Bindings found in the maps that contradict others (two ids for one
   * backend, ...) and were therefore not taken over; apply() replaces them.
   */
  get conflicts(): readonly string[] {
    return this.#conflicts;
  }

  /** The id bound to a backend (`10.0.0.5:8080/tcp`). */
  backendId(key: string): number | undefined {
    return this.#backendIds.get(key);
  }

  /** The rev-NAT index bound to a frontend (`10.96.0.10:53/udp`). */
  revNatIndex(key: string): number | undefined {
    return this.#revNatIds.get(key);
  }

  /**
   * Makes the maps hold `desired` and nothing else, writing only entries
   * that differ. A failure part-way leaves the maps consistent for the
   * datapath (see the order above); the next apply() finishes the work.
   */
  apply(desired: DesiredState): ApplyResult {
    const current = this.#read();
    this.#absorb(current);
    const result: ApplyResult = { services: counts(), backends: counts(), revNat: counts(), removedBackendIds: [] };

    // Bind ids first: a new backend or frontend never takes an id still in the maps.
    const backendValues = new Map<number, Buffer>();
    for (const [key, address] of desired.backends) {
      backendValues.set(this.#backendIds.acquire(key), encodeBackend(address));
    }
    const revNatValues = new Map<number, Buffer>();
    const revNatKeys = new Set<string>();
    for (const frontend of desired.frontends.values()) {
      const key = revNatKey(frontend);
      revNatKeys.add(key);
      revNatValues.set(this.#revNatIds.acquire(key), lb4ReverseNat.encode({ address: frontend.address, port: frontend.port }));
    }

    const backends = diffById(current.backends, backendValues, backendIdCodec, result.backends);
    for (const [id, value] of current.backends) {
      if (!backendValues.get(id)?.equals(value)) result.removedBackendIds.push(id);
    }
    result.removedBackendIds.sort((a, b) => a - b);
    const revNat = diffById(current.revNat, revNatValues, revNatIndexCodec, result.revNat);

    const maglev = this.#diffMaglev(desired, result);

    const slotWrites: Entry[] = [];
    const headWrites: Entry[] = [];
    const headDeletes: Buffer[] = [];
    const slotDeletes: Buffer[] = [];
    const stale = new Map(current.services);
    for (const [key, frontend] of desired.frontends) {
      const found = stale.get(key);
      stale.delete(key);
      this.#diffFrontend(frontend, found, result.services, { slotWrites, headWrites, slotDeletes });
    }
    for (const found of stale.values()) {
      for (const [slot, entry] of found.slots) (slot === 0 ? headDeletes : slotDeletes).push(entry.key);
      result.services.removed += found.slots.size;
    }

    write(this.#maps.backends, backends.writes);
    write(this.#maps.revNat, revNat.writes);
    write(this.#maps.services, slotWrites);
    if (this.#maps.maglev) for (const [key, value] of maglev.writes) this.#maps.maglev.update(key, value, 'any');
    write(this.#maps.services, headWrites);
    for (const key of headDeletes) this.#maps.services.delete(key);
    for (const key of slotDeletes) this.#maps.services.delete(key);
    for (const key of maglev.deletes) this.#maps.maglev!.delete(key);
    for (const key of revNat.deletes) this.#maps.revNat.delete(key);
    for (const key of backends.deletes) this.#maps.backends.delete(key);

    releaseAllBut(this.#backendIds, desired.backends);
    releaseAllBut(this.#revNatIds, revNatKeys);
    return result;
  }

  #diffFrontend(
    frontend: DesiredFrontend,
    found: CurrentFrontend | undefined,
    counts: ApplyCounts,
    out: { slotWrites: Entry[]; headWrites: Entry[]; slotDeletes: Buffer[] },
  ): void {
    const revNatIndex = this.#revNatIds.get(revNatKey(frontend))!;
    const ids = frontend.backends.map((key) => this.#backendIds.get(key)!);
    const layout = layoutSlots(ids, found);
    const keyOf = (slot: number) =>
      found?.slots.get(slot)?.key ??
      lb4Key.encode({ address: frontend.address, port: frontend.port, proto: frontend.proto, slot, scope: frontend.scope });
    const compare = (slot: number, value: Buffer, into: Entry[]) => {
      const old = found?.slots.get(slot)?.value;
      if (old === undefined) counts.added++;
      else if (old.equals(value)) return void counts.unchanged++;
      else counts.updated++;
      into.push([keyOf(slot), value]);
    };
    layout.forEach((backendId, i) => {
      compare(i + 1, lb4Service.encode({ backendId, count: 0, revNatIndex, flags: 0, affinityTimeout: 0 }), out.slotWrites);
    });
    const maglev = this.#usesMaglev(frontend) ? SVC_FLAGS.maglev : 0;
    const head = { backendId: 0, count: layout.length, revNatIndex, flags: frontendFlags(frontend) | maglev, affinityTimeout: frontend.affinityTimeout };
    compare(0, lb4Service.encode(head), out.headWrites);
    for (const [slot, entry] of found?.slots ?? []) {
      if (slot > layout.length) {
        out.slotDeletes.push(entry.key);
        counts.removed++;
      }
    }
  }

  /** Whether `frontend` gets a Maglev table (and the flag): it asks for one, has backends, and there is a map. */
  #usesMaglev(frontend: DesiredFrontend): boolean {
    return frontend.loadBalancing === 'maglev' && frontend.backends.length > 0 && this.#maps.maglev !== undefined;
  }

  /**
   * The Maglev tables to write (new or changed) and delete (no frontend
   * scope uses them), by rev-NAT index and scope. Tables are computed from
   * backend identities, not ids: the same set gives the same table.
   */
  #diffMaglev(desired: DesiredState, result: ApplyResult): { writes: Entry[]; deletes: Buffer[] } {
    const map = this.#maps.maglev;
    if (map === undefined) return { writes: [], deletes: [] };
    const counts = (result.maglev = { added: 0, updated: 0, removed: 0, unchanged: 0 });
    const current = new Map<string, [Buffer, Buffer]>();
    for (const [key, value] of map.entries()) current.set(key.toString('hex'), [key, value]);
    const writes: Entry[] = [];
    for (const frontend of desired.frontends.values()) {
      if (!this.#usesMaglev(frontend)) continue;
      const key = lb4MaglevKey.encode({ revNatIndex: this.#revNatIds.get(revNatKey(frontend))!, scope: frontend.scope });
      const table = maglevTable(frontend.backends, this.#maglev);
      const value = lb4Maglev.encode({
        seed: this.#maglev.seed ?? MAGLEV_DEFAULT_SEED,
        backendIds: table.map((backend) => this.#backendIds.get(backend)!),
      });
      const old = current.get(key.toString('hex'));
      current.delete(key.toString('hex'));
      if (old === undefined) counts.added++;
      else if (old[1].equals(value)) {
        counts.unchanged++;
        continue;
      } else counts.updated++;
      writes.push([key, value]);
    }
    counts.removed = current.size;
    return { writes, deletes: [...current.values()].map(([key]) => key) };
  }

  /** Everything in the three maps, services grouped by frontend. */
  #read(): Current {
    const backends = new Map<number, Buffer>();
    for (const [key, value] of this.#maps.backends.entries()) backends.set(backendIdCodec.decode(key), value);
    const revNat = new Map<number, Buffer>();
    for (const [key, value] of this.#maps.revNat.entries()) revNat.set(revNatIndexCodec.decode(key), value);
    const services = new Map<string, CurrentFrontend>();
    for (const [key, value] of this.#maps.services.entries()) {
      const k = lb4Key.decode(key);
      const v = lb4Service.decode(value);
      const fk = frontendKey(k);
      let frontend = services.get(fk);
      if (frontend === undefined) {
        frontend = { key: k, revNatIndex: undefined, slots: new Map() };
        services.set(fk, frontend);
      }
      frontend.slots.set(k.slot, { key, value, backendId: v.backendId });
      if (k.slot === 0 && v.revNatIndex !== 0) frontend.revNatIndex = v.revNatIndex;
    }
    return { backends, revNat, services };
  }

  /**
   * Takes over the bindings the maps hold: backend ids from the backends map,
   * rev-NAT indices from the services' slot 0 (the revNat map has no
   * protocol). Lowest ids first, so of two contradicting entries the older
   * one wins; the other is noted in conflicts and replaced by apply().
   */
  #absorb(current: Current): void {
    const backendIds = [...current.backends.keys()].sort((a, b) => a - b);
    for (const id of backendIds) {
      const b = lb4Backend.decode(current.backends.get(id)!);
      this.#restore(this.#backendIds, backendKey({ address: b.address, port: b.port, proto: b.proto }), id);
    }
    const heads = [...current.services.values()]
      .filter((f) => f.revNatIndex !== undefined)
      .sort((a, b) => a.revNatIndex! - b.revNatIndex!);
    for (const f of heads) this.#restore(this.#revNatIds, revNatKey(f.key), f.revNatIndex!);
  }

  #restore(ids: IdAllocator, key: string, id: number): void {
    if (ids.get(key) === id) return;
    try {
      ids.restore(key, id);
    } catch (e) {
      if (!(e instanceof IdConflictError)) throw e;
      if (!this.#conflicts.includes(e.message)) this.#conflicts.push(e.message);
    }
  }
}

/**
 * Slot 0's SVC_FLAGS: 'external' for every frontend but a ClusterIP (both
 * scopes); 'local' on the external scope of one whose external traffic
 * policy is Local.
 */
export function frontendFlags(frontend: Pick<DesiredFrontend, 'kind' | 'scope' | 'trafficPolicy'>): number {
  if (frontend.kind === 'clusterIP') return 0;
  const local = frontend.scope === 'external' && frontend.trafficPolicy === 'Local';
  return SVC_FLAGS.external | (local ? SVC_FLAGS.local : 0);
}

function counts(): ApplyCounts {
  return { added: 0, updated: 0, removed: 0, unchanged: 0 };
}

/** The largest value a codec's unsigned integer holds. */
function maxOf(codec: Codec<number>): number {
  return Math.min(2 ** (8 * codec.size) - 1, 0xffff_ffff);
}

function encodeBackend(address: BackendAddress): Buffer {
  return lb4Backend.encode({ ...address, flags: 0 });
}

/** Writes and deletes that turn `current` into `wanted`, both by numeric id. */
function diffById(
  current: Map<number, Buffer>,
  wanted: Map<number, Buffer>,
  keyCodec: Codec<number>,
  counts: ApplyCounts,
): { writes: Entry[]; deletes: Buffer[] } {
  const writes: Entry[] = [];
  const deletes: Buffer[] = [];
  for (const [id, value] of wanted) {
    const old = current.get(id);
    if (old === undefined) counts.added++;
    else if (old.equals(value)) {
      counts.unchanged++;
      continue;
    } else counts.updated++;
    writes.push([keyCodec.encode(id), value]);
  }
  for (const id of current.keys()) {
    if (!wanted.has(id)) {
      deletes.push(keyCodec.encode(id));
      counts.removed++;
    }
  }
  return { writes, deletes };
}

/**
 * Backend ids for slots 1..n: a backend that stays keeps its slot when that
 * slot still exists; the others fill the free slots in the desired order.
 */
function layoutSlots(ids: readonly number[], found: CurrentFrontend | undefined): number[] {
  const layout = new Array<number>(ids.length).fill(0);
  const wanted = new Set(ids);
  const placed = new Set<number>();
  if (found !== undefined) {
    for (let slot = 1; slot <= ids.length; slot++) {
      const id = found.slots.get(slot)?.backendId;
      if (id !== undefined && wanted.has(id) && !placed.has(id)) {
        layout[slot - 1] = id;
        placed.add(id);
      }
    }
  }
  let free = 0;
  for (const id of ids) {
    if (placed.has(id)) continue;
    while (layout[free] !== 0) free++;
    layout[free] = id;
    placed.add(id);
  }
  return layout;
}

/** One update for a single entry, batches of BATCH_CHUNK for more. */
function write(map: MapLike, entries: Entry[]): void {
  if (entries.length === 1) map.update(entries[0]![0], entries[0]![1], 'any');
  else for (let i = 0; i < entries.length; i += BATCH_CHUNK) map.updateBatch(entries.slice(i, i + BATCH_CHUNK));
}

/** Frees every id whose key is not in `keep`. */
function releaseAllBut(ids: IdAllocator, keep: { has(key: string): boolean }): void {
  const gone: string[] = [];
  for (const [key] of ids.entries()) if (!keep.has(key)) gone.push(key);
  for (const key of gone) ids.release(key);
}
