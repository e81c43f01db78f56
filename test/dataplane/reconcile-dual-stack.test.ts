// The Reconciler with both families' maps, in memory: each frontend, backend
// and rev-NAT entry lands in its family's map in its family's layout (the
// maps check key and value sizes as the kernel does), backend ids and rev-NAT
// indices are one space across the families, a restart adopts both, and a
// change touches only its Service's entries of its family.
import { describe, expect, it } from 'vitest';

import type { UpdateMode } from '../../engine/bpf/map.js';
import { backendSlots, isEmptyBackend } from '../../engine/dataplane/backend-slots.js';
import { DesiredStates } from '../../engine/dataplane/desired.js';
import {
  backendId,
  lb4Backend,
  lb4Key,
  lb4Maglev,
  lb4MaglevKey,
  lb4ReverseNat,
  lb4Service,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  revNatIndex,
  type CCodec,
  type Family,
  type Lb4Backend,
  type Lb4Key,
  type Lb4ReverseNat,
} from '../../engine/dataplane/layout.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { parseEndpoints, parseService, type Endpoint, type Service, type ServiceInput } from '../../engine/dataplane/model.js';
import { desiredState, Reconciler, type DesiredOptions, type DesiredState, type LbMaps, type MapLike } from '../../engine/dataplane/reconcile.js';

type Role = 'services' | 'backends' | 'revNat' | 'services6' | 'backends6' | 'revNat6';
interface Op {
  map: Role;
  op: 'update' | 'delete';
  key: Buffer;
}

/**
 * A MemoryMap of one role, sized from its codecs, that logs every write and
 * runs `after` once each is done; the backends maps are arrays of 8,192
 * slots, as the kernel's (Services' ids 4097…8191).
 */
class RecordingMap implements MapLike {
  readonly inner: MemoryMap;
  readonly maxEntries: number | undefined;
  constructor(
    readonly name: Role,
    key: CCodec<unknown>,
    value: CCodec<unknown>,
    readonly log: Op[],
    readonly after: () => void,
  ) {
    const array = name === 'backends' || name === 'backends6';
    this.inner = new MemoryMap(name, key.size, value.size, array ? { array, maxEntries: 8192 } : {});
    this.maxEntries = this.inner.maxEntries;
  }
  lookup(key: Buffer) {
    return this.inner.lookup(key);
  }
  update(key: Buffer, value: Buffer, mode?: UpdateMode) {
    this.inner.update(key, value, mode);
    this.log.push({ map: this.name, op: 'update', key });
    this.after();
  }
  delete(key: Buffer) {
    const found = this.inner.delete(key);
    this.log.push({ map: this.name, op: 'delete', key });
    this.after();
    return found;
  }
  entries() {
    return this.inner.entries();
  }
  updateBatch(entries: Iterable<readonly [Buffer, Buffer]>) {
    let n = 0;
    for (const [key, value] of entries) this.update(key, value), n++;
    return n;
  }
}

interface Maps extends Record<Role, RecordingMap> {
  log: Op[];
  problems: string[];
  maglev?: MemoryMap;
}

const LAYOUT: Record<Family, { key: CCodec<Lb4Key>; backend: CCodec<Lb4Backend>; revNat: CCodec<Lb4ReverseNat>; roles: [Role, Role, Role] }> = {
  4: { key: lb4Key, backend: lb4Backend, revNat: lb4ReverseNat, roles: ['services', 'backends', 'revNat'] },
  6: { key: lb6Key, backend: lb6Backend, revNat: lb6ReverseNat, roles: ['services6', 'backends6', 'revNat6'] },
};

/**
 * What the datapath may see at any moment, in each family: every service's
 * slots 1..count exist and name a backend in that family's backends map,
 * and its rev-NAT entry is in that family's rev-NAT map.
 */
