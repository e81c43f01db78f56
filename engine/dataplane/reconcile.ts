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
//
// The maps are read once (adopt(), or the first apply()); after that the
// Reconciler diffs against its own record of what it wrote (the view), so
// an apply costs no syscalls beyond its writes. A frontend or backend that
// is the very object applied last time (desiredState() hands back unchanged
// Services' objects when given the same inputs) is unchanged without being
// encoded again: one endpoint change costs the entries of its Service, not
// a pass over every Service's bytes. Should an apply fail part-way, the view
// is dropped and the next apply() reads the maps again.
//
// The view is kept small, as a daemon holds it for every entry of the
// cluster: of an entry that holds the value the Reconciler writes for it,
// only what that value follows from (a backend slot's backend id, a
// backend's family: see CurrentFrontend and BackendEntries), and the bytes
// of the others (read back, and not that) as a one-byte string (see
// Bytes); no service keys (they are encoded again from the frontend and
// slot when an entry goes). Entries are encoded into the batches that
// write them (MapWriter.add()), not into a Buffer each.
//
// Both address families go through the same diff: each frontend, backend
// and rev-NAT entry goes to its family's map (services or services6, ...)
// in its family's layout, chosen where an entry is encoded, written or
// deleted. Backend ids and rev-NAT indices are one space across the
// families (the Maglev map and conntrack name them without a family), so
// one pair of IdAllocators binds them all.
//
// The backends maps are arrays indexed by backend id (backend-slots.ts): a
// backend is removed by writing its slot all zero, empty slots are no
// backends when the maps are read, and ids stay below the maps' capacity
// (the smaller of the two), above hostPorts' (layout.ts HOSTPORT_*).
import type { UpdateMode } from '../bpf/map.js';
import { backendCapacity, backendSlots, emptyBackend } from './backend-slots.js';
import {
  backendKey,
  frontendKey,
  revNatKey,
  type BackendAddress,
  type DesiredFrontend,
  type DesiredState,
} from './desired.js';
import { IdSet } from './id-set.js';
import { IdAllocator, IdConflictError } from './ids.js';
import { MAGLEV_DEFAULT_SEED, maglevTable, type MaglevOptions } from './maglev.js';
import { BATCH_CHUNK, MapWriter } from './map-writer.js';
import {
  backendId as backendIdCodec,
  FAMILIES,
  familyOf,
  HOSTPORT_BACKEND_IDS,
  HOSTPORT_REV_NAT,
  isHostPortBackend,
  isHostPortRevNat,
  lb4Backend,
  lb4Key,
  lb4Maglev,
  lb4MaglevKey,
  lb4ReverseNat,
  lb4Service,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  MAPS,
  revNatIndex as revNatIndexCodec,
  SERVICE_BACKEND_IDS_MIN,
  SVC_FLAGS,
  type CCodec,
  type Family,
  type Lb4Backend,
  type Lb4Key,
  type Lb4ReverseNat,
  type Lb4Service,
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
  /**
   * updateBatch() of `count` entries given as their keys end to end and
   * their values end to end, when the map can take them so (BpfMap): the
   * MapWriter encodes into such buffers.
   */
  updatePacked?(keys: Buffer, values: Buffer, count: number): number;
  /**
   * Every entry in few syscalls, when the map can (BpfMap): reading the
   * maps uses it. With `keep`, only the entries it says yes to.
   */
  lookupBatch?(chunk?: number, keep?: (key: Buffer, value: Buffer) => boolean): Iterable<[Buffer, Buffer]>;
  /** The map's capacity (BpfMap): a backends map's bounds the backend ids. */
  readonly maxEntries?: number;
}

export interface LbMaps {
  /** Lb4Key → Lb4Service: IPv4 frontends. */
  services: MapLike;
  /**
   * backend id → Lb4Backend: IPv4 backends, an array (an all-zero slot is
   * none). Its maxEntries (and backends6's) bounds the ids; without one,
   * BACKENDS_MAX.
   */
  backends: MapLike;
  /** rev-NAT index → Lb4ReverseNat: IPv4 frontends' addresses. */
  revNat: MapLike;
  /**
   * Lb4MaglevKey → Lb4Maglev, for frontends of both families. Without it,
   * Services asking for Maglev are balanced at random.
   */
  maglev?: MapLike;
  /**
   * The IPv6 twins of services, backends and revNat (lb6Key → Lb4Service,
   * backend id → lb6Backend, rev-NAT index → lb6ReverseNat): all three or
   * none. Without them, IPv6 frontends and backends are not written and
   * ApplyResult.skippedIPv6 counts them.
   */
  services6?: MapLike;
  backends6?: MapLike;
  revNat6?: MapLike;
}

export interface ApplyCounts {
  added: number;
  updated: number;
  removed: number;
  unchanged: number;
}

export interface ApplyResult {
  /** Entries of both families' services maps. */
  services: ApplyCounts;
  /** Entries of both families' backends maps. */
  backends: ApplyCounts;
  /** Entries of both families' rev-NAT maps. */
  revNat: ApplyCounts;
  /**
   * Backend ids this apply() deleted from a backends map (either family),
   * or rebound to another backend (after a conflict), ascending. Conntrack
   * entries that name them are stale: pass them to forgetBackends()
   * (ct-gc.ts).
   */
  removedBackendIds: number[];
  /** Maglev tables, one per frontend scope; only when LbMaps.maglev is given. */
  maglev?: ApplyCounts;
  /**
   * Only for a Reconciler without the IPv6 maps, when the desired state has
   * IPv6 entries: the IPv6 frontends and backends this apply() left out
   * (all of them on a full apply; on an incremental one, those among the
   * changes).
   */
  skippedIPv6?: { frontends: number; backends: number };
}

