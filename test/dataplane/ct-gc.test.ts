// Conntrack GC and forgetBackends() on in-memory maps written through the
// layout codecs: which entries go (expired, orphaned, withdrawn UDP), which
// stay, and the periodic collector's timer and bookkeeping.
import { afterEach, describe, expect, it, vi } from 'vitest';

import { clearBackend } from '../../engine/dataplane/backend-slots.js';
import { collectConntrack, ConntrackGc, forgetBackends, servedBackends } from '../../engine/dataplane/ct-gc.js';
import {
  backendId,
  CT_FLAGS,
  CT_STATE,
  ct4Key,
  ct6Entry,
  ct6Key,
  ctEntry,
  lb4Backend,
  lb4Key,
  lb4Service,
  lb6Backend,
  lb6Key,
  type Ct4Key,
  type CtEntry,
  type Proto,
} from '../../engine/dataplane/layout.js';
import { MemoryMap } from '../../engine/dataplane/memory-map.js';
import { formatPrometheus } from '../../engine/dataplane/metrics.js';

const SEC = 1_000_000_000n;
const NOW = 100_000n * SEC;
const VIP = '10.96.0.10';
const CLIENT = '10.244.0.2';

interface World {
  conntrack: MemoryMap;
  backends: MemoryMap;
  services: MemoryMap;
}

/** The backends maps are arrays, as the kernel's: a removed backend's slot is all zero. */
const BACKEND_SLOTS = { array: true, maxEntries: 64 };

/** Backends 1 (10.0.0.1) and 2 (10.0.0.2) behind VIP:53/udp (rev-NAT 1) and VIP:80/tcp (rev-NAT 2). */
function world(): World {
  const w: World = {
    conntrack: new MemoryMap('ct', ct4Key.size, ctEntry.size),
    backends: new MemoryMap('be', backendId.size, lb4Backend.size, BACKEND_SLOTS),
    services: new MemoryMap('svc', lb4Key.size, lb4Service.size),
  };
  for (const id of [1, 2]) addBackend(w, id);
  setService(w, 'udp', 53, 1, [1, 2]);
  setService(w, 'tcp', 80, 2, [1, 2]);
  return w;
}

function addBackend(w: World, id: number): void {
  w.backends.update(backendId.encode(id), lb4Backend.encode({ address: `10.0.0.${id}`, port: 5353, proto: 'udp', flags: 0 }));
}

function setService(w: World, proto: Proto, port: number, rev: number, ids: number[]): void {
  const key = (slot: number) => lb4Key.encode({ address: VIP, port, proto, slot, scope: 'external' });
  for (let slot = 1; slot <= 4; slot++) w.services.delete(key(slot));
  ids.forEach((id, i) => w.services.update(key(i + 1), lb4Service.encode({ backendId: id, count: 0, revNatIndex: rev, flags: 0, affinityTimeout: 0 })));
  w.services.update(key(0), lb4Service.encode({ backendId: 0, count: ids.length, revNatIndex: rev, flags: 0, affinityTimeout: 0 }));
}

/** A flow's two entries, as from_pod writes them. */
function flow(w: World, o: { proto: Proto; sport: number; backend: number; idle?: bigint; lifetime?: bigint; dport?: number }): { forward: Ct4Key; reverse: Ct4Key } {
  const dport = o.dport ?? (o.proto === 'udp' ? 53 : 80);
  const forward: Ct4Key = { saddr: CLIENT, daddr: VIP, sport: o.sport, dport, proto: o.proto, dir: 'forward' };
  const reverse: Ct4Key = { saddr: `10.0.0.${o.backend}`, daddr: CLIENT, sport: 5353, dport: o.sport, proto: o.proto, dir: 'reverse' };
  const entry: CtEntry = {
    lastSeenNs: NOW - (o.idle ?? SEC),
    lifetimeNs: o.lifetime ?? 60n * SEC,
    backendId: o.backend,
    revNatIndex: o.proto === 'udp' ? 1 : 2,
    tcpFlags: 0,
    state: CT_STATE.established,
  };
  w.conntrack.update(ct4Key.encode(forward), ctEntry.encode(entry));
  w.conntrack.update(ct4Key.encode(reverse), ctEntry.encode(entry));
  return { forward, reverse };
}

function keys(w: World): string[] {
  return [...w.conntrack.entries()]
    .map(([k]) => ct4Key.decode(k))
    .map((k) => `${k.proto} ${k.dir} ${k.saddr}:${k.sport}>${k.daddr}:${k.dport}`)
    .sort();
}