function datapathProblems(maps: Maps): string[] {
  const problems: string[] = [];
  for (const family of [4, 6] as const) {
    const { key: keyCodec, roles } = LAYOUT[family];
    const [services, backends, revNat] = roles.map((r) => maps[r].inner);
    for (const [k, v] of services!.entries()) {
      const key = keyCodec.decode(k);
      if (key.slot !== 0) continue;
      const head = lb4Service.decode(v);
      const name = `${key.address}:${key.port}/${key.proto}/${key.scope}`;
      if (revNat!.lookup(revNatIndex.encode(head.revNatIndex)) === undefined) problems.push(`${name}: no rev-NAT ${head.revNatIndex} in its family's map`);
      for (let slot = 1; slot <= head.count; slot++) {
        const entry = services!.lookup(keyCodec.encode({ ...key, slot }));
        if (entry === undefined) problems.push(`${name}: count ${head.count} but no slot ${slot}`);
        else if (isEmptyBackend(backends!.lookup(backendId.encode(lb4Service.decode(entry).backendId))!)) problems.push(`${name}: slot ${slot} names a backend its family's map lacks`);
      }
    }
  }
  return problems;
}

function makeMaps(options: { maglev?: boolean } = {}): Maps {
  const log: Op[] = [];
  const problems: string[] = [];
  const maps = { log, problems } as unknown as Maps;
  const check = () => problems.push(...datapathProblems(maps));
  for (const family of [4, 6] as const) {
    const { key, backend, revNat: rev, roles } = LAYOUT[family];
    const [s, b, r] = roles;
    maps[s] = new RecordingMap(s, key, lb4Service, log, check);
    maps[b] = new RecordingMap(b, backendId, backend, log, check);
    maps[r] = new RecordingMap(r, revNatIndex, rev, log, check);
  }
  if (options.maglev) maps.maglev = new MemoryMap('maglev', lb4MaglevKey.size, lb4Maglev.size);
  return maps;
}

/** Each map's entries, decoded: `address:port/proto#slot → backend address:port` (slot 0: `count N rev address:port`). */
function contents(maps: Maps, family: Family): Record<string, string> {
  const { key: keyCodec, backend: backendCodec, revNat: revNatCodec, roles } = LAYOUT[family];
  const [services, backends, revNat] = roles.map((r) => maps[r].inner);
  const out: Record<string, string> = {};
  for (const [k, v] of services!.entries()) {
    const key = keyCodec.decode(k);
    const value = lb4Service.decode(v);
    const name = `${key.address}:${key.port}/${key.proto}#${key.slot}`;
    if (key.slot === 0) {
      const rev = revNatCodec.decode(revNat!.lookup(revNatIndex.encode(value.revNatIndex))!);
      out[name] = `count ${value.count} rev ${rev.address}:${rev.port}`;
    } else {
      const b = backendCodec.decode(backends!.lookup(backendId.encode(value.backendId))!);
      out[name] = `${b.address}:${b.port}`;
    }
  }
  return out;
}

/** The ids of a backends map's used slots. */
const ids = (map: RecordingMap) => backendSlots(map.inner).map(([k]) => backendId.decode(k));
const indices = (map: RecordingMap) => [...map.inner.keys()].map((k) => revNatIndex.decode(k));

// --- fixtures ----------------------------------------------------------------

const NODE = 'node-a';
const OPTIONS: DesiredOptions = { nodeName: NODE };

function service(name: string, clusterIPs: string[], extra: Partial<ServiceInput> = {}): Service {
  return parseService({ namespace: 'default', name, clusterIPs, ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...extra });
}

function endpoints(name: string, addresses: string[]): Endpoint[] {
  return parseEndpoints(
    { namespace: 'default', name },
    addresses.map((a) => ({ addresses: [a], ports: [{ name: 'http', port: 8080 }], nodeName: NODE })),
  );
}

/** a: dual stack; b: IPv6 only; c: IPv4 only. */
const SERVICES = [service('a', ['10.96.0.1', 'fd00:96::1']), service('b', ['fd00:96::2']), service('c', ['10.96.0.3'])];
const ENDPOINTS: Record<string, string[]> = {
  a: ['10.0.0.1', '10.0.0.2', 'fd00::a:1', 'fd00::a:2'],
  b: ['fd00::b:1', 'fd00::b:2', 'fd00::b:3'],
  c: ['10.0.2.1'],
};

