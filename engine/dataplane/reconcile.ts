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
// The view holds each entry's value as a one-byte string of its bytes (see
// Bytes), not as a Buffer, and no service keys (they are encoded again from
// the frontend and slot when an entry goes): at 100k backends a Buffer per
// entry was most of the daemon's memory.
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
import { BATCH_CHUNK, MapWriter } from './map-writer.js';
import {
  backendId as backendIdCodec,
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
  revNatIndex as revNatIndexCodec,
  SVC_FLAGS,
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
  /** Every entry in few syscalls, when the map can (BpfMap): reading the maps uses it. */
  lookupBatch?(chunk?: number): Iterable<[Buffer, Buffer]>;
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

/**
 * A map value's bytes as a string of one char per byte (latin1): about a
 * third of a Buffer's memory in V8, and compared with ===.
 */
type Bytes = string;
const bytes = (b: Buffer): Bytes => b.toString('latin1');

/** One service entry found in the map (its key: the frontend's, with this slot). */
interface Slot {
  value: Bytes;
  backendId: number;
}

/** The entries of one frontend (address, port, protocol, scope) found in the map. */
interface CurrentFrontend {
  key: Lb4Key;
  revNatIndex: number | undefined;
  slots: Map<number, Slot>;
}

type Entry = [Buffer, Buffer];

/** What the maps hold, as this Reconciler read them or last left them. */
interface View {
  backends: Map<number, Bytes>;
  revNat: Map<number, Bytes>;
  /** By frontendKey(). */
  services: Map<string, CurrentFrontend>;
  /** By hex(key); empty without a maglev map. */
  maglev: Map<string, MaglevEntry>;
  /** Entries of `services`, all slots counted. */
  slots: number;
  /** The desired state last applied onto this view; none after a read. */
  applied?: { frontends: ReadonlyMap<string, DesiredFrontend>; backends: ReadonlyMap<string, BackendAddress> };
}

/** A Maglev table in the map, and the frontend it was written for (unknown after a read). */
interface MaglevEntry {
  key: Buffer;
  value: Bytes;
  frontend?: string;
}

/** Deletes for one map (its writes went to a MapWriter), and its contents afterwards. */
interface Diff {
  deletes: Buffer[];
  next: Map<number, Bytes>;
}

export class Reconciler {
  readonly #maps: LbMaps;
  // 0 means "none" to the datapath (slot 0's backend id, a missing rev-NAT);
  // the ids above are hostPorts' (layout.ts HOSTPORT_*, written by CNI ADD).
  readonly #backendIds = new IdAllocator('backend id', 1, HOSTPORT_BACKEND_IDS.min - 1);
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
    this.#maps = maps;
    this.#maglev = options.maglev ?? {};
  }

  /** A Reconciler whose id tables are rebuilt from what the maps hold (after a restart). */
  static async adopt(maps: LbMaps, options: { maglev?: MaglevOptions } = {}): Promise<Reconciler> {
    const reconciler = new Reconciler(maps, options);
    reconciler.#view = reconciler.#read();
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
    // Frontends that are new, or not the very objects applied last time; and those gone.
    const changed: Array<[string, DesiredFrontend]> = [];
    const gone: string[] = [];
    if (changes !== undefined) {
      for (const key of changes.frontends) {
        const frontend = desired.frontends.get(key);
        if (frontend !== undefined) changed.push([key, frontend]);
        else if (view.services.has(key)) gone.push(key);
      }
    } else {
      for (const [key, frontend] of desired.frontends) if (!unchanged(key, frontend)) changed.push([key, frontend]);
      for (const key of view.services.keys()) if (!desired.frontends.has(key)) gone.push(key);
    }

    // Bind ids first: a new backend or frontend never takes an id still in the
    // maps. Backends and rev-NAT entries are written as they are decided (1.),
    // and all of them before the first slot.
    const backendWriter = new MapWriter(this.#maps.backends);
    const revNatWriter = new MapWriter(this.#maps.revNat);
    const backends =
      changes !== undefined ? this.#diffBackendsOf(changes.backends, desired, view, result, backendWriter) : this.#diffBackends(desired, view, result, backendWriter);
    const revNat: Diff & { touched?: string[] } =
      changes !== undefined ? this.#diffRevNatOf(changed, gone, desired, view, result.revNat, revNatWriter) : this.#diffRevNat(desired, view, unchanged, result.revNat, revNatWriter);
    backendWriter.flush();
    revNatWriter.flush();
    const touched = changes?.frontends;
    const kept = (key: string) => (touched !== undefined ? !touched.has(key) : unchanged(key, desired.frontends.get(key)!));
    const maglev = this.#diffMaglev(desired, changed, view, kept, result);

    // Slots 1..n are written as they are decided (2.); slot 0 waits for all of them (3.).
    const slotWrites = new MapWriter(this.#maps.services);
    const headWrites: Entry[] = [];
    const headDeletes: Buffer[] = [];
    const slotDeletes: Buffer[] = [];
    const written = new Map<string, CurrentFrontend>();
    let slotsBefore = 0;
    for (const [key, frontend] of changed) {
      const found = view.services.get(key);
      slotsBefore += found?.slots.size ?? 0;
      written.set(key, this.#diffFrontend(frontend, found, result.services, { slotWrites, headWrites, slotDeletes }));
    }
    for (const key of gone) {
      const found = view.services.get(key)!;
      for (const slot of found.slots.keys()) (slot === 0 ? headDeletes : slotDeletes).push(slotKey(found.key, slot));
      result.services.removed += found.slots.size;
      slotsBefore += found.slots.size;
    }
    // The others are unchanged: their entries are counted without a look.
    result.services.unchanged += view.slots - slotsBefore;

    slotWrites.flush();
    if (this.#maps.maglev) for (const [key, value] of maglev.writes) this.#maps.maglev.update(key, value, 'any');
    write(this.#maps.services, headWrites);
    for (const key of headDeletes) this.#maps.services.delete(key);
    for (const key of slotDeletes) this.#maps.services.delete(key);
    for (const key of maglev.deletes) this.#maps.maglev!.delete(key);
    for (const key of revNat.deletes) this.#maps.revNat.delete(key);
    for (const key of backends.deletes) this.#maps.backends.delete(key);

    view.revNat = revNat.next;
    view.maglev = maglev.next;
    for (const [key, frontend] of written) {
      view.slots += frontend.slots.size;
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
    return result;
  }

  /**
   * Binds backend `key` to its id and writes its entry with `writer` when the
   * map's differs (counted in result.backends); a backend whose entry
   * changed under its id counts as removed for conntrack's sake.
   */
  #writeBackend(key: string, address: BackendAddress, view: View, result: ApplyResult, writer: MapWriter): void {
    const id = this.#backendIds.acquire(key);
    const old = view.backends.get(id);
    const value = encodeBackend(address);
    const valueBytes = bytes(value);
    if (!compare(old, valueBytes, result.backends)) return;
    writer.push(backendIdCodec.encode(id), value);
    view.backends.set(id, valueBytes);
    if (old !== undefined) result.removedBackendIds.push(id);
  }

  /** #diffBackends() for the backends `keys` only: the others are as applied last time. */
  #diffBackendsOf(keys: Iterable<string>, desired: DesiredState, view: View, result: ApplyResult, writer: MapWriter): { deletes: Buffer[] } {
    const counts = result.backends;
    const deletes: Buffer[] = [];
    for (const key of keys) {
      const address = desired.backends.get(key);
      if (address === undefined) {
        const id = this.#backendIds.get(key);
        if (id === undefined || !view.backends.delete(id)) continue;
        deletes.push(backendIdCodec.encode(id));
        counts.removed++;
        result.removedBackendIds.push(id);
        continue;
      }
      this.#writeBackend(key, address, view, result, writer);
    }
    counts.unchanged = view.backends.size - counts.added - counts.updated;
    result.removedBackendIds.sort((a, b) => a - b);
    return { deletes };
  }

  /** #diffRevNat() for the rev-NAT entries of the frontends `changed` and `gone` only. */
  #diffRevNatOf(
    changed: ReadonlyArray<[string, DesiredFrontend]>,
    gone: readonly string[],
    desired: DesiredState,
    view: View,
    counts: ApplyCounts,
    writer: MapWriter,
  ): Diff & { touched: string[] } {
    const next = view.revNat;
    const deletes: Buffer[] = [];
    const touched = new Set<string>();
    for (const [, frontend] of changed) touched.add(revNatKey(frontend));
    for (const key of gone) touched.add(revNatKey(view.services.get(key)!.key));
    for (const key of touched) {
      const frontend = desired.frontends.get(key) ?? desired.frontends.get(`${key}@internal`);
      if (frontend === undefined) {
        const id = this.#revNatIds.get(key);
        if (id === undefined || !next.delete(id)) continue;
        deletes.push(revNatIndexCodec.encode(id));
        counts.removed++;
        continue;
      }
      const id = this.#revNatIds.acquire(key);
      const old = next.get(id);
      const value = lb4ReverseNat.encode({ address: frontend.address, port: frontend.port });
      next.set(id, bytes(value));
      if (compare(old, next.get(id)!, counts)) writer.push(revNatIndexCodec.encode(id), value);
    }
    counts.unchanged = next.size - counts.added - counts.updated;
    return { deletes, next, touched: [...touched] };
  }

  /**
   * Backend entries to write (with `writer`) and delete, brought into view.backends as it
   * goes; ids whose backend went away or was rebound to another are noted in
   * removedBackendIds.
   */
  #diffBackends(desired: DesiredState, view: View, result: ApplyResult, writer: MapWriter): { deletes: Buffer[] } {
    const counts = result.backends;
    for (const [key, address] of desired.backends) {
      // Applied last time as this very object: bound to its id and written.
      if (view.applied?.backends.get(key) === address) {
        counts.unchanged++;
        continue;
      }
      this.#writeBackend(key, address, view, result, writer);
    }
    // Ids no desired backend is bound to: of the backends applied last time,
    // or after a read, of the entries found (a conflicting duplicate among them).
    const deletes: Buffer[] = [];
    const gone = (id: number) => {
      deletes.push(backendIdCodec.encode(id));
      counts.removed++;
      result.removedBackendIds.push(id);
      view.backends.delete(id);
    };
    if (view.applied) {
      for (const key of view.applied.backends.keys()) if (!desired.backends.has(key)) gone(this.#backendIds.get(key)!);
    } else {
      for (const id of view.backends.keys()) {
        const key = this.#backendIds.keyOf(id);
        if (key === undefined || !desired.backends.has(key)) gone(id);
      }
    }
    result.removedBackendIds.sort((a, b) => a - b);
    return { deletes };
  }

  /** Rev-NAT entries to write and delete, one per frontend address:port/proto (both scopes share it). */
  #diffRevNat(
    desired: DesiredState,
    view: View,
    unchanged: (key: string, frontend: DesiredFrontend) => boolean,
    counts: ApplyCounts,
    writer: MapWriter,
  ): Diff {
    const next = new Map<number, Bytes>();
    for (const [fkey, frontend] of desired.frontends) {
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
      const value = lb4ReverseNat.encode({ address: frontend.address, port: frontend.port });
      next.set(id, bytes(value));
      if (compare(old, next.get(id)!, counts)) writer.push(revNatIndexCodec.encode(id), value);
    }
    const deletes: Buffer[] = [];
    for (const id of view.revNat.keys()) {
      if (next.has(id)) continue;
      deletes.push(revNatIndexCodec.encode(id));
      counts.removed++;
    }
    return { deletes, next };
  }

  /** The entries of one frontend to write and delete; returns them as the view will hold them. */
  #diffFrontend(
    frontend: DesiredFrontend,
    found: CurrentFrontend | undefined,
    counts: ApplyCounts,
    out: { slotWrites: MapWriter; headWrites: Entry[]; slotDeletes: Buffer[] },
  ): CurrentFrontend {
    const revNatIndex = this.#revNatIds.get(revNatKey(frontend))!;
    const ids = frontend.backends.map((key) => this.#backendIds.get(key)!);
    const layout = layoutSlots(ids, found);
    const slots = new Map<number, Slot>();
    const key = found?.key ?? { address: frontend.address, port: frontend.port, proto: frontend.proto, slot: 0, scope: frontend.scope };
    const compareSlot = (slot: number, backendId: number, value: Buffer, write: (key: Buffer, value: Buffer) => void) => {
      const old = found?.slots.get(slot);
      const valueBytes = bytes(value);
      slots.set(slot, { value: valueBytes, backendId });
      if (compare(old?.value, valueBytes, counts)) write(slotKey(key, slot), value);
    };
    layout.forEach((backendId, i) => {
      compareSlot(i + 1, backendId, lb4Service.encode({ backendId, count: 0, revNatIndex, flags: 0, affinityTimeout: 0 }), (k, v) => out.slotWrites.push(k, v));
    });
    const maglev = this.#usesMaglev(frontend) ? SVC_FLAGS.maglev : 0;
    const head = { backendId: 0, count: layout.length, revNatIndex, flags: frontendFlags(frontend) | maglev, affinityTimeout: frontend.affinityTimeout };
    compareSlot(0, 0, lb4Service.encode(head), (k, v) => out.headWrites.push([k, v]));
    for (const slot of found?.slots.keys() ?? []) {
      if (slot > layout.length) {
        out.slotDeletes.push(slotKey(key, slot));
        counts.removed++;
      }
    }
    return { key, revNatIndex, slots };
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
   * Everything in the maps, services grouped by frontend, with the bindings
   * taken over (absorb). hostPort entries (their ids in layout.ts's HOSTPORT_*
   * ranges) are CNI's: left out, so nothing here ever removes them.
   */
  #read(): View {
    const backends = new Map<number, Bytes>();
    for (const [key, value] of readAll(this.#maps.backends)) {
      const id = backendIdCodec.decode(key);
      if (!isHostPortBackend(id)) backends.set(id, bytes(value));
    }
    const revNat = new Map<number, Bytes>();
    for (const [key, value] of readAll(this.#maps.revNat)) {
      const index = revNatIndexCodec.decode(key);
      if (!isHostPortRevNat(index)) revNat.set(index, bytes(value));
    }
    const services = new Map<string, CurrentFrontend>();
    for (const [key, value] of readAll(this.#maps.services)) {
      const k = lb4Key.decode(key);
      const v = lb4Service.decode(value);
      if (isHostPortRevNat(v.revNatIndex)) continue;
      const fk = frontendKey(k);
      let frontend = services.get(fk);
      if (frontend === undefined) {
        frontend = { key: k, revNatIndex: undefined, slots: new Map() };
        services.set(fk, frontend);
      }
      // A key read back encodes to the same bytes (padding is zero, as the datapath looks it up).
      frontend.slots.set(k.slot, { value: bytes(value), backendId: v.backendId });
      if (k.slot === 0 && v.revNatIndex !== 0) frontend.revNatIndex = v.revNatIndex;
    }
    const maglev = new Map<string, MaglevEntry>();
    if (this.#maps.maglev) for (const [key, value] of readAll(this.#maps.maglev)) maglev.set(key.toString('hex'), { key, value: bytes(value) });
    let slots = 0;
    for (const f of services.values()) slots += f.slots.size;
    const view: View = { backends, revNat, services, maglev, slots };
    this.#absorb(view);
    return view;
  }

  /**
   * Takes over the bindings the maps hold: backend ids from the backends map,
   * rev-NAT indices from the services' slot 0 (the revNat map has no
   * protocol). Lowest ids first, so of two contradicting entries the older
   * one wins; the other is noted in conflicts and replaced by apply().
   */
  #absorb(current: View): void {
    const backendIds = [...current.backends.keys()].sort((a, b) => a - b);
    for (const id of backendIds) {
      const b = lb4Backend.decode(Buffer.from(current.backends.get(id)!, 'latin1'));
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

function encodeBackend(address: BackendAddress): Buffer {
  return lb4Backend.encode({ address: address.address, port: address.port, proto: address.proto, flags: 0 });
}

/** The key of `frontend`'s entry `slot`. */
function slotKey(frontend: Lb4Key, slot: number): Buffer {
  return lb4Key.encode({ ...frontend, slot });
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
function write(map: MapLike, entries: readonly Entry[]): void {
  const writer = new MapWriter(map);
  for (const [key, value] of entries) writer.push(key, value);
  writer.flush();
}

/** Frees the ids of `keys` the maps no longer hold (`kept`: what they hold now, by id). */
function releaseGone(ids: IdAllocator, keys: Iterable<string>, kept: ReadonlyMap<number, unknown>): void {
  for (const key of keys) {
    const id = ids.get(key);
    if (id !== undefined && !kept.has(id)) ids.release(key);
  }
}

/** Frees every id the maps no longer hold (`kept`: what they hold now, by id). */
function releaseAllBut(ids: IdAllocator, kept: ReadonlyMap<number, unknown>): void {
  const gone: string[] = [];
  for (const [key, id] of ids.entries()) if (!kept.has(id)) gone.push(key);
  for (const key of gone) ids.release(key);
}