describe('collectConntrack', () => {
  it('deletes expired entries and keeps live ones', () => {
    const w = world();
    flow(w, { proto: 'udp', sport: 1000, backend: 1, idle: 61n * SEC }); // 60 s lifetime: expired
    flow(w, { proto: 'udp', sport: 1001, backend: 1, idle: 59n * SEC });
    flow(w, { proto: 'tcp', sport: 1002, backend: 2, idle: 5n * 3600n * SEC, lifetime: 6n * 3600n * SEC });
    flow(w, { proto: 'tcp', sport: 1003, backend: 2, idle: 11n * SEC, lifetime: 10n * SEC }); // closing: expired
    const result = collectConntrack(w, NOW);
    expect(result).toEqual({ scanned: 8, expired: 4, orphaned: 0, withdrawn: 0, remaining: 4, capacity: undefined });
    expect(keys(w)).toEqual([
      'tcp forward 10.244.0.2:1002>10.96.0.10:80',
      'tcp reverse 10.0.0.2:5353>10.244.0.2:1002',
      'udp forward 10.244.0.2:1001>10.96.0.10:53',
      'udp reverse 10.0.0.1:5353>10.244.0.2:1001',
    ]);
  });

  it('an entry exactly at its lifetime is still live (stale only past it)', () => {
    const w = world();
    flow(w, { proto: 'udp', sport: 1000, backend: 1, idle: 60n * SEC });
    expect(collectConntrack(w, NOW).expired).toBe(0);
    expect(collectConntrack(w, NOW + 1n).expired).toBe(2);
  });

  it('deletes both entries of flows whose backend left the backends map, TCP and UDP', () => {
    const w = world();
    flow(w, { proto: 'udp', sport: 2000, backend: 1 });
    flow(w, { proto: 'tcp', sport: 2001, backend: 1 });
    flow(w, { proto: 'udp', sport: 2002, backend: 2 });
    setService(w, 'udp', 53, 1, [2]);
    setService(w, 'tcp', 80, 2, [2]);
    clearBackend(w.backends, 4, 1);
    const result = collectConntrack(w, NOW);
    expect(result).toMatchObject({ scanned: 6, expired: 0, orphaned: 4, withdrawn: 0, remaining: 2 });
    expect(keys(w)).toEqual(['udp forward 10.244.0.2:2002>10.96.0.10:53', 'udp reverse 10.0.0.2:5353>10.244.0.2:2002']);
  });

  it('UDP flows to a backend that left their Service but serves another are withdrawn; TCP ones stay', () => {
    const w = world();
    flow(w, { proto: 'udp', sport: 3000, backend: 1 });
    flow(w, { proto: 'tcp', sport: 3001, backend: 1 });
    setService(w, 'udp', 53, 1, [2]); // backend 1 leaves VIP:53/udp, still serves VIP:80/tcp
    setService(w, 'tcp', 80, 2, [2, 1]);
    let result = collectConntrack(w, NOW);
    expect(result).toMatchObject({ expired: 0, orphaned: 0, withdrawn: 2, remaining: 2 });
    expect(keys(w)).toEqual(['tcp forward 10.244.0.2:3001>10.96.0.10:80', 'tcp reverse 10.0.0.1:5353>10.244.0.2:3001']);

    // A TCP connection to a backend that left its Service stays (kube-proxy keeps
    // established connections to terminating endpoints) until the backend is deleted.
    setService(w, 'tcp', 80, 2, [2]);
    expect(collectConntrack(w, NOW)).toMatchObject({ withdrawn: 0, orphaned: 0, remaining: 2 });
    clearBackend(w.backends, 4, 1);
    expect(collectConntrack(w, NOW)).toMatchObject({ orphaned: 2, remaining: 0 });
  });

  it('UDP flows of a removed Service are withdrawn; without the services map nothing is', () => {
    const w = world();
    flow(w, { proto: 'udp', sport: 4000, backend: 2 });
    for (let slot = 0; slot <= 2; slot++) w.services.delete(lb4Key.encode({ address: VIP, port: 53, proto: 'udp', slot, scope: 'external' }));
    expect(collectConntrack({ conntrack: w.conntrack, backends: w.backends }, NOW)).toMatchObject({ withdrawn: 0, remaining: 2 });
    expect(collectConntrack(w, NOW)).toMatchObject({ withdrawn: 2, remaining: 0 });
  });

  it('a slot beyond the count does not serve', () => {
    const w = world();
    // Slots 1 and 2 exist, count says 1: the datapath never picks slot 2.
    w.services.update(
      lb4Key.encode({ address: VIP, port: 53, proto: 'udp', slot: 0, scope: 'external' }),
      lb4Service.encode({ backendId: 0, count: 1, revNatIndex: 1, flags: 0, affinityTimeout: 0 }),
    );
    expect(servedBackends(w.services).get(1)).toEqual(new Set([1]));
  });

  it('judges each candidate again just before deleting it (a packet may have refreshed it)', () => {
    const w = world();
    const { forward } = flow(w, { proto: 'udp', sport: 5000, backend: 1, idle: 70n * SEC });
    const raw = ct4Key.encode(forward);
    const conntrack = {
      entries: () => w.conntrack.entries(),
      // The datapath refreshes the forward entry between the scan and the delete.
      lookup: (key: Buffer) => {
        const value = w.conntrack.lookup(key);
        if (value === undefined || !key.equals(raw)) return value;
        return ctEntry.encode({ ...ctEntry.decode(value), lastSeenNs: NOW });
      },
      delete: (key: Buffer) => w.conntrack.delete(key),
    };
    const result = collectConntrack({ conntrack, backends: w.backends, services: w.services }, NOW);
    expect(result).toMatchObject({ scanned: 2, expired: 1, remaining: 1 });
    expect(w.conntrack.lookup(raw)).toBeDefined();
  });
});

