// The Reconciler against in-memory maps: only differences are written, in an
// order under which every lookup the datapath can make stays valid, and ids
// survive a restart.
import { describe, expect, it } from 'vitest';

import type { UpdateMode } from '../../engine/bpf/map.js';
import { backendSlots, isEmptyBackend } from '../../engine/dataplane/backend-slots.js';
import { addHostPort, checkHostPort } from '../../engine/dataplane/hostports.js';
import { IdsExhaustedError } from '../../engine/dataplane/ids.js';
import {
  backendId,
  HOSTPORT_BACKEND_IDS,
  hostPortBackendId,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4Service,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  revNatIndex,
  SERVICE_BACKEND_IDS_MIN,
  type Lb4Key,
} from '../../engine/dataplane/layout.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { parseEndpoints, parseService, type Endpoint, type EndpointInput, type Service } from '../../engine/dataplane/model.js';
import { desiredState, Reconciler, type DesiredState, type LbMaps, type MapLike } from '../../engine/dataplane/reconcile.js';

type MapName = keyof LbMaps;
interface Op {
  map: MapName;
  /** 'clear': an all-zero value written to a backends slot (an array's way to remove one). */
  op: 'update' | 'delete' | 'clear';
  via?: 'update' | 'batch';
  key: Buffer;
}

/** The backends maps' capacity in these tests: Services' ids 4097…8191. */
const BACKEND_SLOTS = 8192;

