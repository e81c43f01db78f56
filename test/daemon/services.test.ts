// ServiceSync's scheduling, on in-memory maps and a fake clock: a change
// after a quiet spell syncs at once, a burst costs at most one sync per
// minSyncPeriod and no change waits longer than one, changes during a sync
// are folded into the next, a manifest path waits a period for its file to
// be written, and the hooks the daemon's health and metrics follow see each
// queued change, sync and failure. No root needed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backendSlots } from '../../engine/dataplane/backend-slots.js';
import type { SourcedObject } from '../../engine/dataplane/k8s.js';
import {
  backendId,
  ct4Key,
  ct6Entry,
  ct6Key,
  ctEntry,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4Service,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  revNatIndex,
} from '../../engine/dataplane/layout.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';

/** A backends map as the kernel's: an array indexed by backend id (Services' ids 4097…8191). */
const backendsMap = (name = 'backends') => new MemoryMap(name, backendId.size, name === 'backends6' ? lb6Backend.size : lb4Backend.size, { array: true, maxEntries: 8192 });
import { selectNodePortAddresses, ServiceSync, type ServiceSyncOptions, type SyncReport } from '../../plugin/daemon/services.js';

const service = (name: string, clusterIP: string): SourcedObject => ({
  source: 'test',
  object: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { clusterIP, ports: [{ port: 80 }] } },
});

describe('ServiceSync scheduling', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] }));
  afterEach(() => vi.useRealTimers());

  function world(read: () => SourcedObject[], path?: string) {
    const maps = { services: new MemoryMap('services'), backends: backendsMap(), revNat: new MemoryMap('revNat'), conntrack: new MemoryMap('conntrack') };
    const events: string[] = [];
    const synced: SyncReport[] = [];
    const t0 = Date.now();
    const at = () => Date.now() - t0;
    const sync = new ServiceSync({
      path: path ?? { label: 'test', read: () => ({ objects: read(), errors: [] }) },
      nodeName: 'node-a',
      reconciler: new Reconciler(maps),
      maps,
      log: pino({ level: 'silent' }),
      minSyncPeriodMs: 100,
      hooks: {
        queued: () => events.push(`queued@${at()}`),
        synced: (report, state) => {
          synced.push(report);
          events.push(`synced@${at()}:${state.services.map((s) => s.name).join(',')}`);
        },
        failed: (e) => events.push(`failed@${at()}:${(e as Error).message}`),
      },
    } satisfies ServiceSyncOptions);
    const syncTimes = () => events.filter((e) => e.startsWith('synced')).map((e) => Number(/@(\d+)/.exec(e)![1]));
    return { sync, events, synced, syncTimes };
  }

  it('syncs a change after a quiet spell at once, and folds a burst after it into one sync a period later', async () => {
    const { sync, events } = world(() => [service('web', '10.96.0.10')]);
    for (let i = 0; i < 5; i++) {
      sync.schedule();
      await vi.advanceTimersByTimeAsync(20);
    }
    await vi.advanceTimersByTimeAsync(1000);
    expect(events).toEqual(['queued@0', 'synced@0:web', 'queued@20', 'queued@40', 'queued@60', 'queued@80', 'synced@100:web']);
    await sync.close();
  });

  it('a steady stream of changes is synced once per period, each change within one', async () => {
    const { sync, syncTimes } = world(() => [service('web', '10.96.0.10')]);
    // A change every 50 ms for 3 s, the last at 2950 ms.
    for (let i = 0; i < 60; i++) {
      sync.schedule();
      await vi.advanceTimersByTimeAsync(50);
    }
    expect(syncTimes()).toEqual(Array.from({ length: 31 }, (_, k) => k * 100));
    await sync.close();
  });

  it('changes during a sync are folded into one sync after it', async () => {
    let syncs = 0;
    const { sync, syncTimes } = world(() => {
      // Two watch events arrive while the first sync reads the store.
      if (syncs++ === 0) for (let i = 0; i < 2; i++) sync.schedule();
      return [service('web', '10.96.0.10')];
    });
    sync.schedule();
    await vi.advanceTimersByTimeAsync(1000);
    expect(syncTimes()).toEqual([0, 100]);
    await sync.close();
  });

  it('a manifest path waits a period after its first change, for the file to be written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-sync-'));
    try {
      writeFileSync(join(dir, 'web.yaml'), JSON.stringify(service('web', '10.96.0.10').object));
      const { sync, syncTimes } = world(() => [], dir);
      sync.schedule();
      await vi.advanceTimersByTimeAsync(50);
      sync.schedule();
      await vi.advanceTimersByTimeAsync(1000);
      expect(syncTimes()).toEqual([100]);
      await sync.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a failed sync is reported and the next change syncs again', async () => {
    let fail = true;
    const { sync, events } = world(() => {
      if (fail) throw new Error('store unreadable');
      return [service('web', '10.96.0.10')];
    });
    sync.schedule();
    await vi.advanceTimersByTimeAsync(200);
    expect(events.at(-1)).toMatch(/^failed@\d+:store unreadable$/);
    fail = false;
    sync.schedule();
    await vi.advanceTimersByTimeAsync(200);
    expect(events.at(-1)).toMatch(/^synced@\d+:web$/);
    await sync.close();
  });
});