function endpointMap(overrides: Record<string, string[]> = {}): Map<string, Endpoint[]> {
  const all = { ...ENDPOINTS, ...overrides };
  return new Map(Object.entries(all).map(([name, list]) => [`default/${name}`, endpoints(name, list)]));
}

function world(overrides: Record<string, string[]> = {}): DesiredState {
  return desiredState(SERVICES, endpointMap(overrides), OPTIONS);
}

const none = { added: 0, updated: 0, removed: 0 };

// --- tests -------------------------------------------------------------------

describe('Reconciler, IPv4 and IPv6', () => {
  it('writes each family’s entries to its own maps in its own layout, with ids and indices unique across both', () => {
    const maps = makeMaps();
    const reconciler = new Reconciler(maps);
    const result = reconciler.apply(world());
    expect(result).toEqual({
      services: { added: 3 + 2 + 3 + 4, updated: 0, removed: 0, unchanged: 0 },
      backends: { added: 8, updated: 0, removed: 0, unchanged: 0 },
      revNat: { added: 4, updated: 0, removed: 0, unchanged: 0 },
      removedBackendIds: [],
    });
    expect(contents(maps, 4)).toEqual({
      '10.96.0.1:80/tcp#0': 'count 2 rev 10.96.0.1:80',
      '10.96.0.1:80/tcp#1': '10.0.0.1:8080',
      '10.96.0.1:80/tcp#2': '10.0.0.2:8080',
      '10.96.0.3:80/tcp#0': 'count 1 rev 10.96.0.3:80',
      '10.96.0.3:80/tcp#1': '10.0.2.1:8080',
    });
    expect(contents(maps, 6)).toEqual({
      'fd00:96::1:80/tcp#0': 'count 2 rev fd00:96::1:80',
      'fd00:96::1:80/tcp#1': 'fd00::a:1:8080',
      'fd00:96::1:80/tcp#2': 'fd00::a:2:8080',
      'fd00:96::2:80/tcp#0': 'count 3 rev fd00:96::2:80',
      'fd00:96::2:80/tcp#1': 'fd00::b:1:8080',
      'fd00:96::2:80/tcp#2': 'fd00::b:2:8080',
      'fd00:96::2:80/tcp#3': 'fd00::b:3:8080',
    });
    // One id space: no backend id in both maps, no rev-NAT index in both.
    const all = [...ids(maps.backends), ...ids(maps.backends6)];
    expect(ids(maps.backends)).toHaveLength(3);
    expect(ids(maps.backends6)).toHaveLength(5);
    expect(new Set(all).size).toBe(8);
    expect(new Set([...indices(maps.revNat), ...indices(maps.revNat6)]).size).toBe(4);
    expect(reconciler.revNatIndex('fd00:96::1:80/tcp')).not.toBe(reconciler.revNatIndex('10.96.0.1:80/tcp'));
    expect(ids(maps.backends6)).toContain(reconciler.backendId('fd00::a:1:8080/tcp'));
    expect(maps.problems).toEqual([]);
  });

  it('is idempotent, and after a restart adopt() keeps both families’ ids and writes nothing', async () => {
    const maps = makeMaps();
    const first = new Reconciler(maps);
    const state = world();
    first.apply(state);
    const again = first.apply(world());
    expect([again.services, again.backends, again.revNat]).toEqual([
      { ...none, unchanged: 12 },
      { ...none, unchanged: 8 },
      { ...none, unchanged: 4 },
    ]);

    const backendIds = [...state.backends.keys()].map((k) => [k, first.backendId(k)]);
    const frontends = ['10.96.0.1:80/tcp', 'fd00:96::1:80/tcp', 'fd00:96::2:80/tcp', '10.96.0.3:80/tcp'];
    const revs = frontends.map((k) => [k, first.revNatIndex(k)]);
    const before = maps.log.length;
    const second = await Reconciler.adopt(maps);
    expect(second.conflicts).toEqual([]);
    expect([...state.backends.keys()].map((k) => [k, second.backendId(k)])).toEqual(backendIds);
    expect(frontends.map((k) => [k, second.revNatIndex(k)])).toEqual(revs);
    const result = second.apply(world());
    expect(maps.log.slice(before)).toEqual([]);
    expect(result.services).toEqual({ ...none, unchanged: 12 });
    expect(result.backends).toEqual({ ...none, unchanged: 8 });
  });

  it('an IPv6 endpoint change rewrites only its Service’s IPv6 entries (a full apply and an incremental one)', () => {
    for (const incremental of [false, true]) {
      const maps = makeMaps();
      const reconciler = new Reconciler(maps);
      const states = new DesiredStates();
      reconciler.apply(states.compute(SERVICES, endpointMap(), OPTIONS));
      const before = maps.log.length;
      const changed = endpointMap({ a: ['10.0.0.1', '10.0.0.2', 'fd00::a:1', 'fd00::a:2', 'fd00::a:3'] });
      const state = incremental ? states.update(new Map([['default/a', SERVICES[0]!]]), changed, OPTIONS)! : desiredState(SERVICES, changed, OPTIONS);
      expect(state.changes !== undefined).toBe(incremental);
      const result = reconciler.apply(state);
      expect(result.backends).toMatchObject({ added: 1, updated: 0, removed: 0 });
      expect(result.services).toMatchObject({ added: 1, updated: 1, removed: 0 });
      const log = maps.log.slice(before).map((o) => {
        if (o.map === 'backends6') return `${o.map} ${lb6Backend.decode(maps.backends6.inner.lookup(o.key)!).address}`;
        const k = (o.map === 'services' ? lb4Key : lb6Key).decode(o.key);
        return `${o.map} ${k.address}#${k.slot}`;
      });
      expect(log).toEqual(['backends6 fd00::a:3', 'services6 fd00:96::1#3', 'services6 fd00:96::1#0']);
      expect(maps.problems).toEqual([]);
    }
  });

  it('removed IPv6 endpoints: their ids in removedBackendIds, their entries gone from the IPv6 maps only', () => {
    const maps = makeMaps();
    const reconciler = new Reconciler(maps);
    reconciler.apply(world());
    const gone = [reconciler.backendId('fd00::b:1:8080/tcp')!, reconciler.backendId('fd00::b:3:8080/tcp')!].sort((x, y) => x - y);
    const v4 = ids(maps.backends);
    const result = reconciler.apply(world({ b: ['fd00::b:2'] }));
    expect(result.removedBackendIds).toEqual(gone);
    expect(result.backends).toEqual({ added: 0, updated: 0, removed: 2, unchanged: 6 });
    expect(ids(maps.backends6).some((id) => gone.includes(id))).toBe(false);
    expect(ids(maps.backends)).toEqual(v4);
    expect(contents(maps, 6)['fd00:96::2:80/tcp#0']).toBe('count 1 rev fd00:96::2:80');
    expect(maps.problems).toEqual([]);

    // A whole IPv6-only Service gone: its slots, rev-NAT entry and backends, from the IPv6 maps.
    const last = reconciler.backendId('fd00::b:2:8080/tcp')!;
    const after = reconciler.apply(desiredState([SERVICES[0]!, SERVICES[2]!], endpointMap(), OPTIONS));
    expect(after.removedBackendIds).toEqual([last]);
    expect(reconciler.backendId('fd00::b:2:8080/tcp')).toBeUndefined();
    expect(Object.keys(contents(maps, 6)).filter((k) => k.startsWith('fd00:96::2'))).toEqual([]);
    expect(indices(maps.revNat6)).toEqual([reconciler.revNatIndex('fd00:96::1:80/tcp')]);
    expect(maps.problems).toEqual([]);
  });

  it('without the IPv6 maps, IPv6 entries are not written and are counted; the IPv6 maps go together', () => {
    const maps = makeMaps();
    const v4only = { services: maps.services, backends: maps.backends, revNat: maps.revNat };
    const reconciler = new Reconciler(v4only);
    const result = reconciler.apply(world());
    expect(result.skippedIPv6).toEqual({ frontends: 2, backends: 5 });
    expect(result.services.added).toBe(5);
    expect(result.backends.added).toBe(3);
    expect(Object.keys(contents(maps, 4))).toHaveLength(5);
    expect(maps.services6.inner.size + ids(maps.backends6).length + maps.revNat6.inner.size).toBe(0);
    expect(reconciler.backendId('fd00::a:1:8080/tcp')).toBeUndefined();
    // Applied again, incrementally: the IPv6 change among the changes is counted, nothing written.
    const states = new DesiredStates();
    reconciler.apply(states.compute(SERVICES, endpointMap(), OPTIONS));
    const before = maps.log.length;
    const next = reconciler.apply(states.update(new Map([['default/b', SERVICES[1]!]]), endpointMap({ b: ['fd00::b:9'] }), OPTIONS)!);
    expect(next.skippedIPv6).toEqual({ frontends: 1, backends: 1 });
    expect(maps.log.slice(before)).toEqual([]);
    // An IPv4-only state says nothing of IPv6.
    expect(reconciler.apply(desiredState([SERVICES[2]!], endpointMap(), OPTIONS)).skippedIPv6).toBeUndefined();

    expect(() => new Reconciler({ ...v4only, services6: maps.services6 } as LbMaps)).toThrow('LbMaps: services6, backends6 and revNat6 are given together or not at all');
  });

  it('an id found in both families’ backends maps: the IPv6 entry is noted, replaced and removed', async () => {
    const maps = makeMaps();
    new Reconciler(maps).apply(world());
    // The IPv6 slot of b's first backend renamed to an id the IPv4 map has, with a copy of the backend under it.
    const v4Id = ids(maps.backends)[0]!;
    const slot1 = lb6Key.encode({ address: 'fd00:96::2', port: 80, proto: 'tcp', slot: 1, scope: 'external' });
    const slot = lb4Service.decode(maps.services6.inner.lookup(slot1)!);
    maps.backends6.inner.update(backendId.encode(v4Id), maps.backends6.inner.lookup(backendId.encode(slot.backendId))!);
    maps.services6.inner.update(slot1, lb4Service.encode({ ...slot, backendId: v4Id }));

    const adopted = await Reconciler.adopt(maps);
    expect(adopted.conflicts).toEqual([`backend id ${v4Id} is in both the IPv4 and the IPv6 backends map; the IPv6 entry is removed`]);
    const result = adopted.apply(world());
    expect(result.removedBackendIds).toEqual([v4Id]);
    expect(result.services.updated).toBe(1);
    expect(lb4Service.decode(maps.services6.inner.lookup(slot1)!).backendId).toBe(slot.backendId);
    expect(isEmptyBackend(maps.backends6.inner.lookup(backendId.encode(v4Id))!)).toBe(true);
    expect(isEmptyBackend(maps.backends.inner.lookup(backendId.encode(v4Id))!)).toBe(false);
    expect(maps.problems).toEqual([]);
    expect(contents(maps, 6)).toEqual(contents(makeFresh(), 6));

    function makeFresh(): Maps {
      const fresh = makeMaps();
      new Reconciler(fresh).apply(world());
      return fresh;
    }
  });

  it('Maglev: one table per frontend in the shared map, naming its own family’s backends', () => {
    const maps = makeMaps({ maglev: true });
    const reconciler = new Reconciler(maps);
    const maglev = service('m', ['10.96.0.9', 'fd00:96::9'], { loadBalancing: 'maglev' });
    const state = desiredState([maglev], new Map([['default/m', endpoints('m', ['10.0.9.1', '10.0.9.2', 'fd00::9:1'])]]), OPTIONS);
    expect(reconciler.apply(state).maglev).toEqual({ added: 2, updated: 0, removed: 0, unchanged: 0 });
    const table = (frontend: string) => {
      const key = lb4MaglevKey.encode({ revNatIndex: reconciler.revNatIndex(frontend)!, scope: 'external' });
      return new Set(lb4Maglev.decode(maps.maglev!.lookup(key)!).backendIds);
    };
    expect(table('10.96.0.9:80/tcp')).toEqual(new Set(ids(maps.backends)));
    expect(table('fd00:96::9:80/tcp')).toEqual(new Set([reconciler.backendId('fd00::9:1:8080/tcp')]));
  });
});