/**
 * A map value's bytes as a string of one char per byte (latin1): about a
 * third of a Buffer's memory in V8, and compared with ===.
 */
type Bytes = string;
const bytes = (b: Buffer): Bytes => b.toString('latin1');

/**
 * The entries of one frontend (address, port, protocol, scope) in the map.
 * Slot 0's value is kept as it is; of slots 1..n only the backend id each
 * names, as their value is the one #diffFrontend writes for that id
 * (slotValue(): the id and `slotRevNat`, the rest zero) — but for the
 * values in `odd`, read back from a map and not that. A daemon holds one
 * per frontend: a Map of slot objects, each with its bytes, was the
 * biggest part of its view.
 */
interface CurrentFrontend {
  key: Lb4Key;
  revNatIndex: number | undefined;
  /** Slot 0's value; undefined when the map has none. */
  head: Bytes | undefined;
  /** Slot i + 1's backend id at [i]; NO_SLOT where the map has no such slot. */
  ids: number[];
  /** The rev-NAT index in the values of slots 1..n. */
  slotRevNat: number;
  /** Values of slots (1..n) that are not slotValue(id, slotRevNat), by slot. */
  odd?: Map<number, Bytes>;
  /** Entries in the map, slot 0 included. */
  size: number;
}

/** A slot the map does not have, in CurrentFrontend.ids (backend ids are u32: never negative). */
const NO_SLOT = -1;

/** A backend slot's (1..n) value, naming `backendId`. */
function slotService(backendId: number, revNatIndex: number): Lb4Service {
  return { backendId, count: 0, revNatIndex, flags: 0, affinityTimeout: 0 };
}

/** slotService()'s bytes. */
function slotValue(backendId: number, revNatIndex: number): Buffer {
  return lb4Service.encode(slotService(backendId, revNatIndex));
}

/** The slots `found` has, slot 0 (when there) first. */
function* slotsOf(found: CurrentFrontend): Generator<number> {
  if (found.head !== undefined) yield 0;
  for (let i = 0; i < found.ids.length; i++) if (found.ids[i] !== NO_SLOT) yield i + 1;
}

type Entry = [Buffer, Buffer];

/** One of something per family. */
type PerFamily<T> = Record<Family, T>;
const perFamily = <T>(make: () => T): PerFamily<T> => ({ 4: make(), 6: make() });

/** The maps of one family; what LbMaps holds for it. */
interface FamilyMaps {
  services: MapLike;
  backends: MapLike;
  revNat: MapLike;
}

/** The codecs of each family's maps (the services maps' values are lb4Service in both). */
const CODECS: PerFamily<{ serviceKey: CCodec<Lb4Key>; backend: CCodec<Lb4Backend>; reverseNat: CCodec<Lb4ReverseNat> }> = {
  4: { serviceKey: lb4Key, backend: lb4Backend, reverseNat: lb4ReverseNat },
  6: { serviceKey: lb6Key, backend: lb6Backend, reverseNat: lb6ReverseNat },
};

/**
 * A backends map entry in the view: its family when it holds the value
 * #writeBackend writes for the backend its id is bound to (no bytes kept
 * for it: at 100k backends they were megabytes), or else its value as read.
 */
type BackendEntry = Family | Bytes;

// A value tells its family by its size (the address is 4 or 16 bytes).
const backendFamily = (entry: BackendEntry): Family => (typeof entry === 'number' ? entry : entry.length === lb4Backend.size ? 4 : 6);

const revNatFamily = (value: Bytes): Family => (value.length === lb4ReverseNat.size ? 4 : 6);

/**
 * The backends maps' entries by id, as the view keeps them (BackendEntry),
 * with a Map's verbs: the family of each entry as bits (IdSet), and the
 * bytes of those that hold other values in a Map. A Map of all 100k was
 * megabytes, and as much again in the tables it left behind growing.
 */
class BackendEntries {
  readonly #families: PerFamily<IdSet> = perFamily(() => new IdSet());
  readonly #other = new Map<number, Bytes>();

  get size(): number {
    return this.#families[4].size + this.#families[6].size + this.#other.size;
  }

  get(id: number): BackendEntry | undefined {
    return this.#other.get(id) ?? (this.#families[4].has(id) ? 4 : this.#families[6].has(id) ? 6 : undefined);
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: number, entry: BackendEntry): void {
    this.delete(id);
    if (typeof entry === 'number') this.#families[entry].add(id);
    else this.#other.set(id, entry);
  }

  delete(id: number): boolean {
    const v4 = this.#families[4].delete(id);
    const v6 = this.#families[6].delete(id);
    return this.#other.delete(id) || v4 || v6;
  }

  /** The ids, as they are now (deleting while going through them is fine). */
  keys(): number[] {
    return [...this.#families[4], ...this.#families[6], ...this.#other.keys()];
  }
}

/**
 * Writes to one kind of map (services, backends or revNat) of both
 * families as they are decided: a MapWriter per family.
 */
class FamilyWriter {
  readonly #writers: PerFamily<MapWriter | undefined>;

  constructor(families: PerFamily<FamilyMaps | undefined>, kind: keyof FamilyMaps) {
    this.#writers = { 4: new MapWriter(families[4]![kind]), 6: families[6] && new MapWriter(families[6][kind]) };
  }

  push(family: Family, key: Buffer, value: Buffer): void {
    this.#writers[family]!.push(key, value);
  }

  /** push() of the encoded key and value, encoded into the batch itself (MapWriter.add()). */
  add<K, V>(family: Family, keyCodec: CCodec<K>, key: K, valueCodec: CCodec<V>, value: V): void {
    this.#writers[family]!.add(keyCodec, key, valueCodec, value);
  }