describe('forgetBackends', () => {
  it('deletes both directions of the UDP flows of the given backends only', () => {
    const w = world();
    addBackend(w, 3);
    flow(w, { proto: 'udp', sport: 6000, backend: 1 });
    flow(w, { proto: 'udp', sport: 6001, backend: 3 });
    flow(w, { proto: 'tcp', sport: 6002, backend: 1 });
    flow(w, { proto: 'udp', sport: 6003, backend: 2 });
    expect(forgetBackends(w.conntrack, [1, 3])).toBe(4);
    expect(keys(w)).toEqual([
      'tcp forward 10.244.0.2:6002>10.96.0.10:80',
      'tcp reverse 10.0.0.1:5353>10.244.0.2:6002',
      'udp forward 10.244.0.2:6003>10.96.0.10:53',
      'udp reverse 10.0.0.2:5353>10.244.0.2:6003',
    ]);
    expect(forgetBackends(w.conntrack, [1], ['tcp', 'udp'])).toBe(2);
    expect(forgetBackends(w.conntrack, [])).toBe(0);
    expect(keys(w)).toHaveLength(2);
  });
});

describe('ConntrackGc', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('collects every interval on an unref\'d timer, keeps the last result and totals, and stops', async () => {
    vi.useFakeTimers();
    const w = world();
    let now = NOW;
    const results: unknown[] = [];
    const gc = new ConntrackGc(w, { intervalMs: 1000, clock: () => now, onResult: (r) => results.push(r) });
    expect(gc.last).toBeUndefined();
    gc.start();
    expect(gc.running).toBe(true);
    flow(w, { proto: 'udp', sport: 7000, backend: 1, idle: 30n * SEC });
    vi.advanceTimersByTime(1000);
    expect(gc.last).toMatchObject({ scanned: 2, expired: 0, remaining: 2 });
    now += 31n * SEC;
    vi.advanceTimersByTime(1000);
    expect(gc.last).toMatchObject({ scanned: 2, expired: 2, remaining: 0 });
    expect(gc.last!.at).toBeInstanceOf(Date);
    expect(gc.totals).toEqual({ runs: 2, errors: 0, expired: 2, orphaned: 0, withdrawn: 0 });
    expect(results).toHaveLength(2);
    gc.stop();
    expect(gc.running).toBe(false);
    vi.advanceTimersByTime(5000);
    expect(gc.totals.runs).toBe(2);

    const text = await formatPrometheus({
      counters: { translated: 3n } as never,
      conntrack: { entries: 0, maxEntries: 65536 },
      gc: { totals: gc.totals, last: gc.last },
    });
    expect(text).toContain('ferry_ct_gc_deleted_total{reason="expired"} 2\n');
    expect(text).toContain('ferry_ct_gc_runs_total 2\n');
    expect(text).toContain('ferry_lb_packets_total{outcome="translated"} 3\n');
  });

  it('does not keep the process alive', () => {
    const timers: NodeJS.Timeout[] = [];
    const real = globalThis.setInterval;
    const spy = vi.spyOn(globalThis, 'setInterval').mockImplementation(((fn: () => void, ms: number) => {
      const timer = real(fn, ms);
      timers.push(timer);
      return timer;
    }) as typeof setInterval);
    const gc = new ConntrackGc(world(), { intervalMs: 60_000, clock: () => NOW }).start();
    try {
      gc.start(); // idempotent: still one timer
      expect(timers).toHaveLength(1);
      expect(timers[0]!.hasRef()).toBe(false);
    } finally {
      gc.stop();
      spy.mockRestore();
    }
  });

  it('a failing pass is reported and counted; the timer keeps going', () => {
    vi.useFakeTimers();
    const w = world();
    let fail = true;
    const broken = { ...w, backends: { lookup: () => undefined, entries: () => (fail ? raise() : w.backends.entries()) } };
    const errors: unknown[] = [];
    const gc = new ConntrackGc(broken, { intervalMs: 10, clock: () => NOW, onError: (e) => errors.push(e) }).start();
    vi.advanceTimersByTime(10);
    expect(errors).toHaveLength(1);
    expect(gc.lastError).toBeInstanceOf(Error);
    expect(gc.totals).toMatchObject({ runs: 0, errors: 1 });
    fail = false;
    vi.advanceTimersByTime(10);
    expect(gc.lastError).toBeUndefined();
    expect(gc.totals).toMatchObject({ runs: 1, errors: 1 });
    gc.stop();

    function raise(): never {
      throw new Error('map read failed');
    }
  });

  it('refuses a nonsensical interval', () => {
    expect(() => new ConntrackGc(world(), { intervalMs: 0, clock: () => NOW })).toThrow(/interval must be > 0/);
  });
});

