// ServiceSync's scheduling, on in-memory maps and a fake clock: bursts are
// folded into one sync, a steady stream of changes still gets synced within
// MAX_WAIT_PERIODS quiet periods, and the hooks the daemon's health and
// metrics follow see each queued change, sync and failure. No root needed.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SourcedObject } from '../../engine/dataplane/k8s.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { Reconciler } from '../../engine/dataplane/reconcile.js';
import { MAX_WAIT_PERIODS, selectNodePortAddresses, ServiceSync, type SyncReport } from '../../plugin/daemon/services.js';

const service = (name: string, clusterIP: string): SourcedObject => ({
  source: 'test',
  object: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { clusterIP, ports: [{ port: 80 }] } },
});

describe('ServiceSync scheduling', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] }));
  afterEach(() => vi.useRealTimers());

  function world(read: () => SourcedObject[]) {
    const maps = { services: new MemoryMap('services'), backends: new MemoryMap('backends'), revNat: new MemoryMap('revNat'), conntrack: new MemoryMap('conntrack') };
    const events: string[] = [];
    const synced: SyncReport[] = [];
    const sync = new ServiceSync({
      path: { label: 'test', read: () => ({ objects: read(), errors: [] }) },
      nodeName: 'node-a',
      reconciler: new Reconciler(maps),
      maps,
      log: pino({ level: 'silent' }),
      delayMs: 100,
      hooks: {
        queued: () => events.push(`queued@${Date.now()}`),
        synced: (report, state) => {
          synced.push(report);
          events.push(`synced@${Date.now()}:${state.services.map((s) => s.name).join(',')}`);
        },
        failed: (e) => events.push(`failed@${Date.now()}:${(e as Error).message}`),
      },
    });
    return { sync, events, synced };
  }

  it('folds a burst into one sync after the quiet period', async () => {
    const t0 = Date.now();
    const { sync, events } = world(() => [service('web', '10.96.0.10')]);
    for (let i = 0; i < 5; i++) {
      sync.schedule();
      await vi.advanceTimersByTimeAsync(20);
    }
    await vi.advanceTimersByTimeAsync(1000);
    expect(events.map((e) => e.replace(/@(\d+)/, (_, t) => `@${Number(t) - t0}`))).toEqual([
      'queued@0',
      'queued@20',
      'queued@40',
      'queued@60',
      'queued@80',
      'synced@180:web',
    ]);
    await sync.close();
  });

  it('a steady stream of changes is still synced every MAX_WAIT_PERIODS quiet periods', async () => {
    const t0 = Date.now();
    const { sync, synced, events } = world(() => [service('web', '10.96.0.10')]);
    // A change every 50 ms for 3 s: never 100 ms of quiet.
    for (let i = 0; i < 60; i++) {
      sync.schedule();
      await vi.advanceTimersByTimeAsync(50);
    }
    const times = events.filter((e) => e.startsWith('synced')).map((e) => Number(/@(\d+)/.exec(e)![1]) - t0);
    expect(times).toEqual([1, 2, 3].map((k) => k * MAX_WAIT_PERIODS * 100));
    expect(synced).toHaveLength(3);
    await sync.close();
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
