// How from_pod (build/bpf/lb.o) picks a new flow's backend, under
// BPF_PROG_TEST_RUN: Maglev consistent hashing (a table from
// engine/dataplane/maglev.ts in ferry_lb4_maglv) and ClientIP session
// affinity (ferry_lb4_aff). Maps are filled and read through layout.ts.
import { describe, expect, it } from 'vitest';

import { isEmptyBackend } from '../../engine/dataplane/backend-slots.js';
import {
  backendId,
  lb4Affinity,
  lb4AffinityKey,
  lb4Key,
  lb4Maglev,
  lb4MaglevKey,
  SVC_FLAGS,
} from '../../engine/dataplane/layout.js';
import { maglevTable } from '../../engine/dataplane/maglev.js';
import { isRoot } from '../support/netns.js';
import { type LbFixture, loadLb, OK } from './lb-fixture.js';
import { ipv4Packet, parseIpv4Packet, TCP } from './packets.js';

const VIP = '10.96.0.10';
const REV_NAT = 7;
const M = 251;
const SEED = 0x5eed;
const BACKENDS = [
  { id: 1, address: '10.244.1.5', port: 8080 },
  { id: 2, address: '10.244.2.6', port: 8080 },
  { id: 3, address: '10.244.3.7', port: 8080 },
];
type Backend = (typeof BACKENDS)[number];
const nameOf = (b: Backend) => `${b.address}:${b.port}/tcp`;

/** Writes the service's Maglev table over `backends`, as the Reconciler would. */
function writeMaglev(lb: LbFixture, backends: readonly Backend[]): void {
  const byName = new Map(backends.map((b) => [nameOf(b), b.id]));
  const table = maglevTable(byName.keys(), { size: M, seed: SEED });
  lb.maglev.update(
    lb4MaglevKey.encode({ revNatIndex: REV_NAT, scope: 'external' }),
    lb4Maglev.encode({ seed: SEED, backendIds: table.map((name) => byName.get(name)!) }),
  );
}

async function withService(options: { maglev?: boolean; affinityTimeout?: number; backends?: Backend[] } = {}): Promise<LbFixture> {
  const lb = await loadLb();
  const backends = options.backends ?? BACKENDS;
  if (options.maglev) writeMaglev(lb, backends);
  lb.addService({
    address: VIP,
    port: 80,
    proto: 'tcp',
    revNatIndex: REV_NAT,
    backends,
    flags: options.maglev ? SVC_FLAGS.maglev : 0,
    affinityTimeout: options.affinityTimeout ?? 0,
  });
  return lb;
}

/** A SYN from client:sport to the service through from_pod; the backend id it was DNATed to. */
async function pick(lb: LbFixture, client: string, sport: number): Promise<number> {
  const result = await lb.run(ipv4Packet({ proto: 'tcp', src: client, dst: VIP, sport, dport: 80, flags: TCP.SYN }));
  expect(result.retval).toBe(OK);
  const dst = parseIpv4Packet(result.data).dst;
  const backend = BACKENDS.find((b) => b.address === dst);
  if (!backend) throw new Error(`DNATed to ${dst}, no backend`);
  return backend.id;
}

function flushConntrack(lb: LbFixture): void {
  for (const key of [...lb.conntrack.keys()]) lb.conntrack.delete(key);
}

/** Flow i's client address and source port: 3000 distinct 5-tuples. */
function tuple(i: number): [string, number] {
  return [`10.240.${(i >> 6) & 255}.${(i & 63) + 1}`, 20000 + ((i * 7919) % 40000)];
}

function histogram(ids: readonly number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const id of ids) out[id] = (out[id] ?? 0) + 1;
  return out;
}

