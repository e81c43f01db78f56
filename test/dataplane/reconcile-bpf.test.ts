// The Reconciler on real kernel maps, sized from the layout's codecs and made
// by bpftool (an oracle independent of ferry's loader): hashes, and arrays
// for the backends maps, as lb.o declares them; a "restart" opens the pins
// again and adopts them.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BpfMap } from '../../engine/bpf/index.js';
import { backendSlots, isEmptyBackend } from '../../engine/dataplane/backend-slots.js';
import { backendId, BACKENDS_MAX, lb4Backend, lb4Key, lb4ReverseNat, lb4Service, lb6Backend, lb6Key, lb6ReverseNat, revNatIndex, type Codec } from '../../engine/dataplane/layout.js';
import { parseEndpoints, parseService, type Endpoint } from '../../engine/dataplane/model.js';
import { desiredState, Reconciler, type LbMaps } from '../../engine/dataplane/reconcile.js';
import { pinDir, defer } from '../bpf/support.js';
import { isRoot } from '../support/netns.js';

const hasBpftool = (() => {
  try {
    execFileSync('bpftool', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Equivalent to: `bpftool map create DIR/NAME type hash key K value V entries 4096 name NAME` */
function createHash(dir: string, name: string, key: Codec<unknown>, value: Codec<unknown>): string {
  const path = join(dir, name);
  execFileSync('bpftool', ['map', 'create', path, 'type', 'hash', 'key', `${key.size}`, 'value', `${value.size}`, 'entries', '4096', 'name', name]);
  return path;
}

/** A backends map as lb.o declares one. Equivalent to: `bpftool map create DIR/NAME type array key 4 value V entries N name NAME` */
function createBackends(dir: string, name: string, value: Codec<unknown>, entries = 8192): string {
  const path = join(dir, name);
  execFileSync('bpftool', ['map', 'create', path, 'type', 'array', 'key', `${backendId.size}`, 'value', `${value.size}`, 'entries', `${entries}`, 'name', name]);
  return path;
}

/** The ids of a backends map's used slots. */
const usedIds = (map: BpfMap) => backendSlots(map).map(([k]) => backendId.decode(k));

/** What a map holds: a hash's keys, an array's used slots (the backends maps). */
const held = (map: BpfMap) => (map.type === 'array' ? usedIds(map) : [...map.keys()]);

function open(paths: Record<CoreMap, string>): LbMaps & Record<CoreMap, BpfMap> {
  const maps = {
    services: BpfMap.openPinned(paths.services),
    backends: BpfMap.openPinned(paths.backends),
    revNat: BpfMap.openPinned(paths.revNat),
  };
  defer(() => Object.values(maps).forEach((m) => m.close()));
  return maps;
}

// The maps every Reconciler writes (LbMaps.maglev is optional).
type CoreMap = 'services' | 'backends' | 'revNat';

const NODE = 'node-a';

function state(backends: Record<string, string[]>) {
  const services = Object.keys(backends).map((name, i) =>
    parseService({ namespace: 'default', name, clusterIPs: [`10.96.0.${i + 1}`], ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }] }),
  );
  const eps = new Map<string, Endpoint[]>(
    Object.entries(backends).map(([name, addresses]) => [
      `default/${name}`,
      parseEndpoints({ namespace: 'default', name }, addresses.map((a) => ({ addresses: [a], ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }] }))),
    ]),
  );
  return desiredState(services, eps, { nodeName: NODE });
}

/** `10.96.0.1:53/udp` → the backends its slots name, read back from the kernel. */
function read(maps: Record<CoreMap, BpfMap>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of maps.services.entries()) {
    const key = lb4Key.decode(k);
    if (key.slot !== 0) continue;
    const head = lb4Service.decode(v);
    const rev = lb4ReverseNat.decode(maps.revNat.lookup(revNatIndex.encode(head.revNatIndex))!);
    expect(`${rev.address}:${rev.port}`).toBe(`${key.address}:${key.port}`);
    const slots: string[] = [];
    for (let slot = 1; slot <= head.count; slot++) {
      const entry = lb4Service.decode(maps.services.lookup(lb4Key.encode({ ...key, slot }))!);
      const raw = maps.backends.lookup(backendId.encode(entry.backendId))!;
      expect(isEmptyBackend(raw)).toBe(false);
      const b = lb4Backend.decode(raw);
      slots.push(`${b.address}:${b.port}`);
    }
    out[`${key.address}:${key.port}/${key.proto}`] = slots.sort();
  }
  return out;
}