  flush(): void {
    this.#writers[4]!.flush();
    this.#writers[6]?.flush();
  }
}

/** An entry found in one family's map whose id the other family's map has too; the next apply() deletes it. */
interface Stray {
  family: Family;
  kind: 'backends' | 'revNat';
  key: Buffer;
  id: number;
}

/** What the maps hold, as this Reconciler read them or last left them. */
interface View {
  /** Both families' backends by id (one id space); backendFamily() tells which map holds each. */
  backends: BackendEntries;
  /** Both families' rev-NAT entries by index (one index space); revNatFamily() tells which map holds each. */
  revNat: Map<number, Bytes>;
  /** By frontendKey(), both families. */
  services: Map<string, CurrentFrontend>;
  /** By hex(key); empty without a maglev map. */
  maglev: Map<string, MaglevEntry>;
  /** Entries of `services`, all slots counted. */
  slots: number;
  /** The desired state last applied onto this view; none after a read. */
  applied?: { frontends: ReadonlyMap<string, DesiredFrontend>; backends: ReadonlyMap<string, BackendAddress> };
  /** Entries a read found under an id the other family's map holds too: deleted by the next apply(). */
  strays?: Stray[];
}

/** A Maglev table in the map, and the frontend it was written for (unknown after a read). */
interface MaglevEntry {
  key: Buffer;
  value: Bytes;
  frontend?: string;
}

/** Deletes for one kind of map by family (its writes went to a FamilyWriter), and its contents afterwards. */
interface Diff {
  deletes: PerFamily<Buffer[]>;
  next: Map<number, Bytes>;
}

export class Reconciler {
  readonly #maps: LbMaps;
  /** Each family's maps; IPv6's only when LbMaps has them. */
  readonly #families: PerFamily<FamilyMaps | undefined>;
  // 0 means "none" to the datapath (slot 0's backend id, a missing rev-NAT).
  // hostPorts' (layout.ts HOSTPORT_*, written by CNI ADD) are the lowest
  // backend ids and the highest rev-NAT indices; Services' the others, the
  // backend ids below the backends maps' capacity (array indices).
  // One space for both families: an id names one backend, an index one frontend.
  readonly #backendIds: IdAllocator;
  readonly #revNatIds = new IdAllocator('rev-NAT index', 1, HOSTPORT_REV_NAT.min - 1);
  readonly #conflicts: string[] = [];
  readonly #maglev: MaglevOptions;
  #view: View | undefined;

  /**
   * A Reconciler with empty id tables. Entries already in the maps are taken
   * over on the first apply() where they do not conflict; adopt() takes them
   * over first, so that is the way to start on maps that may hold entries.
   */
  constructor(maps: LbMaps, options: { maglev?: MaglevOptions } = {}) {
    const v6 = [maps.services6, maps.backends6, maps.revNat6];
    if (v6.some((m) => m !== undefined) && v6.some((m) => m === undefined)) {
      throw new TypeError('LbMaps: services6, backends6 and revNat6 are given together or not at all');
    }
    this.#maps = maps;
    this.#families = {
      4: { services: maps.services, backends: maps.backends, revNat: maps.revNat },
      6: maps.services6 && { services: maps.services6, backends: maps.backends6!, revNat: maps.revNat6! },
    };
    this.#maglev = options.maglev ?? {};
    this.#backendIds = backendIdAllocator(maps);
  }

  /** A Reconciler whose id tables are rebuilt from what the maps hold (after a restart). */
  static async adopt(maps: LbMaps, options: { maglev?: MaglevOptions } = {}): Promise<Reconciler> {
    const reconciler = new Reconciler(maps, options);
    reconciler.#view = reconciler.#read();
    return reconciler;
  }

  /**
   * Bindings found in the maps that contradict others (two ids for one
   * backend, one id in both families' maps, ...) and were therefore not
   * taken over; apply() replaces them.
   */
  get conflicts(): readonly string[] {
    return this.#conflicts;
  }

  /** The id bound to a backend (`10.0.0.5:8080/tcp`, `fd00::5:8080/tcp`: backendKey()). */
  backendId(key: string): number | undefined {
    return this.#backendIds.get(key);
  }

  /** The rev-NAT index bound to a frontend (`10.96.0.10:53/udp`, `fd00::10:53/udp`: revNatKey()). */
  revNatIndex(key: string): number | undefined {
    return this.#revNatIds.get(key);
  }