describe('nodePortAddresses', () => {
  it('picks the node addresses inside the CIDRs; no CIDRs: all of them', () => {
    const addresses = ['192.168.1.10', '10.0.0.5', 'fd00::5'];
    expect(selectNodePortAddresses(addresses, [])).toEqual(addresses);
    expect(selectNodePortAddresses(addresses, ['10.0.0.0/8', 'fd00::/64'])).toEqual(['10.0.0.5', 'fd00::5']);
    expect(selectNodePortAddresses(addresses, ['172.16.0.0/12'])).toEqual([]);
  });
});

describe('ServiceSync from a source that knows what changed', () => {
  const obj = (kind: string, name: string, rest: object, rv: number, labels?: object): SourcedObject => ({
    source: 'api',
    object: { apiVersion: kind === 'Service' ? 'v1' : 'discovery.k8s.io/v1', kind, metadata: { name, namespace: 'shop', resourceVersion: String(rv), ...(labels && { labels }) }, ...rest },
  });
  const svc = (i: number) => obj('Service', `s${i}`, { spec: { clusterIP: `10.96.0.${i}`, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } }, i);
  const slice = (i: number, addresses: string[], rv: number) =>
    obj(
      'EndpointSlice',
      `s${i}-a`,
      { addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })) },
      rv,
      { 'kubernetes.io/service-name': `s${i}` },
    );

  it('a sync after one EndpointSlice event writes only that Service\'s entries', () => {
    const store = new Map<string, SourcedObject[]>();
    for (let i = 1; i <= 20; i++) store.set(`shop/s${i}`, [svc(i), slice(i, [`10.244.0.${i}`, `10.244.1.${i}`], 100 + i)]);
    let changed: Set<string> | undefined;
    const maps = { services: new MemoryMap('services'), backends: backendsMap(), revNat: new MemoryMap('revNat'), conntrack: new MemoryMap('conntrack') };
    const reads: string[] = [];
    const sync = new ServiceSync({
      path: {
        label: 'test',
        read: () => {
          reads.push('read');
          return { objects: [...store.values()].flat(), errors: [] };
        },
        changes: () => {
          const c = changed;
          changed = new Set();
          return c && new Map([...c].map((key) => [key, store.get(key) ?? []]));
        },
      },
      nodeName: 'node-a',
      reconciler: new Reconciler(maps),
      maps,
      log: pino({ level: 'silent' }),
    });
    const first = sync.syncNow();
    expect(first.writes.services).toEqual({ added: 60, updated: 0, removed: 0, unchanged: 0 });
    // s7 loses an endpoint and gains another; s20 is deleted.
    store.set('shop/s7', [svc(7), slice(7, ['10.244.0.7', '10.244.2.7'], 200)]);
    store.delete('shop/s20');
    changed!.add('shop/s7').add('shop/s20');
    const second = sync.syncNow();
    expect(reads).toEqual(['read']);
    expect(second).toMatchObject({ services: 19, frontends: 19, backends: 38, conntrackForgotten: 0 });
    expect(second.writes).toEqual({
      services: { added: 0, updated: 1, removed: 3, unchanged: 56 },
      backends: { added: 1, updated: 0, removed: 3, unchanged: 37 },
      revNat: { added: 0, updated: 0, removed: 1, unchanged: 19 },
    });
    // The maps hold what a full sync of the store gives.
    const fresh = { services: new MemoryMap('services'), backends: backendsMap(), revNat: new MemoryMap('revNat'), conntrack: new MemoryMap('conntrack') };
    new ServiceSync({ path: { label: 'fresh', read: () => ({ objects: [...store.values()].flat(), errors: [] }) }, nodeName: 'node-a', reconciler: new Reconciler(fresh), maps: fresh, log: pino({ level: 'silent' }) }).syncNow();
    expect(maps.services.size).toBe(fresh.services.size);
    expect(backendSlots(maps.backends).length).toBe(backendSlots(fresh.backends).length);
    expect(maps.revNat.size).toBe(fresh.revNat.size);
    // A sync with no change writes nothing and reads nothing.
    const third = sync.syncNow();
    expect(reads).toEqual(['read']);
    expect(third.writes.services).toEqual({ added: 0, updated: 0, removed: 0, unchanged: 57 });
  });
});