describe.skipIf(!isRoot)('Maglev backend selection in from_pod (needs root: BPF_PROG_TEST_RUN)', () => {
  it('spreads 3000 flows over 3 backends within ±10% of uniform', async () => {
    const lb = await withService({ maglev: true });
    const ids: number[] = [];
    for (let i = 0; i < 3000; i++) ids.push(await pick(lb, ...tuple(i)));
    const counts = histogram(ids);
    expect(Object.keys(counts).sort()).toEqual(['1', '2', '3']);
    for (const count of Object.values(counts)) {
      expect(count).toBeGreaterThanOrEqual(900);
      expect(count).toBeLessThanOrEqual(1100);
    }
    expect(lb.nonZeroCounters()).toEqual({ translated: 3000n, ct_created: 3000n });
  });

  it('sends a 5-tuple to the same backend every time, with conntrack flushed in between', async () => {
    const lb = await withService({ maglev: true });
    for (let i = 0; i < 100; i++) {
      const first = await pick(lb, ...tuple(i));
      for (let again = 0; again < 3; again++) {
        flushConntrack(lb);
        expect(await pick(lb, ...tuple(i))).toBe(first);
      }
    }
    // A second program instance (another node) with the same table agrees.
    const other = await withService({ maglev: true });
    for (let i = 0; i < 100; i++) {
      flushConntrack(lb);
      expect(await pick(other, ...tuple(i))).toBe(await pick(lb, ...tuple(i)));
    }
  });

  it('keeps ≥ 90% of the flows on surviving backends where they were when a backend goes', async () => {
    const lb = await withService({ maglev: true });
    const before: number[] = [];
    for (let i = 0; i < 3000; i++) before.push(await pick(lb, ...tuple(i)));

    // Backend 2 goes: the table first (it names only survivors), then the slots.
    const survivors = [BACKENDS[0]!, BACKENDS[2]!];
    writeMaglev(lb, survivors);
    lb.addService({ address: VIP, port: 80, proto: 'tcp', revNatIndex: REV_NAT, backends: survivors, flags: SVC_FLAGS.maglev });
    lb.services.delete(lb4Key.encode({ address: VIP, port: 80, proto: 'tcp', slot: 3, scope: 'external' }));
    lb.removeBackend(2);
    flushConntrack(lb);

    let stayed = 0;
    let onSurvivors = 0;
    for (let i = 0; i < 3000; i++) {
      const now = await pick(lb, ...tuple(i));
      expect(now).not.toBe(2);
      if (before[i] === 2) continue;
      onSurvivors++;
      if (now === before[i]) stayed++;
    }
    expect(onSurvivors).toBeGreaterThan(1500);
    expect(stayed / onSurvivors).toBeGreaterThanOrEqual(0.9);
  });

  it('falls back to a random slot while the table is missing or names a missing backend', async () => {
    const lb = await withService({ maglev: true });
    lb.maglev.delete(lb4MaglevKey.encode({ revNatIndex: REV_NAT, scope: 'external' }));
    const ids = new Set<number>();
    for (let i = 0; i < 60; i++) ids.add(await pick(lb, ...tuple(i)));
    expect(ids.size).toBeGreaterThan(1);

    // A table naming only backend 9, which does not exist: random again, no drop.
    lb.maglev.update(
      lb4MaglevKey.encode({ revNatIndex: REV_NAT, scope: 'external' }),
      lb4Maglev.encode({ seed: SEED, backendIds: new Array<number>(M).fill(9) }),
    );
    for (let i = 0; i < 20; i++) expect([1, 2, 3]).toContain(await pick(lb, ...tuple(100 + i)));
  });
});