  /**
   * Whether an entry at `address` cannot be written: IPv6, and no IPv6 maps.
   * Constant false with them, before the address is looked at.
   */
  #unwritable(address: string): boolean {
    return this.#families[6] === undefined && familyOf(address) === 6;
  }

  /**
   * Makes the maps hold `desired` and nothing else, writing only entries
   * that differ. A failure part-way leaves the maps consistent for the
   * datapath (see the order above); the next apply() finishes the work.
   * `desired` is kept as the record of what was applied: it must not be
   * changed afterwards (desiredState() makes a new one each time).
   */
  apply(desired: DesiredState): ApplyResult {
    // Taken for the length of the apply: after a failure the maps are read again.
    const view = this.#view ?? this.#read();
    this.#view = undefined;
    // desired is the state applied last time, changed in place where it says.
    const changes = view.applied?.frontends === desired.frontends && view.applied.backends === desired.backends ? desired.changes : undefined;
    const unchanged = (key: string, frontend: DesiredFrontend) => view.applied?.frontends.get(key) === frontend;
    const result: ApplyResult = { services: counts(), backends: counts(), revNat: counts(), removedBackendIds: [] };
    const skipped = { frontends: 0, backends: 0 };
    // Frontends that are new, or not the very objects applied last time; and those gone.
    const changed: Array<[string, DesiredFrontend]> = [];
    const gone: string[] = [];
    if (changes !== undefined) {
      for (const key of changes.frontends) {
        const frontend = desired.frontends.get(key);
        if (frontend !== undefined) {
          if (this.#unwritable(frontend.address)) skipped.frontends++;
          else changed.push([key, frontend]);
        } else if (view.services.has(key)) gone.push(key);
      }
    } else {
      for (const [key, frontend] of desired.frontends) {
        if (this.#unwritable(frontend.address)) skipped.frontends++;
        else if (!unchanged(key, frontend)) changed.push([key, frontend]);
      }
      for (const key of view.services.keys()) if (!desired.frontends.has(key)) gone.push(key);
    }

    // Bind ids first: a new backend or frontend never takes an id still in the
    // maps. Backends and rev-NAT entries are written as they are decided (1.),
    // and all of them before the first slot.
    const backendWriter = new FamilyWriter(this.#families, 'backends');
    const revNatWriter = new FamilyWriter(this.#families, 'revNat');
    const backends =
      changes !== undefined
        ? this.#diffBackendsOf(changes.backends, desired, view, result, skipped, backendWriter)
        : this.#diffBackends(desired, view, result, skipped, backendWriter);
    const revNat: Diff & { touched?: string[] } =
      changes !== undefined ? this.#diffRevNatOf(changed, gone, desired, view, result.revNat, revNatWriter) : this.#diffRevNat(desired, view, unchanged, result.revNat, revNatWriter);
    // Entries found under an id the other family's map holds too (see #read()),
    // unless this apply wrote that family's entry under the id since.
    for (const stray of view.strays ?? []) {
      let now: Family | undefined;
      if (stray.kind === 'backends') {
        const entry = view.backends.get(stray.id);
        now = entry === undefined ? undefined : backendFamily(entry);
      } else {
        const entry = revNat.next.get(stray.id);
        now = entry === undefined ? undefined : revNatFamily(entry);
      }
      if (now === stray.family) continue;
      if (stray.kind === 'backends') {
        backends.deletes[stray.family].push(stray.key);
        result.backends.removed++;
        result.removedBackendIds.push(stray.id);
      } else {
        revNat.deletes[stray.family].push(stray.key);
        result.revNat.removed++;
      }
    }
    delete view.strays;
    result.removedBackendIds.sort((a, b) => a - b);
    backendWriter.flush();
    revNatWriter.flush();
    const touched = changes?.frontends;
    const kept = (key: string) => (touched !== undefined ? !touched.has(key) : unchanged(key, desired.frontends.get(key)!));
    const maglev = this.#diffMaglev(desired, changed, view, kept, result);

    // Slots 1..n are written as they are decided (2.); slot 0 waits for all of them (3.).
    const slotWrites = new FamilyWriter(this.#families, 'services');
    // Slot 0 is encoded when it is written: the frontends whose slot 0 changed.
    const headWrites = perFamily<CurrentFrontend[]>(() => []);
    const headDeletes = perFamily<Buffer[]>(() => []);
    const slotDeletes = perFamily<Buffer[]>(() => []);
    const written = new Map<string, CurrentFrontend>();
    let slotsBefore = 0;
    for (const [key, frontend] of changed) {
      const found = view.services.get(key);
      slotsBefore += found?.size ?? 0;
      written.set(key, this.#diffFrontend(frontend, found, result.services, { slotWrites, headWrites, slotDeletes }));
    }
    for (const key of gone) {
      const found = view.services.get(key)!;
      const family = familyOf(found.key.address);
      for (const slot of slotsOf(found)) (slot === 0 ? headDeletes : slotDeletes)[family].push(slotKey(found.key, slot));
      result.services.removed += found.size;
      slotsBefore += found.size;
    }
    // The others are unchanged: their entries are counted without a look.
    result.services.unchanged += view.slots - slotsBefore;

    slotWrites.flush();
    if (this.#maps.maglev) for (const [key, value] of maglev.writes) this.#maps.maglev.update(key, value, 'any');
    for (const family of this.#present()) {
      const heads = new MapWriter(this.#families[family]!.services);
      for (const f of headWrites[family]) heads.push(slotKey(f.key, 0), Buffer.from(f.head!, 'latin1'));
      heads.flush();
    }
    this.#deleteAll('services', headDeletes);
    this.#deleteAll('services', slotDeletes);
    for (const key of maglev.deletes) this.#maps.maglev!.delete(key);
    this.#deleteAll('revNat', revNat.deletes);
    this.#clearBackends(backends.deletes);

    view.revNat = revNat.next;
    view.maglev = maglev.next;
    for (const [key, frontend] of written) {
      view.slots += frontend.size;
      view.services.set(key, frontend);
    }
    view.slots -= slotsBefore;
    for (const key of gone) view.services.delete(key);
    view.applied = { frontends: desired.frontends, backends: desired.backends };
    this.#view = view;

    if (changes !== undefined) {
      releaseGone(this.#backendIds, changes.backends, view.backends);
      releaseGone(this.#revNatIds, revNat.touched!, revNat.next);
    } else {
      releaseAllBut(this.#backendIds, view.backends);
      releaseAllBut(this.#revNatIds, revNat.next);
    }
    if (skipped.frontends + skipped.backends > 0) result.skippedIPv6 = skipped;
    return result;
  }

  /** The families whose maps this Reconciler has: 4, and 6 when LbMaps has the IPv6 maps. */
  #present(): readonly Family[] {
    return this.#families[6] === undefined ? [4] : FAMILIES;
  }

  /** Deletes `keys` from each family's map of `kind` (not backends: see #clearBackends()). */
  #deleteAll(kind: 'services' | 'revNat', keys: PerFamily<Buffer[]>): void {
    for (const family of FAMILIES) {
      if (keys[family].length === 0) continue;
      const map = this.#families[family]![kind];
      for (const key of keys[family]) map.delete(key);
    }
  }

  /** Empties the slots `keys` (backend ids) of each family's backends map: an array's slot is written all zero, not deleted. */
  #clearBackends(keys: PerFamily<Buffer[]>): void {
    for (const family of FAMILIES) {
      if (keys[family].length === 0) continue;
      const writer = new MapWriter(this.#families[family]!.backends);
      const empty = emptyBackend(family);
      for (const key of keys[family]) writer.push(key, empty);
      writer.flush();
    }
  }

  /**
   * Binds backend `key` to its id and writes its entry with `writer` when the
   * map's differs (counted in result.backends); a backend whose entry
   * changed under its id counts as removed for conntrack's sake. `deletes`:
   * where the entry it replaces goes, when that was the other family's.
   */
  #writeBackend(key: string, address: BackendAddress, view: View, result: ApplyResult, writer: FamilyWriter, deletes: PerFamily<Buffer[]>): void {
    const id = this.#backendIds.acquire(key);
    const old = view.backends.get(id);
    const family = familyOf(address.address);
    // The value written for this id's backend, which `key` is: nothing to encode.
    if (old === family) {
      result.backends.unchanged++;
      return;
    }
    const entry = { address: address.address, port: address.port, proto: address.proto, flags: 0 };
    view.backends.set(id, family);
    if (old === undefined) result.backends.added++;
    // A family other than this backend's is another backend's entry (the id rebound after a conflict).
    else if (typeof old === 'number') result.backends.updated++;
    else if (!compare(old, bytes(CODECS[family].backend.encode(entry)), result.backends)) return;
    writer.add(family, backendIdCodec, id, CODECS[family].backend, entry);
    if (old === undefined) return;
    result.removedBackendIds.push(id);
    // The id named a backend of the other family (rebound after a conflict): its entry goes.
    if (backendFamily(old) !== family) deletes[backendFamily(old)].push(backendIdCodec.encode(id));
  }

  /** #diffBackends() for the backends `keys` only: the others are as applied last time. */
  #diffBackendsOf(
    keys: Iterable<string>,
    desired: DesiredState,
    view: View,
    result: ApplyResult,
    skipped: { backends: number },
    writer: FamilyWriter,
  ): { deletes: PerFamily<Buffer[]> } {
    const counts = result.backends;
    const deletes = perFamily<Buffer[]>(() => []);
    for (const key of keys) {
      const address = desired.backends.get(key);
      if (address === undefined) {
        const id = this.#backendIds.get(key);
        const old = id === undefined ? undefined : view.backends.get(id);
        if (old === undefined) continue;
        view.backends.delete(id!);
        deletes[backendFamily(old)].push(backendIdCodec.encode(id!));
        counts.removed++;
        result.removedBackendIds.push(id!);
        continue;
      }
      if (this.#unwritable(address.address)) {
        skipped.backends++;
        continue;
      }
      this.#writeBackend(key, address, view, result, writer, deletes);
    }
    counts.unchanged = view.backends.size - counts.added - counts.updated;
    return { deletes };
  }

  /** #diffRevNat() for the rev-NAT entries of the frontends `changed` and `gone` only. */
  #diffRevNatOf(
    changed: ReadonlyArray<[string, DesiredFrontend]>,
    gone: readonly string[],
    desired: DesiredState,
    view: View,
    counts: ApplyCounts,
    writer: FamilyWriter,
  ): Diff & { touched: string[] } {
    const next = view.revNat;
    const deletes = perFamily<Buffer[]>(() => []);
    const touched = new Set<string>();
    for (const [, frontend] of changed) touched.add(revNatKey(frontend));
    for (const key of gone) touched.add(revNatKey(view.services.get(key)!.key));
    for (const key of touched) {
      const frontend = desired.frontends.get(key) ?? desired.frontends.get(`${key}@internal`);
      if (frontend === undefined || this.#unwritable(frontend.address)) {
        const id = this.#revNatIds.get(key);
        const old = id === undefined ? undefined : next.get(id);
        if (old === undefined) continue;
        next.delete(id!);
        deletes[revNatFamily(old)].push(revNatIndexCodec.encode(id!));
        counts.removed++;
        continue;
      }
      const id = this.#revNatIds.acquire(key);
      this.#writeRevNat(id, frontend, next.get(id), next, counts, writer, deletes);
    }
    counts.unchanged = next.size - counts.added - counts.updated;
    return { deletes, next, touched: [...touched] };
  }

  /**
   * Writes `frontend`'s rev-NAT entry under index `id` (with `writer`) when
   * the map's (`old`) differs; `next` gets it. `deletes`: where the entry it
   * replaces goes, when that was the other family's.
   */
  #writeRevNat(
    id: number,
    frontend: DesiredFrontend,
    old: Bytes | undefined,
    next: Map<number, Bytes>,
    counts: ApplyCounts,
    writer: FamilyWriter,
    deletes: PerFamily<Buffer[]>,
  ): void {
    const family = familyOf(frontend.address);
    const value = CODECS[family].reverseNat.encode({ address: frontend.address, port: frontend.port });
    const valueBytes = bytes(value);
    next.set(id, valueBytes);
    if (!compare(old, valueBytes, counts)) return;
    writer.push(family, revNatIndexCodec.encode(id), value);
    if (old !== undefined && revNatFamily(old) !== family) deletes[revNatFamily(old)].push(revNatIndexCodec.encode(id));
  }

  /**
   * Backend entries to write (with `writer`) and delete, brought into view.backends as it
   * goes; ids whose backend went away or was rebound to another are noted in
   * removedBackendIds.
   */
  #diffBackends(desired: DesiredState, view: View, result: ApplyResult, skipped: { backends: number }, writer: FamilyWriter): { deletes: PerFamily<Buffer[]> } {
    const counts = result.backends;
    const deletes = perFamily<Buffer[]>(() => []);
    // After a read: the ids found, which are checked against the desired backends below.
    const found = view.applied ? undefined : view.backends.keys();
    // forEach(): no [key, value] pair made per backend.
    desired.backends.forEach((address, key) => {
      if (this.#unwritable(address.address)) {
        skipped.backends++;
        return;
      }
      // Applied last time as this very object: bound to its id and written.
      if (view.applied?.backends.get(key) === address) {
        counts.unchanged++;
        return;
      }
      this.#writeBackend(key, address, view, result, writer, deletes);
    });
    // Ids no desired backend is bound to: of the backends applied last time,
    // or after a read, of the entries found (a conflicting duplicate among them).
    const gone = (id: number) => {
      const old = view.backends.get(id);
      if (old === undefined) return;
      deletes[backendFamily(old)].push(backendIdCodec.encode(id));
      counts.removed++;
      result.removedBackendIds.push(id);
      view.backends.delete(id);
    };
    if (view.applied) {
      for (const key of view.applied.backends.keys()) {
        if (desired.backends.has(key)) continue;
        // A backend left out (no IPv6 maps) has no id.
        const id = this.#backendIds.get(key);
        if (id !== undefined) gone(id);
      }
    } else if (found!.length > 0) {
      const keys = this.#backendIds.keysById();
      for (const id of found!) {
        const key = keys.get(id);
        if (key === undefined || !desired.backends.has(key)) gone(id);
      }
    }
    return { deletes };
  }

  /** Rev-NAT entries to write and delete, one per frontend address:port/proto (both scopes share it). */
  #diffRevNat(
    desired: DesiredState,
    view: View,
    unchanged: (key: string, frontend: DesiredFrontend) => boolean,
    counts: ApplyCounts,
    writer: FamilyWriter,
  ): Diff {
    const next = new Map<number, Bytes>();
    const deletes = perFamily<Buffer[]>(() => []);
    for (const [fkey, frontend] of desired.frontends) {
      if (this.#unwritable(frontend.address)) continue;
      // An unchanged frontend keeps its index, and its entry: no key to build.
      const kept = unchanged(fkey, frontend) ? view.services.get(fkey)?.revNatIndex : undefined;
      const id = kept ?? this.#revNatIds.acquire(revNatKey(frontend));
      if (next.has(id)) continue;
      const old = view.revNat.get(id);
      if (old !== undefined && kept !== undefined) {
        next.set(id, old);
        counts.unchanged++;
        continue;
      }
      this.#writeRevNat(id, frontend, old, next, counts, writer, deletes);
    }
    for (const [id, old] of view.revNat) {
      if (next.has(id)) continue;
      deletes[revNatFamily(old)].push(revNatIndexCodec.encode(id));
      counts.removed++;
    }
    return { deletes, next };
  }

  /** The entries of one frontend to write and delete; returns them as the view will hold them. */
  #diffFrontend(
    frontend: DesiredFrontend,
    found: CurrentFrontend | undefined,
    counts: ApplyCounts,
    out: { slotWrites: FamilyWriter; headWrites: PerFamily<CurrentFrontend[]>; slotDeletes: PerFamily<Buffer[]> },
  ): CurrentFrontend {
    const revNatIndex = this.#revNatIds.get(revNatKey(frontend))!;
    const ids = frontend.backends.map((key) => this.#backendIds.get(key)!);
    const layout = layoutSlots(ids, found);
    const key = found?.key ?? { address: frontend.address, port: frontend.port, proto: frontend.proto, slot: 0, scope: frontend.scope };
    const family = familyOf(key.address);
    for (let i = 0; i < layout.length; i++) {
      const slot = i + 1;
      const backendId = layout[i]!;
      const had = found !== undefined && i < found.ids.length && found.ids[i] !== NO_SLOT;
      const odd = had ? found.odd?.get(slot) : undefined;
      if (had && odd === undefined) {
        // The value written for this id and index: unchanged, nothing to encode.
        if (found.ids[i] === backendId && found.slotRevNat === revNatIndex) {
          counts.unchanged++;
          continue;
        }
        counts.updated++;
      } else if (odd === undefined) counts.added++;
      else if (!compare(odd, bytes(slotValue(backendId, revNatIndex)), counts)) continue;
      out.slotWrites.add(family, CODECS[family].serviceKey, slotOf(key, slot), lb4Service, slotService(backendId, revNatIndex));
    }
    const maglev = this.#usesMaglev(frontend) ? SVC_FLAGS.maglev : 0;
    const head = bytes(lb4Service.encode({ backendId: 0, count: layout.length, revNatIndex, flags: frontendFlags(frontend) | maglev, affinityTimeout: frontend.affinityTimeout }));
    const current: CurrentFrontend = { key, revNatIndex, head, ids: layout, slotRevNat: revNatIndex, size: layout.length + 1 };
    if (compare(found?.head, head, counts)) out.headWrites[family].push(current);
    for (let i = layout.length; i < (found?.ids.length ?? 0); i++) {
      if (found!.ids[i] === NO_SLOT) continue;
      out.slotDeletes[family].push(slotKey(key, i + 1));
      counts.removed++;
    }
    return current;
  }

  /** Whether `frontend` gets a Maglev table (and the flag): it asks for one, has backends, and there is a map. */
  #usesMaglev(frontend: DesiredFrontend): boolean {
    return frontend.loadBalancing === 'maglev' && frontend.backends.length > 0 && this.#maps.maglev !== undefined;
  }

  /**
   * The Maglev tables to write (new or changed) and delete (no frontend
   * scope uses them), by rev-NAT index and scope. Tables are computed from
   * backend identities, not ids: the same set gives the same table. The
   * table of a frontend `kept` (unchanged) stays as it is.
   */
  #diffMaglev(
    desired: DesiredState,
    changed: ReadonlyArray<[string, DesiredFrontend]>,
    view: View,
    kept: (frontendKey: string) => boolean,
    result: ApplyResult,
  ): { writes: Entry[]; deletes: Buffer[]; next: Map<string, MaglevEntry> } {
    const next = new Map<string, MaglevEntry>();
    if (this.#maps.maglev === undefined) return { writes: [], deletes: [], next };
    const counts = (result.maglev = { added: 0, updated: 0, removed: 0, unchanged: 0 });
    for (const [hex, entry] of view.maglev) {
      if (entry.frontend === undefined || !desired.frontends.has(entry.frontend) || !kept(entry.frontend)) continue;
      next.set(hex, entry);
      counts.unchanged++;
    }
    const writes: Entry[] = [];
    for (const [fkey, frontend] of changed) {
      if (!this.#usesMaglev(frontend)) continue;
      const key = lb4MaglevKey.encode({ revNatIndex: this.#revNatIds.get(revNatKey(frontend))!, scope: frontend.scope });
      const hex = key.toString('hex');
      const table = maglevTable(frontend.backends, this.#maglev);
      const value = lb4Maglev.encode({
        seed: this.#maglev.seed ?? MAGLEV_DEFAULT_SEED,
        backendIds: table.map((backend) => this.#backendIds.get(backend)!),
      });
      const valueBytes = bytes(value);
      next.set(hex, { key, value: valueBytes, frontend: fkey });
      if (compare(view.maglev.get(hex)?.value, valueBytes, counts)) writes.push([key, value]);
    }
    const deletes = [...view.maglev].filter(([hex]) => !next.has(hex)).map(([, entry]) => entry.key);
    counts.removed = deletes.length;
    return { writes, deletes, next };
  }

  /**
   * Everything in the maps of both families, services grouped by frontend,
   * with the bindings taken over (absorb). hostPort entries (their ids in
   * layout.ts's HOSTPORT_* ranges) are CNI's: left out, so nothing here
   * ever removes them. An id found in both families' backends maps (or an
   * index in both rev-NAT maps) is IPv4's; the IPv6 entry is a stray, noted
   * in conflicts and deleted by the next apply().
   */
  #read(): View {
    const backends = new BackendEntries();
    const revNat = new Map<number, Bytes>();
    // Each frontend's entries as found, made compact (CurrentFrontend) once all are read.
    const found = new Map<string, { key: Lb4Key; slots: Map<number, { value: Bytes; service: Lb4Service }> }>();
    const strays: Stray[] = [];
    const stray = (family: Family, kind: Stray['kind'], key: Buffer, id: number) => {
      strays.push({ family, kind, key, id });
      const what = kind === 'backends' ? 'backend id' : 'rev-NAT index';
      this.#conflict(`${what} ${id} is in both the IPv4 and the IPv6 ${kind === 'backends' ? 'backends' : 'rev-NAT'} map; the IPv6 entry is removed`);
    };
    for (const family of this.#present()) {
      const maps = this.#families[family]!;
      const serviceKey = CODECS[family].serviceKey;
      // An array: its empty slots are no backends (backendSlots() skips them).
      for (const [key, value] of backendSlots(maps.backends)) {
        const id = backendIdCodec.decode(key);
        if (isHostPortBackend(id)) continue;
        if (backends.has(id)) stray(family, 'backends', key, id);
        else backends.set(id, bytes(value));
      }
      for (const [key, value] of readAll(maps.revNat)) {
        const index = revNatIndexCodec.decode(key);
        if (isHostPortRevNat(index)) continue;
        if (revNat.has(index)) stray(family, 'revNat', key, index);
        else revNat.set(index, bytes(value));
      }
      for (const [key, value] of readAll(maps.services)) {
        const k = serviceKey.decode(key);
        const v = lb4Service.decode(value);
        if (isHostPortRevNat(v.revNatIndex)) continue;
        const fk = frontendKey(k);
        let frontend = found.get(fk);
        if (frontend === undefined) {
          frontend = { key: k, slots: new Map() };
          found.set(fk, frontend);
        }
        // A key read back encodes to the same bytes (padding is zero, as the datapath looks it up).
        frontend.slots.set(k.slot, { value: bytes(value), service: v });
      }
    }
    const services = new Map<string, CurrentFrontend>();
    for (const [fk, f] of found) services.set(fk, compactFrontend(f.key, f.slots));
    const maglev = new Map<string, MaglevEntry>();
    if (this.#maps.maglev) for (const [key, value] of readAll(this.#maps.maglev)) maglev.set(key.toString('hex'), { key, value: bytes(value) });
    let slots = 0;
    for (const f of services.values()) slots += f.size;
    const view: View = { backends, revNat, services, maglev, slots };
    if (strays.length > 0) view.strays = strays;
    this.#absorb(view);
    return view;
  }

  /**
   * Takes over the bindings the maps hold: backend ids from the backends maps,
   * rev-NAT indices from the services' slot 0 (the revNat map has no
   * protocol). Lowest ids first, so of two contradicting entries the older
   * one wins; the other is noted in conflicts and replaced by apply().
   */
  #absorb(current: View): void {
    const backendIds = [...current.backends.keys()].sort((a, b) => a - b);
    for (const id of backendIds) {
      // As read: every entry is its bytes yet.
      const value = current.backends.get(id) as Bytes;
      const family = backendFamily(value);
      const b = CODECS[family].backend.decode(Buffer.from(value, 'latin1'));
      const key = backendKey({ address: b.address, port: b.port, proto: b.proto });
      this.#restore(this.#backendIds, key, id);
      // Bound to it, and the very value #writeBackend writes for it: kept as its family only.
      const written = bytes(CODECS[family].backend.encode({ address: b.address, port: b.port, proto: b.proto, flags: 0 }));
      if (this.#backendIds.get(key) === id && written === value) current.backends.set(id, family);
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
      this.#conflict(e.message);
    }
  }

  #conflict(message: string): void {
    if (!this.#conflicts.includes(message)) this.#conflicts.push(message);
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

/** The key of `frontend`'s entry `slot`. */
function slotOf(frontend: Lb4Key, slot: number): Lb4Key {
  return { address: frontend.address, port: frontend.port, proto: frontend.proto, slot, scope: frontend.scope };
}

/** The key of `frontend`'s entry `slot`, in its family's layout. */
function slotKey(frontend: Lb4Key, slot: number): Buffer {
  return CODECS[familyOf(frontend.address)].serviceKey.encode(slotOf(frontend, slot));
}

/**
 * A frontend's entries as read (slot → value and what it decodes to), as
 * the view keeps them.
 */
function compactFrontend(key: Lb4Key, slots: ReadonlyMap<number, { value: Bytes; service: Lb4Service }>): CurrentFrontend {
  const head = slots.get(0);
  let slotRevNat = head?.service.revNatIndex;
  let last = 0;
  for (const [slot, { service }] of slots) {
    last = Math.max(last, slot);
    if (slot > 0) slotRevNat ??= service.revNatIndex;
  }
  const frontend: CurrentFrontend = {
    key,
    revNatIndex: head !== undefined && head.service.revNatIndex !== 0 ? head.service.revNatIndex : undefined,
    head: head?.value,
    ids: new Array<number>(last).fill(NO_SLOT),
    slotRevNat: slotRevNat ?? 0,
    size: slots.size,
  };
  for (const [slot, { value, service }] of slots) {
    if (slot === 0) continue;
    frontend.ids[slot - 1] = service.backendId;
    if (value !== bytes(slotValue(service.backendId, frontend.slotRevNat))) (frontend.odd ??= new Map()).set(slot, value);
  }
  return frontend;
}

/** Counts `value` against what the map holds (`old`); true when it must be written. */
function compare(old: Bytes | undefined, value: Bytes, counts: ApplyCounts): boolean {
  if (old === undefined) counts.added++;
  else if (old === value) {
    counts.unchanged++;
    return false;
  } else counts.updated++;
  return true;
}

/**
 * The IdAllocator of Services' backend ids: from the one after hostPorts'
 * to the last index of the smaller backends map. Throws when the maps
 * leave no id for Services.
 */
function backendIdAllocator(maps: LbMaps): IdAllocator {
  const capacity = backendCapacity([maps.backends, maps.backends6]);
  const maps6 = maps.backends6 === undefined ? '' : ` and ${MAPS.backends6} (${maps.backends6.maxEntries ?? 'default'} slots)`;
  const sized = `${MAPS.backends} (${maps.backends.maxEntries ?? 'default'} slots)${maps6}`;
  const setting = "the daemon's --map-capacity sizes both (--map-capacity6 when larger)";
  if (capacity <= SERVICE_BACKEND_IDS_MIN) {
    throw new RangeError(
      `the backends maps ${sized} leave no backend ids for Services: ids ${HOSTPORT_BACKEND_IDS.min}–${HOSTPORT_BACKEND_IDS.max} are hostPorts', ` +
        `so they need more than ${SERVICE_BACKEND_IDS_MIN} slots; ${setting}`,
    );
  }
  return new IdAllocator('backend id', SERVICE_BACKEND_IDS_MIN, capacity - 1, {
    exhausted: `Services' backend ids are the indices of the backends maps ${sized} above hostPorts' (${HOSTPORT_BACKEND_IDS.min}–${HOSTPORT_BACKEND_IDS.max}); ${setting}`,
  });
}

/** Every entry of a map, in batches when it can. */
function readAll(map: MapLike): Iterable<[Buffer, Buffer]> {
  return map.lookupBatch !== undefined ? map.lookupBatch(BATCH_CHUNK) : map.entries();
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
      const id = slot <= found.ids.length ? found.ids[slot - 1]! : NO_SLOT;
      if (id !== NO_SLOT && wanted.has(id) && !placed.has(id)) {
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

/** Frees the ids of `keys` the maps no longer hold (`kept`: what they hold now, by id). */
function releaseGone(ids: IdAllocator, keys: Iterable<string>, kept: { has(id: number): boolean }): void {
  for (const key of keys) {
    const id = ids.get(key);
    if (id !== undefined && !kept.has(id)) ids.release(key);
  }
}

/** Frees every id the maps no longer hold (`kept`: what they hold now, by id). */
function releaseAllBut(ids: IdAllocator, kept: { has(id: number): boolean }): void {
  ids.releaseUnless((id) => kept.has(id));
}