describe.skipIf(!isRoot || !hasBpftool)('Reconciler on BPF maps (needs root and bpftool)', () => {
  it('programs, changes, survives a restart and cleans up, writing only differences', async () => {
    const dir = pinDir();
    const paths = {
      services: createHash(dir, 'ferry_t_svc', lb4Key, lb4Service),
      backends: createBackends(dir, 'ferry_t_be', lb4Backend),
      revNat: createHash(dir, 'ferry_t_rnat', revNatIndex, lb4ReverseNat),
    };
    const maps = open(paths);
    const reconciler = new Reconciler(maps);

    const first = reconciler.apply(state({ dns: ['10.0.0.1', '10.0.0.2'], web: ['10.0.1.1'] }));
    expect(first.services.added).toBe(5);
    expect(read(maps)).toEqual({
      '10.96.0.1:53/udp': ['10.0.0.1:5353', '10.0.0.2:5353'],
      '10.96.0.2:53/udp': ['10.0.1.1:5353'],
    });

    // A restart: the pins opened anew, the ids taken from the maps.
    const again = open(paths);
    const adopted = await Reconciler.adopt(again);
    expect(adopted.backendId('10.0.0.2:5353/udp')).toBe(reconciler.backendId('10.0.0.2:5353/udp'));
    const same = adopted.apply(state({ dns: ['10.0.0.1', '10.0.0.2'], web: ['10.0.1.1'] }));
    for (const counts of [same.services, same.backends, same.revNat]) expect(counts.added + counts.updated + counts.removed).toBe(0);

    const changed = adopted.apply(state({ dns: ['10.0.0.2', '10.0.0.3'] }));
    expect(changed.services).toEqual({ added: 0, updated: 1, removed: 2, unchanged: 2 });
    expect(read(again)).toEqual({ '10.96.0.1:53/udp': ['10.0.0.2:5353', '10.0.0.3:5353'] });
    expect(usedIds(again.backends)).toHaveLength(2);
    expect([...again.revNat.keys()]).toHaveLength(1);

    adopted.apply(state({}));
    for (const m of Object.values(again)) expect(held(m)).toEqual([]);
  });

  it('both families: each in its own maps, one id space, a restart adopts both, an IPv6 change and removal', async () => {
    const dir = pinDir();
    const paths = {
      services: createHash(dir, 'ferry_t_svc', lb4Key, lb4Service),
      backends: createBackends(dir, 'ferry_t_be', lb4Backend),
      revNat: createHash(dir, 'ferry_t_rnat', revNatIndex, lb4ReverseNat),
      services6: createHash(dir, 'ferry_t_svc6', lb6Key, lb4Service),
      backends6: createBackends(dir, 'ferry_t_be6', lb6Backend),
      revNat6: createHash(dir, 'ferry_t_rnat6', revNatIndex, lb6ReverseNat),
    };
    const open6 = () => {
      const maps = Object.fromEntries(Object.entries(paths).map(([role, path]) => [role, BpfMap.openPinned(path)])) as Record<keyof typeof paths, BpfMap>;
      defer(() => Object.values(maps).forEach((m) => m.close()));
      return maps;
    };
    /** `fd00:96::1:53/udp` → its slots' backends, from the IPv6 maps. */
    const read6 = (maps: Record<keyof typeof paths, BpfMap>): Record<string, string[]> => {
      const out: Record<string, string[]> = {};
      for (const [k, v] of maps.services6.entries()) {
        const key = lb6Key.decode(k);
        if (key.slot !== 0) continue;
        const head = lb4Service.decode(v);
        const rev = lb6ReverseNat.decode(maps.revNat6.lookup(revNatIndex.encode(head.revNatIndex))!);
        expect(`${rev.address}:${rev.port}`).toBe(`${key.address}:${key.port}`);
        const slots: string[] = [];
        for (let slot = 1; slot <= head.count; slot++) {
          const entry = lb4Service.decode(maps.services6.lookup(lb6Key.encode({ ...key, slot }))!);
          const raw = maps.backends6.lookup(backendId.encode(entry.backendId))!;
          expect(isEmptyBackend(raw)).toBe(false);
          const b = lb6Backend.decode(raw);
          slots.push(`${b.address}:${b.port}`);
        }
        out[`${key.address}:${key.port}/${key.proto}`] = slots.sort();
      }
      return out;
    };
    const dual = (backends: Record<string, string[]>) => {
      const services = Object.keys(backends).map((name, i) =>
        parseService({ namespace: 'default', name, clusterIPs: [`10.96.0.${i + 1}`, `fd00:96::${i + 1}`], ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }] }),
      );
      const eps = new Map<string, Endpoint[]>(
        Object.entries(backends).map(([name, addresses]) => [
          `default/${name}`,
          parseEndpoints({ namespace: 'default', name }, addresses.map((a) => ({ addresses: [a], ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }] }))),
        ]),
      );
      return desiredState(services, eps, { nodeName: NODE });
    };

    const maps = open6();
    const reconciler = new Reconciler(maps);
    const first = reconciler.apply(dual({ dns: ['10.0.0.1', 'fd00::1', 'fd00::2'], web: ['10.0.1.1'] }));
    expect(first.services.added).toBe(2 + 2 + 3 + 1); // web has no IPv6 endpoint: its IPv6 frontend has slot 0 only
    expect(read(maps)).toEqual({ '10.96.0.1:53/udp': ['10.0.0.1:5353'], '10.96.0.2:53/udp': ['10.0.1.1:5353'] });
    expect(read6(maps)).toEqual({ 'fd00:96::1:53/udp': ['fd00::1:5353', 'fd00::2:5353'], 'fd00:96::2:53/udp': [] });
    const ids4 = usedIds(maps.backends);
    const ids6 = usedIds(maps.backends6);
    expect(new Set([...ids4, ...ids6]).size).toBe(ids4.length + ids6.length);
    const revs = [...maps.revNat.keys(), ...maps.revNat6.keys()].map((k) => revNatIndex.decode(k));
    expect(new Set(revs).size).toBe(4);

    // A restart: the pins opened anew, both families' ids taken from the maps.
    const again = open6();
    const adopted = await Reconciler.adopt(again);
    expect(adopted.conflicts).toEqual([]);
    expect(adopted.backendId('fd00::2:5353/udp')).toBe(reconciler.backendId('fd00::2:5353/udp'));
    expect(adopted.revNatIndex('fd00:96::1:53/udp')).toBe(reconciler.revNatIndex('fd00:96::1:53/udp'));
    const same = adopted.apply(dual({ dns: ['10.0.0.1', 'fd00::1', 'fd00::2'], web: ['10.0.1.1'] }));
    for (const counts of [same.services, same.backends, same.revNat]) expect(counts.added + counts.updated + counts.removed).toBe(0);

    // An IPv6 endpoint leaves: its id is reported, the IPv4 maps are not touched.
    const gone = adopted.backendId('fd00::1:5353/udp')!;
    const changed = adopted.apply(dual({ dns: ['10.0.0.1', 'fd00::2'], web: ['10.0.1.1'] }));
    expect(changed.removedBackendIds).toEqual([gone]);
    expect(changed.services).toEqual({ added: 0, updated: 2, removed: 1, unchanged: 5 });
    expect(read6(again)).toEqual({ 'fd00:96::1:53/udp': ['fd00::2:5353'], 'fd00:96::2:53/udp': [] });
    expect(read(again)).toEqual({ '10.96.0.1:53/udp': ['10.0.0.1:5353'], '10.96.0.2:53/udp': ['10.0.1.1:5353'] });

    adopted.apply(dual({}));
    for (const m of Object.values(again)) expect(held(m)).toEqual([]);
  });

  it('a restart finds exactly the backends written among 65,536 slots: no empty slot is taken for one', async () => {
    const dir = pinDir();
    const paths = {
      services: createHash(dir, 'ferry_t_svc', lb4Key, lb4Service),
      backends: createBackends(dir, 'ferry_t_be', lb4Backend, BACKENDS_MAX),
      revNat: createHash(dir, 'ferry_t_rnat', revNatIndex, lb4ReverseNat),
    };
    const backends = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`s${i}`, Array.from({ length: 10 }, (_, j) => `10.1.${i}.${j + 1}`)]));
    const written = new Reconciler(open(paths));
    expect(written.apply(state(backends)).backends.added).toBe(200);
    const keys = Object.values(backends)
      .flat()
      .map((a) => `${a}:5353/udp`);
    const ids = keys.map((k) => written.backendId(k)!);

    const again = open(paths);
    expect(again.backends.maxEntries).toBe(BACKENDS_MAX);
    const adopted = await Reconciler.adopt(again);
    expect(adopted.conflicts).toEqual([]);
    expect(keys.map((k) => adopted.backendId(k))).toEqual(ids);
    // Nothing to write for the same state, and every one of the 200, and no more, is removed for none.
    const same = adopted.apply(state(backends));
    expect(same.backends).toEqual({ added: 0, updated: 0, removed: 0, unchanged: 200 });
    const none = adopted.apply(state({}));
    expect(none.backends).toEqual({ added: 0, updated: 0, removed: 200, unchanged: 0 });
    expect(none.removedBackendIds).toEqual([...ids].sort((a, b) => a - b));
    expect(usedIds(again.backends)).toEqual([]);
  });
});