// --- IPv6: ferry_ct6 beside ferry_ct4 -------------------------------------------

const VIP6 = 'fd00:96::10';
const CLIENT6 = 'fd00:244::2';

interface World6 extends World {
  conntrack6: MemoryMap;
  backends6: MemoryMap;
  services6: MemoryMap;
}

/**
 * world() and its IPv6 twin: backends 11 (fd00::11) and 12 (fd00::12) behind
 * VIP6:53/udp (rev-NAT 3) and VIP6:80/tcp (rev-NAT 4). Ids and indices are
 * one space: the IPv6 ones are not the IPv4 ones.
 */
function world6(): World6 {
  const w: World6 = {
    ...world(),
    conntrack6: new MemoryMap('ct6', ct6Key.size, ct6Entry.size),
    backends6: new MemoryMap('be6', backendId.size, lb6Backend.size, BACKEND_SLOTS),
    services6: new MemoryMap('svc6', lb6Key.size, lb4Service.size),
  };
  for (const id of [11, 12]) w.backends6.update(backendId.encode(id), lb6Backend.encode({ address: `fd00::${id}`, port: 5353, proto: 'udp', flags: 0 }));
  setService6(w, 'udp', 53, 3, [11, 12]);
  setService6(w, 'tcp', 80, 4, [11, 12]);
  return w;
}

function setService6(w: World6, proto: Proto, port: number, rev: number, ids: number[]): void {
  const key = (slot: number) => lb6Key.encode({ address: VIP6, port, proto, slot, scope: 'external' });
  for (let slot = 1; slot <= 4; slot++) w.services6.delete(key(slot));
  ids.forEach((id, i) => w.services6.update(key(i + 1), lb4Service.encode({ backendId: id, count: 0, revNatIndex: rev, flags: 0, affinityTimeout: 0 })));
  w.services6.update(key(0), lb4Service.encode({ backendId: 0, count: ids.length, revNatIndex: rev, flags: 0, affinityTimeout: 0 }));
}

/** An IPv6 flow's two entries, as from_pod writes them into ferry_ct6. */
function flow6(w: World6, o: { proto: Proto; sport: number; backend: number; idle?: bigint; flags?: number }): void {
  const dport = o.proto === 'udp' ? 53 : 80;
  const forward: Ct4Key = { saddr: CLIENT6, daddr: VIP6, sport: o.sport, dport, proto: o.proto, dir: 'forward' };
  const reverse: Ct4Key = { saddr: `fd00::${o.backend}`, daddr: CLIENT6, sport: 5353, dport: o.sport, proto: o.proto, dir: 'reverse' };
  const entry: CtEntry = {
    lastSeenNs: NOW - (o.idle ?? SEC),
    lifetimeNs: 60n * SEC,
    backendId: o.backend,
    revNatIndex: o.proto === 'udp' ? 3 : 4,
    tcpFlags: 0,
    state: CT_STATE.established,
    flags: o.flags ?? 0,
  };
  w.conntrack6.update(ct6Key.encode(forward), ct6Entry.encode(entry));
  w.conntrack6.update(ct6Key.encode(reverse), ct6Entry.encode(entry));
}