/** A MemoryMap that logs every write and runs `after` once each is done; the backends map is an array, as the kernel's. */
class RecordingMap implements MapLike {
  readonly inner: MemoryMap;
  readonly maxEntries: number | undefined;
  constructor(
    readonly name: MapName,
    readonly log: Op[],
    readonly after: () => void,
  ) {
    this.inner = name === 'backends' ? new MemoryMap(name, backendId.size, lb4Backend.size, { array: true, maxEntries: BACKEND_SLOTS }) : new MemoryMap(name);
    this.maxEntries = this.inner.maxEntries;
  }
  lookup(key: Buffer) {
    return this.inner.lookup(key);
  }
  #op(value: Buffer): Op['op'] {
    return this.name === 'backends' && isEmptyBackend(value) ? 'clear' : 'update';
  }
  update(key: Buffer, value: Buffer, mode?: UpdateMode) {
    this.inner.update(key, value, mode);
    this.log.push({ map: this.name, op: this.#op(value), via: 'update', key });
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
    for (const [key, value] of entries) {
      this.inner.update(key, value);
      this.log.push({ map: this.name, op: this.#op(value), via: 'batch', key });
      // A batch is applied entry by entry by the kernel too.
      this.after();
      n++;
    }
    return n;
  }
}

/** The backend in slot `id`, as the datapath finds it: none for an empty (all-zero) slot. */
function backendAt(maps: Maps, id: number): Buffer | undefined {
  const value = maps.backends.inner.lookup(backendId.encode(id));
  return value === undefined || isEmptyBackend(value) ? undefined : value;
}

/** How many backends the backends map holds: its used slots. */
const backendCount = (maps: Maps) => backendSlots(maps.backends.inner).length;

/**
 * What the datapath may see at any moment must make sense: every service's
 * slots 1..count exist and name a backend that exists, and its rev-NAT
 * entry exists.
 */
function datapathProblems(maps: Maps): string[] {
  const problems: string[] = [];
  const services = new Map<string, Buffer>();
  for (const [k, v] of maps.services.inner.entries()) services.set(k.toString('hex'), v);
  for (const [k, v] of services) {
    const key = lb4Key.decode(Buffer.from(k, 'hex'));
    if (key.slot !== 0) continue;
    const head = lb4Service.decode(v);
    const name = `${key.address}:${key.port}/${key.proto}/${key.scope}`;
    if (maps.revNat.inner.lookup(revNatIndex.encode(head.revNatIndex)) === undefined) problems.push(`${name}: no rev-NAT ${head.revNatIndex}`);
    for (let slot = 1; slot <= head.count; slot++) {
      const entry = services.get(lb4Key.encode({ ...key, slot }).toString('hex'));
      if (entry === undefined) {
        problems.push(`${name}: count ${head.count} but no slot ${slot}`);
        continue;
      }
      const id = lb4Service.decode(entry).backendId;
      if (backendAt(maps, id) === undefined) problems.push(`${name}: slot ${slot} names missing backend ${id}`);
    }
  }
  return problems;
}

interface Maps extends LbMaps {
  services: RecordingMap;
  backends: RecordingMap;
  revNat: RecordingMap;
  log: Op[];
  problems: string[];
}

function makeMaps(): Maps {
  const log: Op[] = [];
  const problems: string[] = [];
  const maps = {} as Maps;
  const check = () => problems.push(...datapathProblems(maps));
  Object.assign(maps, {
    log,
    problems,
    services: new RecordingMap('services', log, check),
    backends: new RecordingMap('backends', log, check),
    revNat: new RecordingMap('revNat', log, check),
  });
  return maps;
}

// --- fixtures ----------------------------------------------------------------

const NODE = 'node-a';

function service(name: string, clusterIP: string, extra: Partial<Parameters<typeof parseService>[0] & object> = {}): Service {
  return parseService({ namespace: 'default', name, clusterIPs: [clusterIP], ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...extra });
}

function endpoints(name: string, addresses: string[], over: Partial<EndpointInput> = {}): Endpoint[] {
  return parseEndpoints(
    { namespace: 'default', name },
    addresses.map((a) => ({ addresses: [a], ports: [{ name: 'http', port: 8080 }], nodeName: NODE, ...over })),
  );
}

/** Services a, b, c with three endpoints each. */
function world(overrides: Record<string, string[]> = {}) {
  const services = [service('a', '10.96.0.1'), service('b', '10.96.0.2'), service('c', '10.96.0.3')];
  const eps = new Map<string, Endpoint[]>();
  services.forEach((s, i) => {
    const list = overrides[s.name] ?? [1, 2, 3].map((n) => `10.0.${i}.${n}`);
    eps.set(`default/${s.name}`, endpoints(s.name, list));
  });
  return desiredState(services, eps, { nodeName: NODE });
}

/** The services map as `address:port/proto@scope#slot` → decoded value. */
function servicesOf(maps: Maps): Record<string, { backend?: string; count?: number; revNat: string }> {
  const out: Record<string, { backend?: string; count?: number; revNat: string }> = {};
  for (const [k, v] of maps.services.inner.entries()) {
    const key: Lb4Key = lb4Key.decode(k);
    const value = lb4Service.decode(v);
    const rev = maps.revNat.inner.lookup(revNatIndex.encode(value.revNatIndex));
    const revNat = rev ? `${lb4ReverseNat.decode(rev).address}:${lb4ReverseNat.decode(rev).port}` : 'missing';
    const name = `${key.address}:${key.port}/${key.proto}#${key.slot}`;
    if (key.slot === 0) out[name] = { count: value.count, revNat };
    else {
      const b = backendAt(maps, value.backendId);
      const backend = b ? lb4Backend.decode(b) : undefined;
      out[name] = { backend: backend ? `${backend.address}:${backend.port}/${backend.proto}` : 'missing', revNat };
    }
  }
  return out;
}

const writes = (maps: Maps, from = 0) => maps.log.slice(from);
const none = { added: 0, updated: 0, removed: 0 };

// --- tests -------------------------------------------------------------------

describe('Reconciler', () => {
  it('fills empty maps with the desired state', () => {
    const maps = makeMaps();
    const result = new Reconciler(maps).apply(world());
    expect(result).toEqual({
      services: { added: 12, updated: 0, removed: 0, unchanged: 0 },
      backends: { added: 9, updated: 0, removed: 0, unchanged: 0 },
      revNat: { added: 3, updated: 0, removed: 0, unchanged: 0 },
      removedBackendIds: [],
    });
    const view = servicesOf(maps);
    expect(view['10.96.0.2:80/tcp#0']).toEqual({ count: 3, revNat: '10.96.0.2:80' });
    expect([1, 2, 3].map((slot) => view[`10.96.0.2:80/tcp#${slot}`]!.backend)).toEqual([
      '10.0.1.1:8080/tcp',
      '10.0.1.2:8080/tcp',
      '10.0.1.3:8080/tcp',
    ]);
    expect(maps.problems).toEqual([]);
    // Many entries go through batches, each map's in one call.
    expect(new Set(maps.log.map((o) => o.via))).toEqual(new Set(['batch']));
  });

  it('is idempotent: a second apply of the same state writes nothing', () => {
    const maps = makeMaps();
    const reconciler = new Reconciler(maps);
    reconciler.apply(world());
    const before = maps.log.length;
    const result = reconciler.apply(world());
    expect(result).toEqual({
      services: { ...none, unchanged: 12 },
      backends: { ...none, unchanged: 9 },
      revNat: { ...none, unchanged: 3 },
      removedBackendIds: [],
    });
    expect(writes(maps, before)).toEqual([]);
  });

  it('a new endpoint writes its backend, its slot and its service\'s count, nothing else', () => {
    const maps = makeMaps();
    const reconciler = new Reconciler(maps);
    reconciler.apply(world());
    const before = maps.log.length;
    const result = reconciler.apply(world({ b: ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.0'] }));
    expect(result.backends).toEqual({ added: 1, updated: 0, removed: 0, unchanged: 9 });
    expect(result.services).toEqual({ added: 1, updated: 1, removed: 0, unchanged: 11 });
    expect(result.revNat).toEqual({ ...none, unchanged: 3 });
    const log = writes(maps, before).map((o) => [o.map, o.op, describeKey(o)]);
    expect(log).toEqual([
      ['backends', 'update', '10.0.1.0:8080/tcp'],
      ['services', 'update', '10.96.0.2:80#4'], // the slot first, invisible until...
      ['services', 'update', '10.96.0.2:80#0'], // ...the count covers it
    ]);
    // The others kept their slots: the newcomer sorts first but went to the end.
    expect(servicesOf(maps)['10.96.0.2:80/tcp#4']!.backend).toBe('10.0.1.0:8080/tcp');
    expect(maps.problems).toEqual([]);

    function describeKey(o: Op): string {
      if (o.map === 'backends') {
        const b = lb4Backend.decode(maps.backends.inner.lookup(o.key)!);
        return `${b.address}:${b.port}/${b.proto}`;
      }
      const k = lb4Key.decode(o.key);
      return `${k.address}:${k.port}#${k.slot}`;
    }
  });

  it('a removed endpoint: its slot is refilled, the count lowered, then the last slot and the backend deleted', () => {
    const maps = makeMaps();
    const reconciler = new Reconciler(maps);
    reconciler.apply(world());
    const before = maps.log.length;
    const goneBefore = reconciler.backendId('10.0.1.2:8080/tcp');
    const result = reconciler.apply(world({ b: ['10.0.1.1', '10.0.1.3'] }));
    expect(result.backends).toEqual({ added: 0, updated: 0, removed: 1, unchanged: 8 });
    expect(result.removedBackendIds).toEqual([goneBefore]); // for forgetBackends()
    expect(result.services).toEqual({ added: 0, updated: 2, removed: 1, unchanged: 9 });
    const log = writes(maps, before).map((o) => {
      if (o.map === 'backends') return `${o.op} backend ${backendId.decode(o.key)}`;
      const k = lb4Key.decode(o.key);
      return `${o.op} ${k.address}#${k.slot}`;
    });
    const goneId = reconciler.backendId('10.0.1.2:8080/tcp');
    expect(goneId).toBeUndefined(); // released
    expect(log).toEqual([
      'update 10.96.0.2#2', // .3 moves from slot 3 into the hole
      'update 10.96.0.2#0', // count 3 → 2
      'delete 10.96.0.2#3',
      `clear backend ${goneBefore}`, // an array's slot is emptied, not deleted
    ]);
    expect(servicesOf(maps)['10.96.0.2:80/tcp#2']!.backend).toBe('10.0.1.3:8080/tcp');
    expect(maps.problems).toEqual([]);
  });

  it('keeps the datapath\'s view valid through a run of changes, and converges', () => {
    const maps = makeMaps();
    const reconciler = new Reconciler(maps);
    const steps = [
      world(),
      world({ a: [], b: ['10.0.9.9'] }),
      world({ a: ['10.0.0.1', '10.0.0.5', '10.0.0.6', '10.0.0.7'], c: ['10.0.1.1'] }), // c now shares a backend with b's old one
      desiredState([service('a', '10.96.0.1')], new Map(), { nodeName: NODE }), // b and c gone
      desiredState([service('a', '10.96.0.9'), service('d', '10.96.0.1')], new Map([['default/d', endpoints('d', ['10.0.3.1'])]]), {
        nodeName: NODE,
      }),
      world(),
    ];
    for (const step of steps) {
      reconciler.apply(step);
      expect(maps.problems).toEqual([]);
      const again = reconciler.apply(step);
      expect([again.services, again.backends, again.revNat].every((c) => c.added + c.updated + c.removed === 0)).toBe(true);
    }
    // Ends where a fresh reconciler on empty maps ends.
    const fresh = makeMaps();
    new Reconciler(fresh).apply(world());
    expect(servicesOf(maps)).toEqual(servicesOf(fresh));
    expect(backendCount(maps)).toBe(9);
    expect(maps.revNat.inner.size).toBe(3);
  });

  it('a removed Service loses slot 0 first, then its slots, rev-NAT entry and unshared backends', () => {
    const maps = makeMaps();
    const reconciler = new Reconciler(maps);
    reconciler.apply(world());
    const before = maps.log.length;
    const services = [service('a', '10.96.0.1'), service('b', '10.96.0.2')];
    const eps = new Map([
      ['default/a', endpoints('a', ['10.0.0.1', '10.0.0.2', '10.0.0.3'])],
      ['default/b', endpoints('b', ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.2.1'])], // takes over one of c's
    ]);
    const result = reconciler.apply(desiredState(services, eps, { nodeName: NODE }));
    expect(result.revNat).toEqual({ added: 0, updated: 0, removed: 1, unchanged: 2 });
    expect(result.backends).toEqual({ added: 0, updated: 0, removed: 2, unchanged: 7 });
    const log = writes(maps, before).map((o) => `${o.op} ${o.map}${o.map === 'services' ? `#${lb4Key.decode(o.key).slot}` : ''}`);
    expect(log).toEqual([
      'update services#4',
      'update services#0',
      'delete services#0',
      'delete services#1',
      'delete services#2',
      'delete services#3',
      'delete revNat',
      'clear backends',
      'clear backends',
    ]);
    expect(maps.problems).toEqual([]);
  });

  it('after a restart, adopt() keeps every id and writes nothing for the same state', async () => {
    const maps = makeMaps();
    const first = new Reconciler(maps);
    const state = world();
    first.apply(state);
    const ids = [...state.backends.keys()].map((k) => [k, first.backendId(k)]);
    const revs = ['10.96.0.1:80/tcp', '10.96.0.2:80/tcp', '10.96.0.3:80/tcp'].map((k) => [k, first.revNatIndex(k)]);

    const before = maps.log.length;
    const second = await Reconciler.adopt(maps);
    expect([...state.backends.keys()].map((k) => [k, second.backendId(k)])).toEqual(ids);
    expect(revs.map(([k]) => [k, second.revNatIndex(k as string)])).toEqual(revs);
    expect(second.conflicts).toEqual([]);
    const result = second.apply(world());
    expect(writes(maps, before)).toEqual([]);
    expect(result.services).toEqual({ ...none, unchanged: 12 });
  });

  it('ids are reused only after release, and as late as possible', async () => {
    const maps = makeMaps();
    const reconciler = new Reconciler(maps);
    reconciler.apply(world());
    const used = new Set(backendSlots(maps.backends.inner).map(([k]) => backendId.decode(k)));
    const goneId = reconciler.backendId('10.0.1.2:8080/tcp')!;
    reconciler.apply(world({ b: ['10.0.1.1', '10.0.1.3'] }));
    reconciler.apply(world({ b: ['10.0.1.1', '10.0.1.3', '10.0.1.4'] }));
    const newId = reconciler.backendId('10.0.1.4:8080/tcp')!;
    expect(used.has(newId)).toBe(false);
    expect(newId).not.toBe(goneId);

    // The same after a restart: new ids continue after the highest in the maps.
    const adopted = await Reconciler.adopt(maps);
    adopted.apply(world({ b: ['10.0.1.1', '10.0.1.3', '10.0.1.4', '10.0.1.5'] }));
    expect(adopted.backendId('10.0.1.5:8080/tcp')).toBe(newId + 1);
  });

  it('a Reconciler made without adopt() takes over what the maps hold instead of renumbering', () => {
    const maps = makeMaps();
    new Reconciler(maps).apply(world());
    const before = maps.log.length;
    const late = new Reconciler(maps);
    late.apply(world());
    expect(writes(maps, before)).toEqual([]);
  });

  it('adopt() notes contradicting entries and apply() replaces them', async () => {
    const maps = makeMaps();
    const first = new Reconciler(maps);
    first.apply(world());
    // A second id for a backend that already has one, named by b's slot 1.
    const id = first.backendId('10.0.1.1:8080/tcp')!;
    const dup = 5000; // a Service's id (hostPorts' are 1…4096) no backend has
    maps.backends.inner.update(backendId.encode(dup), maps.backends.inner.lookup(backendId.encode(id))!);
    const slot1 = lb4Key.encode({ address: '10.96.0.2', port: 80, proto: 'tcp', slot: 1, scope: 'external' });
    maps.services.inner.update(slot1, lb4Service.encode({ ...lb4Service.decode(maps.services.inner.lookup(slot1)!), backendId: dup }));

    const adopted = await Reconciler.adopt(maps);
    expect(adopted.conflicts).toEqual([`10.0.1.1:8080/tcp has backend ids ${id} and ${dup}`]);
    const result = adopted.apply(world());
    expect(result.backends.removed).toBe(1);
    expect(result.removedBackendIds).toEqual([dup]);
    expect(result.services.updated).toBe(1);
    expect(maps.problems).toEqual([]);
    expect(isEmptyBackend(maps.backends.inner.lookup(backendId.encode(dup))!)).toBe(true);
  });

  it('adopt() rewrites the entries that hold other values than it writes, and only those', async () => {
    const maps = makeMaps();
    const first = new Reconciler(maps);
    first.apply(world());
    const slot = (n: number) => lb4Key.encode({ address: '10.96.0.2', port: 80, proto: 'tcp', slot: n, scope: 'external' });
    const service = (n: number) => lb4Service.decode(maps.services.inner.lookup(slot(n))!);
    const id = backendId.encode(first.backendId('10.0.2.1:8080/tcp')!);
    const backend = () => lb4Backend.decode(maps.backends.inner.lookup(id)!);
    // A slot with a flag set, a slot with another rev-NAT index, a backend with a flag set.
    maps.services.inner.update(slot(1), lb4Service.encode({ ...service(1), flags: 4 }));
    maps.services.inner.update(slot(2), lb4Service.encode({ ...service(2), revNatIndex: 77 }));
    maps.backends.inner.update(id, lb4Backend.encode({ ...backend(), flags: 1 }));

    const adopted = await Reconciler.adopt(maps);
    const before = maps.log.length;
    const result = adopted.apply(world());
    expect(result.services).toEqual({ ...none, updated: 2, unchanged: 10 });
    expect(result.backends).toEqual({ ...none, updated: 1, unchanged: 8 });
    const written = writes(maps, before).map((o) => `${o.map} ${o.key.toString('hex')}`);
    expect(written.sort()).toEqual([`backends ${id.toString('hex')}`, `services ${slot(1).toString('hex')}`, `services ${slot(2).toString('hex')}`].sort());
    expect(service(1).flags).toBe(0);
    expect(service(2).revNatIndex).toBe(adopted.revNatIndex('10.96.0.2:80/tcp'));
    expect(backend().flags).toBe(0);
    // Rewritten, they are as applied: nothing more to do.
    const after = maps.log.length;
    expect(adopted.apply(world()).services).toEqual({ ...none, unchanged: 12 });
    expect(writes(maps, after)).toEqual([]);
  });

  it('scales: 1,000 Services × 10 endpoints', () => {
    const services: Service[] = [];
    const eps = new Map<string, Endpoint[]>();
    for (let i = 0; i < 1000; i++) {
      const name = `svc-${i}`;
      services.push(service(name, `10.96.${i >> 8}.${i & 255}`));
      eps.set(`default/${name}`, endpoints(name, Array.from({ length: 10 }, (_, j) => `10.${1 + (i >> 8)}.${i & 255}.${j + 1}`)));
    }
    const maps = {
      services: new MemoryMap('services', lb4Key.size, lb4Service.size),
      backends: new MemoryMap('backends', backendId.size, lb4Backend.size, { array: true, maxEntries: 16_384 }),
      revNat: new MemoryMap('revNat', revNatIndex.size, lb4ReverseNat.size),
    };
    const reconciler = new Reconciler(maps);

    const t0 = performance.now();
    const state: DesiredState = desiredState(services, eps, { nodeName: NODE });
    const t1 = performance.now();
    const first = reconciler.apply(state);
    const t2 = performance.now();
    const second = reconciler.apply(state);
    const t3 = performance.now();
    const ms = (a: number, b: number) => `${(b - a).toFixed(0)} ms`;
    console.log(
      `1,000 Services × 10 endpoints: desiredState ${ms(t0, t1)}, first apply ${ms(t1, t2)} ` +
        `(${first.services.added} service entries, ${first.backends.added} backends), second apply ${ms(t2, t3)}`,
    );
    expect(first.services.added).toBe(11_000);
    expect(first.backends.added).toBe(10_000);
    expect(second.services.unchanged).toBe(11_000);
    expect(maps.services.size).toBe(11_000);
  });
});

describe('Reconciler backend ids: indices of the backends arrays', () => {
  /** In-memory maps with the backends maps as arrays of `slots` (and the IPv6 maps when `slots6` is given). */
  function arrays(slots: number, slots6?: number): LbMaps & { backends: MemoryMap } {
    const array = (name: string, size: number, maxEntries: number) => new MemoryMap(name, backendId.size, size, { array: true, maxEntries });
    return {
      services: new MemoryMap('services', lb4Key.size, lb4Service.size),
      backends: array('backends', lb4Backend.size, slots),
      revNat: new MemoryMap('revNat', revNatIndex.size, lb4ReverseNat.size),
      ...(slots6 !== undefined && {
        services6: new MemoryMap('services6', lb6Key.size, lb4Service.size),
        backends6: array('backends6', lb6Backend.size, slots6),
        revNat6: new MemoryMap('revNat6', revNatIndex.size, lb6ReverseNat.size),
      }),
    };
  }
  const usedIds = (map: MemoryMap) => backendSlots(map).map(([k]) => backendId.decode(k));
  const one = { a: ['10.0.0.1'], b: ['10.0.1.1'], c: ['10.0.2.1'] };

  it('hands out ids above hostPorts’ and below the smaller map’s capacity; exhaustion names both maps, their slots and the setting', () => {
    // The IPv6 map is the smaller: ids 4097…4099 fit both.
    const maps = arrays(8192, SERVICE_BACKEND_IDS_MIN + 3);
    const reconciler = new Reconciler(maps);
    reconciler.apply(world(one));
    expect(usedIds(maps.backends).sort((x, y) => x - y)).toEqual([SERVICE_BACKEND_IDS_MIN, SERVICE_BACKEND_IDS_MIN + 1, SERVICE_BACKEND_IDS_MIN + 2]);
    const more = () => reconciler.apply(world({ ...one, a: ['10.0.0.1', '10.0.0.2'] }));
    expect(more).toThrow(IdsExhaustedError);
    expect(more).toThrow(
      "backend id: all 3 ids (4097–4099) are in use, none for 10.0.0.2:8080/tcp: Services' backend ids are the indices of the backends maps " +
        "ferry_lb4_be (8192 slots) and ferry_lb6_be (4100 slots) above hostPorts' (1–4096); the daemon's --map-capacity sizes both (--map-capacity6 when larger)",
    );
    // A released id makes room again.
    reconciler.apply(world({ ...one, b: [] }));
    reconciler.apply(world({ ...one, a: ['10.0.0.1', '10.0.0.2'], b: [] }));
    expect(usedIds(maps.backends)).toHaveLength(3);
  });

  it('refuses backends maps too small to leave Services an id, naming them', () => {
    expect(() => new Reconciler(arrays(SERVICE_BACKEND_IDS_MIN))).toThrow(
      `the backends maps ferry_lb4_be (${SERVICE_BACKEND_IDS_MIN} slots) leave no backend ids for Services: ids 1–4096 are hostPorts'`,
    );
    expect(() => new Reconciler(arrays(SERVICE_BACKEND_IDS_MIN + 1))).not.toThrow();
  });

  it('hostPorts’ backends (CNI ADD) and Services’ share the IPv4 array without colliding; the Reconciler leaves hostPorts’ alone', async () => {
    const maps = arrays(8192);
    const hostPort = addHostPort(maps, { address: '192.0.2.1', port: 8080, proto: 'tcp', podAddress: '10.244.0.5', podPort: 80 });
    const hostPortId = hostPortBackendId(hostPort.revNatIndex);
    expect(hostPortId).toBeGreaterThanOrEqual(HOSTPORT_BACKEND_IDS.min);
    expect(hostPortId).toBeLessThanOrEqual(HOSTPORT_BACKEND_IDS.max);

    const reconciler = await Reconciler.adopt(maps);
    expect(reconciler.conflicts).toEqual([]);
    reconciler.apply(world());
    const services = usedIds(maps.backends).filter((id) => id !== hostPortId);
    expect(services).toHaveLength(9);
    for (const id of services) {
      expect(id).toBeGreaterThanOrEqual(SERVICE_BACKEND_IDS_MIN);
      expect(id).toBeLessThan(8192);
    }
    // Every Service gone: the hostPort's entries stay as CNI ADD wrote them.
    const gone = reconciler.apply(desiredState([], new Map(), { nodeName: NODE }));
    expect(gone.removedBackendIds).toEqual([...services].sort((x, y) => x - y));
    expect(usedIds(maps.backends)).toEqual([hostPortId]);
    expect(checkHostPort(maps, hostPort)).toEqual([]);
  });
});