describe.skipIf(!isRoot)('ClientIP session affinity in from_pod (needs root: BPF_PROG_TEST_RUN)', () => {
  const CLIENT = '10.244.0.9';
  const affinityKey = (client = CLIENT) => lb4AffinityKey.encode({ clientAddress: client, revNatIndex: REV_NAT, scope: 'external' });
  const record = (lb: LbFixture, client = CLIENT) => {
    const value = lb.affinity.lookup(affinityKey(client));
    return value === undefined ? undefined : lb4Affinity.decode(value);
  };
  const slotOf = (id: number) => BACKENDS.findIndex((b) => b.id === id) + 1;

  it('sends one client, from any source port, to one backend, and records it', async () => {
    const lb = await withService({ affinityTimeout: 10800 });
    const before = lb.clockFloor();
    const first = await pick(lb, CLIENT, 30000);
    for (let sport = 30001; sport < 30050; sport++) expect(await pick(lb, CLIENT, sport)).toBe(first);
    const entry = record(lb)!;
    expect(entry).toMatchObject({ backendId: first, slot: slotOf(first) });
    expect(entry.lastUsedNs).toBeGreaterThanOrEqual(before);
    expect(entry.lastUsedNs).toBeLessThanOrEqual(lb.clockCeiling());

    // Other clients get their own choice: 40 of them do not all land on one backend.
    const others = new Set<number>();
    for (let i = 0; i < 40; i++) others.add(await pick(lb, `10.244.7.${i + 1}`, 30000));
    expect(others.size).toBeGreaterThan(1);
    expect([...lb.affinity.keys()]).toHaveLength(41);
  });

  it('without affinity, one client’s flows spread', async () => {
    const lb = await withService();
    const ids = new Set<number>();
    for (let sport = 30000; sport < 30040; sport++) ids.add(await pick(lb, CLIENT, sport));
    expect(ids.size).toBeGreaterThan(1);
    expect([...lb.affinity.keys()]).toEqual([]);
  });

  it('chooses anew once the record has been idle longer than the timeout', async () => {
    const lb = await withService({ affinityTimeout: 60 });
    const timeout = 60n * 1_000_000_000n;
    const plant = (idleNs: bigint) =>
      lb.affinity.update(affinityKey(), lb4Affinity.encode({ lastUsedNs: lb.now() - idleNs, backendId: 1, slot: 1 }));

    // Idle just under the timeout: still backend 1, and last_used refreshed.
    const fresh: number[] = [];
    for (let i = 0; i < 20; i++) {
      plant(timeout - 5_000_000_000n);
      const before = lb.clockFloor();
      fresh.push(await pick(lb, CLIENT, 31000 + i));
      expect(record(lb)!.lastUsedNs).toBeGreaterThanOrEqual(before);
    }
    expect(new Set(fresh)).toEqual(new Set([1]));

    // Idle past it: a new random choice each time, recorded (20 times backend 1 has odds 3^-20).
    const expired: number[] = [];
    for (let i = 0; i < 20; i++) {
      plant(timeout + 1_000_000_000n);
      const chosen = await pick(lb, CLIENT, 32000 + i);
      expired.push(chosen);
      expect(record(lb)).toMatchObject({ backendId: chosen, slot: slotOf(chosen) });
    }
    expect(new Set(expired).size).toBeGreaterThan(1);
  });

  it('chooses anew when the recorded backend left the service', async () => {
    const lb = await withService({ affinityTimeout: 10800 });
    const survivors = [BACKENDS[1]!, BACKENDS[2]!];
    const shrink = () => {
      lb.addService({ address: VIP, port: 80, proto: 'tcp', revNatIndex: REV_NAT, backends: survivors, affinityTimeout: 10800 });
      lb.services.delete(lb4Key.encode({ address: VIP, port: 80, proto: 'tcp', slot: 3, scope: 'external' }));
    };
    lb.affinity.update(affinityKey(), lb4Affinity.encode({ lastUsedNs: lb.now(), backendId: 1, slot: 1 }));
    expect(await pick(lb, CLIENT, 33000)).toBe(1);

    // Backend 1 leaves the service but stays in the backends map (another
    // service may still use it): its slot no longer names it, so not reused.
    shrink();
    expect(isEmptyBackend(lb.backends.lookup(backendId.encode(1))!)).toBe(false);
    const next = await pick(lb, CLIENT, 33001);
    expect([2, 3]).toContain(next);
    expect(record(lb)).toMatchObject({ backendId: next });
    expect(await pick(lb, CLIENT, 33002)).toBe(next);

    // The recorded backend deleted altogether: a new choice too.
    lb.affinity.update(affinityKey(), lb4Affinity.encode({ lastUsedNs: lb.now(), backendId: 1, slot: 0 }));
    lb.removeBackend(1);
    expect([2, 3]).toContain(await pick(lb, CLIENT, 33003));
  });

  it('with Maglev, affinity still pins the client across source ports', async () => {
    const lb = await withService({ maglev: true, affinityTimeout: 10800 });
    const first = await pick(lb, CLIENT, 34000);
    for (let sport = 34001; sport < 34040; sport++) expect(await pick(lb, CLIENT, sport)).toBe(first);
    expect(record(lb)).toMatchObject({ backendId: first, slot: 0 });
  });
});