function keys6(w: World6): string[] {
  return [...w.conntrack6.entries()]
    .map(([k]) => ct6Key.decode(k))
    .map((k) => `${k.proto} ${k.dir} [${k.saddr}]:${k.sport}>[${k.daddr}]:${k.dport}`)
    .sort();
}

describe('conntrack of both families', () => {
  it('collects ferry_ct6 too, against the IPv6 backends and services maps; the result sums both', () => {
    const w = world6();
    flow(w, { proto: 'udp', sport: 1000, backend: 1, idle: 61n * SEC }); // IPv4: expired
    flow6(w, { proto: 'udp', sport: 2000, backend: 11, idle: 61n * SEC }); // expired
    flow6(w, { proto: 'udp', sport: 2001, backend: 11 }); // withdrawn below
    flow6(w, { proto: 'tcp', sport: 2002, backend: 12 }); // orphaned below
    flow6(w, { proto: 'tcp', sport: 2003, backend: 11 }); // stays
    // An IPv6 flow naming backend id 1: an IPv4 backend's id, no IPv6 backend's (ids are one space): orphaned.
    flow6(w, { proto: 'tcp', sport: 2004, backend: 1 });
    // A masqueraded IPv6 flow has no backend: it stays until it expires.
    flow6(w, { proto: 'udp', sport: 2005, backend: 0, flags: CT_FLAGS.masq });
    setService6(w, 'udp', 53, 3, [12]); // 11 leaves VIP6:53/udp, still serves VIP6:80/tcp
    clearBackend(w.backends6, 6, 12);
    setService6(w, 'tcp', 80, 4, [11]);
    setService6(w, 'udp', 53, 3, []);

    const result = collectConntrack(w, NOW);
    expect(result).toEqual({ scanned: 2 + 12, expired: 2 + 2, orphaned: 4, withdrawn: 2, remaining: 4, capacity: undefined });
    expect(keys6(w)).toEqual([
      'tcp forward [fd00:244::2]:2003>[fd00:96::10]:80',
      'tcp reverse [fd00::11]:5353>[fd00:244::2]:2003',
      'udp forward [fd00:244::2]:2005>[fd00:96::10]:53',
      'udp reverse [fd00::]:5353>[fd00:244::2]:2005',
    ]);
    expect(keys(w)).toEqual([]);
    // Without backends6, ferry_ct6 cannot be judged.
    expect(() => collectConntrack({ conntrack: w.conntrack, backends: w.backends, conntrack6: w.conntrack6 }, NOW)).toThrow(/conntrack6 needs backends6/);
  });

  it('an IPv6 flow names its backend in the IPv6 backends map: the same id among the IPv4 backends does not keep it', () => {
    const w = world6();
    addBackend(w, 11); // id 11 in the IPv4 map as well
    flow6(w, { proto: 'tcp', sport: 2100, backend: 11 });
    clearBackend(w.backends6, 6, 11);
    expect(collectConntrack(w, NOW)).toMatchObject({ orphaned: 2, remaining: 0 });
  });

  it('forgetBackends: the UDP flows of removed backend ids in both maps', () => {
    const w = world6();
    flow(w, { proto: 'udp', sport: 6000, backend: 1 });
    flow6(w, { proto: 'udp', sport: 6100, backend: 11 });
    flow6(w, { proto: 'tcp', sport: 6101, backend: 11 });
    flow6(w, { proto: 'udp', sport: 6102, backend: 12 });
    expect(forgetBackends({ conntrack: w.conntrack, conntrack6: w.conntrack6 }, [1, 11])).toBe(4);
    expect(keys(w)).toEqual([]);
    expect(keys6(w)).toEqual([
      'tcp forward [fd00:244::2]:6101>[fd00:96::10]:80',
      'tcp reverse [fd00::11]:5353>[fd00:244::2]:6101',
      'udp forward [fd00:244::2]:6102>[fd00:96::10]:53',
      'udp reverse [fd00::12]:5353>[fd00:244::2]:6102',
    ]);
    // The IPv4 map alone, as before: ferry_ct6 untouched.
    expect(forgetBackends(w.conntrack, [12])).toBe(0);
    expect(keys6(w)).toHaveLength(4);
  });

  it('servedBackends reads an IPv6 services map in its layout', () => {
    const w = world6();
    setService6(w, 'udp', 53, 3, [12]);
    expect(servedBackends(w.services6, 6)).toEqual(
      new Map([
        [3, new Set([12])],
        [4, new Set([11, 12])],
      ]),
    );
  });
});