describe('ServiceSync, dual stack', () => {
  it('programs a dual-stack Service from its IPv4 and IPv6 slices, NodePorts at both node addresses; a removed IPv6 backend\'s UDP flows leave ferry_ct6', () => {
    const objects = (v6: string[]): SourcedObject[] => [
      {
        source: 'f',
        object: {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'dns', namespace: 'kube-system' },
          spec: { type: 'NodePort', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:96::10'], ipFamilies: ['IPv4', 'IPv6'], ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353, nodePort: 30053 }] },
        },
      },
      ...(['IPv4', 'IPv6'] as const).map((addressType) => ({
        source: 'f',
        object: {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: { name: `dns-${addressType.toLowerCase()}`, namespace: 'kube-system', labels: { 'kubernetes.io/service-name': 'dns' } },
          addressType,
          ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }],
          endpoints: (addressType === 'IPv4' ? ['10.244.0.5'] : v6).map((a) => ({ addresses: [a], conditions: { ready: true } })),
        },
      })),
    ];
    let current = objects(['fd00:244::5', 'fd00:244::6']);
    const maps = {
      services: new MemoryMap('services', lb4Key.size, lb4Service.size),
      backends: backendsMap(),
      revNat: new MemoryMap('revNat', revNatIndex.size, lb4ReverseNat.size),
      services6: new MemoryMap('services6', lb6Key.size, lb4Service.size),
      backends6: backendsMap('backends6'),
      revNat6: new MemoryMap('revNat6', revNatIndex.size, lb6ReverseNat.size),
      conntrack: new MemoryMap('conntrack', ct4Key.size, ctEntry.size),
      conntrack6: new MemoryMap('conntrack6', ct6Key.size, ct6Entry.size),
    };
    const reconciler = new Reconciler(maps);
    const sync = new ServiceSync({
      path: { label: 'test', read: () => ({ objects: current, errors: [] }) },
      nodeName: 'node-a',
      nodeAddresses: ['192.0.2.1', '2001:db8::1'],
      reconciler,
      maps,
      log: pino({ level: 'silent' }),
    });
    const first = sync.syncNow();
    expect(first).toMatchObject({ services: 1, frontends: 4, backends: 3, problems: 0 });
    const heads = (map: MemoryMap, codec: typeof lb4Key) => [...map.keys()].map((k) => codec.decode(k)).filter((k) => k.slot === 0).map((k) => `${k.address}:${k.port}`).sort();
    expect(heads(maps.services, lb4Key)).toEqual(['10.96.0.10:53', '192.0.2.1:30053']);
    expect(heads(maps.services6, lb6Key)).toEqual(['2001:db8::1:30053', 'fd00:96::10:53']);

    // A client's UDP flow pinned to fd00:244::6, as from_pod writes it into ferry_ct6.
    const id = reconciler.backendId('fd00:244::6:5353/udp')!;
    const entry = ct6Entry.encode({ lastSeenNs: 1n, lifetimeNs: 60_000_000_000n, backendId: id, revNatIndex: reconciler.revNatIndex('fd00:96::10:53/udp')!, tcpFlags: 0, state: 1 });
    maps.conntrack6.update(ct6Key.encode({ saddr: 'fd00:244::9', daddr: 'fd00:96::10', sport: 40000, dport: 53, proto: 'udp', dir: 'forward' }), entry);
    maps.conntrack6.update(ct6Key.encode({ saddr: 'fd00:244::6', daddr: 'fd00:244::9', sport: 5353, dport: 40000, proto: 'udp', dir: 'reverse' }), entry);
    current = objects(['fd00:244::5']);
    const second = sync.syncNow();
    expect(second.conntrackForgotten).toBe(2);
    expect(maps.conntrack6.size).toBe(0);
    expect(second.writes.backends).toMatchObject({ removed: 1 });
  });
});

